//! Training batches: host frames (from `hdnet-data`, augmented there) stacked into device tensors.
//!
//! Labelled frames feed the normal net (RGB) and the depth net (RGB | normals | IUV: the
//! ground-truth normals as in the original's depth pretraining, or a normal net's); video frames
//! feed the depth net with predicted normals.

use burn::prelude::*;
use hdnet_data::layout::{LabelledFrame, VideoFrame};
use hdnet_formats::correspondences::Correspondences;
use ndarray::{Array2, Array3, Axis};

use hdnet_model::geometry::ray_map;
use hdnet_model::pipeline::{depth_net_input, to_nchw};
use hdnet_model::warp_loss::{WarpBatch, WarpPair};

/// Labelled frames as tensors (NCHW).
#[derive(Debug, Clone)]
pub struct LabelledBatch {
    /// Normal-net input: RGB 0..255, white background.
    pub image: Tensor<4>,
    /// Depth-net input: RGB | input normals | IUV.
    pub depth_input: Tensor<4>,
    pub depth: Tensor<4>,
    pub normals: Tensor<4>,
    pub mask: Tensor<4, Bool>,
    pub rays: Tensor<4>,
}

/// Frame pairs of videos as tensors, with their warp-loss inputs.
#[derive(Debug, Clone)]
pub struct PairBatch {
    pub input_i: Tensor<4>,
    pub input_j: Tensor<4>,
    pub normals_i: Tensor<4>,
    pub normals_j: Tensor<4>,
    pub mask_i: Tensor<4, Bool>,
    pub mask_j: Tensor<4, Bool>,
    pub rays_i: Tensor<4>,
    pub rays_j: Tensor<4>,
    pub warp: WarpBatch,
}

fn maps(maps: &[&Array2<f32>], device: &Device) -> Tensor<4> {
    let as3: Vec<Array3<f32>> = maps.iter().map(|m| (*m).clone().insert_axis(Axis(2))).collect();
    to_nchw(&as3.iter().collect::<Vec<_>>(), device)
}

fn bool_maps(m: &[&Array2<f32>], device: &Device) -> Tensor<4, Bool> {
    maps(m, device).greater_elem(0.0)
}

/// Stacks labelled frames (all of one size), each seen through its own camera. The depth net reads
/// `input_normals` (one per frame): the ground truth's, or a normal net's predictions.
pub fn labelled_batch(frames: &[LabelledFrame], input_normals: &[&Array3<f32>], device: &Device) -> LabelledBatch {
    let (h, w) = frames[0].person.mask.dim();
    let inputs: Vec<Array3<f32>> =
        frames.iter().zip(input_normals).map(|(f, n)| depth_net_input(&f.person.image, n, &f.person.iuv)).collect();
    LabelledBatch {
        image: to_nchw(&frames.iter().map(|f| &f.person.image).collect::<Vec<_>>(), device),
        depth_input: to_nchw(&inputs.iter().collect::<Vec<_>>(), device),
        depth: maps(&frames.iter().map(|f| &f.depth).collect::<Vec<_>>(), device),
        normals: to_nchw(&frames.iter().map(|f| &f.normals).collect::<Vec<_>>(), device),
        mask: bool_maps(&frames.iter().map(|f| &f.person.mask).collect::<Vec<_>>(), device),
        rays: ray_map(&frames.iter().map(|f| f.camera).collect::<Vec<_>>(), h, w, device),
    }
}

/// The frames' own (ground-truth) normals, as [`labelled_batch`] takes them.
pub fn ground_truth_normals(frames: &[LabelledFrame]) -> Vec<&Array3<f32>> {
    frames.iter().map(|f| &f.normals).collect()
}

/// One video pair for [`pair_batch`].
pub struct VideoPair<'a> {
    pub frame_i: &'a VideoFrame,
    pub frame_j: &'a VideoFrame,
    pub correspondences: &'a Correspondences,
}

/// Stacks video pairs (all frames of one size). Fails on correspondences outside the frames.
pub fn pair_batch(pairs: &[VideoPair], device: &Device) -> Result<PairBatch, String> {
    let (h, w) = pairs[0].frame_i.person.mask.dim();
    let input = |f: &VideoFrame| depth_net_input(&f.person.image, &f.normals, &f.person.iuv);
    let side = |pick: for<'p> fn(&'p VideoPair<'p>) -> &'p VideoFrame| {
        let inputs: Vec<Array3<f32>> = pairs.iter().map(|p| input(pick(p))).collect();
        (
            to_nchw(&inputs.iter().collect::<Vec<_>>(), device),
            to_nchw(&pairs.iter().map(|p| &pick(p).normals).collect::<Vec<_>>(), device),
            bool_maps(&pairs.iter().map(|p| &pick(p).person.mask).collect::<Vec<_>>(), device),
        )
    };
    let (input_i, normals_i, mask_i) = side(|p| p.frame_i);
    let (input_j, normals_j, mask_j) = side(|p| p.frame_j);
    let warp_pairs: Vec<WarpPair> = pairs
        .iter()
        .map(|p| WarpPair {
            correspondences: p.correspondences,
            camera_i: p.frame_i.camera,
            camera_j: p.frame_j.camera,
        })
        .collect();
    Ok(PairBatch {
        input_i,
        input_j,
        normals_i,
        normals_j,
        mask_i,
        mask_j,
        rays_i: ray_map(&pairs.iter().map(|p| p.frame_i.camera).collect::<Vec<_>>(), h, w, device),
        rays_j: ray_map(&pairs.iter().map(|p| p.frame_j.camera).collect::<Vec<_>>(), h, w, device),
        warp: WarpBatch::new(&warp_pairs, h, w, device)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdnet_data::augment::{AugmentChoice, augment_labelled};
    use hdnet_formats::images::PersonImage;

    fn frame() -> LabelledFrame {
        let (h, w) = (4, 6);
        LabelledFrame {
            camera: hdnet_geometry::Camera::original(),
            person: PersonImage {
                name: "f".into(),
                image: Array3::from_shape_fn((h, w, 3), |(r, c, k)| (r * 10 + c + k) as f32),
                mask: Array2::from_shape_fn((h, w), |(_, c)| if c < 2 { 1.0 } else { 0.0 }),
                iuv: Array3::from_shape_fn((h, w, 3), |(_, c, k)| if k == 2 && c < 2 { 3.0 } else { 0.0 }),
            },
            depth: Array2::from_shape_fn((h, w), |(r, c)| if c < 2 { 4.0 + r as f32 } else { 0.0 }),
            normals: Array3::from_shape_fn((h, w, 3), |(_, c, k)| if c < 2 { [0.6, 0.0, -0.8][k] } else { 0.0 }),
        }
    }

    #[test]
    fn flipped_labelled_batch_mirrors_everything_consistently() {
        let device = Device::flex();
        let choice = AugmentChoice { flip: true, ..AugmentChoice::NONE };
        let f = augment_labelled(&frame(), &choice);
        let b = labelled_batch(std::slice::from_ref(&f), &ground_truth_normals(std::slice::from_ref(&f)), &device);
        assert_eq!(b.depth_input.dims(), [1, 9, 4, 6]);
        let mask = b.mask.clone().float().try_into_vec_as::<f32>().unwrap();
        assert_eq!(&mask[..6], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        let input = b.depth_input.try_into_vec_as::<f32>().unwrap();
        let at = |ch: usize, r: usize, c: usize| input[(ch * 4 + r) * 6 + c];
        assert_eq!(at(3, 0, 5), -0.6); // normal x negated
        assert_eq!(at(5, 0, 5), -0.8);
        assert_eq!(at(8, 0, 5), 4.0); // part 3 (right hand) became 4 (left hand)
        assert_eq!(at(0, 1, 5), 10.0); // image column 0 moved to column 5
        let depth = b.depth.try_into_vec_as::<f32>().unwrap();
        assert_eq!(depth[6 + 5], 5.0);
    }
}
