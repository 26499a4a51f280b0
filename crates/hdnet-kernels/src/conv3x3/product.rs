//! The one matrix product every convolution kernel runs, on the `gemm` crate.

use gemm::{Parallelism, gemm};

/// A matrix operand: its first element and the steps between rows and between columns.
pub type Strided<T> = (T, usize, usize);

/// dst (m x n) = lhs (m x k) times rhs (k x n), added to dst when `accumulate`; single-threaded
/// (the kernels spread whole products over the threads).
///
/// # Safety
/// Every element the sizes and strides address lies inside its operand's allocation, and no
/// other thread touches dst's elements meanwhile.
pub unsafe fn product(
    (m, n, k): (usize, usize, usize),
    (dst, dst_row, dst_column): Strided<*mut f32>,
    (lhs, lhs_row, lhs_column): Strided<*const f32>,
    (rhs, rhs_row, rhs_column): Strided<*const f32>,
    accumulate: bool,
) {
    let s = |stride: usize| stride as isize;
    // SAFETY: the caller's promise.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst,
            s(dst_column),
            s(dst_row),
            accumulate,
            lhs,
            s(lhs_column),
            s(lhs_row),
            rhs,
            s(rhs_column),
            s(rhs_row),
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}
