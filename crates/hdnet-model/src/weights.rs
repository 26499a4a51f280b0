//! Weights in and out: the original TF1 checkpoints (read natively) and hdnet's own safetensors
//! files (network configs in the metadata, float32 or float16).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use hdnet_formats::FileError;
use hdnet_formats::tf_checkpoint::TfCheckpoint;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::hourglass::{ConvBnRelu, Hourglass, HourglassConfig, NUM_CONV_BN, NetKind};

/// Metadata key holding hdnet's JSON header in a safetensors file.
const META_KEY: &str = "hdnet";
const FORMAT_VERSION: u32 = 1;

/// A host-side tensor: shape and row-major values.
struct HostTensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

impl HostTensor {
    fn to_device<const D: usize>(&self, device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(self.values.clone(), self.shape.clone()), device)
    }
}

/// Reads the `kind` network from a TF1 checkpoint, taking all widths from the variable shapes.
pub fn hourglass_from_tf(ckpt: &TfCheckpoint, kind: NetKind, device: &Device) -> Result<Hourglass, FileError> {
    let path = ckpt.prefix();
    let scope = kind.tf_scope();
    if !ckpt.variables().any(|(name, _)| name.starts_with(scope)) {
        let found = [NetKind::Normal, NetKind::Depth]
            .into_iter()
            .find(|k| ckpt.variables().any(|(n, _)| n.starts_with(k.tf_scope())));
        let what = match found {
            Some(other) => format!("holds the {} ({}), not the {}", other.name(), other.tf_scope(), kind.name()),
            None => format!("holds no variable of the {} (scope {scope})", kind.name()),
        };
        return Err(FileError::new(path, what));
    }
    let read = |name: &str| -> Result<HostTensor, FileError> {
        let (shape, values) = ckpt
            .read_f32(&format!("{scope}/{name}"))
            .map_err(|e| FileError::new(path, e))?;
        Ok(HostTensor { shape, values })
    };
    let conv1 = read("conv1/weights")?;
    let head = read("conv18/weights")?;
    let out_width = |k: usize| -> Result<usize, FileError> {
        read(&format!("conv{k}/weights"))?
            .shape
            .get(3)
            .copied()
            .ok_or_else(|| FileError::new(path, format!("{scope}/conv{k}/weights is not 4-D")))
    };
    let (Some(&in_channels), Some(&out_channels)) = (conv1.shape.get(2), head.shape.get(3)) else {
        return Err(FileError::new(path, "conv1 or conv18 weights are not 4-D"));
    };
    let config = HourglassConfig {
        kind,
        in_channels,
        out_channels,
        widths: [out_width(1)?, out_width(4)?, out_width(5)?, out_width(6)?, out_width(7)?],
    };
    let expect = |name: &str, shape: &[usize]| -> Result<HostTensor, FileError> {
        let t = read(name)?;
        if t.shape != shape {
            return Err(FileError::new(
                path,
                format!("{scope}/{name} has shape {:?}, expected {shape:?} for widths {:?}", t.shape, config.widths),
            ));
        }
        Ok(t)
    };
    let mut blocks = Vec::with_capacity(NUM_CONV_BN);
    for (k, (cin, cout)) in config.conv_channels().into_iter().enumerate() {
        let conv = format!("conv{}", k + 1);
        let weight = hwio_to_oihw(&expect(&format!("{conv}/weights"), &[3, 3, cin, cout])?);
        blocks.push(ConvBnRelu {
            weight: Param::from_tensor(weight.to_device(device)),
            bias: Param::from_tensor(expect(&format!("{conv}/biases"), &[cout])?.to_device(device)),
            beta: Param::from_tensor(expect(&format!("{conv}/beta"), &[cout])?.to_device(device)),
        });
    }
    let w0 = config.widths[0];
    let head_weight = hwio_to_oihw(&expect("conv18/weights", &[1, 1, w0, out_channels])?);
    Ok(Hourglass {
        blocks,
        head_weight: Param::from_tensor(head_weight.to_device(device)),
        head_bias: Param::from_tensor(expect("conv18/biases", &[out_channels])?.to_device(device)),
    })
}

/// TF's [kh, kw, in, out] to Burn's [out, in, kh, kw].
fn hwio_to_oihw(t: &HostTensor) -> HostTensor {
    let [kh, kw, cin, cout] = [t.shape[0], t.shape[1], t.shape[2], t.shape[3]];
    let mut values = vec![0.0; t.values.len()];
    for y in 0..kh {
        for x in 0..kw {
            for i in 0..cin {
                for o in 0..cout {
                    values[((o * cin + i) * kh + y) * kw + x] = t.values[((y * kw + x) * cin + i) * cout + o];
                }
            }
        }
    }
    HostTensor {
        shape: vec![cout, cin, kh, kw],
        values,
    }
}

/// Finds the normal-net and depth-net checkpoints under `dir` (the original
/// `model/{normal,depth}_prediction/model_N/model_N.ckpt.*` layout, or any other): every
/// `*.index` file up to four folders down is classified by its variable scope; of several
/// checkpoints of one network the one with the highest step number wins.
pub fn find_tf_checkpoints(dir: &Path) -> Result<[PathBuf; 2], FileError> {
    let mut found: [Vec<PathBuf>; 2] = [Vec::new(), Vec::new()];
    for index in index_files(dir, 4) {
        let prefix = index.with_extension("");
        let ckpt = TfCheckpoint::open(&prefix).map_err(|e| FileError::new(&index, e))?;
        for (slot, kind) in [NetKind::Normal, NetKind::Depth].into_iter().enumerate() {
            if ckpt.variables().any(|(n, _)| n.starts_with(kind.tf_scope())) {
                found[slot].push(prefix.clone());
            }
        }
    }
    let pick = |mut candidates: Vec<PathBuf>, kind: NetKind| {
        candidates.sort_by_key(|p| (step_number(p), p.clone()));
        candidates.pop().ok_or_else(|| {
            FileError::new(dir, format!("no TF checkpoint of the {} (scope {}) found here", kind.name(), kind.tf_scope()))
        })
    };
    let [normal, depth] = found;
    Ok([pick(normal, NetKind::Normal)?, pick(depth, NetKind::Depth)?])
}

fn index_files(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        if path.is_dir() && depth > 0 {
            out.extend(index_files(&path, depth - 1));
        } else if path.extension().is_some_and(|e| e == "index") {
            out.push(path);
        }
    }
    out
}

/// The last run of digits in a checkpoint name (`model_1920000.ckpt` -> 1920000).
fn step_number(prefix: &Path) -> u64 {
    let name = prefix.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .last()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Loads network `kind` from an hdnet `.safetensors` file or from a folder of TF1 checkpoints.
pub fn load_hourglass(path: &Path, kind: NetKind, device: &Device) -> Result<Hourglass, FileError> {
    if path.is_dir() {
        let [normal, depth] = find_tf_checkpoints(path)?;
        let prefix = if kind == NetKind::Normal { normal } else { depth };
        let ckpt = TfCheckpoint::open(&prefix).map_err(|e| FileError::new(&prefix, e))?;
        hourglass_from_tf(&ckpt, kind, device)
    } else {
        let bytes = std::fs::read(path).map_err(|e| FileError::new(path, e))?;
        hourglass_from_safetensors(path, &bytes, kind, device)
    }
}

/// Precision of stored weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDtype {
    F32,
    F16,
}

/// hdnet's JSON header inside the safetensors metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightsHeader {
    pub format_version: u32,
    pub nets: Vec<HourglassConfig>,
    /// Free-form provenance (source checkpoint, training run, ...).
    #[serde(default)]
    pub notes: HashMap<String, String>,
}

fn tensor_names(kind: NetKind) -> impl Iterator<Item = String> {
    let net = kind.name();
    (1..=NUM_CONV_BN)
        .flat_map(move |k| ["weight", "bias", "beta"].map(|p| format!("{net}.conv{k}.{p}")))
        .chain(["weight", "bias"].map(|p| format!("{net}.conv18.{p}")))
}

fn host_values<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    let shape = t.dims().to_vec();
    let values = t.try_into_vec_as::<f32>().expect("float tensor");
    (shape, values)
}

fn net_tensors(net: &Hourglass) -> Vec<(Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    for block in &net.blocks {
        out.push(host_values(block.weight.val()));
        out.push(host_values(block.bias.val()));
        out.push(host_values(block.beta.val()));
    }
    out.push(host_values(net.head_weight.val()));
    out.push(host_values(net.head_bias.val()));
    out
}

/// Writes networks to one safetensors file (atomically).
pub fn save_safetensors(
    path: &Path,
    nets: &[(NetKind, &Hourglass)],
    dtype: StoreDtype,
    notes: HashMap<String, String>,
) -> Result<(), FileError> {
    let header = WeightsHeader {
        format_version: FORMAT_VERSION,
        nets: nets.iter().map(|(kind, net)| net.config(*kind)).collect(),
        notes,
    };
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (kind, net) in nets {
        for (name, (shape, values)) in tensor_names(*kind).zip(net_tensors(net)) {
            let bytes = match dtype {
                StoreDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                StoreDtype::F16 => values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
            };
            buffers.push((name, shape, bytes));
        }
    }
    let st_dtype = match dtype {
        StoreDtype::F32 => Dtype::F32,
        StoreDtype::F16 => Dtype::F16,
    };
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| Ok((name.clone(), TensorView::new(st_dtype, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| FileError::new(path, e))?;
    let meta = serde_json::to_string(&header).map_err(|e| FileError::new(path, e))?;
    let bytes = safetensors::serialize(views, Some(HashMap::from([(META_KEY.to_string(), meta)])))
        .map_err(|e| FileError::new(path, e))?;
    hdnet_formats::write_atomic(path, &bytes)
}

/// Reads the header of an hdnet safetensors file.
pub fn read_header(path: &Path, bytes: &[u8]) -> Result<WeightsHeader, FileError> {
    let (_, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| FileError::new(path, format!("not a safetensors file: {e}")))?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| FileError::new(path, "safetensors file without hdnet metadata (not written by hdnet)"))?;
    let header: WeightsHeader =
        serde_json::from_str(json).map_err(|e| FileError::new(path, format!("bad hdnet metadata: {e}")))?;
    if header.format_version > FORMAT_VERSION {
        return Err(FileError::new(
            path,
            format!("weights format version {} is newer than this hdnet ({FORMAT_VERSION})", header.format_version),
        ));
    }
    Ok(header)
}

/// Reads network `kind` from an hdnet safetensors file held in `bytes`.
pub fn hourglass_from_safetensors(
    path: &Path,
    bytes: &[u8],
    kind: NetKind,
    device: &Device,
) -> Result<Hourglass, FileError> {
    let header = read_header(path, bytes)?;
    let config = header
        .nets
        .iter()
        .find(|c| c.kind == kind)
        .copied()
        .ok_or_else(|| FileError::new(path, format!("holds no {}", kind.name())))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| FileError::new(path, e))?;
    let mut expected_shapes = Vec::new();
    for (cin, cout) in config.conv_channels() {
        expected_shapes.extend([vec![cout, cin, 3, 3], vec![cout], vec![cout]]);
    }
    expected_shapes.extend([vec![config.out_channels, config.widths[0], 1, 1], vec![config.out_channels]]);
    let mut tensors = Vec::new();
    for (name, shape) in tensor_names(kind).zip(expected_shapes) {
        let view = st
            .tensor(&name)
            .map_err(|_| FileError::new(path, format!("tensor '{name}' is missing")))?;
        if view.shape() != shape.as_slice() {
            return Err(FileError::new(
                path,
                format!("tensor '{name}' has shape {:?}, expected {shape:?}", view.shape()),
            ));
        }
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => return Err(FileError::new(path, format!("tensor '{name}' has unsupported dtype {other:?}"))),
        };
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(FileError::new(path, format!("tensor '{name}' holds a non-finite value ({bad})")));
        }
        tensors.push(HostTensor { shape, values });
    }
    let mut it = tensors.into_iter();
    let mut next = || it.next().expect("one tensor per name");
    let blocks = (0..NUM_CONV_BN)
        .map(|_| ConvBnRelu {
            weight: Param::from_tensor(next().to_device(device)),
            bias: Param::from_tensor(next().to_device(device)),
            beta: Param::from_tensor(next().to_device(device)),
        })
        .collect();
    Ok(Hourglass {
        blocks,
        head_weight: Param::from_tensor(next().to_device(device)),
        head_bias: Param::from_tensor(next().to_device(device)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwio_to_oihw_moves_every_element() {
        let t = HostTensor {
            shape: vec![1, 2, 3, 2],
            values: (0..12).map(|v| v as f32).collect(),
        };
        let o = hwio_to_oihw(&t);
        assert_eq!(o.shape, vec![2, 3, 1, 2]);
        // element (y=0, x=1, i=2, o=1) at HWIO index ((0*2+1)*3+2)*2+1 = 11
        assert_eq!(o.values[((1 * 3 + 2) * 1 + 0) * 2 + 1], 11.0);
    }

    #[test]
    fn step_number_takes_the_last_digits() {
        assert_eq!(step_number(Path::new("a/model_1920000.ckpt")), 1_920_000);
        assert_eq!(step_number(Path::new("model.ckpt")), 0);
    }

    #[test]
    fn safetensors_round_trip_f32_exact_and_f16_close() {
        let device = Device::flex();
        let net = HourglassConfig::new(NetKind::Normal, 2).init(&device, 7);
        let dir = tempfile::tempdir().unwrap();
        for (dtype, tol) in [(StoreDtype::F32, 0.0), (StoreDtype::F16, 2e-3)] {
            let path = dir.path().join("w.safetensors");
            save_safetensors(&path, &[(NetKind::Normal, &net)], dtype, HashMap::new()).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let back = hourglass_from_safetensors(&path, &bytes, NetKind::Normal, &device).unwrap();
            for ((_, a), (_, b)) in net_tensors(&net).into_iter().zip(net_tensors(&back)) {
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= tol * x.abs().max(1.0), "{x} vs {y}");
                }
            }
            let err = hourglass_from_safetensors(&path, &bytes, NetKind::Depth, &device).unwrap_err();
            assert!(err.to_string().contains("holds no depth_net"), "{err}");
        }
    }
}
