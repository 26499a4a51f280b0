//! HDNet's CPU kernels on plain NCHW `f32` slices, forward and backward: the 3x3 convolution
//! ([`conv3x3`]), the per-image batch norm followed by ReLU ([`batch_norm_relu`]), and the max
//! pooling and TF1-legacy upsampling between levels ([`resample`]): all of the hourglass's
//! operations but the concatenation and the 1x1 head; and Adam's update of the weights
//! ([`adam`]). hdnet-model plugs them into Burn.

pub mod adam;
pub mod batch_norm_relu;
pub mod conv3x3;
pub mod resample;
mod shuffle;

use rayon::prelude::*;

/// A zeroed buffer written by every thread. `vec![0.0; n]` zeroes on the calling thread alone
/// (the allocator reuses freed memory, so it must clear it) while the other cores wait.
pub(crate) fn zeroed(len: usize) -> Vec<f32> {
    let mut buffer = Vec::with_capacity(len);
    buffer.par_extend(rayon::iter::repeat_n(0.0f32, len));
    buffer
}

/// Runs `f` compiled for AVX-512 when the CPU has it (the build targets baseline x86-64, whose
/// 4-wide SSE2 leaves the element-wise loops of the transforms and the batch norm 2-4x slower);
/// `f` and what it calls are inlined into a function with those features enabled.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn run<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has the features `run` is compiled for (detected just above).
        return unsafe { run(f) };
    }
    f()
}
