//! HDNet's shift-only batch norm with per-image statistics, fused with the ReLU after it:
//! y = max(0, (x - mean) / sqrt(var + eps) + beta), mean and biased variance over each image's
//! channel plane. Forward in three passes over a plane (mean, variance, output), backward in
//! five (statistics and the ReLU mask are recomputed from x rather than stored); a plane is at
//! most 256 KiB, so all but the first read come from the core's cache.

use rayon::prelude::*;

/// Sizes: `batch` images of `channels` planes of `pixels` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planes {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl Planes {
    fn len(&self) -> usize {
        self.batch * self.channels * self.pixels
    }

    fn check(&self, x: &[f32], beta: &[f32]) {
        assert_eq!(x.len(), self.len(), "batch_norm_relu: input length for {self:?}");
        assert_eq!(beta.len(), self.channels, "batch_norm_relu: beta length for {self:?}");
    }
}

/// Mean and 1 / sqrt(biased variance + eps) of one plane (two passes: the variance from
/// deviations, which unlike the mean of squares does not cancel when the mean is large).
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn statistics(plane: &[f32], epsilon: f64) -> (f32, f32) {
    let n = plane.len() as f64;
    let mean = (lane_sum(plane, plane, |v, _| v) / n) as f32;
    let var = lane_sum(plane, plane, |v, _| (v - mean) * (v - mean)) / n;
    (mean, (1.0 / (var + epsilon).sqrt()) as f32)
}

/// The sum of f over the pairs of `a` and `b`, kept in 16 independent f32 lanes so that it
/// vectorises, the lanes then added in f64 (each lane sums at most a few thousand terms of a
/// plane, well within f32's precision for the 1e-5 agreement the tests ask).
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    const LANES: usize = 16;
    let mut lanes = [0f32; LANES];
    let (pairs_a, pairs_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest: f64 = pairs_a.remainder().iter().zip(pairs_b.remainder()).map(|(&x, &y)| f64::from(f(x, y))).sum();
    for (ca, cb) in pairs_a.zip(pairs_b) {
        for k in 0..LANES {
            lanes[k] += f(ca[k], cb[k]);
        }
    }
    lanes.iter().map(|&v| f64::from(v)).sum::<f64>() + rest
}

/// One plane's input gradient into `gx`; returns its share of beta's gradient.
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn backward_plane(x: &[f32], g: &[f32], beta: f32, epsilon: f64, gx: &mut [f32]) -> f32 {
    let (mean, inv) = statistics(x, epsilon);
    let n = x.len() as f64;
    // dz = g where the ReLU passed, else 0; dx = inv (dz - mean(dz) - xhat mean(dz xhat))
    let passed = |v: f32, g: f32| if (v - mean) * inv + beta > 0.0 { g } else { 0.0 };
    let sum_dz = lane_sum(x, g, passed);
    let sum_dz_xhat = lane_sum(x, g, |v, g| passed(v, g) * (v - mean) * inv);
    let (mean_dz, mean_dz_xhat) = ((sum_dz / n) as f32, (sum_dz_xhat / n) as f32);
    for (o, (&v, &g)) in gx.iter_mut().zip(x.iter().zip(g)) {
        let xhat = (v - mean) * inv;
        let dz = if xhat + beta > 0.0 { g } else { 0.0 };
        *o = inv * (dz - mean_dz - xhat * mean_dz_xhat);
    }
    sum_dz as f32
}

/// x [N, C, P] -> y [N, C, P].
pub fn forward(x: &[f32], beta: &[f32], planes: Planes, epsilon: f64) -> Vec<f32> {
    planes.check(x, beta);
    let mut y = crate::zeroed(x.len());
    y.par_chunks_mut(planes.pixels).zip(x.par_chunks(planes.pixels)).enumerate().for_each(|(plane, (y, x))| {
        let b = beta[plane % planes.channels];
        crate::vectorized(
            #[inline(always)]
            || forward_plane(x, b, epsilon, y),
        );
    });
    y
}

#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn forward_plane(x: &[f32], beta: f32, epsilon: f64, y: &mut [f32]) {
    let (mean, inv) = statistics(x, epsilon);
    for (o, &v) in y.iter_mut().zip(x) {
        *o = ((v - mean) * inv + beta).max(0.0);
    }
}

/// Gradients with respect to x [N, C, P] and beta [C] from the output gradient `grad`.
pub fn backward(x: &[f32], beta: &[f32], grad: &[f32], planes: Planes, epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    planes.check(x, beta);
    assert_eq!(grad.len(), x.len(), "batch_norm_relu: gradient length for {planes:?}");
    let mut grad_x = crate::zeroed(x.len());
    let plane_beta_grads: Vec<f32> = grad_x
        .par_chunks_mut(planes.pixels)
        .zip(x.par_chunks(planes.pixels).zip(grad.par_chunks(planes.pixels)))
        .enumerate()
        .map(|(plane, (gx, (x, g)))| {
            let b = beta[plane % planes.channels];
            crate::vectorized(
                #[inline(always)]
                || backward_plane(x, g, b, epsilon, gx),
            )
        })
        .collect();
    let mut grad_beta = vec![0.0; planes.channels];
    for (plane, g) in plane_beta_grads.into_iter().enumerate() {
        grad_beta[plane % planes.channels] += g;
    }
    (grad_x, grad_beta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32) / (1u64 << 24) as f32 * 4.0 - 2.0
            })
            .collect()
    }

    const PLANES: Planes = Planes { batch: 2, channels: 3, pixels: 10 };
    const EPS: f64 = 1e-3;

    fn loss(x: &[f32], beta: &[f32], weights: &[f32]) -> f64 {
        forward(x, beta, PLANES, EPS).iter().zip(weights).map(|(y, w)| f64::from(y * w)).sum()
    }

    #[test]
    fn forward_normalises_each_image_plane_then_shifts_and_clips() {
        let x = values(60, 1);
        let beta = [0.5, -0.2, 0.0];
        let y = forward(&x, &beta, PLANES, EPS);
        for plane in 0..6 {
            let v = &x[plane * 10..][..10];
            let mean = v.iter().sum::<f32>() / 10.0;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / 10.0;
            for (k, a) in v.iter().enumerate() {
                let want = ((a - mean) / (var + 1e-3).sqrt() + beta[plane % 3]).max(0.0);
                assert!((y[plane * 10 + k] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let (x, weights) = (values(60, 2), values(60, 3));
        let beta = vec![0.3f32, -0.4, 0.1];
        let (gx, gb) = backward(&x, &beta, &weights, PLANES, EPS);
        let h = 1e-3f32;
        for k in [0, 7, 19, 33, 59] {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[k] += h;
            down[k] -= h;
            let fd = (loss(&up, &beta, &weights) - loss(&down, &beta, &weights)) / (2.0 * f64::from(h));
            assert!((f64::from(gx[k]) - fd).abs() < 2e-3, "x[{k}]: {} vs {fd}", gx[k]);
        }
        // beta shifts every value of its channel: its gradient is the output gradient summed
        // where the ReLU passes (finite differences in beta would straddle ReLU kinks).
        let y = forward(&x, &beta, PLANES, EPS);
        for (c, got) in gb.iter().enumerate() {
            let want: f32 = (0..60).filter(|k| (k / 10) % 3 == c && y[*k] > 0.0).map(|k| weights[k]).sum();
            assert!((got - want).abs() < 1e-5, "beta[{c}]: {got} vs {want}");
        }
    }
}
