//! Training checkpoints: `CHECKPOINTS/step-NNNNNNNN/` holding the network (`model.safetensors`,
//! hdnet's weight format; for a depth stage with input normals also that normal net, which makes
//! it a complete model for `hdnet infer` and `hdnet eval`), the Adam state
//! (`optimizer.bpk`) and `state.json` (step, stage, configuration).
//!
//! A checkpoint is written into a hidden temporary folder and renamed into place only when
//! complete, so a process killed at any moment leaves either the new checkpoint or none: the
//! previous ones stay loadable. The sampler and augmentation are pure functions of (seed, step), so
//! no generator state needs saving for an exact resume.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::{ModuleMapper, Param, ParamId};
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::prelude::*;
use burn::tensor::Bytes;
use hdnet_formats::FileError;
use hdnet_model::weights::{StoreDtype, hourglass_from_safetensors, read_header, save_safetensors};
use hdnet_model::{Hourglass, NetKind};
use serde::{Deserialize, Serialize};

use crate::config::{Stage, TrainConfig};

const MODEL_FILE: &str = "model.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const STATE_FILE: &str = "state.json";
const PREFIX: &str = "step-";

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub stage: Stage,
    /// Steps completed.
    pub step: u64,
    pub config: TrainConfig,
}

/// Gives every parameter an id from its position in the network, so that the optimizer state
/// (keyed by parameter id) matches the network after a reload.
pub fn with_stable_ids(net: Hourglass) -> Hourglass {
    struct Renumber(u64);
    impl ModuleMapper for Renumber {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            self.0 += 1;
            // Detached: weights loaded through tensor ops (e.g. f16 -> f32) are not graph leaves.
            Param::initialized(ParamId::from(self.0), param.val().detach()).set_require_grad(true)
        }
    }
    net.map(&mut Renumber(0))
}

pub fn checkpoint_dir(root: &Path, step: u64) -> PathBuf {
    root.join(format!("{PREFIX}{step:08}"))
}

/// Completed checkpoints under `root`, oldest first.
pub fn list(root: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let step = name.strip_prefix(PREFIX)?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Removes the temporary folders of checkpoint writes whose process was killed (`kill -9`
/// between creating and renaming one); those of a live run are left alone.
pub fn remove_stale(root: &Path) {
    hdnet_formats::item::remove_left_by_dead_processes(root, &format!(".tmp-{PREFIX}"));
}

/// Writes a checkpoint atomically and deletes all but the newest `keep`. `input_normal_net` is the
/// normal net a depth stage reads its normals from, if any.
pub fn save(
    root: &Path,
    state: &TrainState,
    net: &Hourglass,
    input_normal_net: Option<&Hourglass>,
    optimizer: &ModuleOptimizer,
) -> Result<PathBuf, FileError> {
    std::fs::create_dir_all(root).map_err(|e| FileError::new(root, e))?;
    let target = checkpoint_dir(root, state.step);
    let tmp = root.join(format!(".tmp-{PREFIX}{:08}-{}", state.step, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| FileError::new(&tmp, e))?;
    write_files(&tmp, state, net, input_normal_net, optimizer)?;
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(|e| FileError::new(&target, e))?;
    }
    std::fs::rename(&tmp, &target).map_err(|e| FileError::new(&target, e))?;
    let all = list(root);
    for (_, old) in all.iter().take(all.len().saturating_sub(state.config.keep_checkpoints)) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(target)
}

/// The files of one checkpoint, into an existing folder.
fn write_files(
    dir: &Path,
    state: &TrainState,
    net: &Hourglass,
    input_normal_net: Option<&Hourglass>,
    optimizer: &ModuleOptimizer,
) -> Result<(), FileError> {
    let notes = HashMap::from([
        ("stage".to_string(), state.stage.name().to_string()),
        ("step".to_string(), state.step.to_string()),
    ]);
    let mut nets = vec![(state.stage.net_kind(), net)];
    nets.extend(input_normal_net.map(|n| (NetKind::Normal, n)));
    save_safetensors(&dir.join(MODEL_FILE), &nets, StoreDtype::F32, notes)?;
    let optim_path = dir.join(OPTIMIZER_FILE);
    let bytes = optimizer.to_record().into_bytes().map_err(|e| FileError::new(&optim_path, format!("{e:?}")))?;
    hdnet_formats::write_atomic(&optim_path, &bytes)?;
    let json = serde_json::to_string_pretty(state).map_err(|e| FileError::new(dir.join(STATE_FILE), e))?;
    hdnet_formats::write_atomic(&dir.join(STATE_FILE), json.as_bytes())
}

/// A loaded checkpoint.
pub struct Loaded {
    pub state: TrainState,
    pub net: Hourglass,
    /// The normal net a depth stage reads its normals from, if the run has one.
    pub input_normal_net: Option<Hourglass>,
    pub optimizer_record: OptimizerRecord,
}

/// Loads the checkpoint in `dir` onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<Loaded, FileError> {
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&state_path).map_err(|e| FileError::new(&state_path, e))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| FileError::new(&state_path, e))?;
    let model_path = dir.join(MODEL_FILE);
    let bytes = std::fs::read(&model_path).map_err(|e| FileError::new(&model_path, e))?;
    let net = with_stable_ids(hourglass_from_safetensors(&model_path, &bytes, state.stage.net_kind(), device)?);
    let has_input_normal_net = state.stage.net_kind() == NetKind::Depth
        && read_header(&model_path, &bytes)?.nets.iter().any(|c| c.kind == NetKind::Normal);
    let input_normal_net = has_input_normal_net
        .then(|| hourglass_from_safetensors(&model_path, &bytes, NetKind::Normal, device))
        .transpose()?;
    let optim_path = dir.join(OPTIMIZER_FILE);
    let bytes = std::fs::read(&optim_path).map_err(|e| FileError::new(&optim_path, e))?;
    let optimizer_record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| FileError::new(&optim_path, format!("{e:?}")))?;
    Ok(Loaded { state, net, input_normal_net, optimizer_record })
}

/// The newest completed checkpoint under `root`, if any.
pub fn latest(root: &Path) -> Option<PathBuf> {
    list(root).pop().map(|(_, p)| p)
}
