//! Splitting pairs into even and odd elements and back: the Winograd transforms' strided
//! accesses. The compiler leaves these loops scalar, so on AVX-512 they use whole-register
//! permutes (`vpermt2ps`), 16 pairs at a time.

/// even[k] = pairs[2 k], odd[k] = pairs[2 k + 1], for k < even.len() = odd.len().
pub fn deinterleave(pairs: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let n = even.len();
    assert!(odd.len() == n && pairs.len() >= 2 * n, "deinterleave: lengths");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; lengths asserted above.
        done = unsafe { avx512::deinterleave(&pairs[..2 * n], even, odd) };
    }
    for k in done..n {
        even[k] = pairs[2 * k];
        odd[k] = pairs[2 * k + 1];
    }
}

/// pairs[2 k] = even[k], pairs[2 k + 1] = odd[k], for k < even.len() = odd.len().
pub fn interleave(even: &[f32], odd: &[f32], pairs: &mut [f32]) {
    let n = even.len();
    assert!(odd.len() == n && pairs.len() >= 2 * n, "interleave: lengths");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; lengths asserted above.
        done = unsafe { avx512::interleave(even, odd, &mut pairs[..2 * n]) };
    }
    for k in done..n {
        pairs[2 * k] = even[k];
        pairs[2 * k + 1] = odd[k];
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    const EVEN: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
    const ODD: [i32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];
    const LOW: [i32; 16] = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
    const HIGH: [i32; 16] = [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];

    /// Whole blocks of 16 pairs; returns how many elements of `even` it filled.
    #[target_feature(enable = "avx512f")]
    pub fn deinterleave(pairs: &[f32], even: &mut [f32], odd: &mut [f32]) -> usize {
        let blocks = even.len() / 16;
        let (even_index, odd_index) = (index(&EVEN), index(&ODD));
        for b in 0..blocks {
            // SAFETY: 32 pairs from 32 b and 16 outputs from 16 b are inside the slices
            // (pairs.len() = 2 even.len() = 2 odd.len(), checked by the caller).
            unsafe {
                let lo = _mm512_loadu_ps(pairs.as_ptr().add(32 * b));
                let hi = _mm512_loadu_ps(pairs.as_ptr().add(32 * b + 16));
                _mm512_storeu_ps(even.as_mut_ptr().add(16 * b), _mm512_permutex2var_ps(lo, even_index, hi));
                _mm512_storeu_ps(odd.as_mut_ptr().add(16 * b), _mm512_permutex2var_ps(lo, odd_index, hi));
            }
        }
        16 * blocks
    }

    /// Whole blocks of 16 pairs; returns how many elements of `even` it used.
    #[target_feature(enable = "avx512f")]
    pub fn interleave(even: &[f32], odd: &[f32], pairs: &mut [f32]) -> usize {
        let blocks = even.len() / 16;
        let (low, high) = (index(&LOW), index(&HIGH));
        for b in 0..blocks {
            // SAFETY: as in `deinterleave`.
            unsafe {
                let e = _mm512_loadu_ps(even.as_ptr().add(16 * b));
                let o = _mm512_loadu_ps(odd.as_ptr().add(16 * b));
                _mm512_storeu_ps(pairs.as_mut_ptr().add(32 * b), _mm512_permutex2var_ps(e, low, o));
                _mm512_storeu_ps(pairs.as_mut_ptr().add(32 * b + 16), _mm512_permutex2var_ps(e, high, o));
            }
        }
        16 * blocks
    }

    #[target_feature(enable = "avx512f")]
    fn index(lanes: &[i32; 16]) -> __m512i {
        // SAFETY: reads exactly the 16 lanes of the array.
        unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_on_lengths_around_the_block_size() {
        for n in [0, 1, 15, 16, 17, 33, 64] {
            let pairs: Vec<f32> = (0..2 * n).map(|k| k as f32).collect();
            let (mut even, mut odd) = (vec![0.0; n], vec![0.0; n]);
            deinterleave(&pairs, &mut even, &mut odd);
            assert!(even.iter().enumerate().all(|(k, &v)| v == (2 * k) as f32), "even {n}");
            assert!(odd.iter().enumerate().all(|(k, &v)| v == (2 * k + 1) as f32), "odd {n}");
            let mut back = vec![-1.0; 2 * n];
            interleave(&even, &odd, &mut back);
            assert_eq!(back, pairs, "{n}");
        }
    }
}
