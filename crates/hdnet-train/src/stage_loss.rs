//! The loss of each training stage, with its terms by name.

use burn::prelude::*;
use hdnet_model::Hourglass;
use hdnet_model::geometry::depth_to_normals;
use hdnet_model::losses::{
    hdnet_unlabelled_total, normal_angular, normal_angular_pooled, normal_detail, supervised_depth_loss,
};
use hdnet_model::warp_loss::warp_loss;

use crate::batch::{LabelledBatch, PairBatch};
use crate::config::{Stage, TrainConfig};

/// The supervised depth terms (the depth and HDNet stages).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthTerms<T> {
    pub l2: T,
    pub scale_invariant: T,
    /// Angle between the normals of the predicted depth and the ground-truth normals.
    pub normal: T,
}

/// The terms of one stage's loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Terms<T> {
    Normal {
        /// Angle between predicted and ground-truth normals.
        normal: T,
        /// The detail loss, when the configuration weighs it.
        detail: Option<T>,
    },
    Depth(DepthTerms<T>),
    Hdnet {
        depth: DepthTerms<T>,
        /// Normals of each frame's predicted depth against its predicted normals.
        normal_i: T,
        normal_j: T,
        /// Warp loss: corresponding 3D points after the per-part rigid fit, and its 2D reprojection.
        loss3d: T,
        loss2d: T,
    },
}

impl<T> Terms<T> {
    /// Each term with its name (the keys of the training log), in a fixed order.
    pub fn into_named(self) -> Vec<(&'static str, T)> {
        let depth = |d: DepthTerms<T>| [("l2", d.l2), ("scale_invariant", d.scale_invariant), ("normal", d.normal)];
        match self {
            Terms::Normal { normal, detail } => {
                std::iter::once(("normal", normal)).chain(detail.map(|d| ("detail", d))).collect()
            }
            Terms::Depth(d) => depth(d).into(),
            Terms::Hdnet { depth: d, normal_i, normal_j, loss3d, loss2d } => {
                let mut terms: Vec<_> = depth(d).into();
                terms.extend([("normal_i", normal_i), ("normal_j", normal_j), ("loss3d", loss3d), ("loss2d", loss2d)]);
                terms
            }
        }
    }

    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Terms<U> {
        let mut depth =
            |d: DepthTerms<T>| DepthTerms { l2: f(d.l2), scale_invariant: f(d.scale_invariant), normal: f(d.normal) };
        match self {
            Terms::Normal { normal, detail } => Terms::Normal { normal: f(normal), detail: detail.map(f) },
            Terms::Depth(d) => Terms::Depth(depth(d)),
            Terms::Hdnet { depth: d, normal_i, normal_j, loss3d, loss2d } => {
                let depth = depth(d);
                Terms::Hdnet {
                    depth,
                    normal_i: f(normal_i),
                    normal_j: f(normal_j),
                    loss3d: f(loss3d),
                    loss2d: f(loss2d),
                }
            }
        }
    }
}

/// A stage's loss: the total that is differentiated, and its terms.
#[derive(Debug, Clone)]
pub struct StageLoss {
    pub total: Tensor<1>,
    pub terms: Terms<Tensor<1>>,
}

/// The loss of one step of `stage` for a labelled batch and, in the HDNet stage, a batch of video
/// pairs.
pub fn stage_loss(
    stage: Stage,
    config: &TrainConfig,
    net: &Hourglass,
    batch: LabelledBatch,
    pairs: Option<PairBatch>,
) -> StageLoss {
    if stage == Stage::Normal {
        let pred = net.forward(batch.image);
        let normal = normal_angular_pooled(
            pred.clone(),
            batch.normals.clone(),
            &batch.mask,
            config.angular_loss,
            config.normal_pooling,
        );
        if config.detail_weight == 0.0 {
            return StageLoss { total: normal.clone(), terms: Terms::Normal { normal, detail: None } };
        }
        let detail = normal_detail(pred, batch.normals, &batch.mask);
        let total = normal.clone() + detail.clone() * config.detail_weight;
        return StageLoss { total, terms: Terms::Normal { normal, detail: Some(detail) } };
    }
    let predict = |input: Tensor<4>| net.forward(net.take_inputs(input));
    let pred = predict(batch.depth_input);
    let nmap = depth_to_normals(pred.clone(), batch.mask.clone(), batch.rays, config.normals_from_depth);
    let sup = supervised_depth_loss(pred, batch.depth, batch.normals, nmap, &batch.mask, config.angular_loss);
    let depth = DepthTerms { l2: sup.l2, scale_invariant: sup.scale_invariant, normal: sup.normal };
    let Some(p) = pairs else {
        return StageLoss { total: sup.total, terms: Terms::Depth(depth) };
    };
    let (pred_i, pred_j) = (predict(p.input_i), predict(p.input_j));
    let consistency = |pred: Tensor<4>, mask: &Tensor<4, Bool>, rays, reference| {
        let nmap = depth_to_normals(pred, mask.clone(), rays, config.normals_from_depth);
        normal_angular(nmap, reference, mask, config.angular_loss)
    };
    let normal_i = consistency(pred_i.clone(), &p.mask_i, p.rays_i, p.normals_i);
    let normal_j = consistency(pred_j.clone(), &p.mask_j, p.rays_j, p.normals_j);
    let warp = warp_loss(pred_i, pred_j, &p.warp, config.rotation_fit);
    let total = sup.total + hdnet_unlabelled_total(normal_i.clone(), normal_j.clone(), warp.loss3d.clone());
    StageLoss { total, terms: Terms::Hdnet { depth, normal_i, normal_j, loss3d: warp.loss3d, loss2d: warp.loss2d } }
}
