//! HDNet's networks in Burn: the hourglass ([`hourglass`]), its non-standard layers ([`layers`]),
//! its CPU kernels plugged into Burn ([`cpu_kernels`]),
//! weights from TF1 checkpoints or safetensors ([`weights`]), the original inference pipeline
//! ([`pipeline`]), and the differentiable geometry ([`geometry`]), supervised losses
//! ([`losses`]) and self-supervised warp loss ([`warp_loss`]) of training, and the widening of a
//! trained network ([`widen`]). Generic over the backend through Burn's `Device`.

pub mod cpu_kernels;
pub mod device;
pub mod geometry;
pub mod hourglass;
pub mod layers;
pub mod losses;
pub mod pipeline;
pub mod profile;
pub mod warp_loss;
pub mod weights;
pub mod widen;

pub use hourglass::{Hourglass, HourglassConfig, NetKind};
pub use pipeline::{Hdnet, Prediction};
