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
    /// The share of pairs ordered as the pose model orders them (None without pairs).
    pub fn share(&self) -> Option<f32> {
        (self.pairs > 0).then(|| self.score / self.pairs as f32)
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

/// How well `depth` (the photo's predicted depth, with its `mask`) orders `joints`.
pub fn joint_order_agreement(depth: &Array2<f32>, mask: &Array2<f32>, joints: &[Joint]) -> Agreement {
    let seen: Vec<(f32, f32)> = joints
        .iter()
        .filter(|j| j.visibility >= MIN_VISIBILITY)
        .filter_map(|j| depth_at(depth, mask, j).map(|d| (j.depth, d)))
        .collect();
    let mut agreement = Agreement::default();
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i + 1..] {
            let truth = a.0 - b.0;
            if truth.abs() <= MIN_GAP {
                continue;
            }
            let predicted = a.1 - b.1;
            agreement.pairs += 1;
            agreement.score += if predicted == 0.0 {
                0.5
            } else if predicted.signum() == truth.signum() {
                1.0
            } else {
                0.0
            };
        }
    }
    agreement
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
        let joint = |x: f32, y: f32, visibility: f32, depth: f32| Joint { x, y, visibility, depth };
        let joints = [
            joint(0.5, 0.5, 0.9, 0.0),
            joint(2.2, 1.7, 0.9, 0.3),
            joint(3.9, 3.1, 0.8, 0.35),
            joint(1.0, 3.0, 0.2, 1.0),
        ];
        let agreement = joint_order_agreement(&depth, &mask, &joints);
        assert_eq!(agreement, Agreement { score: 1.0, pairs: 2 });
        assert_eq!(agreement.share(), Some(0.5));
        // A flat prediction ties every pair: 50%.
        let flat = joint_order_agreement(&mask.mapv(|m| 4.0 * m), &mask, &joints);
        assert_eq!(flat.share(), Some(0.5));
    }

    /// A joint one pixel off the mask reads its neighbour; one farther off is left out.
    #[test]
    fn joints_just_off_the_mask_read_the_nearest_mask_pixel() {
        let mut depth = Array2::zeros((10, 10));
        depth[(5, 5)] = 3.0;
        let mask = depth.mapv(|d: f32| f32::from(u8::from(d > 0.0)));
        let joint = |x: f32| Joint { x, y: 5.5, visibility: 1.0, depth: 0.0 };
        assert_eq!(depth_at(&depth, &mask, &joint(6.5)), Some(3.0));
        assert_eq!(depth_at(&depth, &mask, &joint(9.5)), None);
    }
}
