//! `hdnet train normal|depth|hdnet`: the paper's training stages with checkpoints, a JSONL log,
//! progress panels and exact resume.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use hdnet_model::weights::{hourglass_from_safetensors, load_hourglass};
use hdnet_model::{Hourglass, HourglassConfig, NetKind};
use hdnet_train::checkpoint;
use hdnet_train::run::{self, Event};
use hdnet_train::trainer::{HeldOut, Labelled};
use hdnet_train::{Stage, TrainConfig, Trainer};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum StageArg {
    /// The normal estimator (labelled data).
    Normal,
    /// The depth estimator (labelled data).
    Depth,
    /// The semi-supervised HDNet stage (labelled data + unlabelled video pairs).
    Hdnet,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    stage: StageArg,
    /// TOML file of settings (defaults: the original's for the stage).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Labelled data folder (color_WO_bg/, mask/, densepose/, depth/, normal/); not needed by a
    /// run that draws synthetic people (--synthetic, or `synthetic = SIZE` in its configuration).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Draw synthetic people v2 of this size on the fly instead of reading --data (kept in the
    /// run's configuration as `synthetic = SIZE`; a resumed run draws the same people).
    #[arg(long, conflicts_with_all = ["data", "resume"])]
    synthetic: Option<usize>,
    /// Unlabelled video folder (hdnet stage): pred_normals/ and correspondences/ made.
    #[arg(long)]
    videos: Option<PathBuf>,
    /// Run folder: checkpoints/, train_log.jsonl, progress/.
    #[arg(long)]
    out: PathBuf,
    /// Continue from the newest checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Start from these weights (hdnet .safetensors or the original TF1 checkpoint folder).
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// With --init: first widen its network to this base width, computing the same function
    /// (each channel copied, its outgoing weights split at random between the copies), so that
    /// training goes on from it with more capacity.
    #[arg(long, requires = "init", value_parser = clap::value_parser!(u16).range(1..=HourglassConfig::MAX_WIDTH as i64))]
    widen: Option<u16>,
    /// Depth stages: feed the depth net the normals this normal net predicts for the labelled
    /// frames (as at inference) instead of the ground truth's: hdnet .safetensors or the
    /// original TF1 checkpoint folder; the bundled model's when no value is given. Checkpoints
    /// keep it (each is then a complete model for `infer` and `eval`) and --resume reads it.
    #[arg(long, conflicts_with = "resume")]
    input_normals: Option<Option<PathBuf>>,
    /// Labelled folder scored at every checkpoint; its mean scores (eval.json's keys) go to the
    /// log under "heldout" and `hdnet plot` draws them. Depth stages are fed the normals they
    /// train on (the ground truth's, or --input-normals').
    #[arg(long)]
    heldout: Option<PathBuf>,
    /// Override the config's total number of steps.
    #[arg(long)]
    steps: Option<u64>,
    /// Override the config's learning rate: a new run's, or a resumed run's from its next step on
    /// (its checkpoints keep it), as when annealing a run that has levelled off.
    #[arg(long, value_parser = super::positive_number::<f64>)]
    learning_rate: Option<f64>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// The run's labelled frames: `--data`, or synthetic people drawn from the built-in body.
fn labelled(args: &Args) -> anyhow::Result<Labelled> {
    Ok(match &args.data {
        Some(data) => Labelled::Folder(data.clone()),
        None => Labelled::Synthetic(Arc::new(super::synth::load_body(None)?)),
    })
}

/// The `--init` network read from `path`, widened to `--widen` when given (the splits drawn
/// from the run's seed).
fn widened_init(
    path: &Path,
    net: Hourglass,
    widen: Option<usize>,
    kind: NetKind,
    seed: u64,
) -> anyhow::Result<Hourglass> {
    match widen {
        Some(w0) => net.widened(kind, w0, seed).map_err(|e| anyhow::anyhow!("{}: --widen {w0}: {e}", path.display())),
        None => Ok(net),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stage = match args.stage {
        StageArg::Normal => Stage::Normal,
        StageArg::Depth => Stage::Depth,
        StageArg::Hdnet => Stage::Hdnet,
    };
    let device = super::device(&args.device)?.autodiff();
    let mut trainer = if args.resume { resumed(&args, stage, &device)? } else { started(&args, stage, &device)? };
    if let Some(steps) = args.steps {
        trainer.config.steps = steps;
    }
    if let Some(rate) = args.learning_rate {
        trainer.config.learning_rate = rate;
    }
    let held_out = args.heldout.as_deref().map(HeldOut::open).transpose()?;
    let bar = super::batch::progress(trainer.config.steps as usize);
    bar.set_position(trainer.step);
    let (start, first_step) = (Instant::now(), trainer.step);
    run::train(&mut trainer, &args.out, held_out.as_ref(), |step, event| match event {
        Event::Stepped(losses) => {
            let rate = (step - first_step) as f64 / start.elapsed().as_secs_f64();
            bar.set_message(format!("{} | {rate:.2} steps/s", summary(&losses.named())));
            bar.set_position(step);
        }
        Event::Saved(dir) => bar.suspend(|| println!("checkpoint {}", dir.display())),
        Event::Scored(scores) => bar.suspend(|| println!("held-out {}", summary(scores))),
    })?;
    bar.finish();
    println!("{} steps done; log {}", trainer.step, run::log_path(&args.out).display());
    Ok(ExitCode::SUCCESS)
}

/// The trainer of the run in `args.out`, at its latest checkpoint.
fn resumed(args: &Args, stage: Stage, device: &burn::prelude::Device) -> anyhow::Result<Trainer> {
    let checkpoints = run::checkpoints(&args.out);
    let latest = checkpoint::latest(&checkpoints)
        .with_context(|| format!("{}: no checkpoint to resume from", checkpoints.display()))?;
    let trainer = Trainer::resume(&latest, labelled(args)?, args.videos.as_deref(), device)?;
    if trainer.stage != stage {
        bail!("{}: a {} run, not {}", latest.display(), trainer.stage.name(), stage.name());
    }
    println!("resuming {} from step {}", latest.display(), trainer.step);
    Ok(trainer)
}

/// A new run's trainer, as `args` configure it.
fn started(args: &Args, stage: Stage, device: &burn::prelude::Device) -> anyhow::Result<Trainer> {
    if checkpoint::latest(&run::checkpoints(&args.out)).is_some() {
        bail!(
            "{}: holds checkpoints of an earlier run (pass --resume to continue it, or another --out)",
            args.out.display()
        );
    }
    let mut config = match &args.config {
        Some(path) => TrainConfig::load(path, stage)?,
        None => TrainConfig::for_stage(stage),
    };
    if args.synthetic.is_some() {
        config.synthetic = args.synthetic;
        config.validate().map_err(anyhow::Error::msg).context("--synthetic")?;
    }
    let kind = stage.net_kind();
    let widen = args.widen.map(usize::from);
    let loaded = args.init.as_deref().map(|p| load_hourglass(p, kind, device).map(|net| (p, net))).transpose()?;
    if let Some((_, net)) = &loaded {
        config.width = widen.unwrap_or(net.config(kind).widths[0]);
    }
    // A widened network is made in host memory whatever the device, so its size is checked
    // before it is made.
    if args.device == "cpu" || widen.is_some() {
        config.check_memory(stage).map_err(|e| {
            let source = match (widen, &args.config) {
                (Some(w0), _) => format!("--widen {w0}"),
                (None, Some(f)) => f.display().to_string(),
                (None, None) => "the default settings".into(),
            };
            anyhow::anyhow!("{source}: {e}")
        })?;
    }
    let init = loaded.map(|(path, net)| widened_init(path, net, widen, kind, config.seed)).transpose()?;
    let trainer = Trainer::new(stage, config, labelled(args)?, args.videos.as_deref(), init, device)?;
    Ok(match &args.input_normals {
        Some(weights) => trainer.with_input_normals(input_normal_net(weights.as_deref(), device)?)?,
        None => trainer,
    })
}

/// The normal net of `weights`, or the bundled model's.
fn input_normal_net(weights: Option<&Path>, device: &burn::prelude::Device) -> anyhow::Result<Hourglass> {
    Ok(match weights {
        Some(path) => load_hourglass(path, NetKind::Normal, device)?,
        None => hourglass_from_safetensors(
            Path::new(super::BUNDLED_MODEL_NAME),
            super::BUNDLED_MODEL,
            NetKind::Normal,
            device,
        )?,
    })
}

fn summary<V: Into<f64> + Copy>(values: &[(&str, V)]) -> String {
    values.iter().map(|&(n, v)| format!("{n} {:.4}", v.into())).collect::<Vec<_>>().join(" ")
}
