//! Synthetic dressed people with exact ground truth: a random Anny body (phenotype), clothes
//! offset from the skin with folds and pose-dependent bunching, printed fabrics, lights and
//! backgrounds, anatomical poses or dance-like motions, photographed as people are (any
//! distance, lens, height and heading; whole or cut by the border: [`shot`]) and rasterised into
//! HDNet's labelled layout (depth, normals, mask, DensePose-style IUV, the crop's camera) or into
//! its video layout with exact correspondences between frames.

pub mod appearance;
pub mod garment;
pub mod person;
pub mod photo;
pub mod pose;
pub mod scene;
pub mod shot;
pub mod video;

pub use person::{
    Frame, Look, Person, check_body, labelled, labelled_frame, pose_look, render_person, sample_labelled, sample_look,
    write_labelled, write_video_frame,
};
pub use shot::{Framing, Shot};

/// SplitMix64's finaliser: a well-mixed 64-bit value of any position (seeds of streams, lattice
/// hashes), bit for bit the same on every platform.
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
