//! The built-in models against TFLite's own interpreter (ai-edge-litert 2.3.0 with XNNPACK) on
//! the inputs of `fixtures/mediapipe` (made by `fixtures/mediapipe/make_fixtures.py`): the
//! bundled photo, a mirrored close-up of it and scikit-image's public-domain astronaut.
//!
//! Tolerances: probabilities within 1e-3; landmark pixels within 0.05 px and world coordinates
//! within 1 mm; logits within 1e-3 of their largest magnitude (float32 sums in another order).

use std::path::PathBuf;

use burn::prelude::*;
use hdnet_formats::images::read_rgb;
use hdnet_segment::models::{PoseLandmarks, SelfieSegmentation};
use ndarray::{Array3, ArrayD};

const IMAGES: [&str; 3] = ["0043", "0043_closeup", "astronaut"];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mediapipe").join(name)
}

fn npy(name: &str) -> ArrayD<f32> {
    hdnet_formats::npy::read(fixture(name)).unwrap()
}

fn input(name: &str) -> Array3<f32> {
    read_rgb(fixture(&format!("{name}.png")), Some((256, 256))).unwrap() / 255.0
}

/// The largest absolute difference, printed with the reference's largest magnitude.
fn max_diff<'a>(what: &str, a: impl IntoIterator<Item = &'a f32>, b: &ArrayD<f32>) -> (f32, f32) {
    let diff = a.into_iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let scale = b.iter().map(|v| v.abs()).fold(0.0, f32::max);
    println!("{what}: largest difference {diff:.3e} (largest value {scale:.3e})");
    (diff, scale)
}

fn device() -> Device {
    Device::flex()
}

#[test]
fn selfie_segmentation_matches_the_tflite_interpreter() {
    let model = SelfieSegmentation::new(&device());
    for name in IMAGES {
        let mask = model.run(&input(name), &device());
        let (diff, _) = max_diff(&format!("{name} selfie mask"), &mask, &npy(&format!("{name}_selfie.npy")));
        assert!(diff <= 1e-3, "{name}: {diff}");
    }
}

#[test]
fn pose_landmarks_match_the_tflite_interpreter() {
    let model = PoseLandmarks::new(&device());
    for name in IMAGES {
        let out = model.run(&input(name), &device());
        let reference = npy(&format!("{name}_pose_landmarks.npy")).into_shape_with_order((39, 5)).unwrap();
        let pixels: Vec<f32> = out.landmarks.columns().into_iter().take(2).flatten().copied().collect();
        let ref_pixels = reference.columns().into_iter().take(2).flatten().copied().collect::<Vec<_>>();
        let (diff, _) = max_diff(&format!("{name} landmark pixels"), &pixels, &ndarray::arr1(&ref_pixels).into_dyn());
        assert!(diff <= 0.05, "{name}: {diff}");
        let (diff, scale) = max_diff(&format!("{name} landmark outputs"), &out.landmarks, &reference.into_dyn());
        assert!(diff <= 1e-3 * scale, "{name}: {diff}");
        let (diff, _) = max_diff(&format!("{name} world"), &out.world, &npy(&format!("{name}_pose_world.npy")));
        assert!(diff <= 1e-3, "{name}: {diff}");
        let (diff, _) = max_diff(&format!("{name} presence"), [&out.presence], &npy(&format!("{name}_pose_flag.npy")));
        assert!(diff <= 1e-3, "{name}: {diff}");
        let seg = npy(&format!("{name}_pose_segmentation.npy"));
        let (diff, scale) = max_diff(&format!("{name} segmentation logits"), &out.segmentation, &seg);
        assert!(diff <= 1e-3 * scale, "{name}: {diff}");
    }
}
