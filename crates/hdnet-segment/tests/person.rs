//! The person finder on the bundled photo (examples/0043): its mask against the dataset's
//! reference mask, its keypoints against MediaPipe's own pipeline on the same photo
//! (fixtures/mediapipe/0043_mediapipe_landmarks.npy), and the same photo placed small in a larger
//! picture, twice, or not at all.

use std::path::PathBuf;

use burn::prelude::*;
use hdnet_formats::crop::Bounds;
use hdnet_formats::images::{read_mask, read_rgb};
use hdnet_segment::person::{NotFound, Person, Segmenter, metres_per_pixel};
use ndarray::{Array2, Array3, ArrayD, s};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn photo() -> Array3<f32> {
    read_rgb(root().join("examples/0043_img.png"), None).unwrap()
}

fn reference_mask() -> Array2<f32> {
    read_mask(root().join("examples/0043_mask.png"), None).unwrap()
}

fn iou(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    let both = a.iter().zip(b).filter(|(x, y)| **x > 0.0 && **y > 0.0).count();
    let either = a.iter().zip(b).filter(|(x, y)| **x > 0.0 || **y > 0.0).count();
    both as f32 / either as f32
}

/// Mean distance (pixels) between the keypoints and `reference` (x, y per row) shifted by `offset`,
/// over the keypoints MediaPipe sees (visibility > 0.5).
fn mean_distance(person: &Person, offset: [f32; 2], scale: f32) -> f32 {
    let reference: ArrayD<f32> =
        hdnet_formats::npy::read(root().join("fixtures/mediapipe/0043_mediapipe_landmarks.npy")).unwrap();
    let seen: Vec<f32> = (0..33)
        .filter(|&i| reference[[i, 3]] > 0.5)
        .map(|i| {
            let k = &person.keypoints[i];
            let (x, y) = (reference[[i, 0]] * scale + offset[0], reference[[i, 1]] * scale + offset[1]);
            (k.x - x).hypot(k.y - y)
        })
        .collect();
    seen.iter().sum::<f32>() / seen.len() as f32
}

/// `photo` scaled by an integer-free nearest rule and pasted into `canvas` at (top, left).
fn paste(canvas: &mut Array3<f32>, photo: &Array3<f32>, top: usize, left: usize, size: usize) {
    let n = photo.dim().0;
    for r in 0..size {
        for c in 0..size {
            for k in 0..3 {
                canvas[(top + r, left + c, k)] = photo[(r * n / size, c * n / size, k)];
            }
        }
    }
}

fn segmenter() -> Segmenter {
    Segmenter::new(&Device::flex())
}

#[test]
fn finds_the_person_of_the_bundled_photo() {
    let person = segmenter().find(&photo(), None).unwrap();
    let overlap = iou(&person.mask, &reference_mask());
    let distance = mean_distance(&person, [0.0, 0.0], 1.0);
    println!("mask IoU with the reference {overlap:.3}; keypoints {distance:.2} px from MediaPipe's on average");
    // MediaPipe's own pose mask scores 0.954 here.
    assert!(overlap >= 0.93, "{overlap}");
    assert!(distance <= 4.0, "{distance}");
    assert_eq!(person.people, 1);
    assert!(person.presence > 0.9);
}

/// The pose model run on a mask's region (`infer --mask`) sizes the person as the search does.
#[test]
fn a_masked_region_is_sized_as_the_found_person() {
    let segmenter = segmenter();
    let masked = segmenter.keypoints_within(&photo(), Bounds::of(&reference_mask()).unwrap());
    let found = segmenter.find(&photo(), None).unwrap().keypoints;
    let (masked, found) = (metres_per_pixel(&masked).unwrap(), metres_per_pixel(&found).unwrap());
    assert!((masked / found - 1.0).abs() < 0.05, "{masked} against {found} m per pixel unmasked");
}

#[test]
fn finds_a_small_person_in_a_large_picture() {
    let mut canvas = Array3::from_elem((600, 900, 3), 128.0);
    paste(&mut canvas, &photo(), 250, 500, 192);
    let person = segmenter().find(&canvas, None).unwrap();
    let distance = mean_distance(&person, [500.0, 250.0], 0.75);
    let mut expected = Array2::zeros((600, 900));
    let reference = reference_mask();
    expected
        .slice_mut(s![250..442, 500..692])
        .assign(&Array2::from_shape_fn((192, 192), |(r, c)| reference[(r * 256 / 192, c * 256 / 192)]));
    let overlap = iou(&person.mask, &expected);
    println!("small person: mask IoU {overlap:.3}, keypoints {distance:.2} px from MediaPipe's (scaled)");
    assert!(overlap >= 0.93, "{overlap}");
    assert!(distance <= 4.0, "{distance}");
}

/// At 1500 x 1000 a person 100 px high is 17 px in the selfie model's view of the whole photo:
/// found by looking closer.
#[test]
fn finds_a_person_a_tenth_of_the_photo_high() {
    let mut canvas = Array3::from_elem((1000, 1500, 3), 128.0);
    paste(&mut canvas, &photo(), 400, 700, 100);
    let person = segmenter().find(&canvas, None).unwrap();
    let distance = mean_distance(&person, [700.0, 400.0], 100.0 / 256.0);
    println!("a person 100 px high: keypoints {distance:.2} px from MediaPipe's (scaled)");
    assert!(distance <= 3.0, "{distance}");
    assert_eq!(person.people, 1);
}

#[test]
fn takes_the_most_prominent_of_two_people_and_counts_them() {
    let mut canvas = Array3::from_elem((350, 600, 3), 128.0);
    paste(&mut canvas, &photo(), 60, 20, 256);
    paste(&mut canvas, &photo(), 120, 360, 200);
    let person = segmenter().find(&canvas, None).unwrap();
    assert_eq!(person.people, 2);
    let distance = mean_distance(&person, [20.0, 60.0], 1.0);
    assert!(distance <= 4.0, "{distance}");
}

/// A person the pose model doubts (seen from behind, fixtures/synthetic/back_view.png) is still
/// found, outlined by the selfie model: the pose model's own mask of her leaves out part of her
/// hair and arm (IoU 0.85 against her exact mask, where the selfie model's has 0.965).
#[test]
fn a_person_seen_from_behind_is_outlined_by_the_selfie_model() {
    let photo = read_rgb(root().join("fixtures/synthetic/back_view.png"), None).unwrap();
    let exact = read_mask(root().join("fixtures/synthetic/back_view_mask.png"), None).unwrap();
    let person = segmenter().find(&photo, None).unwrap();
    assert!(person.doubt().is_some(), "the pose model is sure ({}): this tests nothing", person.presence);
    let overlap = iou(&person.mask, &exact);
    assert!(overlap >= 0.93, "{overlap}");
}

#[test]
fn an_empty_picture_holds_nobody() {
    let grey = Array3::from_elem((300, 400, 3), 128.0);
    assert_eq!(segmenter().find(&grey, None).unwrap_err(), NotFound::Nobody);
}

#[test]
fn a_tracked_region_finds_the_person_again_without_the_selfie_model() {
    let s = segmenter();
    let first = s.find(&photo(), None).unwrap();
    let second = s.find(&photo(), Some(first.next_roi)).unwrap();
    assert_eq!(second.people, 0, "the tracked region was not used");
    assert!(iou(&second.mask, &first.mask) > 0.97);
}
