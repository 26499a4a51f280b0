//! HDNet's CPU kernels on plain NCHW `f32` slices, forward and backward: the 3x3 convolution
//! ([`conv3x3`]), the per-image batch norm followed by ReLU ([`batch_norm_relu`]), and the max
//! pooling and TF1-legacy upsampling between levels ([`resample`]): all of the hourglass's
//! operations but the concatenation and the 1x1 head. hdnet-model plugs them into Burn.

pub mod batch_norm_relu;
pub mod conv3x3;
pub mod resample;
