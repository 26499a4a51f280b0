//! The metrics. All sums are in float64.

use hdnet_formats::densepose::NUM_PARTS;
use ndarray::{Array2, Array3};
use serde::Serialize;

/// Depth errors of one image (metres).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DepthMetrics {
    pub pixels: usize,
    /// RMSE after aligning the prediction by `scale * d + shift`.
    pub rmse: f64,
    /// Mean |aligned - gt| / gt.
    pub abs_rel: f64,
    /// RMSE without alignment.
    pub rmse_raw: f64,
    /// RMSE after a shift only: the surface's shape at the truth's distance, its relief's depth
    /// included (which the scale of `rmse`'s alignment takes away).
    pub rmse_shift: f64,
    pub scale: f64,
    pub shift: f64,
}

/// Normal errors of one image (degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NormalMetrics {
    pub pixels: usize,
    pub mean_deg: f64,
    pub median_deg: f64,
    /// Percent of pixels within 11.25, 22.5 and 30 degrees.
    pub within_11_25: f64,
    pub within_22_5: f64,
    pub within_30: f64,
    /// How much of the truth's fine relief the prediction has; `None` where the truth has none.
    pub detail: Option<Detail>,
}

/// The normals' fine relief: each normal minus the mean of its neighbours within
/// [`DETAIL_RADIUS`] pixels on the person, the prediction's (normalised) against the truth's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detail {
    /// The prediction's relief in RMS over the truth's: 1 as strong, 0 smooth.
    pub ratio: f64,
    /// The two reliefs' cosine, all pixels' vectors stacked: 1 the same shape, 0 unrelated.
    pub correlation: f64,
}

/// The neighbourhood of [`Detail`]: 5x5 pixels, about the width of a fold on a 256-pixel person.
pub const DETAIL_RADIUS: usize = 2;

/// The least-squares (scale, shift) mapping `pred` onto `gt`. With a single pixel, or a constant
/// prediction, the scale is undetermined: it is kept at 1 and only the shift is fitted.
pub fn align(pred: &[f64], gt: &[f64]) -> (f64, f64) {
    let n = pred.len() as f64;
    let (mp, mg) = (pred.iter().sum::<f64>() / n, gt.iter().sum::<f64>() / n);
    let var: f64 = pred.iter().map(|p| (p - mp).powi(2)).sum();
    let cov: f64 = pred.iter().zip(gt).map(|(p, g)| (p - mp) * (g - mg)).sum();
    if var <= 1e-12 * n * mp.abs().max(1.0).powi(2) {
        return (1.0, mg - mp);
    }
    let scale = cov / var;
    (scale, mg - scale * mp)
}

/// Depth metrics over the pixels where `mask` is on and the ground truth is positive; `None`
/// when there is no such pixel.
pub fn depth_metrics(pred: &Array2<f32>, gt: &Array2<f32>, mask: &Array2<f32>) -> Option<DepthMetrics> {
    let (p, g): (Vec<f64>, Vec<f64>) = pred
        .iter()
        .zip(gt)
        .zip(mask)
        .filter(|((_, g), m)| **m > 0.0 && **g > 0.0)
        .map(|((p, g), _)| (f64::from(*p), f64::from(*g)))
        .unzip();
    if p.is_empty() {
        return None;
    }
    let n = p.len() as f64;
    let (scale, shift) = align(&p, &g);
    // The RMSE of the prediction mapped by `map`.
    let rms = |map: &dyn Fn(f64) -> f64| (p.iter().zip(&g).map(|(v, g)| (map(*v) - g).powi(2)).sum::<f64>() / n).sqrt();
    let offset = (g.iter().sum::<f64>() - p.iter().sum::<f64>()) / n;
    let abs_rel = p.iter().zip(&g).map(|(v, g)| (scale * v + shift - g).abs() / g).sum::<f64>() / n;
    Some(DepthMetrics {
        pixels: p.len(),
        rmse: rms(&|v| scale * v + shift),
        abs_rel,
        rmse_raw: rms(&|v| v),
        rmse_shift: rms(&|v| v + offset),
        scale,
        shift,
    })
}

/// The angle in degrees between two vectors. A zero-length prediction has no direction and
/// counts as 90 degrees (as uninformative as a perpendicular guess).
pub fn angle_deg(a: [f32; 3], b: [f32; 3]) -> f64 {
    let dot: f64 = (0..3).map(|k| f64::from(a[k]) * f64::from(b[k])).sum();
    let na = (0..3).map(|k| f64::from(a[k]).powi(2)).sum::<f64>().sqrt();
    let nb = (0..3).map(|k| f64::from(b[k]).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return 90.0;
    }
    (dot / (na * nb)).clamp(-1.0, 1.0).acos().to_degrees()
}

/// Normal metrics over the mask pixels that have a ground-truth normal (non-zero); `None` when
/// there is no such pixel.
pub fn normal_metrics(pred: &Array3<f32>, gt: &Array3<f32>, mask: &Array2<f32>) -> Option<NormalMetrics> {
    normal_metrics_where(pred, gt, |r, c| mask[(r, c)] > 0.0)
}

fn normal_metrics_where(
    pred: &Array3<f32>,
    gt: &Array3<f32>,
    keep: impl Fn(usize, usize) -> bool,
) -> Option<NormalMetrics> {
    let (h, w, _) = gt.dim();
    let v = |a: &Array3<f32>, r, c| [a[(r, c, 0)], a[(r, c, 1)], a[(r, c, 2)]];
    let valid = Array2::from_shape_fn((h, w), |(r, c)| keep(r, c) && v(gt, r, c) != [0.0; 3]);
    let mut angles: Vec<f64> = (0..h * w)
        .map(|i| (i / w, i % w))
        .filter(|&(r, c)| valid[(r, c)])
        .map(|(r, c)| angle_deg(v(pred, r, c), v(gt, r, c)))
        .collect();
    if angles.is_empty() {
        return None;
    }
    angles.sort_by(f64::total_cmp);
    let n = angles.len();
    let median = if n % 2 == 1 { angles[n / 2] } else { (angles[n / 2 - 1] + angles[n / 2]) / 2.0 };
    let within = |t: f64| 100.0 * angles.iter().filter(|&&a| a < t).count() as f64 / n as f64;
    Some(NormalMetrics {
        pixels: n,
        mean_deg: angles.iter().sum::<f64>() / n as f64,
        median_deg: median,
        within_11_25: within(11.25),
        within_22_5: within(22.5),
        within_30: within(30.0),
        detail: detail(pred, gt, &valid),
    })
}

/// [`Detail`] over the `valid` pixels, their neighbourhoods restricted to valid pixels.
fn detail(pred: &Array3<f32>, gt: &Array3<f32>, valid: &Array2<bool>) -> Option<Detail> {
    let (h, w) = valid.dim();
    // Unit normals on the valid pixels, zero elsewhere, so that box sums count only those.
    let unit = |a: &Array3<f32>| {
        let mut u = Array3::<f64>::zeros((h, w, 3));
        for ((r, c), _) in valid.indexed_iter().filter(|(_, v)| **v) {
            let n = [0, 1, 2].map(|k| f64::from(a[(r, c, k)]));
            let len = n.iter().map(|x| x * x).sum::<f64>().sqrt();
            if len > 0.0 {
                (0..3).for_each(|k| u[(r, c, k)] = n[k] / len);
            }
        }
        u
    };
    // Box sums by summed-area tables: the valid count, then the three components of each map.
    let table = |value: &dyn Fn(usize, usize) -> f64| {
        let mut t = Array2::<f64>::zeros((h + 1, w + 1));
        for r in 0..h {
            for c in 0..w {
                t[(r + 1, c + 1)] = value(r, c) + t[(r, c + 1)] + t[(r + 1, c)] - t[(r, c)];
            }
        }
        t
    };
    let count = table(&|r, c| if valid[(r, c)] { 1.0 } else { 0.0 });
    let (pred, gt) = (unit(pred), unit(gt));
    let components = |u: &Array3<f64>| [0, 1, 2].map(|k| table(&|r, c| u[(r, c, k)]));
    let (pred_sums, gt_sums) = (components(&pred), components(&gt));
    let (mut pp, mut gg, mut pg) = (0.0, 0.0, 0.0);
    for (r, c) in (0..h * w).map(|i| (i / w, i % w)).filter(|&(r, c)| valid[(r, c)]) {
        let (r0, c0) = (r.saturating_sub(DETAIL_RADIUS), c.saturating_sub(DETAIL_RADIUS));
        let (r1, c1) = ((r + DETAIL_RADIUS + 1).min(h), (c + DETAIL_RADIUS + 1).min(w));
        let window = |t: &Array2<f64>| t[(r1, c1)] - t[(r0, c1)] - t[(r1, c0)] + t[(r0, c0)];
        let n = window(&count);
        for k in 0..3 {
            let dp = pred[(r, c, k)] - window(&pred_sums[k]) / n;
            let dg = gt[(r, c, k)] - window(&gt_sums[k]) / n;
            (pp, gg, pg) = (pp + dp * dp, gg + dg * dg, pg + dp * dg);
        }
    }
    if gg <= 1e-12 {
        return None;
    }
    let correlation = if pp > 0.0 { pg / (pp * gg).sqrt() } else { 0.0 };
    Some(Detail { ratio: (pp / gg).sqrt(), correlation })
}

/// Metrics per DensePose part (1..=NUM_PARTS) present in `parts`: the depth alignment is the image's
/// (fitted on the whole mask), then errors are taken per part.
pub fn per_part(
    pred_depth: &Array2<f32>,
    gt_depth: &Array2<f32>,
    pred_normals: &Array3<f32>,
    gt_normals: &Array3<f32>,
    mask: &Array2<f32>,
    parts: &Array2<u8>,
) -> Vec<(u8, Option<DepthMetrics>, Option<NormalMetrics>)> {
    let whole = depth_metrics(pred_depth, gt_depth, mask);
    (1..=NUM_PARTS)
        .filter(|p| parts.iter().zip(mask).any(|(q, m)| q == p && *m > 0.0))
        .map(|p| {
            let part_mask =
                Array2::from_shape_fn(mask.dim(), |i| if parts[i] == p && mask[i] > 0.0 { 1.0 } else { 0.0 });
            let depth = whole.and_then(|w| {
                let aligned = pred_depth.mapv(|d| (w.scale * f64::from(d) + w.shift) as f32);
                depth_metrics(&aligned, gt_depth, &part_mask).map(|m| DepthMetrics {
                    scale: w.scale,
                    shift: w.shift,
                    ..m
                })
            });
            let normals = normal_metrics_where(pred_normals, gt_normals, |r, c| part_mask[(r, c)] > 0.0);
            (p, depth, normals)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(values: &[f32], w: usize) -> Array2<f32> {
        Array2::from_shape_vec((values.len() / w, w), values.to_vec()).unwrap()
    }

    #[test]
    fn scale_and_shift_are_removed_exactly() {
        // gt = 2 * pred + 1 on the mask: aligned errors vanish, the raw RMSE does not.
        let pred = map(&[1.0, 2.0, 3.0, 100.0], 2);
        let gt = map(&[3.0, 5.0, 7.0, 0.0], 2);
        let mask = map(&[1.0, 1.0, 1.0, 0.0], 2);
        let m = depth_metrics(&pred, &gt, &mask).unwrap();
        assert_eq!(m.pixels, 3);
        assert!((m.scale - 2.0).abs() < 1e-12 && (m.shift - 1.0).abs() < 1e-12);
        assert!(m.rmse < 1e-12 && m.abs_rel < 1e-12);
        // raw errors 2, 3, 4: sqrt((4 + 9 + 16) / 3); shifted by their mean 3: -1, 0, 1
        assert!((m.rmse_raw - (29.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((m.rmse_shift - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn alignment_by_hand_with_residuals() {
        // pred 0, 1, 2; gt 0, 2, 1: s = cov/var = (0*... ) -> means 1, 1; cov = (-1)(-1) + 0 + (1)(0) = 1; var = 2
        let (s, t) = align(&[0.0, 1.0, 2.0], &[0.0, 2.0, 1.0]);
        assert!((s - 0.5).abs() < 1e-12 && (t - 0.5).abs() < 1e-12);
        let m = depth_metrics(&map(&[0.0, 1.0, 2.0], 3), &map(&[1.0, 3.0, 2.0], 3), &map(&[1.0, 1.0, 1.0], 3)).unwrap();
        // aligned = 0.5 p + 1.5 = 1.5, 2, 2.5 vs 1, 3, 2: errors .5, -1, .5 -> rmse sqrt(1.5/3)
        assert!((m.rmse - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((m.abs_rel - (0.5 / 1.0 + 1.0 / 3.0 + 0.5 / 2.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn one_pixel_mask_fits_only_the_shift() {
        let m = depth_metrics(&map(&[5.0, 7.0], 2), &map(&[4.0, 1.0], 2), &map(&[1.0, 0.0], 2)).unwrap();
        assert_eq!((m.pixels, m.scale, m.shift), (1, 1.0, -1.0));
        assert_eq!(m.rmse, 0.0);
        assert_eq!(m.rmse_raw, 1.0);
        assert!(depth_metrics(&map(&[5.0], 1), &map(&[4.0], 1), &map(&[0.0], 1)).is_none());
    }

    #[test]
    fn angles_and_zero_vectors() {
        assert!((angle_deg([1.0, 0.0, 0.0], [0.0, 0.0, -2.0]) - 90.0).abs() < 1e-9);
        assert!(angle_deg([0.0, 0.0, -1.0], [0.0, 0.0, -3.0]).abs() < 1e-6);
        assert!((angle_deg([0.0, 0.0, 1.0], [0.0, 0.0, -1.0]) - 180.0).abs() < 1e-9);
        assert_eq!(angle_deg([0.0; 3], [0.0, 0.0, -1.0]), 90.0);
        let s = 0.5f32.sqrt();
        // pixels: exact (0), 45 degrees, zero prediction (90), no ground truth (skipped)
        let pred = Array3::from_shape_vec((1, 4, 3), vec![0., 0., -1., s, 0., -s, 0., 0., 0., 0., 0., -1.]).unwrap();
        let gt = Array3::from_shape_vec((1, 4, 3), vec![0., 0., -1., 0., 0., -1., 0., 0., -1., 0., 0., 0.]).unwrap();
        let m = normal_metrics(&pred, &gt, &map(&[1.0; 4], 4)).unwrap();
        assert_eq!(m.pixels, 3);
        assert!((m.mean_deg - 45.0).abs() < 1e-4 && (m.median_deg - 45.0).abs() < 1e-4);
        assert!((m.within_11_25 - 100.0 / 3.0).abs() < 1e-9 && (m.within_30 - 100.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn detail_by_hand() {
        // Three pixels on the person and a fourth off it (its wild normal must not count). Every
        // window of 5 holds the three, whose mean is (0.2, 0, -2.8/3): the truth's relief is
        // x (-0.2, 0.4, -0.2), z (-1/15, 2/15, -1/15), y 0; sum of squares 0.24 + 0.4/15.
        let gt = Array3::from_shape_vec((1, 4, 3), vec![0., 0., -1., 0.6, 0., -0.8, 0., 0., -1., 0., 0., 0.]).unwrap();
        let mask = map(&[1.0, 1.0, 1.0, 0.0], 4);
        let with = |pred: Vec<f32>| {
            let pred = Array3::from_shape_vec((1, 4, 3), pred).unwrap();
            normal_metrics(&pred, &gt, &mask).unwrap().detail.unwrap()
        };
        let same = with(gt.iter().copied().collect());
        assert!((same.ratio - 1.0).abs() < 1e-6 && (same.correlation - 1.0).abs() < 1e-6, "{same:?}");
        // The fold mirrored (x negated) and twice as long (normalised away): as strong, and
        // x correlates -1 while z agrees: (-0.24 + 0.4/15) / (0.24 + 0.4/15) = -0.8.
        let mirrored = with(vec![0., 0., -2., -1.2, 0., -1.6, 0., 0., -2., 9., 9., 9.]);
        assert!((mirrored.ratio - 1.0).abs() < 1e-6, "{mirrored:?}");
        assert!((mirrored.correlation + 0.8).abs() < 1e-6, "{mirrored:?}");
        // A smooth prediction has no relief; a flat truth gives no figure.
        let flat = with(vec![0., 0., -1., 0., 0., -1., 0., 0., -1., 0., 0., -1.]);
        assert_eq!((flat.ratio, flat.correlation), (0.0, 0.0));
        let flat_gt = Array3::from_shape_vec((1, 2, 3), vec![0., 0., -1., 0., 0., -1.]).unwrap();
        assert!(normal_metrics(&flat_gt, &flat_gt, &map(&[1.0; 2], 2)).unwrap().detail.is_none());
    }

    #[test]
    fn per_part_uses_the_whole_image_alignment() {
        let pred = map(&[1.0, 2.0, 3.0, 4.0], 4);
        let gt = map(&[2.0, 4.0, 6.0, 9.0], 4);
        let mask = map(&[1.0; 4], 4);
        let parts = Array2::from_shape_vec((1, 4), vec![3u8, 3, 7, 7]).unwrap();
        let normals = Array3::from_elem((1, 4, 3), -1.0f32);
        let rows = per_part(&pred, &gt, &normals, &normals, &mask, &parts);
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 7]);
        let whole = depth_metrics(&pred, &gt, &mask).unwrap();
        assert_eq!(rows[0].1.unwrap().scale, whole.scale);
        assert_eq!(rows[1].2.unwrap().mean_deg, 0.0);
    }
}
