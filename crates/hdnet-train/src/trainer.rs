//! One training run of a stage: data sampling, the stage's loss, Adam steps, checkpoints.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::{ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Gradients;
use hdnet_body::BodyModel;
use hdnet_data::augment::{augment_labelled, augment_pair};
use hdnet_data::layout::LabelledFrame;
use hdnet_data::layout::{
    dirs, frame_names, frame_png, frames_without_color, missing_color, read_corr_mat, read_correspondences,
    read_labelled, read_video_frame,
};
use hdnet_data::sampler::Sampler;
use hdnet_eval::evaluation::{StageOutput, aggregate_named, evaluate_output};
use hdnet_formats::FileError;
use hdnet_model::geometry::{depth_to_normals, ray_map};
use hdnet_model::pipeline::{check_network_size, depth_net_input, from_nchw, predict_normals, to_nchw};
use hdnet_model::{Hourglass, HourglassConfig, NetKind};

use crate::adam::Tf1Adam;
use crate::batch::{LabelledBatch, PairBatch, VideoPair, labelled_batch, pair_batch};
use crate::checkpoint::{self, TrainState, with_stable_ids};
use crate::config::{Stage, TrainConfig};
use crate::stage_loss::{Terms, stage_loss};
use ndarray::Array3;
use rayon::prelude::*;

/// A labelled frame and the network's current output for it (H, W, 3 normals or H, W, 1 depth),
/// with the normals of the predicted depth in the depth stages.
pub struct Preview {
    pub frame: hdnet_data::layout::LabelledFrame,
    pub prediction: ndarray::Array3<f32>,
    pub normals_from_depth: Option<ndarray::Array3<f32>>,
}

/// What one step measured: the loss that was differentiated, its terms, and the L2 norm of
/// the gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    pub total: f32,
    pub terms: Terms<f32>,
    pub grad_norm: f32,
}

impl StepReport {
    /// Every value by name ("total", the terms, "grad_norm"), as the training log writes them.
    pub fn named(&self) -> Vec<(&'static str, f32)> {
        let mut values = vec![("total", self.total)];
        values.extend(self.terms.into_named());
        values.push(("grad_norm", self.grad_norm));
        values
    }
}

/// The L2 norm of all parameter gradients of `net` in `grads` (one host read).
fn gradient_norm(net: &Hourglass, grads: &Gradients) -> f32 {
    struct SquaredSum<'a> {
        grads: &'a Gradients,
        sum: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredSum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                let s = hdnet_model::losses::total(g.square());
                self.sum = Some(match self.sum.take() {
                    Some(total) => total + s,
                    None => s,
                });
            }
        }
    }
    let mut visitor = SquaredSum { grads, sum: None };
    net.visit(&mut visitor);
    visitor.sum.map_or(0.0, |s| s.into_scalar::<f32>().sqrt())
}

/// Separates the video-pair sampler's stream from the labelled sampler's under one seed.
const VIDEO_PAIR_STREAM: u64 = 0x5649_4445;

/// The frame pairs of a video folder (every (frame, partner) of corr_mat.txt, once).
struct Videos {
    root: PathBuf,
    pairs: Vec<(String, String)>,
}

impl Videos {
    fn open(root: &Path) -> Result<Self, FileError> {
        let mut pairs: Vec<(String, String)> = read_corr_mat(root)?
            .into_iter()
            .flat_map(|(f, partners)| partners.into_iter().map(move |p| (f.clone(), p)))
            .collect();
        pairs.sort();
        pairs.dedup();
        if pairs.is_empty() {
            return Err(FileError::new(root.join("correspondences/corr_mat.txt"), "no frame pairs"));
        }
        Ok(Self { root: root.to_path_buf(), pairs })
    }
}

/// Where a run's labelled frames come from.
pub enum Labelled {
    /// A folder in the labelled layout (`--data`).
    Folder(PathBuf),
    /// Synthetic people v2 drawn on the fly from this body (the config's `synthetic` size).
    Synthetic(Arc<BodyModel>),
}

/// The labelled frames of a run.
enum Source {
    Folder {
        root: PathBuf,
        names: Vec<String>,
    },
    /// Slot k of step s is the person of [`synthetic_seed`]: every batch is a pure function of
    /// (seed, step), so a resumed run draws the same people.
    Synthetic {
        body: Arc<BodyModel>,
        size: usize,
    },
}

/// Separates the synthetic people's stream from the samplers' under one seed.
const SYNTHETIC_STREAM: u64 = 0x5359_4e54;

/// The seed of the synthetic person in slot `slot` of step `step` (SplitMix64 of the position).
fn synthetic_seed(seed: u64, step: u64, slot: usize, batch_size: usize) -> u64 {
    hdnet_synth::splitmix64(
        (seed ^ SYNTHETIC_STREAM)
            .wrapping_add((step * batch_size as u64 + slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    )
}

impl Source {
    fn open(labelled: Labelled, config: &TrainConfig) -> Result<Self, FileError> {
        match (labelled, config.synthetic) {
            (Labelled::Folder(root), None) => Ok(Source::Folder { names: labelled_names(&root)?, root }),
            (Labelled::Synthetic(body), Some(size)) => Ok(Source::Synthetic { body, size }),
            (Labelled::Folder(root), Some(_)) => {
                Err(FileError::new(root, "this run draws synthetic people (synthetic = SIZE): no --data"))
            }
            (Labelled::Synthetic(_), None) => {
                Err(FileError::new("--data", "a run without synthetic = SIZE in its configuration reads --data"))
            }
        }
    }

    /// What errors about the frames name.
    fn root(&self) -> &Path {
        match self {
            Source::Folder { root, .. } => root,
            Source::Synthetic { .. } => Path::new("synthetic people"),
        }
    }

    /// The frames of `step` (`batch_size` of them, drawn with `sampler`), unaugmented.
    fn batch(&self, sampler: &Sampler, step: u64, seed: u64) -> Result<Vec<LabelledFrame>, FileError> {
        match self {
            Source::Folder { root, names } => {
                sampler.batch(step).into_iter().map(|i| read_labelled(root, &names[i])).collect()
            }
            // Drawn in parallel: one person's render is serial work the net's kernels would
            // otherwise wait for; each slot's person is its own seed's, in slot order.
            Source::Synthetic { body, size } => (0..sampler.batch_size)
                .into_par_iter()
                .map(|slot| {
                    let person = synthetic_seed(seed, step, slot, sampler.batch_size);
                    let frame = hdnet_synth::labelled_frame(body, person, *size);
                    hdnet_synth::labelled(&frame, &format!("synthetic {person}"))
                        .map_err(|e| FileError::new(format!("synthetic person {person}"), e))
                })
                .collect(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Source::Folder { names, .. } => names.len(),
            Source::Synthetic { .. } => 1,
        }
    }
}

/// A training run in progress.
pub struct Trainer {
    pub stage: Stage,
    pub config: TrainConfig,
    /// Steps completed.
    pub step: u64,
    net: Hourglass,
    optimizer: ModuleOptimizer,
    device: Device,
    labelled: Source,
    videos: Option<Videos>,
    /// The normal net whose predictions the depth net reads on labelled frames (inference form);
    /// without it the depth net reads the ground-truth normals.
    input_normal_net: Option<Hourglass>,
}

/// The original's Adam with the run's settings.
pub fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    ModuleOptimizer::from(Tf1Adam { beta_1: config.beta_1, beta_2: config.beta_2, epsilon: config.epsilon })
}

impl Trainer {
    /// A new run. `init` starts from given weights (the original checkpoints or hdnet's); otherwise
    /// random weights from the config's seed. `videos` is required by the HDNet stage.
    pub fn new(
        stage: Stage,
        config: TrainConfig,
        labelled: Labelled,
        videos: Option<&Path>,
        init: Option<Hourglass>,
        device: &Device,
    ) -> Result<Self, FileError> {
        config.validate().map_err(|e| FileError::new("the training configuration", e))?;
        let kind = stage.net_kind();
        let net = match init {
            Some(net) => net.to_device(device),
            None if kind == NetKind::Depth && !config.densepose => {
                HourglassConfig::new(kind, config.width).without_densepose().init(device, config.seed)
            }
            None => HourglassConfig::new(kind, config.width).init(device, config.seed),
        };
        Self::assemble(stage, config, 0, with_stable_ids(net), None, labelled, videos, device)
    }

    /// Continues the run saved in checkpoint folder `dir`.
    pub fn resume(dir: &Path, labelled: Labelled, videos: Option<&Path>, device: &Device) -> Result<Self, FileError> {
        let loaded = checkpoint::load(dir, device)?;
        let TrainState { stage, step, config } = loaded.state;
        let optim = optimizer(&config).load_record(loaded.optimizer_record);
        let trainer = Self::assemble(stage, config, step, loaded.net, Some(optim), labelled, videos, device)?;
        Ok(Self { input_normal_net: loaded.input_normal_net.map(|net| net.valid()), ..trainer })
    }

    /// Feeds the depth net the normals `normal_net` predicts for the labelled frames, as it gets
    /// them at inference, instead of the ground truth's. Every checkpoint keeps the normal net
    /// (making it a complete model), so a resumed run goes on reading it.
    pub fn with_input_normals(self, normal_net: Hourglass) -> Result<Self, FileError> {
        if self.stage == Stage::Normal {
            return Err(FileError::new("--input-normals", "the normal stage reads no normals"));
        }
        Ok(Self { input_normal_net: Some(normal_net.valid()), ..self })
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        stage: Stage,
        config: TrainConfig,
        step: u64,
        net: Hourglass,
        optim: Option<ModuleOptimizer>,
        labelled: Labelled,
        videos: Option<&Path>,
        device: &Device,
    ) -> Result<Self, FileError> {
        let labelled = Source::open(labelled, &config)?;
        if let Some(orphan) = videos.and_then(|root| frames_without_color(root).first().cloned()) {
            return Err(missing_color(&orphan));
        }
        let videos = match (stage, videos) {
            (Stage::Hdnet, Some(root)) => Some(Videos::open(root)?),
            (Stage::Hdnet, None) => {
                return Err(FileError::new(labelled.root(), "the hdnet stage needs a video folder (--videos)"));
            }
            _ => None,
        };
        let optimizer = optim.unwrap_or_else(|| optimizer(&config));
        Ok(Self {
            stage,
            config,
            step,
            net,
            optimizer,
            device: device.clone(),
            labelled,
            videos,
            input_normal_net: None,
        })
    }

    pub fn net(&self) -> &Hourglass {
        &self.net
    }

    /// Saves a checkpoint of the current state under `root`.
    pub fn save(&self, root: &Path) -> Result<PathBuf, FileError> {
        let state = TrainState { stage: self.stage, step: self.step, config: self.config.clone() };
        checkpoint::save(root, &state, &self.net, self.input_normal_net.as_ref(), &self.optimizer)
    }

    /// One optimisation step.
    pub fn step(&mut self) -> Result<StepReport, FileError> {
        let sampler = Sampler { len: self.labelled.len(), batch_size: self.config.batch_size, seed: self.config.seed };
        let frames: Vec<LabelledFrame> = self
            .labelled
            .batch(&sampler, self.step, self.config.seed)?
            .iter()
            .enumerate()
            .map(|(slot, frame)| augment_labelled(frame, &sampler.augmentation(&self.config.augment, self.step, slot)))
            .collect();
        check_sizes(self.labelled.root(), frames.iter().map(|f| (&f.person.name, f.person.mask.dim())))?;
        let input_normals = self.input_normals(&frames);
        let batch = labelled_batch(&frames, &input_normals.iter().map(AsRef::as_ref).collect::<Vec<_>>(), &self.device);
        let pairs = self.sample_pairs()?;
        let loss = stage_loss(self.stage, &self.config, &self.net, batch.clone(), pairs.clone());
        let total = loss.total.clone().into_scalar::<f32>();
        let terms = loss.terms.map(|t| t.into_scalar::<f32>());
        // Stop before the update: the network and the last checkpoint stay usable.
        if !total.is_finite() {
            let culprits: Vec<String> = terms
                .into_named()
                .into_iter()
                .filter(|(_, v)| !v.is_finite())
                .map(|(name, v)| format!("{name} = {v}"))
                .collect();
            return Err(self.stopped(format!("the loss is {total} ({})", culprits.join(", "))));
        }
        let grads = loss.total.backward();
        let grad_norm = gradient_norm(&self.net, &grads);
        if !grad_norm.is_finite() {
            let culprits = self.terms_with_nonfinite_gradients(batch, pairs);
            return Err(self.stopped(format!("the gradient is not finite (from {})", culprits.join(", "))));
        }
        let grads = GradientsParams::from_grads(grads, &self.net);
        self.net = self.optimizer.step(self.config.learning_rate, self.net.clone(), grads);
        self.step += 1;
        Ok(StepReport { total, terms, grad_norm })
    }

    fn stopped(&self, why: String) -> FileError {
        FileError::new(
            self.labelled.root(),
            format!(
                "step {}: {why}; training stopped before applying it (try a lower learning_rate or a larger epsilon, and --resume from the last checkpoint)",
                self.step + 1
            ),
        )
    }

    /// The loss terms whose own gradient is not finite (each term differentiated alone).
    fn terms_with_nonfinite_gradients(&self, batch: LabelledBatch, pairs: Option<PairBatch>) -> Vec<&'static str> {
        let loss = || stage_loss(self.stage, &self.config, &self.net, batch.clone(), pairs.clone()).terms.into_named();
        (0..loss().len())
            .filter_map(|k| {
                let (name, term) = loss().swap_remove(k);
                (!gradient_norm(&self.net, &term.backward()).is_finite()).then_some(name)
            })
            .collect()
    }

    /// What the network now predicts for the first labelled frame of the next batch (no
    /// augmentation), for progress panels.
    pub fn preview(&self) -> Result<Preview, FileError> {
        let sampler = Sampler { len: self.labelled.len(), batch_size: 1, seed: self.config.seed };
        let frame = self.labelled.batch(&sampler, self.step, self.config.seed)?.remove(0);
        let output = self.predict(&self.net.valid(), &frame);
        let normals_from_depth = (self.stage != Stage::Normal).then(|| {
            let device = output.device();
            let (h, w) = frame.person.mask.dim();
            let mask = to_nchw(&[&frame.person.mask.clone().insert_axis(ndarray::Axis(2))], &device).greater_elem(0.0);
            let rays = ray_map(&[frame.camera], h, w, &device);
            from_nchw(depth_to_normals(output.clone(), mask, rays, self.config.normals_from_depth)).remove(0)
        });
        Ok(Preview { prediction: from_nchw(output).remove(0), normals_from_depth, frame })
    }

    /// The normals the depth net reads for `frames`: the input normal net's, or the ground truth's.
    fn input_normals<'a>(&self, frames: &'a [LabelledFrame]) -> Vec<Cow<'a, Array3<f32>>> {
        match &self.input_normal_net {
            Some(net) => predict_normals(net, &frames.iter().map(|f| &f.person).collect::<Vec<_>>())
                .into_iter()
                .map(Cow::Owned)
                .collect(),
            None => frames.iter().map(|f| Cow::Borrowed(&f.normals)).collect(),
        }
    }

    /// The output (1, C, H, W) of `net` (the run's network without autodiff) for one
    /// unaugmented frame, given what its stage trains on: the image, and for depth the
    /// input normals and IUV.
    fn predict(&self, net: &Hourglass, frame: &LabelledFrame) -> Tensor<4> {
        let input = match self.stage {
            Stage::Normal => frame.person.image.clone(),
            Stage::Depth | Stage::Hdnet => {
                let normals = self.input_normals(std::slice::from_ref(frame)).remove(0);
                depth_net_input(&frame.person.image, &normals, &frame.person.iuv)
            }
        };
        net.forward(net.take_inputs(to_nchw(&[&input], &net.device())))
    }

    /// The mean scores of the network on the held-out frames (eval.json's keys), each frame fed
    /// as in [`Self::predict`].
    pub fn validate(&self, held_out: &HeldOut) -> Result<Vec<(&'static str, f64)>, FileError> {
        let net = self.net.valid();
        let mut rows = Vec::with_capacity(held_out.names.len());
        for name in &held_out.names {
            let frame = held_out.read(name)?;
            let output = from_nchw(self.predict(&net, &frame)).remove(0);
            let depth;
            let scored = match self.stage {
                Stage::Normal => StageOutput::Normals(&output),
                Stage::Depth | Stage::Hdnet => {
                    depth = output.index_axis(ndarray::Axis(2), 0).to_owned();
                    StageOutput::Depth(&depth)
                }
            };
            rows.push(evaluate_output(name, &frame, scored));
        }
        Ok(aggregate_named(&rows))
    }

    /// The video pairs of this step (HDNet stage only).
    fn sample_pairs(&self) -> Result<Option<PairBatch>, FileError> {
        let Some(videos) = &self.videos else { return Ok(None) };
        let sampler = Sampler {
            len: videos.pairs.len(),
            batch_size: self.config.pair_batch_size,
            seed: self.config.seed ^ VIDEO_PAIR_STREAM,
        };
        let mut loaded = Vec::new();
        for (slot, k) in sampler.batch(self.step).into_iter().enumerate() {
            let (fi, fj) = &videos.pairs[k];
            let i = read_video_frame(&videos.root, fi)?;
            let j = read_video_frame(&videos.root, fj)?;
            let c = read_correspondences(&videos.root, fi, fj, i.person.mask.dim())?;
            loaded.push(augment_pair(&i, &j, &c, &sampler.augmentation(&self.config.augment, self.step, slot)));
        }
        check_sizes(
            &videos.root,
            loaded
                .iter()
                .flat_map(|(i, j, _)| [(&i.person.name, i.person.mask.dim()), (&j.person.name, j.person.mask.dim())]),
        )?;
        let pairs: Vec<VideoPair> =
            loaded.iter().map(|(i, j, c)| VideoPair { frame_i: i, frame_j: j, correspondences: c }).collect();
        pair_batch(&pairs, &self.device).map(Some).map_err(|e| FileError::new(&videos.root, e))
    }
}

/// A labelled folder whose frames a run scores at every checkpoint (read then, one at a time).
pub struct HeldOut {
    root: PathBuf,
    names: Vec<String>,
}

impl HeldOut {
    /// The folder, every frame of it read once: a bad frame is an error before training starts,
    /// not at its first checkpoint.
    pub fn open(root: &Path) -> Result<Self, FileError> {
        let held_out = Self { root: root.to_path_buf(), names: labelled_names(root)? };
        for name in &held_out.names {
            held_out.read(name)?;
        }
        Ok(held_out)
    }

    /// Frame `name`, in a size the network accepts.
    fn read(&self, name: &str) -> Result<LabelledFrame, FileError> {
        let frame = read_labelled(&self.root, name)?;
        let size = frame.person.mask.dim();
        check_network_size(size.0, size.1).map_err(|e| FileError::new(frame_png(&self.root, dirs::COLOR, name), e))?;
        Ok(frame)
    }
}

/// The frames of a labelled folder; an error if it has none or a frame lacks its image.
fn labelled_names(root: &Path) -> Result<Vec<String>, FileError> {
    let names = frame_names(root)?;
    if let Some(orphan) = frames_without_color(root).first() {
        return Err(missing_color(orphan));
    }
    if names.is_empty() {
        return Err(FileError::new(root.join(dirs::COLOR), "no labelled frames"));
    }
    Ok(names)
}

/// Frames of one step must share one size that the network accepts.
fn check_sizes<'a>(
    root: &Path,
    mut frames: impl Iterator<Item = (&'a String, (usize, usize))>,
) -> Result<(), FileError> {
    let Some((first_name, size)) = frames.next() else { return Ok(()) };
    check_network_size(size.0, size.1).map_err(|e| FileError::new(frame_png(root, dirs::COLOR, first_name), e))?;
    for (name, other) in frames {
        if other != size {
            return Err(FileError::new(
                frame_png(root, dirs::COLOR, name),
                format!("{}x{} differs from {first_name} ({}x{}) in the same batch", other.1, other.0, size.1, size.0),
            ));
        }
    }
    Ok(())
}
