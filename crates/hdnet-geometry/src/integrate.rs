//! Depth from normals: a depth map refined so that the surface it describes takes the shape of a
//! normal map, while it keeps the depth map's distances at large scale (screened Poisson
//! integration of the normals, in log depth, robust to the normals' larger errors). The normal
//! net sees folds and creases that the depth net smooths away; this carries them into the depth
//! and the mesh.

use crate::Camera;

/// How the normals and the given depth are weighed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Integration {
    /// Weight of each pixel's log depth staying at the given one, against one unit for each pair
    /// of neighbours following the normals (less for a pair that disagrees with them, see
    /// `ROBUST_TILT_DEG`): about `1 / anchor.sqrt()` pixels is the size above which the given
    /// depth's shape wins over the normals'.
    pub anchor: f32,
    /// Neighbours whose given log depths differ by more than this (an arm in front of the chest)
    /// or whose normals ask for more are not tied together: normals say nothing across an
    /// occlusion edge.
    pub max_step: f32,
    /// Scale the normals' slopes to agree with the given depth's over spans of several pixels,
    /// for a camera whose size of a pixel at the person is a guess (a photo's): a slope seen at
    /// twice the assumed pixel size is twice as steep in depth.
    pub fit_scale: bool,
    /// The normals' slopes steepened by this factor: a normal net that cannot tell which pixels
    /// turn steeply away from the camera (a body's sides) predicts them less steep than they
    /// are, so the surface they integrate to is flatter than the person (MODEL.md, "Relief").
    pub relief: f32,
}

impl Default for Integration {
    fn default() -> Self {
        Self { anchor: 1e-3, max_step: 0.05, fit_scale: false, relief: 1.0 }
    }
}

/// Normals this close to grazing (cosine with the ray) give no usable slope.
const MIN_FACING: f64 = 0.1;
/// The solver stops when the residual has shrunk by this factor, or after `MAX_ITERATIONS`.
const TOLERANCE: f64 = 1e-4;
/// The same for the solves whose answer only sets the next round's weights, which need not be
/// exact.
const ROUGH_TOLERANCE: f64 = 1e-3;
const MAX_ITERATIONS: usize = 2000;
/// A pair of neighbours whose depth step disagrees with the normals' by more than this tilt
/// counts with its disagreement's size, not its square (the refinement is an L1-like fit by
/// iteratively reweighted least squares): the normal net's errors are a few large ones among many
/// small, and a squared fit spreads each large one over its neighbours.
const ROBUST_TILT_DEG: f64 = 5.0;
/// Reweighted solves after the first, least-squares one.
const ROBUST_ROUNDS: usize = 3;
/// Pixels per span over which `fit_scale` compares slopes with the depth: long enough for the
/// fine detail the depth lacks to average out, short enough to stay on one body part.
const FIT_SPAN: usize = 8;
/// The fitted scale stays within [1 / MAX_SCALE, MAX_SCALE].
const MAX_SCALE: f64 = 4.0;

/// `depth` (row-major, `height * width`, seen through `camera`) refined towards the surface of
/// unit `normals` on the pixels where `mask > 0` and the depth is positive; every other pixel
/// keeps its value.
pub fn integrate_normals(
    depth: &[f32],
    normals: &[[f32; 3]],
    mask: &[f32],
    height: usize,
    width: usize,
    camera: &Camera,
    settings: Integration,
) -> Vec<f32> {
    assert_eq!(depth.len(), height * width, "depth is not {height}x{width}");
    assert_eq!(normals.len(), height * width, "normals are not {height}x{width}");
    assert_eq!(mask.len(), height * width, "mask is not {height}x{width}");
    let log_depth: Vec<f64> = depth.iter().map(|&d| f64::from(d).ln()).collect();
    let unknown: Vec<bool> = (0..depth.len()).map(|i| mask[i] > 0.0 && log_depth[i].is_finite()).collect();
    let slope = |i: usize| unknown[i].then(|| log_slopes(normals[i], i / width, i % width, camera)).flatten();
    let slopes: Vec<Option<[f64; 2]>> = (0..depth.len()).map(slope).collect();
    let max_step = f64::from(settings.max_step);
    // Each pair's step is the slope of the pixel whose tangent `normals_of_depth` takes across
    // it (towards the next column, towards the previous row), so that the refined depth's
    // normals are the given ones.
    let pair = |from: usize, to: usize, step: Option<f64>| {
        step.filter(|_| unknown[from] && unknown[to] && (log_depth[to] - log_depth[from]).abs() <= max_step)
    };
    let across: Vec<Option<f64>> =
        (0..depth.len()).map(|i| pair(i, i + 1, slopes[i].filter(|_| (i + 1) % width != 0).map(|s| s[0]))).collect();
    let down: Vec<Option<f64>> = (0..depth.len())
        .map(|i| (i + width < depth.len()).then(|| pair(i, i + width, slopes[i + width].map(|s| s[1]))).flatten())
        .collect();
    let fitted = if settings.fit_scale { fitted_scale(&log_depth, &across, &down, width) } else { 1.0 };
    let scale = fitted * f64::from(settings.relief);
    // A surface tilted by the robust tilt changes its log depth per pixel by tan(tilt) times the
    // pixel's angular size, the steps' own scale.
    let tilt = ROBUST_TILT_DEG.to_radians().tan() * f64::from(camera.scaling) * scale;
    // The solver's vectors hold the unknown pixels alone, numbered in order.
    let numbered: Vec<usize> = (0..depth.len()).filter(|&i| unknown[i]).collect();
    let mut number = vec![0; depth.len()];
    for (k, &i) in numbered.iter().enumerate() {
        number[i] = k;
    }
    let number = &number;
    let mut edges: Vec<Edge> = [(&across, 1, camera.fx), (&down, width, camera.fy)]
        .into_iter()
        .flat_map(|(steps, offset, focal)| {
            let tolerance = tilt / f64::from(focal);
            steps.iter().enumerate().filter_map(move |(i, step)| {
                let step = step.map(|s| s * scale).filter(|s| s.abs() <= max_step)?;
                Some(Edge { from: number[i], to: number[i + offset], step, tolerance, weight: 1.0 })
            })
        })
        .collect();
    let anchor = f64::from(settings.anchor);
    let given: Vec<f64> = numbered.iter().map(|&i| log_depth[i]).collect();
    let mut solved = solve(&given, &given, &edges, anchor, ROUGH_TOLERANCE);
    for round in 1..=ROBUST_ROUNDS {
        for e in &mut edges {
            e.reweight(&solved);
        }
        let tolerance = if round == ROBUST_ROUNDS { TOLERANCE } else { ROUGH_TOLERANCE };
        solved = solve(&given, &solved, &edges, anchor, tolerance);
    }
    let mut refined = depth.to_vec();
    for (&i, x) in numbered.iter().zip(solved) {
        refined[i] = x.exp() as f32;
    }
    refined
}

/// The factor that best maps the normals' steps, summed over straight spans of `FIT_SPAN` tied
/// pairs, onto the given depth's change over the same spans (least squares); 1 without spans.
fn fitted_scale(log_depth: &[f64], across: &[Option<f64>], down: &[Option<f64>], width: usize) -> f64 {
    let (mut depth_dot_normals, mut normals_dot_normals) = (0.0, 0.0);
    for (steps, offset) in [(across, 1), (down, width)] {
        for start in 0..log_depth.len() {
            let span: Option<f64> = (0..FIT_SPAN).map(|k| steps.get(start + k * offset).copied().flatten()).sum();
            if let Some(normals_change) = span {
                let depth_change = log_depth[start + FIT_SPAN * offset] - log_depth[start];
                depth_dot_normals += depth_change * normals_change;
                normals_dot_normals += normals_change * normals_change;
            }
        }
    }
    if normals_dot_normals > 0.0 {
        (depth_dot_normals / normals_dot_normals).clamp(1.0 / MAX_SCALE, MAX_SCALE)
    } else {
        1.0
    }
}

/// The change of log depth per column and per row on the surface with normal `n` at a pixel:
/// moving along the image the point z·ray stays on the tangent plane, so
/// d(ln z)/dcol = -n_x s / (f_x n·ray) (rows alike); `None` where `n` grazes or faces away.
fn log_slopes(n: [f32; 3], row: usize, col: usize, camera: &Camera) -> Option<[f64; 2]> {
    let ray = camera.ray(row as f32, col as f32).map(f64::from);
    let n = n.map(f64::from);
    let facing = n[0] * ray[0] + n[1] * ray[1] + n[2] * ray[2];
    let lengths = (n.iter().map(|v| v * v).sum::<f64>() * ray.iter().map(|v| v * v).sum::<f64>()).sqrt();
    if lengths == 0.0 || facing > -MIN_FACING * lengths {
        return None;
    }
    let s = f64::from(camera.scaling);
    Some([-n[0] * s / (f64::from(camera.fx) * facing), -n[1] * s / (f64::from(camera.fy) * facing)])
}

/// Neighbours whose log depths should differ by `step` (`to` minus `from`), with `weight`.
struct Edge {
    from: usize,
    to: usize,
    step: f64,
    /// The disagreement with `step` up to which the pair keeps its full weight.
    tolerance: f64,
    weight: f64,
}

impl Edge {
    /// The weight that makes this pair's squared disagreement at `x` count as its size beyond
    /// the tolerance (Charbonnier).
    fn reweight(&mut self, x: &[f64]) {
        let disagreement = (x[self.to] - x[self.from] - self.step) / self.tolerance;
        self.weight = 1.0 / (1.0 + disagreement * disagreement).sqrt();
    }
}

/// Minimises anchor·Σ(x_i - x0_i)² + Σ_edges weight·(x_to - x_from - step)² by conjugate
/// gradients (Jacobi-preconditioned), from `start`, until the residual has shrunk by `tolerance`.
fn solve(x0: &[f64], start: &[f64], edges: &[Edge], anchor: f64, tolerance: f64) -> Vec<f64> {
    let anchored = |x: &[f64], out: &mut Vec<f64>| {
        out.clear();
        out.extend(x.iter().map(|v| anchor * v));
    };
    // The system's matrix times `x`, into `y` (reused: the loop below runs it hundreds of times).
    let apply = |x: &[f64], y: &mut Vec<f64>| {
        anchored(x, y);
        for e in edges {
            let d = e.weight * (x[e.to] - x[e.from]);
            y[e.to] += d;
            y[e.from] -= d;
        }
    };
    let mut rhs = Vec::new();
    anchored(x0, &mut rhs);
    let mut diagonal = vec![anchor; x0.len()];
    for e in edges {
        rhs[e.to] += e.weight * e.step;
        rhs[e.from] -= e.weight * e.step;
        diagonal[e.to] += e.weight;
        diagonal[e.from] += e.weight;
    }
    let mut x = start.to_vec();
    let mut product = Vec::with_capacity(x.len());
    apply(&x, &mut product);
    let mut residual: Vec<f64> = rhs.iter().zip(&product).map(|(b, ax)| b - ax).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let goal = tolerance * tolerance * dot(&rhs, &rhs);
    let mut z: Vec<f64> = residual.iter().zip(&diagonal).map(|(r, d)| r / d).collect();
    let mut direction = z.clone();
    let mut rz = dot(&residual, &z);
    for _ in 0..MAX_ITERATIONS {
        if dot(&residual, &residual) <= goal {
            break;
        }
        apply(&direction, &mut product);
        let alpha = rz / dot(&direction, &product);
        for i in 0..x.len() {
            x[i] += alpha * direction[i];
            residual[i] -= alpha * product[i];
            z[i] = residual[i] / diagonal[i];
        }
        let rz_next = dot(&residual, &z);
        let beta = rz_next / rz;
        rz = rz_next;
        for i in 0..x.len() {
            direction[i] = z[i] + beta * direction[i];
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normals_of_depth;

    const SIZE: usize = 64;

    fn camera() -> Camera {
        // 1 cm per pixel at 4 m.
        Camera::for_crop(&[4.0], &[1.0], 0.01, SIZE)
    }

    /// Depth along the rays of a surface z = 4 + f(x, y) with metric x, y ≈ ray * 4.
    fn surface(f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
        let camera = camera();
        (0..SIZE * SIZE)
            .map(|i| {
                let r = camera.ray((i / SIZE) as f32, (i % SIZE) as f32);
                4.0 + f(4.0 * r[0], 4.0 * r[1])
            })
            .collect()
    }

    /// A bulging body with 4 mm folds 5 cm apart across the columns (`axis` 0) or the rows (1),
    /// and the same body without them.
    fn folded_body(axis: usize) -> (Vec<f32>, Vec<f32>) {
        let bulge = |x: f32, y: f32| -0.1 * (1.0 - (x * x + y * y) / 0.1);
        let fold = |t: f32| 0.004 * (t * 2.0 * std::f32::consts::PI / 0.05).sin();
        (surface(|x, y| bulge(x, y) + fold([x, y][axis])), surface(bulge))
    }

    fn disc() -> Vec<f32> {
        let c = (SIZE as f32 - 1.0) / 2.0;
        (0..SIZE * SIZE)
            .map(|i| {
                let (r, col) = ((i / SIZE) as f32 - c, (i % SIZE) as f32 - c);
                if r * r + col * col < 28.0 * 28.0 { 1.0 } else { 0.0 }
            })
            .collect()
    }

    fn mean_angle_deg(a: &[[f32; 3]], b: &[[f32; 3]], mask: &[f32]) -> f32 {
        let on: Vec<f32> = (0..mask.len())
            .filter(|&i| mask[i] > 0.0)
            .map(|i| (a[i][0] * b[i][0] + a[i][1] * b[i][1] + a[i][2] * b[i][2]).clamp(-1.0, 1.0).acos().to_degrees())
            .collect();
        on.iter().sum::<f32>() / on.len() as f32
    }

    fn rmse(a: &[f32], b: &[f32], mask: &[f32]) -> f32 {
        let on: Vec<f32> = (0..mask.len()).filter(|&i| mask[i] > 0.0).map(|i| (a[i] - b[i]).powi(2)).collect();
        (on.iter().sum::<f32>() / on.len() as f32).sqrt()
    }

    #[test]
    fn folds_missing_from_the_depth_come_back_from_the_normals() {
        // The given depth has the bulge, not the folds.
        let (truth, smooth) = folded_body(0);
        let (mask, camera) = (disc(), camera());
        let true_normals = normals_of_depth(&truth, &mask, SIZE, SIZE, &camera);
        let before = normals_of_depth(&smooth, &mask, SIZE, SIZE, &camera);
        let refined = integrate_normals(&smooth, &true_normals, &mask, SIZE, SIZE, &camera, Integration::default());
        let after = normals_of_depth(&refined, &mask, SIZE, SIZE, &camera);
        let (angle_before, angle_after) =
            (mean_angle_deg(&before, &true_normals, &mask), mean_angle_deg(&after, &true_normals, &mask));
        assert!(angle_before > 12.0, "the folds tilt the normals by up to 27 degrees: {angle_before}");
        assert!(angle_after < 2.0, "{angle_before} -> {angle_after} degrees");
        assert!(rmse(&refined, &truth, &mask) < 0.5 * rmse(&smooth, &truth, &mask));
        for i in 0..mask.len() {
            if mask[i] == 0.0 {
                assert_eq!(refined[i], smooth[i], "pixel {i} is off the mask");
            }
        }
    }

    #[test]
    fn a_few_wrong_normals_stay_where_they_are() {
        // One pixel in 20 tilted 40 degrees off its true normal, scattered: a squared fit spreads
        // each one's pull over its neighbours (4.7 degrees off on the other pixels without the
        // reweighted rounds), the robust one keeps them near their own (1.0).
        let (truth, smooth) = folded_body(0);
        let (mask, camera) = (disc(), camera());
        let true_normals = normals_of_depth(&truth, &mask, SIZE, SIZE, &camera);
        let wrong = |i: usize| (i * 7919).is_multiple_of(20);
        let tilted: Vec<[f32; 3]> = true_normals
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                if !wrong(i) {
                    return n;
                }
                let (sin, cos) = 40f32.to_radians().sin_cos();
                [n[0] * cos + n[2] * sin, n[1], n[2] * cos - n[0] * sin]
            })
            .collect();
        let refined = integrate_normals(&smooth, &tilted, &mask, SIZE, SIZE, &camera, Integration::default());
        let good: Vec<f32> = (0..mask.len()).map(|i| if wrong(i) { 0.0 } else { mask[i] }).collect();
        let after = normals_of_depth(&refined, &mask, SIZE, SIZE, &camera);
        let angle = mean_angle_deg(&after, &true_normals, &good);
        assert!(angle < 1.5, "{angle} degrees off on the pixels with true normals");
    }

    #[test]
    fn a_wrong_pixel_size_is_fitted_to_the_depth() {
        // The camera given to the integration thinks each pixel spans 2 cm, not 1 cm: its
        // slopes are twice as steep as the surface's.
        let (truth, smooth) = folded_body(1);
        let (mask, camera) = (disc(), camera());
        let guess = Camera::for_crop(&[4.0], &[1.0], 0.02, SIZE);
        let true_normals = normals_of_depth(&truth, &mask, SIZE, SIZE, &camera);
        let error = |fit_scale| {
            let settings = Integration { fit_scale, ..Integration::default() };
            let refined = integrate_normals(&smooth, &true_normals, &mask, SIZE, SIZE, &guess, settings);
            mean_angle_deg(&normals_of_depth(&refined, &mask, SIZE, SIZE, &camera), &true_normals, &mask)
        };
        let (unfitted, fitted) = (error(false), error(true));
        assert!(fitted < 2.0 && unfitted > 5.0, "fitted {fitted}, unfitted {unfitted} degrees");
    }

    #[test]
    fn relief_steepens_the_normals_slopes() {
        // The normals are those of the folded body (8 cm deep on the disc) at half its relief;
        // the given depth is flat and held loosely. Steepened twice, the refined surface is the
        // body's own (up to its distance, which the flat depth cannot give).
        let (truth, _) = folded_body(0);
        // The body is 4 m + its relief along each ray: half of the relief on the same rays.
        let half: Vec<f32> = truth.iter().map(|d| 4.0 + 0.5 * (d - 4.0)).collect();
        let (mask, camera) = (disc(), camera());
        let flat = vec![4.0; SIZE * SIZE];
        let normals = normals_of_depth(&half, &mask, SIZE, SIZE, &camera);
        let shape_error = |relief| {
            let settings = Integration { anchor: 1e-6, relief, ..Integration::default() };
            let refined = integrate_normals(&flat, &normals, &mask, SIZE, SIZE, &camera, settings);
            let on: Vec<usize> = (0..mask.len()).filter(|&i| mask[i] > 0.0).collect();
            let shift = on.iter().map(|&i| truth[i] - refined[i]).sum::<f32>() / on.len() as f32;
            let shifted: Vec<f32> = refined.iter().map(|d| d + shift).collect();
            rmse(&shifted, &truth, &mask)
        };
        let (as_given, steepened) = (shape_error(1.0), shape_error(2.0));
        assert!(as_given > 0.01, "half of an 8 cm bulge is missing: {as_given}");
        assert!(steepened < 0.1 * as_given, "{as_given} -> {steepened} m");
    }

    #[test]
    fn exact_depth_and_normals_stay_as_they_are() {
        let truth = surface(|x, y| 0.3 * x - 0.2 * y + 0.5 * x * x);
        let (mask, camera) = (disc(), camera());
        let normals = normals_of_depth(&truth, &mask, SIZE, SIZE, &camera);
        let refined = integrate_normals(&truth, &normals, &mask, SIZE, SIZE, &camera, Integration::default());
        assert!(rmse(&refined, &truth, &mask) < 2e-4, "{}", rmse(&refined, &truth, &mask));
    }

    #[test]
    fn bad_normals_and_depths_are_left_out_not_spread() {
        // A NaN normal, one facing away, a zero one, and a pixel of negative depth on the mask.
        let truth = surface(|x, y| 0.3 * x - 0.2 * y);
        let (mask, camera) = (disc(), camera());
        let mut normals = normals_of_depth(&truth, &mask, SIZE, SIZE, &camera);
        let mut depth = truth.clone();
        let centre = SIZE / 2 * SIZE + SIZE / 2;
        normals[centre] = [f32::NAN; 3];
        normals[centre + 2] = [0.0, 0.0, 1.0];
        normals[centre + 4] = [0.0; 3];
        depth[centre + 6] = -1.0;
        let refined = integrate_normals(&depth, &normals, &mask, SIZE, SIZE, &camera, Integration::default());
        assert_eq!(refined[centre + 6], -1.0);
        for i in (0..mask.len()).filter(|&i| i != centre + 6) {
            assert!((refined[i] - truth[i]).abs() < 1e-3, "pixel {i}: {} vs {}", refined[i], truth[i]);
        }
    }

    #[test]
    fn an_occlusion_edge_keeps_its_step() {
        // An arm 20 cm in front of a flat chest, facing the camera like it: the normals alone
        // would close the gap.
        let (mask, camera) = (disc(), camera());
        let given: Vec<f32> =
            (0..SIZE * SIZE).map(|i| if (24..40).contains(&(i % SIZE)) { 3.8 } else { 4.0 }).collect();
        let facing = vec![[0.0, 0.0, -1.0]; SIZE * SIZE];
        let refined = integrate_normals(&given, &facing, &mask, SIZE, SIZE, &camera, Integration::default());
        let centre = SIZE / 2 * SIZE;
        assert!((refined[centre + 30] - 3.8).abs() < 0.01 && (refined[centre + 10] - 4.0).abs() < 0.01);
    }
}
