//! The global allocator: mimalloc.
//!
//! Every training step (and every image of a batch job) frees and reallocates buffers of the
//! same large sizes: activations, and the 38 MB weights and weight gradients of the
//! 1024-channel layers. glibc returns blocks over 32 MB to the kernel, so each step paid again
//! for the page faults of fresh memory; mimalloc reuses them. Measured on the 2-core machine at
//! full width, median of 7, three alternations: training step at batch 1 1215 ms (glibc) vs
//! 1100 ms; inference at batch 1 300 ms vs 270 ms.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
