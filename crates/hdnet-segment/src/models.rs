//! MediaPipe's two models, built into the binary, with their inputs and outputs named.

use std::path::Path;

use burn::prelude::*;
use ndarray::{Array2, Array3};

use crate::graph::Graph;

/// `mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite` of the mediapipe 0.10.21 wheel.
static SELFIE_SEGMENTATION: &[u8] = include_bytes!("../models/selfie_segmentation.tflite");
/// `mediapipe/modules/pose_landmark/pose_landmark_full.tflite` of the same wheel.
static POSE_LANDMARK_FULL: &[u8] = include_bytes!("../models/pose_landmark_full.tflite");

/// Both models' input: 256 x 256 RGB in [0, 1].
pub const INPUT_SIZE: usize = 256;

/// BlazePose's landmarks: the 33 body keypoints, then 6 the model uses to place its region of
/// interest (33: hips' centre, 34: a point above the head that sets the scale and rotation).
pub const LANDMARKS: usize = 39;

/// MediaPipe's selfie segmentation: the whole image in, a person probability per pixel out.
#[derive(Debug)]
pub struct SelfieSegmentation(Graph);

/// BlazePose GHUM 3D (full): a 256 x 256 crop around one person in, landmarks and a mask out.
#[derive(Debug)]
pub struct PoseLandmarks(Graph);

/// What the pose model says about its crop.
#[derive(Debug, Clone)]
pub struct PoseOutput {
    /// [39, 5]: x and y in input pixels, z at the same scale (towards the camera negative),
    /// visibility and presence as logits.
    pub landmarks: Array2<f32>,
    /// Whether a person is in the crop, a probability.
    pub presence: f32,
    /// [256, 256] person logits.
    pub segmentation: Array2<f32>,
    /// [39, 3] metric coordinates around the hips' centre (x right, y down, z away).
    pub world: Array2<f32>,
}

fn input_tensor(image: &Array3<f32>, device: &Device) -> Tensor<4> {
    let (h, w, c) = image.dim();
    let values: Vec<f32> = image.iter().copied().collect();
    Tensor::from_data(TensorData::new(values, [1, h, w, c]), device)
}

fn load(name: &str, bytes: &[u8], device: &Device) -> Graph {
    Graph::from_tflite(Path::new(name), bytes, device).expect("the built-in models are checked by the tests")
}

impl SelfieSegmentation {
    pub fn new(device: &Device) -> Self {
        Self(load("selfie_segmentation.tflite", SELFIE_SEGMENTATION, device))
    }

    /// Person probabilities [256, 256] of a 256 x 256 x 3 image in [0, 1].
    pub fn run(&self, image: &Array3<f32>, device: &Device) -> Array2<f32> {
        let mask = self.0.run(input_tensor(image, device)).remove(0);
        Array2::from_shape_vec((INPUT_SIZE, INPUT_SIZE), mask).expect("the model's output shape")
    }
}

impl PoseLandmarks {
    pub fn new(device: &Device) -> Self {
        Self(load("pose_landmark_full.tflite", POSE_LANDMARK_FULL, device))
    }

    /// The pose model on a 256 x 256 x 3 crop in [0, 1].
    pub fn run(&self, image: &Array3<f32>, device: &Device) -> PoseOutput {
        let mut outputs = self.0.run(input_tensor(image, device)).into_iter();
        let mut next = || outputs.next().expect("the model's five outputs");
        let landmarks = Array2::from_shape_vec((LANDMARKS, 5), next()).expect("39 x 5 landmarks");
        let presence = next()[0];
        let segmentation = Array2::from_shape_vec((INPUT_SIZE, INPUT_SIZE), next()).expect("a 256 x 256 mask");
        let _heatmap = next();
        let world = Array2::from_shape_vec((LANDMARKS, 3), next()).expect("39 x 3 world landmarks");
        PoseOutput { landmarks, presence, segmentation, world }
    }
}
