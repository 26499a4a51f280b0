//! The hourglass's way down and up: 2x2 max pooling (stride 2) and TF1's legacy bilinear x2
//! upsampling, forward and backward, per NCHW plane.

use rayon::prelude::*;

/// x [planes, h, w] -> [planes, h/2, w/2] (h and w even).
pub fn max_pool_2x2(x: &[f32], planes: usize, height: usize, width: usize) -> Vec<f32> {
    assert_eq!(x.len(), planes * height * width, "max_pool_2x2: input length");
    let (oh, ow) = (height / 2, width / 2);
    let mut out = crate::zeroed(planes * oh * ow);
    out.par_chunks_mut(oh * ow).zip(x.par_chunks(height * width)).for_each(|(out, x)| {
        for (y, row) in out.chunks_exact_mut(ow).enumerate() {
            let (top, bottom) = (&x[2 * y * width..][..width], &x[(2 * y + 1) * width..][..width]);
            for (k, o) in row.iter_mut().enumerate() {
                *o = top[2 * k].max(top[2 * k + 1]).max(bottom[2 * k]).max(bottom[2 * k + 1]);
            }
        }
    });
    out
}

/// The gradient of [`max_pool_2x2`]: each window's gradient goes to its first maximum in
/// row-major order (as TF and Burn choose).
pub fn max_pool_2x2_backward(x: &[f32], grad: &[f32], planes: usize, height: usize, width: usize) -> Vec<f32> {
    let (oh, ow) = (height / 2, width / 2);
    assert_eq!(grad.len(), planes * oh * ow, "max_pool_2x2: gradient length");
    let mut grad_x = crate::zeroed(x.len());
    grad_x.par_chunks_mut(height * width).zip(x.par_chunks(height * width).zip(grad.par_chunks(oh * ow))).for_each(
        |(gx, (x, g))| {
            for y in 0..oh {
                for k in 0..ow {
                    let window = [
                        2 * y * width + 2 * k,
                        2 * y * width + 2 * k + 1,
                        (2 * y + 1) * width + 2 * k,
                        (2 * y + 1) * width + 2 * k + 1,
                    ];
                    let best = window.into_iter().reduce(|a, b| if x[b] > x[a] { b } else { a }).expect("4 elements");
                    gx[best] = g[y * ow + k];
                }
            }
        },
    );
    grad_x
}

/// TF1 legacy `resize_images` bilinear x2: source position o/2, so even outputs copy the input,
/// odd ones are `a + (b - a) * 0.5` of a pixel and its next neighbour (the last repeats);
/// columns first, then rows, TF's order and form, so results agree to the last bit.
pub fn upsample_2x(x: &[f32], planes: usize, height: usize, width: usize) -> Vec<f32> {
    assert_eq!(x.len(), planes * height * width, "upsample_2x: input length");
    let (oh, ow) = (2 * height, 2 * width);
    let mut out = crate::zeroed(planes * oh * ow);
    out.par_chunks_mut(oh * ow).zip(x.par_chunks(height * width)).for_each(|(out, x)| {
        // columns: [height, ow]
        let mut rows = vec![0.0f32; height * ow];
        for (src, row) in x.chunks_exact(width).zip(rows.chunks_exact_mut(ow)) {
            for k in 0..width {
                let (a, b) = (src[k], src[(k + 1).min(width - 1)]);
                row[2 * k] = a;
                row[2 * k + 1] = a + (b - a) * 0.5;
            }
        }
        // then rows
        for y in 0..height {
            let (a, b) = (&rows[y * ow..][..ow], &rows[(y + 1).min(height - 1) * ow..][..ow]);
            out[2 * y * ow..][..ow].copy_from_slice(a);
            for (o, (&a, &b)) in out[(2 * y + 1) * ow..][..ow].iter_mut().zip(a.iter().zip(b)) {
                *o = a + (b - a) * 0.5;
            }
        }
    });
    out
}

/// The gradient of [`upsample_2x`]: each output spreads its gradient back with weight 1 (even
/// positions) or 1/2 to each of its two sources (odd positions), rows then columns.
pub fn upsample_2x_backward(grad: &[f32], planes: usize, height: usize, width: usize) -> Vec<f32> {
    let (oh, ow) = (2 * height, 2 * width);
    assert_eq!(grad.len(), planes * oh * ow, "upsample_2x: gradient length");
    let mut grad_x = crate::zeroed(planes * height * width);
    grad_x.par_chunks_mut(height * width).zip(grad.par_chunks(oh * ow)).for_each(|(gx, g)| {
        // rows: gradient of the column-upsampled intermediate [height, ow]
        let mut rows = vec![0.0f32; height * ow];
        for y in 0..height {
            let next = (y + 1).min(height - 1);
            for k in 0..ow {
                let odd = 0.5 * g[(2 * y + 1) * ow + k];
                rows[y * ow + k] += g[2 * y * ow + k] + odd;
                rows[next * ow + k] += odd;
            }
        }
        for (src, dst) in rows.chunks_exact(ow).zip(gx.chunks_exact_mut(width)) {
            for k in 0..width {
                let odd = 0.5 * src[2 * k + 1];
                dst[k] += src[2 * k] + odd;
                dst[(k + 1).min(width - 1)] += odd;
            }
        }
    });
    grad_x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsample_follows_the_tf_legacy_rule() {
        // [[0, 2, 4], [10, 12, 14]] -> 4x6
        let up = upsample_2x(&[0.0, 2.0, 4.0, 10.0, 12.0, 14.0], 1, 2, 3);
        let row0 = [0.0, 1.0, 2.0, 3.0, 4.0, 4.0];
        let row1 = [5.0, 6.0, 7.0, 8.0, 9.0, 9.0];
        let row2 = [10.0, 11.0, 12.0, 13.0, 14.0, 14.0];
        assert_eq!(up, [row0, row1, row2, row2].concat());
    }

    /// sum(g * f(x)) is linear in x for the upsampling: its gradient is exactly the adjoint,
    /// checked against <g, up(e_i)> for every input unit vector e_i.
    #[test]
    fn upsample_backward_is_the_adjoint() {
        let (h, w) = (3, 4);
        let g: Vec<f32> = (0..4 * h * w).map(|k| ((k * 37) % 11) as f32 - 5.0).collect();
        let back = upsample_2x_backward(&g, 1, h, w);
        for i in 0..h * w {
            let mut e = vec![0.0; h * w];
            e[i] = 1.0;
            let want: f32 = upsample_2x(&e, 1, h, w).iter().zip(&g).map(|(a, b)| a * b).sum();
            assert!((back[i] - want).abs() < 1e-5, "{i}: {} vs {want}", back[i]);
        }
    }

    #[test]
    fn max_pool_takes_window_maxima_and_routes_gradients_to_the_first_maximum() {
        // one 2x4 plane: windows [[1, 5], [3, 2]] and [[7, 7], [0, 7]]
        let x = [1.0, 5.0, 7.0, 7.0, 3.0, 2.0, 0.0, 7.0];
        assert_eq!(max_pool_2x2(&x, 1, 2, 4), [5.0, 7.0]);
        assert_eq!(max_pool_2x2_backward(&x, &[10.0, 20.0], 1, 2, 4), [0.0, 10.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
