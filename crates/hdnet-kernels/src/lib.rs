//! HDNet's CPU kernels on plain NCHW `f32` slices, forward and backward: the 3x3 convolution
//! ([`conv3x3`]) and the per-image batch norm followed by ReLU ([`batch_norm_relu`]), the two
//! operations that make up almost all of the hourglass's time. hdnet-model plugs them into Burn.

pub mod batch_norm_relu;
pub mod conv3x3;
