//! Weights in and out: the original TF1 checkpoints (read natively) and hdnet's own safetensors
//! files (network configs in the metadata, float32 or float16).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use hdnet_formats::FileError;
use hdnet_formats::tf_checkpoint::TfCheckpoint;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::hourglass::{Hourglass, HourglassConfig, NetKind, parameter_values};

/// Metadata key holding hdnet's JSON header in a safetensors file.
const META_KEY: &str = "hdnet";
const FORMAT_VERSION: u32 = 1;

/// A host-side tensor: shape and row-major values.
struct HostTensor {
    shape: Vec<usize>,
    values: Vec<f32>,
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
        let (shape, values) = ckpt.read_f32(name).map_err(|e| FileError::new(path, e))?;
        Ok(HostTensor { shape, values })
    };
    let conv1 = read(&format!("{scope}/conv1/weights"))?;
    let head = read(&format!("{scope}/conv18/weights"))?;
    let out_width = |k: usize| -> Result<usize, FileError> {
        read(&format!("{scope}/conv{k}/weights"))?
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
    config.build(device, |spec| {
        let name = spec.tf_name(kind);
        // TF stores kernels as [kh, kw, in, out]; Burn's are [out, in, kh, kw].
        let tf_shape = match spec.shape[..] {
            [o, i, kh, kw] => vec![kh, kw, i, o],
            _ => spec.shape.clone(),
        };
        let t = read(&name)?;
        if t.shape != tf_shape {
            return Err(FileError::new(
                path,
                format!("{name} has shape {:?}, expected {tf_shape:?} for widths {:?}", t.shape, config.widths),
            ));
        }
        Ok(if t.shape.len() == 4 { hwio_to_oihw(&t).values } else { t.values })
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
    HostTensor { shape: vec![cout, cin, kh, kw], values }
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
            FileError::new(
                dir,
                format!("no TF checkpoint of the {} (scope {}) found here", kind.name(), kind.tf_scope()),
            )
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
    name.split(|c: char| !c.is_ascii_digit()).rfind(|s| !s.is_empty()).and_then(|s| s.parse().ok()).unwrap_or(0)
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
        let config = net.config(*kind);
        for (spec, (shape, values)) in config.parameters().into_iter().zip(parameter_values(net)) {
            debug_assert_eq!(spec.shape, shape, "parameters() and the module's visiting order agree");
            let name = spec.file_name(*kind);
            let bytes = match dtype {
                StoreDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                StoreDtype::F16 => values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
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
    let (_, metadata) =
        SafeTensors::read_metadata(bytes).map_err(|e| FileError::new(path, format!("not a safetensors file: {e}")))?;
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
    config.build(device, |spec| {
        let name = spec.file_name(kind);
        let view = st.tensor(&name).map_err(|_| FileError::new(path, format!("tensor '{name}' is missing")))?;
        if view.shape() != spec.shape.as_slice() {
            return Err(FileError::new(
                path,
                format!("tensor '{name}' has shape {:?}, expected {:?}", view.shape(), spec.shape),
            ));
        }
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => {
                view.data().chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            other => return Err(FileError::new(path, format!("tensor '{name}' has unsupported dtype {other:?}"))),
        };
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(FileError::new(path, format!("tensor '{name}' holds a non-finite value ({bad})")));
        }
        Ok(values)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwio_to_oihw_moves_every_element() {
        let t = HostTensor { shape: vec![1, 2, 3, 2], values: (0..12).map(|v| v as f32).collect() };
        let o = hwio_to_oihw(&t);
        assert_eq!(o.shape, vec![2, 3, 1, 2]);
        // element (y=0, x=1, i=2, o=1) at HWIO index ((0*2+1)*3+2)*2+1 = 11
        assert_eq!(o.values[(3 + 2) * 2 + 1], 11.0);
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
            for ((_, a), (_, b)) in parameter_values(&net).into_iter().zip(parameter_values(&back)) {
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= tol * x.abs().max(1.0), "{x} vs {y}");
                }
            }
            let err = hourglass_from_safetensors(&path, &bytes, NetKind::Depth, &device).unwrap_err();
            assert!(err.to_string().contains("holds no depth_net"), "{err}");
        }
    }
}
