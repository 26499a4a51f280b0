//! The self-supervised warp loss of HDNet (`compute_dp_tr_3d_2d_loss2` in the original).
//!
//! For a pair of frames (i, j) of one video, pixels matched through DensePose UV are lifted to 3D
//! with each frame's predicted depth; per body part, one rigid transform is fitted from frame i's
//! points to frame j's (Kabsch); loss3d is the mean 3D distance after the fit, loss2d the mean
//! distance of the two point sets projected into frame j's full image (reported only).
//!
//! Batched: the correspondences of all pairs are concatenated, each (pair, part) group is a
//! segment; sums per segment are scatter-adds, so pairs may have any number of matches per part.
//! The loss of a batch is the mean over its pairs of each pair's mean over rows (for one pair:
//! exactly the original).
//!
//! Differences from the original, on purpose: parts with fewer than 3 matches are left out (the
//! original's SVD is degenerate there); the rotation is either the original's orthogonal factor
//! (which may be a reflection, det = -1, as the original does not check) or a proper rotation
//! (Horn's quaternion method), see [`RotationFit`]; distances and norms get a 1e-12 m^2 floor
//! under their square roots so that a part fitted exactly has a finite gradient.

use crate::losses::total;
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use hdnet_formats::correspondences::Correspondences;
use hdnet_geometry::Camera;

/// Newton iterations of the polar decomposition (scaled Newton converges in ~6 for H's
/// condition numbers seen in practice; the rest polishes to float precision).
const POLAR_ITERATIONS: usize = 12;
/// See [`polar_rotation`].
const POLAR_REGULARISER: f32 = 1e-6;
/// See [`polar_rotation`]: the smallest singular value it gives a matrix of rank two (well
/// above float32 rounding of the order-one products that make up the determinant).
const POLAR_COMPLETION: f32 = 1e-4;
/// Repeated squarings of Horn's matrix: the power 2^14 separates eigenvalues whose ratio is
/// as close as 0.999.
const HORN_SQUARINGS: usize = 14;
/// Added under the square roots of distances and norms: a zero residual (a part whose matches
/// coincide is fitted exactly) would otherwise give sqrt'(0) = inf and a NaN gradient. Shifts a
/// distance by at most 1e-6 m.
const SQUARED_DISTANCE_FLOOR: f32 = 1e-12;
/// Parts with fewer matches than this are skipped (3 points are needed for a rotation).
pub const MIN_PART_MATCHES: usize = 3;

/// How the per-part rotation is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationFit {
    /// The original: R = V U^T from the SVD of H, here the orthogonal polar factor of H^T by
    /// scaled Newton iteration; a reflection when det(H) < 0.
    #[default]
    Original,
    /// Always a proper rotation (det = +1): Horn's quaternion, the dominant eigenvector of his
    /// 4x4 matrix, by repeated squaring.
    Proper,
}

/// One frame pair with its correspondences and the cameras of both frames.
#[derive(Debug, Clone, Copy)]
pub struct WarpPair<'a> {
    pub correspondences: &'a Correspondences,
    pub camera_i: Camera,
    pub camera_j: Camera,
}

/// Device-side inputs of the warp loss for a batch of pairs, built once per batch.
#[derive(Debug, Clone)]
pub struct WarpBatch {
    index_i: Tensor<1, Int>,
    index_j: Tensor<1, Int>,
    ray_i: Tensor<2>,
    ray_j: Tensor<2>,
    segment: Tensor<1, Int>,
    segment_count: Tensor<2>,
    num_segments: usize,
    row_weight: Tensor<1>,
    /// fx, fy, cx, cy of frame j's camera per row.
    projection: Tensor<2>,
    rows: usize,
}

/// The host-side rows of a [`WarpBatch`], one per correspondence that enters the loss, and one
/// segment per (pair, part) with enough matches.
#[derive(Default)]
struct Rows {
    index_i: Vec<i64>,
    index_j: Vec<i64>,
    segment: Vec<i64>,
    ray_i: Vec<f32>,
    ray_j: Vec<f32>,
    /// The number of rows of the row's pair (its share of the pair's weight).
    pair_rows: Vec<f32>,
    projection: Vec<f32>,
    segment_count: Vec<f32>,
}

impl Rows {
    /// Adds pair `b`'s rows (parts with at least [`MIN_PART_MATCHES`] matches); whether it had any.
    fn push_pair(&mut self, b: usize, pair: &WarpPair, height: usize, width: usize) -> bool {
        let c = pair.correspondences;
        let parts: Vec<_> = c.part_ranges().into_iter().filter(|r| r.len() >= MIN_PART_MATCHES).collect();
        let rows: usize = parts.iter().map(|r| r.len()).sum();
        let flat = |p: [u32; 2]| (b * height * width + p[0] as usize * width + p[1] as usize) as i64;
        let cam = pair.camera_j;
        for range in parts {
            let segment = self.segment_count.len() as i64;
            self.segment_count.push(range.len() as f32);
            for k in range {
                let (pi, pj) = (c.pixel_i[k], c.pixel_j[k]);
                self.index_i.push(flat(pi));
                self.index_j.push(flat(pj));
                self.segment.push(segment);
                self.ray_i.extend(pair.camera_i.ray(pi[0] as f32, pi[1] as f32));
                self.ray_j.extend(pair.camera_j.ray(pj[0] as f32, pj[1] as f32));
                self.pair_rows.push(rows as f32);
                self.projection.extend([cam.fx, cam.fy, cam.cx, cam.cy]);
            }
        }
        rows > 0
    }
}

impl WarpBatch {
    /// Pairs must match the depth batch order; frames are `height` x `width`. Every pair that
    /// has rows weighs the same, and within a pair every row the same.
    pub fn new(pairs: &[WarpPair], height: usize, width: usize, device: &Device) -> Result<Self, String> {
        let mut rows = Rows::default();
        let mut pairs_used = 0;
        for (b, pair) in pairs.iter().enumerate() {
            pair.correspondences.check_within(height, width).map_err(|e| format!("pair {b}: {e}"))?;
            pairs_used += usize::from(rows.push_pair(b, pair, height, width));
        }
        let row_weight: Vec<f32> = rows.pair_rows.iter().map(|r| 1.0 / r / pairs_used as f32).collect();
        let (n, m) = (rows.index_i.len(), rows.segment_count.len());
        let int = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device);
        let float2 = |v: Vec<f32>, k: usize| Tensor::<2>::from_data(TensorData::new(v, [n, k]), device);
        Ok(Self {
            index_i: int(rows.index_i),
            index_j: int(rows.index_j),
            segment: int(rows.segment),
            ray_i: float2(rows.ray_i, 3),
            ray_j: float2(rows.ray_j, 3),
            segment_count: Tensor::from_data(TensorData::new(rows.segment_count, [m, 1]), device),
            num_segments: m,
            row_weight: Tensor::from_data(TensorData::new(row_weight, [n]), device),
            projection: float2(rows.projection, 4),
            rows: n,
        })
    }

    /// Correspondence rows that enter the loss.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Sum of `x` `[N, k]` over each segment: `[M, k]`.
    fn segment_sum(&self, x: Tensor<2>) -> Tensor<2> {
        let k = x.dims()[1];
        Tensor::zeros([self.num_segments, k], &x.device()).select_assign(
            0,
            self.segment.clone(),
            x,
            IndexingUpdateOp::Add,
        )
    }
}

/// The warp loss and the point sets it compares (rows in part order within each pair).
#[derive(Debug, Clone)]
pub struct WarpLoss {
    pub loss3d: Tensor<1>,
    pub loss2d: Tensor<1>,
    /// Frame j's points (the original's PC2p).
    pub points_j: Tensor<2>,
    /// Frame i's points after the per-part rigid fit (PC1_2).
    pub points_i_fitted: Tensor<2>,
}

/// Warp loss of depth maps `[B, 1, H, W]` of frames i and j.
pub fn warp_loss(depth_i: Tensor<4>, depth_j: Tensor<4>, batch: &WarpBatch, fit: RotationFit) -> WarpLoss {
    if batch.rows == 0 {
        // Nothing to compare: a zero that still belongs to the graph of both depths.
        let zero = (total(depth_i) + total(depth_j)) * 0.0;
        let empty = Tensor::zeros([0, 3], &zero.device());
        return WarpLoss { loss3d: zero.clone(), loss2d: zero, points_j: empty.clone(), points_i_fitted: empty };
    }
    let lift = |depth: Tensor<4>, index: &Tensor<1, Int>, ray: &Tensor<2>| {
        let lambda = depth.reshape([-1]).select(0, index.clone());
        ray.clone() * lambda.unsqueeze_dim::<2>(1)
    };
    let p1 = lift(depth_i, &batch.index_i, &batch.ray_i);
    let p2 = lift(depth_j, &batch.index_j, &batch.ray_j);
    let centroid_1 = batch.segment_sum(p1.clone()) / batch.segment_count.clone();
    let centroid_2 = batch.segment_sum(p2.clone()) / batch.segment_count.clone();
    let a = p1.clone() - centroid_1.clone().select(0, batch.segment.clone());
    let b = p2.clone() - centroid_2.clone().select(0, batch.segment.clone());
    let n = batch.rows;
    let outer = (a.unsqueeze_dim::<3>(2) * b.unsqueeze_dim::<3>(1)).reshape([n, 9]);
    let h = batch.segment_sum(outer).reshape([batch.num_segments, 3, 3]);
    let rotation = match fit {
        RotationFit::Original => polar_rotation(h.swap_dims(1, 2)),
        RotationFit::Proper => horn_rotation(h),
    };
    let rotate = |r: Tensor<3>, v: Tensor<2>| {
        let rows = v.dims()[0];
        r.matmul(v.unsqueeze_dim::<3>(2)).reshape([rows, 3])
    };
    let translation = centroid_2 - rotate(rotation.clone(), centroid_1);
    let p1_fitted =
        rotate(rotation.select(0, batch.segment.clone()), p1) + translation.select(0, batch.segment.clone());
    let distance =
        |x: Tensor<2>, y: Tensor<2>| (x - y).square().sum_dim(1).add_scalar(SQUARED_DISTANCE_FLOOR).sqrt().reshape([n]);
    let loss3d = total(distance(p2.clone(), p1_fitted.clone()) * batch.row_weight.clone());
    let loss2d = total(
        distance(project(&p2, &batch.projection), project(&p1_fitted, &batch.projection)) * batch.row_weight.clone(),
    );
    WarpLoss { loss3d, loss2d, points_j: p2, points_i_fitted: p1_fitted }
}

/// Full-frame pixel coordinates (x, y) of camera-space points, `[N, 2]`.
fn project(points: &Tensor<2>, projection: &Tensor<2>) -> Tensor<2> {
    let col = |t: &Tensor<2>, k: usize| t.clone().narrow(1, k, 1);
    let z = col(points, 2);
    let x = col(projection, 0) * col(points, 0) / z.clone() + col(projection, 2);
    let y = col(projection, 1) * col(points, 1) / z + col(projection, 3);
    Tensor::cat(vec![x, y], 1)
}

/// Entry (i, j) of a batch of 3x3 matrices, `[M, 1, 1]`.
fn entry(x: &Tensor<3>, i: usize, j: usize) -> Tensor<3> {
    x.clone().narrow(1, i, 1).narrow(2, j, 1)
}

/// Builds `[M, r, c]` from a row-major grid of `[M, 1, 1]` entries.
fn from_entries(rows: Vec<Vec<Tensor<3>>>) -> Tensor<3> {
    Tensor::cat(rows.into_iter().map(|row| Tensor::cat(row, 2)).collect(), 1)
}

/// Cofactor matrices (so that X^-T = cof(X) / det(X)) and determinants of `[M, 3, 3]`.
fn cofactor_det(x: &Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let e = |i, j| entry(x, i, j);
    let minor = |r0: usize, r1: usize, c0: usize, c1: usize| e(r0, c0) * e(r1, c1) - e(r0, c1) * e(r1, c0);
    let cof = from_entries(vec![
        vec![minor(1, 2, 1, 2), -minor(1, 2, 0, 2), minor(1, 2, 0, 1)],
        vec![-minor(0, 2, 1, 2), minor(0, 2, 0, 2), -minor(0, 2, 0, 1)],
        vec![minor(0, 1, 1, 2), -minor(0, 1, 0, 2), minor(0, 1, 0, 1)],
    ]);
    let det = (x.clone().narrow(1, 0, 1) * cof.clone().narrow(1, 0, 1)).sum_dim(2);
    (cof, det)
}

/// Orthogonal polar factor of each `[M, 3, 3]` matrix by scaled Newton iteration
/// X <- (g X + (g X)^-T) / 2, g = |det X|^(-1/3): equal to V U^T for H^T = V S U^T.
///
/// A rank-deficient H (3 matches always give rank two) has no inverse to iterate with. For rank
/// two, cof(X) = s1 s2 u3 v3^T is exactly the missing direction, so `POLAR_COMPLETION` times the
/// normalised cofactor matrix is added; for a regular X, cof(X) = det(X) X^-T has X's own polar
/// factor, so this leaves every well-conditioned result unchanged. (A multiple of the identity,
/// used before, shifts eigenvalues rather than singular values and left some rank-two H
/// singular: NaN in training.) `POLAR_REGULARISER` times the identity keeps rank one finite.
fn polar_rotation(x: Tensor<3>) -> Tensor<3> {
    let [m, _, _] = x.dims();
    let norm = x.clone().square().sum_dim(1).sum_dim(2).add_scalar(SQUARED_DISTANCE_FLOOR).sqrt();
    let x = x / norm;
    let (cof, _) = cofactor_det(&x);
    let cof_norm = cof.clone().square().sum_dim(1).sum_dim(2).add_scalar(SQUARED_DISTANCE_FLOOR).sqrt();
    let identity = Tensor::<2>::eye(3, &x.device()).unsqueeze_dim::<3>(0).repeat_dim(0, m);
    let mut x = x + cof / cof_norm * POLAR_COMPLETION + identity * POLAR_REGULARISER;
    for _ in 0..POLAR_ITERATIONS {
        let (cof, det) = cofactor_det(&x);
        let gamma = det.clone().abs().powf_scalar(-1.0 / 3.0);
        x = (x * gamma.clone() + cof / (det * gamma)) * 0.5;
    }
    x
}

/// The proper rotation minimising sum |R a + t - b|^2 for H = sum a b^T (Horn 1987): the unit
/// quaternion is the dominant eigenvector of Horn's symmetric 4x4 matrix N, found by repeated
/// squaring of (N + s I) / 2s, whose eigenvalues lie in [0, 1].
fn horn_rotation(h: Tensor<3>) -> Tensor<3> {
    let m = h.dims()[0];
    // Horn's symmetric 4x4 matrix of the entries s(i, j) of H; each read is a fresh view of H.
    let s = |i, j| entry(&h, i, j);
    let n = from_entries(vec![
        vec![s(0, 0) + s(1, 1) + s(2, 2), s(1, 2) - s(2, 1), s(2, 0) - s(0, 2), s(0, 1) - s(1, 0)],
        vec![s(1, 2) - s(2, 1), s(0, 0) - s(1, 1) - s(2, 2), s(0, 1) + s(1, 0), s(2, 0) + s(0, 2)],
        vec![s(2, 0) - s(0, 2), s(0, 1) + s(1, 0), -s(0, 0) + s(1, 1) - s(2, 2), s(1, 2) + s(2, 1)],
        vec![s(0, 1) - s(1, 0), s(2, 0) + s(0, 2), s(1, 2) + s(2, 1), -s(0, 0) - s(1, 1) + s(2, 2)],
    ]);
    // |eigenvalues of N| <= s1 + s2 + s3 <= sqrt(3) |H|_F.
    let shift = h.square().sum_dim(1).sum_dim(2).add_scalar(SQUARED_DISTANCE_FLOOR).sqrt() * 3f32.sqrt();
    let identity = Tensor::<2>::eye(4, &n.device()).unsqueeze_dim::<3>(0).repeat_dim(0, m);
    let mut p = (n + identity * shift.clone()) / (shift * 2.0);
    for _ in 0..HORN_SQUARINGS {
        p = p.clone().matmul(p);
        p = p.clone() / p.clone().square().sum_dim(1).sum_dim(2).sqrt();
    }
    // p ~ q q^T: its largest-diagonal column is the best-conditioned multiple of q.
    let diagonal = (p.clone() * Tensor::<2>::eye(4, &p.device()).unsqueeze_dim::<3>(0)).sum_dim(1); // [M,1,4]
    let best = diagonal.argmax(2).reshape([m, 1, 1]).repeat_dim(1, 4);
    let q = p.gather(2, best); // [M, 4, 1]
    let q = q.clone() / q.square().sum_dim(1).sqrt();
    // The rotation of the unit quaternion q = (w, x, y, z): entries 2 (q_a q_b +- q_c q_d) off the
    // diagonal, 1 - 2 (q_a^2 + q_b^2) on it.
    let c = |k| q.clone().narrow(1, k, 1);
    let diagonal = |a, b| Tensor::ones([m, 1, 1], &q.device()) - (c(a).square() + c(b).square()) * 2.0;
    let off = |a, b, sign: f32, d, e| (c(a) * c(b) + c(d) * c(e) * sign) * 2.0;
    let (w, x, y, z) = (0, 1, 2, 3);
    from_entries(vec![
        vec![diagonal(y, z), off(x, y, -1.0, w, z), off(x, z, 1.0, w, y)],
        vec![off(x, y, 1.0, w, z), diagonal(x, z), off(y, z, -1.0, w, x)],
        vec![off(x, z, -1.0, w, y), off(y, z, 1.0, w, x), diagonal(x, y)],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: usize = 12;
    const W: usize = 12;

    /// A deterministic pseudo-random generator (no test depends on a crate's RNG stream).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32) / (1u64 << 24) as f32
        }
    }

    /// Two parts, each a 4x3 block of pixels matched to the same pixels in frame j.
    fn correspondences() -> Correspondences {
        let mut c = Correspondences::default();
        for (part, r0) in [(3u8, 1u32), (9, 6)] {
            for r in r0..r0 + 4 {
                for col in 2..5 {
                    c.part.push(part);
                    c.pixel_i.push([r, col]);
                    c.pixel_j.push([r, col + 4]);
                }
            }
        }
        c
    }

    fn depth(values: Vec<f32>, device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values, [1, 1, H, W]), device)
    }

    fn random_depth(seed: u64) -> Vec<f32> {
        let mut rng = Lcg(seed);
        (0..H * W).map(|_| 3.5 + rng.next()).collect()
    }

    fn rotation(axis: [f32; 3], angle: f32) -> [[f32; 3]; 3] {
        let n = (axis.iter().map(|v| v * v).sum::<f32>()).sqrt();
        let [x, y, z] = axis.map(|v| v / n);
        let (s, c) = angle.sin_cos();
        let t = 1.0 - c;
        [
            [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
            [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
            [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
        ]
    }

    /// Frame j's depth when each part of frame i moves rigidly: the moved point must lie on the
    /// ray of its frame-j pixel, so the pixel is fixed and only the camera is chosen to fit:
    /// here both frames see the same 3D points through cameras whose crops differ by 4 columns.
    fn rigidly_moved(depth_i: &[f32], corr: &Correspondences, camera: Camera) -> (Vec<f32>, Camera) {
        // Frame j's crop origin moves 4 columns: pixel (r, c+4) of j sees what (r, c) of i sees
        // when the points are moved by a per-part rigid motion that we then undo... Simplest exact
        // construction: keep the points where they are (identity motion per part) and shift
        // frame j's crop by -4 * scaling so that its pixel (r, c + 4) has the same ray.
        let mut camera_j = camera;
        camera_j.origin[0] -= 4.0 * camera.scaling;
        let mut depth_j = vec![5.0; H * W];
        for k in 0..corr.len() {
            let (pi, pj) = (corr.pixel_i[k], corr.pixel_j[k]);
            depth_j[pj[0] as usize * W + pj[1] as usize] = depth_i[pi[0] as usize * W + pi[1] as usize];
        }
        (depth_j, camera_j)
    }

    fn loss3d(d_i: Vec<f32>, d_j: Vec<f32>, pairs: &[WarpPair], fit: RotationFit) -> f32 {
        let device = Device::flex();
        let batch = WarpBatch::new(pairs, H, W, &device).unwrap();
        let b = pairs.len();
        let t = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [b, 1, H, W]), &device);
        warp_loss(t(d_i), t(d_j), &batch, fit).loss3d.into_scalar()
    }

    #[test]
    fn pairs_related_by_exact_rigid_motion_give_zero_loss() {
        let corr = correspondences();
        let camera = Camera::original();
        let d_i = random_depth(1);
        let (d_j, camera_j) = rigidly_moved(&d_i, &corr, camera);
        let pair = [WarpPair { correspondences: &corr, camera_i: camera, camera_j }];
        for fit in [RotationFit::Original, RotationFit::Proper] {
            let l = loss3d(d_i.clone(), d_j.clone(), &pair, fit);
            assert!(l < 2e-6, "{fit:?}: {l}");
        }
    }

    #[test]
    fn rotated_parts_are_recovered_exactly() {
        // Points of frame i rotated and translated per part, then re-expressed as frame-j depths
        // along the rays of the same pixels: not exactly rigid any more, so instead compare the
        // fitted rotation directly on points through the public loss: rigidly moved point sets
        // give zero loss only if the fit finds the motion.
        let device = Device::flex();
        let mut rng = Lcg(7);
        let a: Vec<[f32; 3]> = (0..20).map(|_| [rng.next(), rng.next(), rng.next() + 3.0]).collect();
        let r = rotation([0.3, -1.0, 0.4], 0.9);
        let b: Vec<[f32; 3]> = a
            .iter()
            .map(|p| {
                let q = [0, 1, 2].map(|i| r[i][0] * p[0] + r[i][1] * p[1] + r[i][2] * p[2]);
                [q[0] + 0.1, q[1] - 0.2, q[2] + 0.05]
            })
            .collect();
        let mean = |v: &[[f32; 3]]| [0, 1, 2].map(|k| v.iter().map(|p| p[k]).sum::<f32>() / v.len() as f32);
        let (ma, mb) = (mean(&a), mean(&b));
        let mut h = [0f32; 9];
        for (p, q) in a.iter().zip(&b) {
            for i in 0..3 {
                for j in 0..3 {
                    h[i * 3 + j] += (p[i] - ma[i]) * (q[j] - mb[j]);
                }
            }
        }
        let h = Tensor::<3>::from_data(TensorData::new(h.to_vec(), [1, 3, 3]), &device);
        for (fit, got) in [
            (RotationFit::Original, polar_rotation(h.clone().swap_dims(1, 2))),
            (RotationFit::Proper, horn_rotation(h.clone())),
        ] {
            let got = got.try_into_vec_as::<f32>().unwrap();
            for i in 0..3 {
                for j in 0..3 {
                    assert!(
                        (got[i * 3 + j] - r[i][j]).abs() < 1e-4,
                        "{fit:?} R[{i}][{j}] {} vs {}",
                        got[i * 3 + j],
                        r[i][j]
                    );
                }
            }
        }
    }

    #[test]
    fn proper_fit_never_reflects_while_the_original_may() {
        let device = Device::flex();
        // A point set and its mirror image (x -> -x): the best orthogonal map is the reflection.
        let mut rng = Lcg(3);
        let a: Vec<[f32; 3]> = (0..10).map(|_| [rng.next() - 0.5, rng.next() - 0.5, rng.next() - 0.5]).collect();
        let mut h = [0f32; 9];
        for p in &a {
            let q = [-p[0], p[1], p[2]];
            for i in 0..3 {
                for j in 0..3 {
                    h[i * 3 + j] += p[i] * q[j];
                }
            }
        }
        let h = Tensor::<3>::from_data(TensorData::new(h.to_vec(), [1, 3, 3]), &device);
        let det = |r: Tensor<3>| cofactor_det(&r).1.into_scalar::<f32>();
        assert!((det(polar_rotation(h.clone().swap_dims(1, 2))) + 1.0).abs() < 1e-4);
        assert!((det(horn_rotation(h)) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let corr = correspondences();
        let camera = Camera::original();
        let pair = [WarpPair { correspondences: &corr, camera_i: camera, camera_j: camera }];
        let (d_i, d_j) = (random_depth(11), random_depth(12));
        for fit in [RotationFit::Original, RotationFit::Proper] {
            let device = Device::flex().autodiff();
            let batch = WarpBatch::new(&pair, H, W, &device).unwrap();
            let ti = depth(d_i.clone(), &device).require_grad();
            let tj = depth(d_j.clone(), &device).require_grad();
            let grads = warp_loss(ti.clone(), tj.clone(), &batch, fit).loss3d.backward();
            let gi = ti.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
            let gj = tj.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
            let max_g = gi.iter().chain(&gj).fold(0f32, |m, v| m.max(v.abs()));
            let step = 1e-2;
            for (frame, g) in [(0, &gi), (1, &gj)] {
                for k in [0, 5, 13, 20] {
                    let px = if frame == 0 { corr.pixel_i[k] } else { corr.pixel_j[k] };
                    let idx = px[0] as usize * W + px[1] as usize;
                    let eval = |delta: f32| {
                        let (mut a, mut b) = (d_i.clone(), d_j.clone());
                        if frame == 0 {
                            a[idx] += delta
                        } else {
                            b[idx] += delta
                        }
                        f64::from(loss3d(a, b, &pair, fit))
                    };
                    let fd = ((eval(step) - eval(-step)) / (2.0 * f64::from(step))) as f32;
                    assert!((fd - g[idx]).abs() < 2e-2 * max_g, "{fit:?} frame {frame} row {k}: fd {fd} vs {}", g[idx]);
                }
            }
        }
    }

    #[test]
    fn batched_loss_is_the_mean_of_per_pair_losses() {
        let corr_a = correspondences();
        let mut corr_b = correspondences();
        corr_b.part.truncate(15); // part 3 (12 rows) and 3 rows of part 9: different counts per part
        corr_b.pixel_i.truncate(15);
        corr_b.pixel_j.truncate(15);
        let camera = Camera::original();
        let mut camera_b = camera;
        camera_b.fx = 1300.0;
        let pa = WarpPair { correspondences: &corr_a, camera_i: camera, camera_j: camera };
        let pb = WarpPair { correspondences: &corr_b, camera_i: camera_b, camera_j: camera_b };
        let (ai, aj, bi, bj) = (random_depth(1), random_depth(2), random_depth(3), random_depth(4));
        let alone_a = loss3d(ai.clone(), aj.clone(), &[pa], RotationFit::Original);
        let alone_b = loss3d(bi.clone(), bj.clone(), &[pb], RotationFit::Original);
        let both = loss3d([ai, bi].concat(), [aj, bj].concat(), &[pa, pb], RotationFit::Original);
        assert!(
            (both - (alone_a + alone_b) / 2.0).abs() < 1e-6 * both.abs().max(1e-3),
            "{both} vs {alone_a} {alone_b}"
        );
    }

    #[test]
    fn pixels_outside_the_image_are_an_error() {
        let mut corr = correspondences();
        corr.pixel_j[0] = [0, W as u32];
        let camera = Camera::original();
        let err = WarpBatch::new(
            &[WarpPair { correspondences: &corr, camera_i: camera, camera_j: camera }],
            H,
            W,
            &Device::flex(),
        )
        .unwrap_err();
        assert!(err.contains("outside the 12x12 frames"), "{err}");
    }

    #[test]
    fn a_part_whose_matches_coincide_keeps_the_gradient_finite() {
        // Three copies of one match: the part's fit is exact, its residuals are 0, and sqrt'(0)
        // must not turn the whole gradient into NaN.
        let mut corr = correspondences();
        for _ in 0..3 {
            corr.part.push(14);
            corr.pixel_i.push([10, 10]);
            corr.pixel_j.push([10, 11]);
        }
        let camera = Camera::original();
        let pair = [WarpPair { correspondences: &corr, camera_i: camera, camera_j: camera }];
        for fit in [RotationFit::Original, RotationFit::Proper] {
            let device = Device::flex().autodiff();
            let batch = WarpBatch::new(&pair, H, W, &device).unwrap();
            let ti = depth(random_depth(3), &device).require_grad();
            let tj = depth(random_depth(4), &device).require_grad();
            let loss = warp_loss(ti.clone(), tj.clone(), &batch, fit);
            let grads = (loss.loss3d + loss.loss2d).backward();
            for t in [&ti, &tj] {
                let g = t.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
                assert!(g.iter().all(|v| v.is_finite()), "{fit:?}: {g:?}");
                assert!(g.iter().any(|v| v.abs() > 1e-4), "{fit:?}: the other parts still pull");
            }
        }
    }

    #[test]
    fn polar_factor_of_a_rank_two_matrix_is_finite_and_orthogonal() {
        // H of three matches (rank two), taken from a training run where the fit became NaN:
        // H + 1e-6 I was singular to float precision.
        let h = [
            0.0022360755,
            0.00078024366,
            -0.0017058174,
            -0.0012930705,
            -0.0004440844,
            0.000988153,
            -0.0009193568,
            -0.00030445575,
            0.00070529035,
        ];
        let device = Device::flex();
        let h = Tensor::<3>::from_data(TensorData::new(h.to_vec(), [1, 3, 3]), &device);
        let r = polar_rotation(h.swap_dims(1, 2));
        let rtr = r.clone().swap_dims(1, 2).matmul(r.clone()).try_into_vec_as::<f32>().unwrap();
        for (k, v) in rtr.iter().enumerate() {
            let identity = if k % 4 == 0 { 1.0 } else { 0.0 };
            assert!((v - identity).abs() < 1e-4, "R^T R = {rtr:?}, R = {:?}", r.try_into_vec_as::<f32>().unwrap());
        }
    }
}
