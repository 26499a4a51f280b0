//! The supervised losses of HDNet and the stage totals (the warp loss is in `warp_loss.rs`).
//!
//! Depth `[B, 1, H, W]`, normals `[B, 3, H, W]`, masks `[B, 1, H, W]` (bool). Values and
//! gradients follow the original TF code (`Loss_functions.py`), including its quirks, which are
//! named where they occur.

use burn::prelude::*;

use crate::geometry::clamp_and_normalise;

/// Which angular loss compares normals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AngularLoss {
    /// `calc_loss_normal2`: acos(a12 / (a11 + 1e-5)), unclipped, as the original trains.
    #[default]
    Acos,
    /// `calc_loss_normal`: cos = a12 / sqrt(a11 a22), NaN -> -1, clipped to [-1, 1], and the
    /// degree-9 Taylor series of acos (bounded gradient everywhere).
    Taylor,
}

/// How the normal stage's angular loss averages its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Every mask pixel of the batch counts once (the original's `boolean_mask`), so a person
    /// filling the frame weighs as much as ten small ones.
    #[default]
    Pixels,
    /// Each person's mean angle, averaged over the batch: every person counts once, as in
    /// `hdnet eval`'s mean over images.
    People,
}

/// The sum of all elements in an order fixed by the shape. Burn's whole-tensor `sum` on GPU
/// backends may accumulate with atomics, whose order (and so the float result) changes from run
/// to run; a reduction along one axis does not, which keeps a resumed GPU run bit-exact.
pub fn total<const D: usize>(x: Tensor<D>) -> Tensor<1> {
    x.reshape([-1]).sum_dim(0)
}

/// The mean of a per-sample loss, in a fixed order (see [`total`]).
fn batch_mean<const D: usize>(x: Tensor<D>) -> Tensor<1> {
    x.reshape([-1]).mean_dim(0)
}

fn per_sample_sum(x: Tensor<4>) -> Tensor<1> {
    let [b, _, _, _] = x.dims();
    x.reshape([b as i32, -1]).sum_dim(1).reshape([b])
}

fn masked(x: Tensor<4>, mask: &Tensor<4, Bool>) -> Tensor<4> {
    let channels = x.dims()[1];
    let off = mask.clone().bool_not();
    let off = if channels == 1 { off } else { off.repeat_dim(1, channels) };
    x.mask_fill(off, 0.0)
}

/// `calc_loss`: per image the sum of squared depth errors on the mask divided by the number of
/// mask pixels, averaged over the batch.
pub fn depth_l2(pred: Tensor<4>, gt: Tensor<4>, mask: &Tensor<4, Bool>) -> Tensor<1> {
    let count = per_sample_sum(mask.clone().float());
    let d = masked(pred, mask) - masked(gt, mask);
    batch_mean(per_sample_sum(d.square()) / count)
}

/// `calc_loss_d_refined_mask`: the scale-invariant depth loss after min-max normalisation.
/// As in the original, min and max run over the whole image including the off-mask zeros, and
/// the normalised prediction is rescaled to the ground truth's maximum:
/// u = (o m - min)/(max - min) * max(y m) * m, d = u - y m, cost = sum d^2/n - (sum d)^2/(2 n^2).
pub fn scale_invariant_depth(pred: Tensor<4>, gt: Tensor<4>, mask: &Tensor<4, Bool>) -> Tensor<1> {
    let [b, _, h, w] = pred.dims();
    let m = mask.clone().float().reshape([b, h * w]);
    let y = masked(gt, mask).reshape([b, h * w]);
    let o = pred.reshape([b, h * w]) * m.clone();
    let max_y = y.clone().max_dim(1);
    let (lo, hi) = (o.clone().min_dim(1), o.clone().max_dim(1));
    let u = (o - lo.clone()) / (hi - lo) * max_y * m.clone();
    let d = u - y;
    let n = m.sum_dim(1);
    let a1 = d.clone().square().sum_dim(1);
    let a2 = d.sum_dim(1).square();
    batch_mean(a1 / n.clone() - a2 / n.square() * 0.5)
}

/// Products of squared normal lengths below this count as the original's 0/0.
const DEGENERATE_NORMS: f32 = 1e-20;

/// Angle between predicted normals (clamped and normalised like the original) and reference
/// normals, averaged over every mask pixel of the batch (the original's `boolean_mask` pools the
/// batch).
pub fn normal_angular(pred: Tensor<4>, reference: Tensor<4>, mask: &Tensor<4, Bool>, kind: AngularLoss) -> Tensor<1> {
    total(angles(pred, reference, mask, kind)) / total(mask.clone().float())
}

/// [`normal_angular`] pooled as `pooling` says.
pub fn normal_angular_pooled(
    pred: Tensor<4>,
    reference: Tensor<4>,
    mask: &Tensor<4, Bool>,
    kind: AngularLoss,
    pooling: Pooling,
) -> Tensor<1> {
    match pooling {
        Pooling::Pixels => normal_angular(pred, reference, mask, kind),
        Pooling::People => {
            let angle = per_sample_sum(angles(pred, reference, mask, kind));
            // A person with no mask pixel adds 0, not 0/0.
            batch_mean(angle / per_sample_sum(mask.clone().float()).clamp_min(1.0))
        }
    }
}

/// The angle of each pixel on the mask (0 off it).
fn angles(pred: Tensor<4>, reference: Tensor<4>, mask: &Tensor<4, Bool>, kind: AngularLoss) -> Tensor<4> {
    let u = clamp_and_normalise(pred);
    let a11 = u.clone().square().sum_dim(1);
    let a12 = (u * reference.clone()).sum_dim(1);
    let off = mask.clone().bool_not();
    let angle = match kind {
        // Off-mask cosines are zeroed first so that no NaN can reach the gradient.
        AngularLoss::Acos => (a12 / (a11 + 1e-5)).mask_fill(off.clone(), 0.0).acos(),
        AngularLoss::Taylor => {
            let a22 = reference.square().sum_dim(1);
            // The original maps 0/0 to -1 through its NaN; dividing by a clamped denominator
            // instead keeps the forward values and leaves no 0 * inf in the gradient.
            let norms = a11 * a22;
            let degenerate = norms.clone().lower_elem(DEGENERATE_NORMS);
            let cos = a12 / norms.clamp_min(DEGENERATE_NORMS).sqrt();
            let cos = cos.mask_fill(degenerate, -1.0).clamp(-1.0, 1.0).mask_fill(off.clone(), 0.0);
            let p = |k: i32| cos.clone().powi_scalar(k);
            -(cos.clone()) + std::f32::consts::FRAC_PI_2
                - p(3) / 6.0
                - p(5) * (3.0 / 40.0)
                - p(7) * (5.0 / 112.0)
                - p(9) * (35.0 / 1152.0)
        }
    };
    angle.mask_fill(off, 0.0)
}

/// The detail loss (not in the original): the mean L1 difference between the predicted normals'
/// change from one pixel to the next (clamped and normalised as in [`normal_angular`]) and the
/// reference's, over horizontal and vertical neighbours both on the mask, pooled. The angular loss
/// alone is met by a smooth average of the folds it cannot place exactly, which leaves the
/// normals' fine relief at half of the truth's; this term asks for the relief itself (on the
/// bundle's width-16 net it smoothed the normals further: MODEL.md, "A detail loss").
pub fn normal_detail(pred: Tensor<4>, reference: Tensor<4>, mask: &Tensor<4, Bool>) -> Tensor<1> {
    let u = clamp_and_normalise(pred);
    let mut sum = Tensor::<1>::zeros([1], &u.device());
    let mut pairs = Tensor::<1>::zeros([1], &u.device());
    for axis in [2, 3] {
        let len = u.dims()[axis] - 1;
        if len == 0 {
            continue;
        }
        let step = |t: Tensor<4>| t.clone().narrow(axis, 1, len) - t.narrow(axis, 0, len);
        let both = mask.clone().narrow(axis, 1, len).bool_and(mask.clone().narrow(axis, 0, len));
        let diff = (step(u.clone()) - step(reference.clone())).abs().sum_dim(1);
        sum = sum + total(diff.mask_fill(both.clone().bool_not(), 0.0));
        pairs = pairs + total(both.float());
    }
    sum / pairs.clamp_min(1.0)
}

/// The supervised depth stage: 2 * L2 + scale-invariant + angle(normals from depth, GT normals).
#[derive(Debug, Clone)]
pub struct SupervisedDepthLoss {
    pub l2: Tensor<1>,
    pub scale_invariant: Tensor<1>,
    pub normal: Tensor<1>,
    pub total: Tensor<1>,
}

pub fn supervised_depth_loss(
    pred: Tensor<4>,
    gt_depth: Tensor<4>,
    gt_normals: Tensor<4>,
    normals_from_pred: Tensor<4>,
    mask: &Tensor<4, Bool>,
    kind: AngularLoss,
) -> SupervisedDepthLoss {
    let l2 = depth_l2(pred.clone(), gt_depth.clone(), mask);
    let scale_invariant = scale_invariant_depth(pred, gt_depth, mask);
    let normal = normal_angular(normals_from_pred, gt_normals, mask, kind);
    let total = l2.clone() * 2.0 + scale_invariant.clone() + normal.clone();
    SupervisedDepthLoss { l2, scale_invariant, normal, total }
}

/// Weight of the 3D warp loss in the HDNet stage.
pub const WARP_WEIGHT: f32 = 5.0;

/// The HDNet stage's unlabelled part: normal consistency on both frames + 5 * loss3d.
pub fn hdnet_unlabelled_total(normal_i: Tensor<1>, normal_j: Tensor<1>, loss3d: Tensor<1>) -> Tensor<1> {
    normal_i + normal_j + loss3d * WARP_WEIGHT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn mask(values: Vec<bool>, shape: [usize; 4]) -> Tensor<4, Bool> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    #[test]
    fn depth_l2_by_hand_and_batched_is_the_mean() {
        let m = mask(vec![true, true, false, true], [1, 1, 2, 2]);
        // errors on the mask: 1, -2, 0.5 -> (1 + 4 + 0.25) / 3 = 1.75; the off-mask 100 is ignored
        let l = depth_l2(t(vec![2.0, 1.0, 100.0, 4.5], [1, 1, 2, 2]), t(vec![1.0, 3.0, 0.0, 4.0], [1, 1, 2, 2]), &m);
        assert!((l.into_scalar::<f32>() - 1.75).abs() < 1e-6);
        let m2 = mask(vec![true, true, false, true, true, false, false, false], [2, 1, 2, 2]);
        let both = depth_l2(
            t(vec![2.0, 1.0, 100.0, 4.5, 1.0, 0.0, 0.0, 0.0], [2, 1, 2, 2]),
            t(vec![1.0, 3.0, 0.0, 4.0, 4.0, 0.0, 0.0, 0.0], [2, 1, 2, 2]),
            &m2,
        );
        assert!((both.into_scalar::<f32>() - (1.75 + 9.0) / 2.0).abs() < 1e-5);
    }

    #[test]
    fn scale_invariant_loss_by_hand() {
        // Full mask: o = [1, 3] -> u = (o - 1)/2 * max(y) = [0, 4] with y = [2, 4]: d = [-2, 0].
        // cost = (4 + 0)/2 - 0.5 * (-2)^2 / 4 = 2 - 0.5 = 1.5
        let m = mask(vec![true, true], [1, 1, 1, 2]);
        let l = scale_invariant_depth(t(vec![1.0, 3.0], [1, 1, 1, 2]), t(vec![2.0, 4.0], [1, 1, 1, 2]), &m);
        assert!((l.into_scalar::<f32>() - 1.5).abs() < 1e-6);
    }

    #[test]
    fn angular_losses_measure_the_angle() {
        let m = mask(vec![true, true], [1, 1, 1, 2]);
        // pixel 0: 90 degrees apart; pixel 1: identical. Mean angle pi/4.
        let pred = t(vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1, 3, 1, 2]);
        let pred = pred.slice_assign([0..1, 2..3, 0..1, 1..2], t(vec![-1.0], [1, 1, 1, 1]));
        let reference = t(vec![0.0, 0.0, 0.0, 0.0, 1.0, -1.0], [1, 3, 1, 2]);
        let acos = normal_angular(pred.clone(), reference.clone(), &m, AngularLoss::Acos).into_scalar::<f32>();
        let taylor = normal_angular(pred, reference, &m, AngularLoss::Taylor).into_scalar::<f32>();
        // acos of 0/(1+1e-5) and of 1/(1+1e-5) (the original's epsilon)
        let want = (std::f32::consts::FRAC_PI_2 + (1.0f32 / 1.00001).acos()) / 2.0;
        assert!((acos - want).abs() < 1e-5, "{acos} vs {want}");
        // The degree-9 series is exact at cos = 0 and gives pi/2 - 1 - 1/6 - 3/40 - 5/112 - 35/1152
        // = 0.2541 (not 0) at cos = 1.
        let half_pi = std::f32::consts::FRAC_PI_2;
        let want = (half_pi + half_pi - 1.0 - 1.0 / 6.0 - 3.0 / 40.0 - 5.0 / 112.0 - 35.0 / 1152.0) / 2.0;
        assert!((taylor - want).abs() < 1e-5, "{taylor} vs {want}");
    }

    #[test]
    fn people_pooling_weighs_each_person_once() {
        // Person 0: one pixel on the mask, 90 degrees off; person 1: three pixels, exact (the
        // fourth off the mask, 180 degrees off). Pooled by pixels: (pi/2 + 3 * a0) / 4; by
        // people: (pi/2 + a0) / 2, where a0 = acos(1/(1+1e-5)) is the epsilon's angle.
        let m = mask(vec![true, false, false, false, true, true, true, false], [2, 1, 2, 2]);
        let facing = |x: f32, z: f32| [vec![x; 4], vec![0.0; 4], vec![z; 4]].concat();
        let pred = t([facing(1.0, 0.0), facing(0.0, 1.0)].concat(), [2, 3, 2, 2]);
        let mut reference = [facing(0.0, 1.0), facing(0.0, 1.0)].concat();
        reference[12 + 8 + 3] = -1.0;
        let reference = t(reference, [2, 3, 2, 2]);
        let a0 = (1.0f32 / 1.00001).acos();
        let half_pi = std::f32::consts::FRAC_PI_2;
        let pool =
            |p| normal_angular_pooled(pred.clone(), reference.clone(), &m, AngularLoss::Acos, p).into_scalar::<f32>();
        assert!((pool(Pooling::Pixels) - (half_pi + 3.0 * a0) / 4.0).abs() < 1e-5, "{}", pool(Pooling::Pixels));
        assert!((pool(Pooling::People) - (half_pi + a0) / 2.0).abs() < 1e-5, "{}", pool(Pooling::People));
    }

    #[test]
    fn detail_loss_by_hand() {
        // A row of three pixels, the last off the mask. Reference normals (0,0,-1), (0.6,0,-0.8),
        // (0,0,-1); the prediction (0,0,-1) everywhere (its zero x and y clamped to 1e-5 alike,
        // so it does not change from pixel to pixel). The one pair on the mask (pixels 0-1): the
        // reference changes by (0.6, 0, 0.2), so |0.6| + 0 + |0.2| = 0.8; the pair 1-2 has pixel 2
        // off the mask.
        let m = mask(vec![true, true, false], [1, 1, 1, 3]);
        let pred = t(vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0], [1, 3, 1, 3]);
        let reference = t(vec![0.0, 0.6, 0.0, 0.0, 0.0, 0.0, -1.0, -0.8, -1.0], [1, 3, 1, 3]);
        let row = normal_detail(pred.clone(), reference.clone(), &m).into_scalar::<f32>();
        assert!((row - 0.8).abs() < 1e-4, "{row}");
        // The same pixels as a column: vertical pairs count the same.
        let column = |x: Tensor<4>| x.reshape([1, 3, 3, 1]);
        let m_column = mask(vec![true, true, false], [1, 1, 3, 1]);
        let col = normal_detail(column(pred), column(reference.clone()), &m_column).into_scalar::<f32>();
        assert!((col - 0.8).abs() < 1e-4, "{col}");
        // A prediction equal to the reference has none, but for the clamp's 1e-5 on its zeros.
        let same = normal_detail(reference.clone(), reference, &m).into_scalar::<f32>();
        assert!(same.abs() < 1e-4, "{same}");
    }

    #[test]
    fn taylor_gradient_is_finite_where_a_reference_normal_is_zero() {
        // Pixel 1 is on the mask with a zero reference normal (0/0 in the cosine, -1 as in the
        // original); its gradient must stay finite and pixel 0 (cos = 0.8) keep its own.
        let device = Device::flex().autodiff();
        let pred = Tensor::<4>::from_data(TensorData::new(vec![0.6, 0.0, 0.0, 0.0, 0.8, 1.0], [1, 3, 1, 2]), &device)
            .require_grad();
        let reference =
            Tensor::<4>::from_data(TensorData::new(vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0], [1, 3, 1, 2]), &device);
        let m = Tensor::<4, Bool>::from_data(TensorData::new(vec![true, true], [1, 1, 1, 2]), &device);
        let loss = normal_angular(pred.clone(), reference, &m, AngularLoss::Taylor);
        let series = |c: f32| {
            std::f32::consts::FRAC_PI_2
                - c
                - c.powi(3) / 6.0
                - c.powi(5) * 3.0 / 40.0
                - c.powi(7) * 5.0 / 112.0
                - c.powi(9) * 35.0 / 1152.0
        };
        let want = (series(0.8) + series(-1.0)) / 2.0;
        assert!((loss.clone().into_scalar::<f32>() - want).abs() < 1e-5);
        let grad = pred.grad(&loss.backward()).unwrap().try_into_vec_as::<f32>().unwrap();
        assert!(grad.iter().all(|g| g.is_finite()), "{grad:?}");
        assert!(grad[0].abs() > 1e-3, "pixel 0 has a gradient: {grad:?}");
    }
}
