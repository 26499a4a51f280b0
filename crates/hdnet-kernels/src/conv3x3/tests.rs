//! The fast paths against a direct (seven-loop) convolution, on awkward sizes.

use super::*;

/// A deterministic pseudo-random generator (no test depends on a crate's RNG stream).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32) / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn direct_forward(x: &[f32], w: &[f32], b: &[f32], s: ConvShape) -> Vec<f64> {
    let (h, wd) = (s.height as isize, s.width as isize);
    let mut out = vec![0.0f64; s.output_len()];
    for n in 0..s.batch {
        for co in 0..s.out_channels {
            for y in 0..h {
                for xx in 0..wd {
                    let mut acc = f64::from(b[co]);
                    for ci in 0..s.in_channels {
                        for tap in 0..9isize {
                            let (sy, sx) = (y + tap / 3 - 1, xx + tap % 3 - 1);
                            if sy < 0 || sx < 0 || sy >= h || sx >= wd {
                                continue;
                            }
                            let xi = ((n * s.in_channels + ci) as isize * h + sy) * wd + sx;
                            let wi = (co * s.in_channels + ci) * 9 + tap as usize;
                            acc += f64::from(x[xi as usize]) * f64::from(w[wi]);
                        }
                    }
                    out[((n * s.out_channels + co) as isize * h * wd + y * wd + xx) as usize] = acc;
                }
            }
        }
    }
    out
}

/// d(sum(g * conv(x)))/dx and /dw by the direct definition.
fn direct_grads(x: &[f32], w: &[f32], g: &[f32], s: ConvShape) -> (Vec<f64>, Vec<f64>) {
    let (h, wd) = (s.height as isize, s.width as isize);
    let (mut gx, mut gw) = (vec![0.0f64; x.len()], vec![0.0f64; w.len()]);
    for n in 0..s.batch {
        for co in 0..s.out_channels {
            for y in 0..h {
                for xx in 0..wd {
                    let go = f64::from(g[((n * s.out_channels + co) as isize * h * wd + y * wd + xx) as usize]);
                    for ci in 0..s.in_channels {
                        for tap in 0..9isize {
                            let (sy, sx) = (y + tap / 3 - 1, xx + tap % 3 - 1);
                            if sy < 0 || sx < 0 || sy >= h || sx >= wd {
                                continue;
                            }
                            let xi = (((n * s.in_channels + ci) as isize * h + sy) * wd + sx) as usize;
                            let wi = (co * s.in_channels + ci) * 9 + tap as usize;
                            gx[xi] += go * f64::from(w[wi]);
                            gw[wi] += go * f64::from(x[xi]);
                        }
                    }
                }
            }
        }
    }
    (gx, gw)
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((f64::from(*g) - w).abs() <= 1e-5 * scale.max(1.0), "{what}[{i}]: {g} vs {w}");
    }
}

/// Sizes that exercise several chunks, a partial last chunk, channel blocks (small image, many
/// channels), one-row images and odd widths (the shifted GEMM); and even sizes with several
/// tile rows per task, several tasks per image, channel blocks and 2x2 images (large enough
/// for Winograd in `forward` only once; all of them in the Winograd test below).
const SHAPES: [ConvShape; 8] = [
    ConvShape { batch: 2, in_channels: 3, out_channels: 5, height: 7, width: 9 },
    ConvShape { batch: 1, in_channels: 4, out_channels: 3, height: 70, width: 61 },
    ConvShape { batch: 3, in_channels: 40, out_channels: 72, height: 4, width: 4 },
    ConvShape { batch: 1, in_channels: 2, out_channels: 2, height: 1, width: 5 },
    ConvShape { batch: 2, in_channels: 5, out_channels: 7, height: 6, width: 10 },
    ConvShape { batch: 1, in_channels: 3, out_channels: 4, height: 2, width: 2 },
    ConvShape { batch: 1, in_channels: 6, out_channels: 9, height: 70, width: 64 },
    ConvShape { batch: 2, in_channels: 33, out_channels: 70, height: 8, width: 6 },
];

#[test]
fn forward_matches_the_direct_convolution() {
    for s in SHAPES {
        let (x, w, b) = (values(s.input_len(), 1), values(s.weight_len(), 2), values(s.out_channels, 3));
        assert_close(&forward(&x, &w, Some(&b), s), &direct_forward(&x, &w, &b, s), &format!("forward {s:?}"));
    }
}

#[test]
fn gradients_match_the_direct_definition() {
    for s in SHAPES {
        let (x, w, g) = (values(s.input_len(), 4), values(s.weight_len(), 5), values(s.output_len(), 6));
        let (gx, gw) = direct_grads(&x, &w, &g, s);
        assert_close(&input_grad(&g, &w, s), &gx, &format!("input grad {s:?}"));
        assert_close(&weight_grad(&x, &g, s), &gw, &format!("weight grad {s:?}"));
        let gb = bias_grad(&g, s.batch, s.out_channels, s.height * s.width);
        let want: Vec<f64> = (0..s.out_channels)
            .map(|c| {
                (0..s.batch)
                    .flat_map(|n| g[(n * s.out_channels + c) * s.height * s.width..][..s.height * s.width].iter())
                    .map(|v| f64::from(*v))
                    .sum()
            })
            .collect();
        assert_close(&gb, &want, "bias grad");
    }
}

#[test]
fn winograd_matches_the_direct_convolution_on_every_even_size() {
    for s in SHAPES.into_iter().filter(|s| s.height % 2 == 0 && s.width % 2 == 0) {
        let (x, w, b) = (values(s.input_len(), 7), values(s.weight_len(), 8), values(s.out_channels, 9));
        let mut out = vec![0.0; s.output_len()];
        winograd::convolve(&x, &w, Some(&b), s, &mut out);
        assert_close(&out, &direct_forward(&x, &w, &b, s), &format!("winograd forward {s:?}"));
        // the input gradient is the same convolution with the kernels transposed and flipped
        let g = values(s.output_len(), 10);
        let mut gx = vec![0.0; s.input_len()];
        winograd::convolve(&g, &flipped_transposed(&w, s.out_channels, s.in_channels), None, s.transposed(), &mut gx);
        let (want_gx, want_gw) = direct_grads(&x, &w, &g, s);
        assert_close(&gx, &want_gx, &format!("winograd input grad {s:?}"));
        assert_close(&winograd::weight_grad(&x, &g, s), &want_gw, &format!("winograd weight grad {s:?}"));
    }
}
