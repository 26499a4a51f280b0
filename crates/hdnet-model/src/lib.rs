//! HDNet's networks in Burn: the hourglass ([`hourglass`]), its non-standard layers ([`layers`]),
//! weights from TF1 checkpoints or safetensors ([`weights`]) and the original inference
//! pipeline ([`pipeline`]). Generic over the backend through Burn's `Device`.

pub mod device;
pub mod hourglass;
pub mod layers;
pub mod pipeline;
pub mod weights;

pub use hourglass::{Hourglass, HourglassConfig, NetKind};
pub use pipeline::{Hdnet, Prediction};
