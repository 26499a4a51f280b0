//! A score for real photos, which have no ground-truth depth: does the predicted depth put the
//! body's joints in the same front-to-back order as a real-trained 3D pose model (MediaPipe's
//! BlazePose world keypoints)? Every pair of visible joints more than 8 cm apart in the pose
//! model's depth counts; a pair scores 1 when the predicted depths order it the same way, 0 when
//! the other way, 1/2 when they are equal, so a flat depth map scores 50%.

use ndarray::Array2;
use serde::Serialize;

/// Joint pairs closer than this in the pose model's depth (metres) are too close to order.
pub const MIN_GAP: f32 = 0.08;
/// Only joints the pose model sees with at least this probability count.
pub const MIN_VISIBILITY: f32 = 0.5;
/// A joint just off the mask reads the depth of the nearest mask pixel within this (pixels).
pub const SEARCH: i64 = 3;

/// A body joint: where it is in the photo, how sure the pose model is that it is visible, and
/// its depth in the pose model's metric frame (larger is farther).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Joint {
    /// The pose model's name for it (`left_knee`).
    pub name: &'static str,
    pub x: f32,
    pub y: f32,
    pub visibility: f32,
    pub depth: f32,
}

/// One photo's agreement: the summed pair scores and the number of pairs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Agreement {
    pub score: f32,
    pub pairs: usize,
}

impl Agreement {
    /// The agreement of counted `pairs`.
    pub fn of(pairs: &[JointPair]) -> Self {
        Agreement { score: pairs.iter().map(JointPair::score).sum(), pairs: pairs.len() }
    }

    /// The share of pairs ordered as the pose model orders them (None without pairs).
    pub fn share(&self) -> Option<f32> {
        (self.pairs > 0).then(|| self.score / self.pairs as f32)
    }
}

/// A counted pair of joints: the depth of `first` minus that of `second`, by the pose model and
/// by the prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct JointPair {
    pub first: &'static str,
    pub second: &'static str,
    /// Metres.
    pub pose_gap: f32,
    /// The predicted depth's units (metres for hdnet's photos).
    pub predicted_gap: f32,
}

impl JointPair {
    /// 1 when the prediction orders the pair as the pose model does, 0 the other way, 1/2 tied.
    pub fn score(&self) -> f32 {
        if self.predicted_gap == 0.0 {
            0.5
        } else if self.predicted_gap.signum() == self.pose_gap.signum() {
            1.0
        } else {
            0.0
        }
    }
}

impl std::ops::Add for Agreement {
    type Output = Agreement;

    fn add(self, other: Agreement) -> Agreement {
        Agreement { score: self.score + other.score, pairs: self.pairs + other.pairs }
    }
}

/// The predicted depth at a joint: at its pixel, or the nearest mask pixel within [`SEARCH`].
fn depth_at(depth: &Array2<f32>, mask: &Array2<f32>, joint: &Joint) -> Option<f32> {
    let (h, w) = depth.dim();
    let (r, c) = (joint.y.floor() as i64, joint.x.floor() as i64);
    (0..=SEARCH)
        .flat_map(|ring| {
            (-ring..=ring)
                .flat_map(move |dr| (-ring..=ring).map(move |dc| (dr, dc)))
                .filter(move |(dr, dc)| dr.abs().max(dc.abs()) == ring)
        })
        .map(|(dr, dc)| (r + dr, c + dc))
        .find(|&(y, x)| {
            y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w && mask[(y as usize, x as usize)] > 0.0
        })
        .map(|(y, x)| depth[(y as usize, x as usize)])
}

/// The pairs of visible `joints` more than [`MIN_GAP`] apart in the pose model's depth, with
/// their gaps in `depth` (the photo's predicted depth, with its `mask`).
pub fn joint_pairs(depth: &Array2<f32>, mask: &Array2<f32>, joints: &[Joint]) -> Vec<JointPair> {
    let seen: Vec<(&Joint, f32)> = joints
        .iter()
        .filter(|j| j.visibility >= MIN_VISIBILITY)
        .filter_map(|j| depth_at(depth, mask, j).map(|d| (j, d)))
        .collect();
    let mut pairs = Vec::new();
    for (i, &(a, da)) in seen.iter().enumerate() {
        for &(b, db) in &seen[i + 1..] {
            let pose_gap = a.depth - b.depth;
            if pose_gap.abs() > MIN_GAP {
                pairs.push(JointPair { first: a.name, second: b.name, pose_gap, predicted_gap: da - db });
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four joints on a 4 x 4 depth map, worked by hand. Depths (pose model): a 0.0, b 0.3,
    /// c 0.35, d 1.0 (d hidden: visibility 0.2). Pairs over 8 cm apart among a, b, c: (a, b) 0.3
    /// and (a, c) 0.35; (b, c) is 5 cm apart and does not count. Predicted: a 4.0, b 4.5, c 3.9:
    /// (a, b) agrees (both farther), (a, c) disagrees: 1 of 2.
    #[test]
    fn pairs_are_counted_and_ordered_as_worked_by_hand() {
        let mut depth = Array2::from_elem((4, 4), 0.0);
        depth[(0, 0)] = 4.0;
        depth[(1, 2)] = 4.5;
        depth[(3, 3)] = 3.9;
        let mask = depth.mapv(|d| f32::from(u8::from(d > 0.0)));
        let joint = |name, x, y, visibility, depth| Joint { name, x, y, visibility, depth };
        let joints = [
            joint("a", 0.5, 0.5, 0.9, 0.0),
            joint("b", 2.2, 1.7, 0.9, 0.3),
            joint("c", 3.9, 3.1, 0.8, 0.35),
            joint("d", 1.0, 3.0, 0.2, 1.0),
        ];
        let pairs = joint_pairs(&depth, &mask, &joints);
        let named: Vec<(&str, &str)> = pairs.iter().map(|p| (p.first, p.second)).collect();
        assert_eq!(named, [("a", "b"), ("a", "c")]);
        for (pair, (pose, predicted)) in pairs.iter().zip([(-0.3, -0.5), (-0.35, 0.1)]) {
            assert!((pair.pose_gap - pose).abs() < 1e-6 && (pair.predicted_gap - predicted).abs() < 1e-6, "{pair:?}");
        }
        let agreement = Agreement::of(&pairs);
        assert_eq!(agreement, Agreement { score: 1.0, pairs: 2 });
        assert_eq!(agreement.share(), Some(0.5));
        // A flat prediction ties every pair: 50%.
        let flat = Agreement::of(&joint_pairs(&mask.mapv(|m| 4.0 * m), &mask, &joints));
        assert_eq!(flat.share(), Some(0.5));
    }

    /// A joint one pixel off the mask reads its neighbour; one farther off is left out.
    #[test]
    fn joints_just_off_the_mask_read_the_nearest_mask_pixel() {
        let mut depth = Array2::zeros((10, 10));
        depth[(5, 5)] = 3.0;
        let mask = depth.mapv(|d: f32| f32::from(u8::from(d > 0.0)));
        let joint = |x: f32| Joint { name: "", x, y: 5.5, visibility: 1.0, depth: 0.0 };
        assert_eq!(depth_at(&depth, &mask, &joint(6.5)), Some(3.0));
        assert_eq!(depth_at(&depth, &mask, &joint(9.5)), None);
    }
}
