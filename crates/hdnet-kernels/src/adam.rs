//! Adam's update of one parameter in a single pass over its four arrays, as TF1's `ApplyAdam`
//! computes it (the original's optimizer): epsilon is added to the uncorrected sqrt(v) and the
//! bias corrections are folded into the step size.

use rayon::prelude::*;

/// The scalars of one Adam step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    pub learning_rate: f64,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// 1 for the first update of a parameter.
    pub time: i32,
}

impl AdamStep {
    /// lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), in double precision as TF1 computes it on the host.
    pub fn corrected_learning_rate(&self) -> f32 {
        let t = self.time;
        let (b1, b2) = (f64::from(self.beta_1), f64::from(self.beta_2));
        (self.learning_rate * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t))) as f32
    }
}

/// Elements per task: large enough that a task's start costs nothing next to its memory traffic.
const CHUNK: usize = 1 << 15;

/// m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2); param -= lr_t m / (sqrt(v) + epsilon).
/// All four slices have the same length.
pub fn update(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], step: AdamStep) {
    assert!(
        grad.len() == param.len() && m.len() == param.len() && v.len() == param.len(),
        "Adam: arrays of different lengths"
    );
    let lr_t = step.corrected_learning_rate();
    let (one_minus_b1, one_minus_b2, epsilon) = (1.0 - step.beta_1, 1.0 - step.beta_2, step.epsilon);
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((param, grad), m), v)| {
            crate::vectorized(|| {
                for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m += (g - *m) * one_minus_b1;
                    *v += (g * g - *v) * one_minus_b2;
                    *p -= lr_t * *m / (v.sqrt() + epsilon);
                }
            })
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three steps of one parameter against Adam written out by hand in double precision (the
    /// textbook recurrences with TF1's placement of epsilon). Tolerance 1e-6 relative.
    #[test]
    fn three_steps_match_the_recurrences_computed_by_hand() {
        let grads = [[0.5f32, -2.0, 1e-3], [0.25, -1.0, 0.0], [-0.5, 3.0, 1e-3]];
        let (lr, b1, b2, eps) = (1e-3, 0.9f32, 0.999f32, 0.1f32);
        let (mut param, mut m, mut v) = (vec![1.0f32, -1.0, 0.5], vec![0.0f32; 3], vec![0.0f32; 3]);
        let (mut p64, mut m64, mut v64) = ([1.0f64, -1.0, 0.5], [0.0f64; 3], [0.0f64; 3]);
        for (t, g) in grads.iter().enumerate() {
            let time = t as i32 + 1;
            update(
                &mut param,
                g,
                &mut m,
                &mut v,
                AdamStep { learning_rate: lr, beta_1: b1, beta_2: b2, epsilon: eps, time },
            );
            let (b1, b2) = (f64::from(b1), f64::from(b2));
            let lr_t = lr * (1.0 - b2.powi(time)).sqrt() / (1.0 - b1.powi(time));
            for i in 0..3 {
                let g = f64::from(g[i]);
                m64[i] = b1 * m64[i] + (1.0 - b1) * g;
                v64[i] = b2 * v64[i] + (1.0 - b2) * g * g;
                p64[i] -= lr_t * m64[i] / (v64[i].sqrt() + f64::from(eps));
            }
        }
        for i in 0..3 {
            for (name, a, b) in [("param", param[i], p64[i]), ("m", m[i], m64[i]), ("v", v[i], v64[i])] {
                assert!((f64::from(a) - b).abs() <= 1e-6 * b.abs().max(1e-3), "{name}[{i}]: {a} vs {b}");
            }
        }
    }

    #[test]
    fn long_arrays_are_updated_in_every_chunk() {
        let n = 3 * CHUNK + 7;
        let (mut param, grad, mut m, mut v) = (vec![0.0f32; n], vec![1.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        update(
            &mut param,
            &grad,
            &mut m,
            &mut v,
            AdamStep { learning_rate: 0.1, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-8, time: 1 },
        );
        // First step: m = 0.1, v = 0.001, lr_t = 0.1 sqrt(0.001) / 0.1 = sqrt(0.001), so the step is
        // sqrt(0.001) * 0.1 / sqrt(0.001) = 0.1 (epsilon negligible).
        assert!(param.iter().all(|&p| (p + 0.1).abs() < 1e-5), "{:?}", &param[n - 3..]);
    }
}
