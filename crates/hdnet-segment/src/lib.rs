//! The person in a photo, found without any tool outside hdnet: MediaPipe's selfie segmentation
//! and BlazePose landmark models (Apache-2.0, built into the binary) run as Burn graphs.
//!
//! - [`body_parts`]: a DensePose-like IUV map from the keypoints (training on videos without
//!   DensePose).
//! - [`graph`]: a TFLite operator graph on Burn tensors.
//! - [`models`]: the selfie segmentation and pose landmark models with their outputs named.
//! - [`person`]: the most prominent person of a photo: mask and keypoints at its resolution.
//! - [`shot_crop`]: a video's frames cut for training by one square per shot, with its camera.
//! - [`video`]: a video's person sized steadily over the frames of one shot.
//! - [`video_folder`]: a video folder for training written from a video's frames.

pub mod body_parts;
pub mod graph;
pub mod models;
pub mod person;
pub mod shot_crop;
pub mod video;
pub mod video_folder;
