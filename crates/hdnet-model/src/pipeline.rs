//! HDNet inference as the original runs it: normal net on the white-background RGB, unit
//! normalisation and masking, then the depth net on [RGB | normals | IUV]; and, where the
//! weights ask, each net's output averaged with its output on the mirrored image.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use hdnet_formats::images::PersonImage;
use hdnet_formats::{FileError, row_major};
use hdnet_geometry::{Camera, Integration, integrate_normals};
use ndarray::{Array2, Array3, Axis, concatenate};
use rayon::prelude::*;

use hdnet_data::augment::{flip_map, flip_normals, flip_person};

use crate::hourglass::{Hourglass, NetKind};
use crate::weights::{hourglass_from_safetensors, load_hourglass, read_header};

/// Both networks on one device.
#[derive(Debug)]
pub struct Hdnet {
    pub normal_net: Hourglass,
    pub depth_net: Hourglass,
    pub device: Device,
    /// Provenance and usage notes stored with hdnet weights (e.g. `person_fill`); empty for the
    /// original checkpoints.
    pub notes: HashMap<String, String>,
    /// Each network's output averaged with its output on the mirrored image, mirrored back
    /// (weights noted `flip=average`; the original does not).
    pub flip_average: bool,
}

/// The weights' note that asks for flip averaging ([`Hdnet::flip_average`]).
pub const FLIP_NOTE: (&str, &str) = ("flip", "average");

/// What HDNet predicts for one image (all H x W, channels last).
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The normal net's raw output (flip-averaged when [`Hdnet::flip_average`]).
    pub normals_raw: Array3<f32>,
    /// Unit normals on the mask, zero elsewhere (the depth net's input).
    pub normals: Array3<f32>,
    /// The depth net's raw output, unmasked (it can be negative off the person).
    pub depth: Array2<f32>,
}

impl Prediction {
    /// The depth refined on `mask` by the predicted normals through `camera` when `refine` is
    /// given ([`integrate_normals`]), the depth net's own elsewhere and without `refine`.
    pub fn refined_depth(&self, mask: &Array2<f32>, camera: &Camera, refine: Option<Integration>) -> Array2<f32> {
        let Some(settings) = refine else { return self.depth.clone() };
        let (h, w) = self.depth.dim();
        let normals: Vec<[f32; 3]> = self.normals.rows().into_iter().map(|n| [n[0], n[1], n[2]]).collect();
        let refined = integrate_normals(&row_major(&self.depth), &normals, &row_major(mask), h, w, camera, settings);
        Array2::from_shape_vec((h, w), refined).expect("h * w values")
    }
}

impl Hdnet {
    /// Loads both networks from an hdnet `.safetensors` file or from a folder holding the
    /// original TF1 checkpoints.
    pub fn load(weights: &Path, device: &Device) -> Result<Self, FileError> {
        if weights.is_file() {
            let bytes = std::fs::read(weights).map_err(|e| FileError::new(weights, e))?;
            return Self::from_safetensors(weights, &bytes, device);
        }
        Ok(Self {
            normal_net: load_hourglass(weights, NetKind::Normal, device)?,
            depth_net: load_hourglass(weights, NetKind::Depth, device)?,
            device: device.clone(),
            notes: HashMap::new(),
            flip_average: false,
        })
    }

    /// Both networks from the bytes of an hdnet `.safetensors` file (`path` names it in errors).
    pub fn from_safetensors(path: &Path, bytes: &[u8], device: &Device) -> Result<Self, FileError> {
        let notes = read_header(path, bytes)?.notes;
        Ok(Self {
            normal_net: hourglass_from_safetensors(path, bytes, NetKind::Normal, device)?,
            depth_net: hourglass_from_safetensors(path, bytes, NetKind::Depth, device)?,
            device: device.clone(),
            flip_average: notes.get(FLIP_NOTE.0).is_some_and(|v| v == FLIP_NOTE.1),
            notes,
        })
    }

    /// Whether the depth net reads DensePose IUV (the original's 9 channels; 6 without).
    pub fn uses_densepose(&self) -> bool {
        self.depth_net.in_channels() > crate::hourglass::DEPTH_INPUTS_WITHOUT_DENSEPOSE
    }

    /// Whether the depth net cannot do without IUV: it reads it and was not trained to see it
    /// missing (weights noted `densepose=optional`, trained with `augment.iuv_dropout`, take
    /// zeros where a photo has none).
    pub fn needs_densepose(&self) -> bool {
        self.uses_densepose() && self.notes.get("densepose").map(String::as_str) != Some("optional")
    }

    /// Unit normals (0 off the mask) of a batch of same-sized images.
    pub fn normals(&self, samples: &[&PersonImage]) -> Vec<Array3<f32>> {
        let raw = self.raw_normals(samples, self.mirrored(samples).as_deref());
        raw.iter().zip(samples).map(|(raw, s)| unit_normals(raw, &s.mask)).collect()
    }

    /// Predicts a batch. Every image gets exactly the result it gets alone (per-image batch norm).
    pub fn predict(&self, samples: &[&PersonImage]) -> Vec<Prediction> {
        let mirrored = self.mirrored(samples);
        let normals_raw = self.raw_normals(samples, mirrored.as_deref());
        let normals: Vec<Array3<f32>> =
            normals_raw.iter().zip(samples).map(|(raw, s)| unit_normals(raw, &s.mask)).collect();
        let depth = self.depth(samples, mirrored.as_deref(), &normals);
        normals_raw
            .into_iter()
            .zip(normals)
            .zip(depth)
            .map(|((normals_raw, normals), depth)| Prediction { normals_raw, normals, depth })
            .collect()
    }

    /// The mirrored samples when flip averaging, for both networks.
    fn mirrored(&self, samples: &[&PersonImage]) -> Option<Vec<PersonImage>> {
        self.flip_average.then(|| samples.iter().map(|s| flip_person(s)).collect())
    }

    /// The normal net's output, averaged with its output on `mirrored` when given (in the same
    /// pass).
    fn raw_normals(&self, samples: &[&PersonImage], mirrored: Option<&[PersonImage]>) -> Vec<Array3<f32>> {
        let Some(mirrored) = mirrored else { return raw_normals(&self.normal_net, samples) };
        let both: Vec<&PersonImage> = samples.iter().copied().chain(mirrored).collect();
        let mut raw = raw_normals(&self.normal_net, &both);
        let back = raw.split_off(samples.len());
        raw.into_iter().zip(back).map(|(raw, back)| (raw + flip_normals(&back)) * 0.5).collect()
    }

    /// The depth net's depth for `samples` with their unit `normals`, averaged with its depth on
    /// `mirrored` (with the normals mirrored) when given.
    fn depth(
        &self,
        samples: &[&PersonImage],
        mirrored: Option<&[PersonImage]>,
        normals: &[Array3<f32>],
    ) -> Vec<Array2<f32>> {
        let mut inputs: Vec<Array3<f32>> =
            samples.iter().zip(normals).map(|(s, n)| depth_net_input(&s.image, n, &s.iuv)).collect();
        if let Some(mirrored) = mirrored {
            let inputs_mirrored =
                mirrored.iter().zip(normals).map(|(m, n)| depth_net_input(&m.image, &flip_normals(n), &m.iuv));
            inputs.extend(inputs_mirrored);
        }
        let batch = to_nchw(&inputs.iter().collect::<Vec<_>>(), &self.device);
        let mut depth: Vec<Array2<f32>> = from_nchw(self.depth_net.forward(self.depth_net.take_inputs(batch)))
            .into_iter()
            .map(|d| d.index_axis_move(Axis(2), 0))
            .collect();
        if mirrored.is_some() {
            let back = depth.split_off(samples.len());
            depth = depth.into_iter().zip(back).map(|(d, back)| (d + flip_map(&back)) * 0.5).collect();
        }
        depth
    }
}

/// Unit normals (0 off the mask) that `normal_net` predicts for a batch of same-sized images, on
/// the net's device.
pub fn predict_normals(normal_net: &Hourglass, samples: &[&PersonImage]) -> Vec<Array3<f32>> {
    raw_normals(normal_net, samples).iter().zip(samples).map(|(raw, s)| unit_normals(raw, &s.mask)).collect()
}

fn raw_normals(normal_net: &Hourglass, samples: &[&PersonImage]) -> Vec<Array3<f32>> {
    let images: Vec<&Array3<f32>> = samples.iter().map(|s| &s.image).collect();
    from_nchw(normal_net.forward(to_nchw(&images, &normal_net.device())))
}

/// The hourglass pools four times: images must be at least 16 pixels and a multiple of 16.
pub fn check_network_size(height: usize, width: usize) -> Result<(), String> {
    if height == 0 || width == 0 || !height.is_multiple_of(16) || !width.is_multiple_of(16) {
        return Err(format!("image is {width}x{height}: the networks need sides that are positive multiples of 16"));
    }
    Ok(())
}

/// The original `nmap_normalization` then masking: n / |n| on the mask, 0 elsewhere. The original
/// has no epsilon; a raw normal of exactly zero length (never seen in practice) gives 0 here
/// instead of NaN.
pub fn unit_normals(raw: &Array3<f32>, mask: &Array2<f32>) -> Array3<f32> {
    let mut out = Array3::zeros(raw.dim());
    for ((r, c), &m) in mask.indexed_iter() {
        if m == 0.0 {
            continue;
        }
        let n = [raw[(r, c, 0)], raw[(r, c, 1)], raw[(r, c, 2)]];
        let norm = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        if norm > 0.0 {
            for k in 0..3 {
                out[(r, c, k)] = n[k] / norm;
            }
        }
    }
    out
}

/// The depth net's 9 channels: [RGB (white background) | unit normals | IUV as stored].
pub fn depth_net_input(image: &Array3<f32>, normals: &Array3<f32>, iuv: &Array3<f32>) -> Array3<f32> {
    concatenate(Axis(2), &[image.view(), normals.view(), iuv.view()]).expect("same image size")
}

/// H x W x C host images -> one N x C x H x W tensor.
pub fn to_nchw(images: &[&Array3<f32>], device: &Device) -> Tensor<4> {
    let (h, w, c) = images[0].dim();
    assert!(images.iter().all(|img| img.dim() == (h, w, c)), "to_nchw: images of different sizes");
    let planes: Vec<_> = images.iter().flat_map(|img| img.axis_iter(Axis(2))).collect();
    // one plane per job (in order): iterating the permuted view runs on one thread
    let mut values = Vec::with_capacity(planes.len() * h * w);
    values.par_extend(planes.into_par_iter().flat_map_iter(|view| view.into_iter().copied()));
    Tensor::from_data(TensorData::new(values, [images.len(), c, h, w]), device)
}

/// N x C x H x W tensor -> N host images H x W x C.
pub fn from_nchw(t: Tensor<4>) -> Vec<Array3<f32>> {
    let [n, c, h, w] = t.dims();
    let values = t.try_into_vec_as::<f32>().expect("float tensor");
    let all = ndarray::Array4::from_shape_vec((n, c, h, w), values).expect("shape of the tensor");
    all.outer_iter().map(|img| img.permuted_axes([1, 2, 0]).as_standard_layout().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hourglass::HourglassConfig;

    fn sample(iuv_value: f32) -> PersonImage {
        let (h, w) = (32, 32);
        PersonImage {
            name: "t".into(),
            image: Array3::from_shape_fn((h, w, 3), |(r, c, k)| ((r * 7 + c * 3 + k * 11) % 255) as f32),
            mask: Array2::from_shape_fn(
                (h, w),
                |(r, c)| if (8..24).contains(&r) && (8..24).contains(&c) { 1.0 } else { 0.0 },
            ),
            iuv: Array3::from_elem((h, w, 3), iuv_value),
        }
    }

    /// Flip averaging makes the prediction mirror-symmetric: the prediction of a mirrored image
    /// is the mirrored prediction (normals' x negated), to rounding; without it the nets (random
    /// weights here) are not.
    #[test]
    fn flip_averaged_predictions_mirror_with_the_image() {
        let device = Device::flex();
        let mut hdnet = Hdnet {
            normal_net: HourglassConfig::new(NetKind::Normal, 2).init(&device, 1),
            depth_net: HourglassConfig::new(NetKind::Depth, 2).init(&device, 2),
            device,
            notes: HashMap::new(),
            flip_average: false,
        };
        let (image, mirrored) = (sample(3.0), flip_person(&sample(3.0)));
        let largest_asymmetry = |hdnet: &Hdnet| {
            let p = hdnet.predict(&[&image, &mirrored]);
            let normals = (&p[0].normals - &flip_normals(&p[1].normals)).mapv(f32::abs);
            let depth = (&p[0].depth - &flip_map(&p[1].depth)).mapv(f32::abs);
            let scale = p[0].depth.iter().fold(0.0f32, |m, d| m.max(d.abs()));
            (normals.fold(0.0f32, |m, &d| m.max(d)), depth.fold(0.0f32, |m, &d| m.max(d)) / scale)
        };
        let (normals, depth) = largest_asymmetry(&hdnet);
        assert!(normals > 1e-2 && depth > 1e-3, "the nets alone are not symmetric: {normals}, {depth}");
        hdnet.flip_average = true;
        let (normals, depth) = largest_asymmetry(&hdnet);
        assert!(normals < 1e-5 && depth < 1e-5, "{normals}, {depth}");
    }

    #[test]
    fn a_depth_net_without_densepose_ignores_iuv() {
        let device = Device::flex();
        let normal_net = HourglassConfig::new(NetKind::Normal, 2).init(&device, 1);
        for (densepose, config) in [
            (false, HourglassConfig::new(NetKind::Depth, 2).without_densepose()),
            (true, HourglassConfig::new(NetKind::Depth, 2)),
        ] {
            let mut hdnet = Hdnet {
                normal_net: normal_net.clone(),
                depth_net: config.init(&device, 2),
                device: device.clone(),
                notes: HashMap::new(),
                flip_average: false,
            };
            assert_eq!((hdnet.uses_densepose(), hdnet.needs_densepose()), (densepose, densepose));
            hdnet.notes.insert("densepose".into(), "optional".into());
            assert_eq!((hdnet.uses_densepose(), hdnet.needs_densepose()), (densepose, false));
            let (a, b) = (sample(0.0), sample(200.0));
            let p = hdnet.predict(&[&a, &b]);
            let differs = p[0].depth.iter().zip(&p[1].depth).any(|(x, y)| (x - y).abs() > 1e-6);
            assert_eq!(differs, densepose, "depth depends on the IUV only with DensePose inputs");
        }
    }
}
