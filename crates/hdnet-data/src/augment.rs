//! Augmentation that keeps the geometry consistent: a horizontal flip relabels left/right body
//! parts, negates the normals' x component and mirrors correspondences; colour jitter changes the
//! person only (the background stays white, as the networks expect).
//!
//! The flip keeps each part's (U, V): DensePose's charts of mirrored parts are not mirror images
//! of each other, so the flipped IUV is a consistent labelling for correspondences (both frames of
//! a pair are flipped together) but not exactly what DensePose would output on the flipped image.

use hdnet_formats::correspondences::Correspondences;
use hdnet_formats::densepose::{MIRRORED_PART, NUM_PARTS};
use hdnet_formats::images::PersonImage;
use hdnet_geometry::Camera;
use ndarray::{Array2, Array3, Axis};

use crate::layout::{LabelledFrame, VideoFrame};

/// Mirrors an (H, W, C) image left-right.
pub fn flip_image(img: &Array3<f32>) -> Array3<f32> {
    let mut out = img.clone();
    out.invert_axis(Axis(1));
    out
}

pub fn flip_map(map: &Array2<f32>) -> Array2<f32> {
    let mut out = map.clone();
    out.invert_axis(Axis(1));
    out
}

/// Mirrors a stored IUV image (channel 2 = part) and swaps left/right parts.
pub fn flip_iuv(iuv: &Array3<f32>) -> Array3<f32> {
    let mut out = flip_image(iuv);
    for p in out.index_axis_mut(Axis(2), 2) {
        *p = f32::from(MIRRORED_PART[(*p as usize).min(NUM_PARTS as usize)]);
    }
    out
}

/// Mirrors camera-space normals: the x axis (image columns) changes sign.
pub fn flip_normals(normals: &Array3<f32>) -> Array3<f32> {
    let mut out = flip_image(normals);
    out.index_axis_mut(Axis(2), 0).mapv_inplace(|x| -x);
    out
}

/// Mirrors correspondences of two `width`-wide frames flipped together, keeping part order.
pub fn flip_correspondences(c: &Correspondences, width: u32) -> Correspondences {
    let mirror = |p: [u32; 2]| [p[0], width - 1 - p[1]];
    let mut rows: Vec<(u8, [u32; 2], [u32; 2])> =
        (0..c.len()).map(|k| (MIRRORED_PART[c.part[k] as usize], mirror(c.pixel_i[k]), mirror(c.pixel_j[k]))).collect();
    rows.sort_by_key(|r| r.0); // stable: keeps the order within a part
    Correspondences {
        part: rows.iter().map(|r| r.0).collect(),
        pixel_i: rows.iter().map(|r| r.1).collect(),
        pixel_j: rows.iter().map(|r| r.2).collect(),
    }
}

/// Colour jitter on the person: v -> clamp(gain * v + bias, 0, 255) per channel.
pub fn jitter_colors(image: &Array3<f32>, mask: &Array2<f32>, gain: [f32; 3], bias: [f32; 3]) -> Array3<f32> {
    let mut out = image.clone();
    for ((r, c, k), v) in out.indexed_iter_mut() {
        if mask[(r, c)] != 0.0 {
            *v = (gain[k] * *v + bias[k]).clamp(0.0, 255.0);
        }
    }
    out
}

/// What to do to one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentChoice {
    pub flip: bool,
    /// Per-channel colour gain and bias (identity: 1 and 0).
    pub gain: [f32; 3],
    pub bias: [f32; 3],
    /// The IUV replaced by zeros, as for a photo without DensePose.
    pub drop_iuv: bool,
}

impl AugmentChoice {
    pub const NONE: Self = Self { flip: false, gain: [1.0; 3], bias: [0.0; 3], drop_iuv: false };
}

/// Augmentation settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AugmentConfig {
    pub flip_probability: f32,
    /// Gains are drawn from [1 - jitter, 1 + jitter], biases from +-(jitter * 100).
    pub color_jitter: f32,
    /// The probability that a frame's IUV is dropped (zeros), so that the depth net also learns
    /// photos without DensePose, which is what `hdnet infer` gives it for a photo alone.
    pub iuv_dropout: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self { flip_probability: 0.0, color_jitter: 0.0, iuv_dropout: 0.0 }
    }
}

fn flip_if(flip: bool, img: &Array3<f32>, f: fn(&Array3<f32>) -> Array3<f32>) -> Array3<f32> {
    if flip { f(img) } else { img.clone() }
}

fn flip_map_if(flip: bool, m: &Array2<f32>) -> Array2<f32> {
    if flip { flip_map(m) } else { m.clone() }
}

/// A person image mirrored left-right: the image, its mask and its IUV (parts relabelled).
pub fn flip_person(p: &PersonImage) -> PersonImage {
    PersonImage { name: p.name.clone(), image: flip_image(&p.image), mask: flip_map(&p.mask), iuv: flip_iuv(&p.iuv) }
}

/// A frame's person after `choice`: flipped, then jittered on the mask, or its IUV dropped.
fn augment_person(p: &PersonImage, choice: &AugmentChoice) -> PersonImage {
    let PersonImage { name, image, mask, iuv } = if choice.flip { flip_person(p) } else { p.clone() };
    let iuv = if choice.drop_iuv { Array3::zeros(iuv.dim()) } else { iuv };
    PersonImage { name, image: jitter_colors(&image, &mask, choice.gain, choice.bias), iuv, mask }
}

fn mirror_camera_if(flip: bool, camera: &Camera, width: usize) -> Camera {
    if flip { camera.mirrored(width) } else { *camera }
}

/// Applies `choice` to a labelled frame.
pub fn augment_labelled(f: &LabelledFrame, choice: &AugmentChoice) -> LabelledFrame {
    LabelledFrame {
        person: augment_person(&f.person, choice),
        camera: mirror_camera_if(choice.flip, &f.camera, f.person.size().1),
        depth: flip_map_if(choice.flip, &f.depth),
        normals: flip_if(choice.flip, &f.normals, flip_normals),
    }
}

/// Applies `choice` to both frames of a pair and their correspondences (flipped together).
pub fn augment_pair(
    i: &VideoFrame,
    j: &VideoFrame,
    c: &Correspondences,
    choice: &AugmentChoice,
) -> (VideoFrame, VideoFrame, Correspondences) {
    let one = |f: &VideoFrame| VideoFrame {
        person: augment_person(&f.person, choice),
        camera: mirror_camera_if(choice.flip, &f.camera, f.person.size().1),
        normals: flip_if(choice.flip, &f.normals, flip_normals),
    };
    let width = i.person.size().1 as u32;
    let c = if choice.flip { flip_correspondences(c, width) } else { c.clone() };
    (one(i), one(j), c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_parts_are_an_involution_with_fixed_torso_and_head() {
        for p in 0..25 {
            assert_eq!(MIRRORED_PART[MIRRORED_PART[p] as usize] as usize, p);
        }
        for p in [0, 1, 2, 23, 24] {
            assert_eq!(MIRRORED_PART[p] as usize, p);
        }
        assert_eq!((MIRRORED_PART[3], MIRRORED_PART[15], MIRRORED_PART[22]), (4, 16, 21));
    }

    #[test]
    fn flip_relabels_parts_and_negates_normal_x() {
        let iuv =
            Array3::from_shape_fn((1, 3, 3), |(_, c, k)| if k == 2 { [3.0, 1.0, 16.0][c] } else { c as f32 * 10.0 });
        let f = flip_iuv(&iuv);
        assert_eq!([f[(0, 0, 2)], f[(0, 1, 2)], f[(0, 2, 2)]], [15.0, 1.0, 4.0]);
        assert_eq!(f[(0, 0, 0)], 20.0);
        let n = Array3::from_shape_fn((1, 2, 3), |(_, c, k)| [0.6, 0.0, -0.8][k] * if c == 0 { 1.0 } else { 0.5 });
        let fnorm = flip_normals(&n);
        assert_eq!([fnorm[(0, 1, 0)], fnorm[(0, 1, 2)]], [-0.6, -0.8]);
        assert_eq!(fnorm[(0, 0, 0)], -0.3);
    }

    #[test]
    fn a_dropped_iuv_is_zero_and_the_rest_of_the_frame_unchanged() {
        let person = PersonImage {
            name: "p".into(),
            image: Array3::from_elem((2, 2, 3), 100.0),
            mask: Array2::ones((2, 2)),
            iuv: Array3::from_elem((2, 2, 3), 7.0),
        };
        let dropped = augment_person(&person, &AugmentChoice { drop_iuv: true, ..AugmentChoice::NONE });
        assert!(dropped.iuv.iter().all(|&v| v == 0.0));
        assert_eq!((dropped.image, dropped.mask), (person.image.clone(), person.mask.clone()));
        assert_eq!(augment_person(&person, &AugmentChoice::NONE).iuv, person.iuv);
    }

    #[test]
    fn flipped_correspondences_stay_grouped_by_part() {
        let c = Correspondences {
            part: vec![3, 3, 4],
            pixel_i: vec![[0, 0], [1, 1], [2, 9]],
            pixel_j: vec![[5, 2], [6, 3], [7, 8]],
        };
        let f = flip_correspondences(&c, 10);
        assert_eq!(f.part, vec![3, 4, 4]);
        assert_eq!(f.pixel_i, vec![[2, 0], [0, 9], [1, 8]]);
        assert_eq!(f.pixel_j, vec![[7, 1], [5, 7], [6, 6]]);
    }
}
