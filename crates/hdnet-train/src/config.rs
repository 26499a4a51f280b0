//! Training configuration (a TOML file; every field optional, defaults from the original).

use std::path::Path;

use hdnet_data::augment::AugmentConfig;
use hdnet_formats::FileError;
use hdnet_model::NetKind;
use hdnet_model::geometry::NormalsFromDepth;
use hdnet_model::losses::{AngularLoss, Pooling};
use hdnet_model::warp_loss::RotationFit;
use serde::{Deserialize, Serialize};

/// The paper's three stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Normal net on labelled data (angular loss against ground-truth normals).
    Normal,
    /// Depth net on labelled data (2 L2 + scale-invariant + angle of normals from depth).
    Depth,
    /// Depth net on labelled data and unlabelled video pairs (+ normal consistency + 5 warp).
    Hdnet,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Normal => "normal",
            Stage::Depth => "depth",
            Stage::Hdnet => "hdnet",
        }
    }

    /// The network the stage trains.
    pub fn net_kind(self) -> NetKind {
        match self {
            Stage::Normal => NetKind::Normal,
            Stage::Depth | Stage::Hdnet => NetKind::Depth,
        }
    }
}

/// Every hyper-parameter of a run. Defaults are the original's for the chosen stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Base width of the network (64 in the original).
    pub width: usize,
    /// Labelled images per step (the original: 8 for the normal and depth stages, 1 for HDNet).
    pub batch_size: usize,
    /// Video frame pairs per step in the HDNet stage (the original: 1).
    pub pair_batch_size: usize,
    /// Steps to train (a resumed run continues up to this total).
    pub steps: u64,
    pub learning_rate: f64,
    pub beta_1: f32,
    pub beta_2: f32,
    /// TF's default 1e-8 in the normal and depth stages, 0.1 in the HDNet stage (as the original).
    pub epsilon: f32,
    pub seed: u64,
    /// Write a checkpoint every this many steps (the original: 10000).
    pub checkpoint_every: u64,
    /// Checkpoints kept (older ones are deleted).
    pub keep_checkpoints: usize,
    /// One JSONL log line every this many steps.
    pub log_every: u64,
    /// A progress panel (PNG) every this many steps (the original: 100).
    pub visualize_every: u64,
    pub augment: AugmentConfig,
    pub normals_from_depth: NormalsFromDepth,
    pub angular_loss: AngularLoss,
    pub rotation_fit: RotationFit,
    /// Weight of the detail loss beside the angular loss in the normal stage (0: the original's
    /// angular loss alone; `hdnet_model::losses::normal_detail`).
    #[serde(default)]
    pub detail_weight: f32,
    /// How the normal stage's angular loss averages (the original: over the batch's pixels).
    #[serde(default)]
    pub normal_pooling: Pooling,
    /// Whether a new depth net reads DensePose IUV (the original's 9 inputs) or only RGB and
    /// normals (6 inputs, for users without DensePose). A resumed or `--init` network keeps its own.
    #[serde(default = "uses_densepose")]
    pub densepose: bool,
    /// Draw synthetic people v2 of this size (pixels) on the fly instead of reading `--data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<usize>,
}

fn uses_densepose() -> bool {
    true
}

impl TrainConfig {
    /// The original's settings for `stage`.
    pub fn for_stage(stage: Stage) -> Self {
        let hdnet = stage == Stage::Hdnet;
        Self {
            width: 64,
            batch_size: if hdnet { 1 } else { 8 },
            pair_batch_size: 1,
            steps: 100_000,
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: if hdnet { 0.1 } else { 1e-8 },
            seed: 0,
            checkpoint_every: 10_000,
            keep_checkpoints: 3,
            log_every: 10,
            visualize_every: 100,
            augment: AugmentConfig::default(),
            normals_from_depth: NormalsFromDepth::Original,
            angular_loss: AngularLoss::Acos,
            rotation_fit: RotationFit::Original,
            detail_weight: 0.0,
            normal_pooling: Pooling::Pixels,
            densepose: true,
            synthetic: None,
        }
    }

    /// Reads a TOML file over the stage's defaults.
    pub fn load(path: &Path, stage: Stage) -> Result<Self, FileError> {
        let text = std::fs::read_to_string(path).map_err(|e| FileError::new(path, e))?;
        let defaults = toml::Value::try_from(Self::for_stage(stage)).map_err(|e| FileError::new(path, e))?;
        let mut merged = defaults;
        let user: toml::Value =
            toml::from_str(&text).map_err(|e| FileError::new(path, one_line(format!("invalid TOML: {e}"))))?;
        merge(&mut merged, user);
        let config: Self =
            merged.try_into().map_err(|e| FileError::new(path, one_line(format!("invalid setting: {e}"))))?;
        config.validate().map_err(|e| FileError::new(path, e))?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0 || self.batch_size == 0 || self.pair_batch_size == 0 {
            return Err("width, batch_size and pair_batch_size must be positive".into());
        }
        if self.width > hdnet_model::HourglassConfig::MAX_WIDTH {
            return Err(format!("width = {} is over {}", self.width, hdnet_model::HourglassConfig::MAX_WIDTH));
        }
        if self.synthetic.is_some_and(|s| s == 0 || !s.is_multiple_of(16) || s > 1024) {
            return Err("synthetic (the synthetic people's size) must be a multiple of 16 up to 1024".into());
        }
        if self.checkpoint_every == 0 || self.log_every == 0 || self.visualize_every == 0 || self.keep_checkpoints == 0
        {
            return Err("checkpoint_every, log_every, visualize_every and keep_checkpoints must be positive".into());
        }
        let finite_positive = |v: f64| v.is_finite() && v > 0.0;
        if !(finite_positive(self.learning_rate) && finite_positive(f64::from(self.epsilon))) {
            return Err("learning_rate and epsilon must be positive and finite".into());
        }
        if !(self.detail_weight.is_finite() && self.detail_weight >= 0.0) {
            return Err(format!("detail_weight = {} must be zero or positive", self.detail_weight));
        }
        for (name, value) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&value) {
                return Err(format!("{name} = {value} is outside [0, 1)"));
            }
        }
        let augment = [
            ("flip_probability", self.augment.flip_probability),
            ("color_jitter", self.augment.color_jitter),
            ("iuv_dropout", self.augment.iuv_dropout),
        ];
        for (name, value) in augment {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("augment.{name} = {value} is outside [0, 1]"));
            }
        }
        Ok(())
    }

    /// Bytes one training step of this configuration needs on 256x256 images, roughly: weights,
    /// gradients and Adam's two moments, and per image the activations and their gradients
    /// (measured at width 64: 478 MiB per image, about four float32 values per conv output;
    /// 4.5 leaves a margin).
    pub fn memory_estimate(&self, stage: Stage) -> f64 {
        let net = hdnet_model::HourglassConfig::new(stage.net_kind(), self.width);
        let parameters: f64 = net.parameters().iter().map(|p| p.shape.iter().product::<usize>() as f64).sum();
        let activations = net.activations(256, 256);
        let images = self.batch_size + if stage == Stage::Hdnet { 2 * self.pair_batch_size } else { 0 };
        4.0 * (4.0 * parameters + 4.5 * activations * images as f64)
    }

    /// Refuses a configuration whose estimated memory exceeds what this machine has available
    /// (it would grow until the system kills it), naming the estimate.
    pub fn check_memory(&self, stage: Stage) -> Result<(), String> {
        let Some(available) = available_memory() else { return Ok(()) };
        let needed = self.memory_estimate(stage);
        if needed > available {
            return Err(format!(
                "width {} and batch_size {} need about {:.1} GiB per training step, more than the {:.1} GiB available",
                self.width,
                self.batch_size,
                needed / GIB,
                available / GIB
            ));
        }
        Ok(())
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Memory available to a new process (Linux's MemAvailable), when the system says.
fn available_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// The toml crate's messages span lines (with a caret under the text); errors here are one line.
fn one_line(message: String) -> String {
    message
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.trim_matches(['|', '^', ' ']).is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Overlays `user` on `base` (tables merged key by key).
fn merge(base: &mut toml::Value, user: toml::Value) {
    match (base, user) {
        (toml::Value::Table(b), toml::Value::Table(u)) => {
            for (k, v) in u {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, u) => *b = u,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_estimate_matches_the_measured_full_width_step() {
        // Measured (README, Figures): 858 MiB at batch 1 and 2293 MiB at batch 4, whole process.
        let mib = |batch_size| {
            TrainConfig { batch_size, ..TrainConfig::for_stage(Stage::Depth) }.memory_estimate(Stage::Depth) / 1048576.0
        };
        let per_image = (mib(4) - mib(1)) / 3.0;
        assert!((478.0..560.0).contains(&per_image), "{per_image} MiB per image");
        assert!((700.0..1200.0).contains(&mib(1)), "{} MiB at batch 1", mib(1));
    }

    #[test]
    fn the_readme_example_config_is_valid() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let block = readme.split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("readme.toml");
        std::fs::write(&p, block).unwrap();
        let c = TrainConfig::load(&p, Stage::Hdnet).unwrap();
        assert_eq!((c.width, c.pair_batch_size, c.rotation_fit), (32, 2, RotationFit::Original));
        assert_eq!(c.augment.flip_probability, 0.5);
        assert_eq!(c.detail_weight, 0.0);
    }

    #[test]
    fn toml_overrides_stage_defaults_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "width = 8\nsteps = 30\n[augment]\nflip_probability = 0.5\n").unwrap();
        let c = TrainConfig::load(&p, Stage::Hdnet).unwrap();
        assert_eq!((c.width, c.steps, c.batch_size, c.epsilon), (8, 30, 1, 0.1));
        assert_eq!(c.augment.flip_probability, 0.5);
        assert_eq!(TrainConfig::load(&p, Stage::Depth).unwrap().epsilon, 1e-8);
        std::fs::write(&p, "widht = 8\n").unwrap();
        let err = TrainConfig::load(&p, Stage::Depth).unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("widht"), "{err}");
        std::fs::write(&p, "batch_size = 0\n").unwrap();
        assert!(TrainConfig::load(&p, Stage::Depth).unwrap_err().to_string().contains("positive"));
        std::fs::write(&p, "width = 1000000000000\n").unwrap();
        let err = TrainConfig::load(&p, Stage::Depth).unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("is over 4096"), "{err}");
        std::fs::write(&p, "detail_weight = -0.5\n").unwrap();
        let err = TrainConfig::load(&p, Stage::Normal).unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("detail_weight = -0.5"), "{err}");
        assert_eq!(TrainConfig::for_stage(Stage::Normal).detail_weight, 0.0, "the original has no detail loss");
        std::fs::write(&p, "normal_pooling = \"people\"\n").unwrap();
        assert_eq!(TrainConfig::load(&p, Stage::Normal).unwrap().normal_pooling, Pooling::People);
        std::fs::write(&p, "normal_pooling = \"persons\"\n").unwrap();
        let err = TrainConfig::load(&p, Stage::Normal).unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("persons"), "{err}");
        assert_eq!(TrainConfig::for_stage(Stage::Normal).normal_pooling, Pooling::Pixels, "the original pools pixels");
    }
}
