//! The global allocator: mimalloc.
//!
//! Every training step (and every image of a batch job) frees and reallocates buffers of the
//! same large sizes: activations, and the 38 MB weights and weight gradients of the
//! 1024-channel layers. glibc returns blocks over 32 MB to the kernel, so each step paid again
//! for the page faults of fresh memory; mimalloc reuses them.
//!
//! mimalloc in turn decommits free memory shortly after it is freed, and a step frees its 38 MB
//! buffers long before it allocates them again: [`keep_freed_memory`] turns that off. The
//! measured gains of both are in the README (Figures).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (the same index in mimalloc 2 and 3).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory stays committed for the next allocation instead of returning to the kernel (the
/// process's peak memory is what it would be anyway; it is not released before exit).
pub fn keep_freed_memory() {
    // SAFETY: setting an option is allowed at any time; -1 means never purge.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}
