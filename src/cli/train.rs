//! `hdnet train normal|depth|hdnet`: the paper's training stages with checkpoints, a JSONL log,
//! progress panels and exact resume.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use hdnet_formats::visual::{depth_heat_map, normal_colors, save_png, side_by_side, to_u8, white_off_mask};
use hdnet_model::pipeline::unit_normals;
use hdnet_model::weights::{hourglass_from_safetensors, load_hourglass};
use hdnet_model::{Hourglass, NetKind};
use hdnet_train::checkpoint;
use hdnet_train::trainer::{HeldOut, Labelled, Preview, StepReport};
use hdnet_train::{Stage, TrainConfig, Trainer};
use ndarray::{Array3, Axis};

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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stage = match args.stage {
        StageArg::Normal => Stage::Normal,
        StageArg::Depth => Stage::Depth,
        StageArg::Hdnet => Stage::Hdnet,
    };
    let device = super::device(&args.device)?.autodiff();
    let checkpoints = args.out.join("checkpoints");
    let mut trainer = if args.resume {
        let latest = checkpoint::latest(&checkpoints)
            .with_context(|| format!("{}: no checkpoint to resume from", checkpoints.display()))?;
        let trainer = Trainer::resume(&latest, labelled(&args)?, args.videos.as_deref(), &device)?;
        if trainer.stage != stage {
            bail!("{}: a {} run, not {}", latest.display(), trainer.stage.name(), stage.name());
        }
        println!("resuming {} from step {}", latest.display(), trainer.step);
        trainer
    } else {
        if checkpoint::latest(&checkpoints).is_some() {
            bail!(
                "{}: holds checkpoints of an earlier run (pass --resume to continue it, or another --out)",
                args.out.display()
            );
        }
        let mut config = match &args.config {
            Some(path) => TrainConfig::load(path, stage)?,
            None => TrainConfig::for_stage(stage),
        };
        if let Some(steps) = args.steps {
            config.steps = steps;
        }
        if args.synthetic.is_some() {
            config.synthetic = args.synthetic;
            config.validate().map_err(anyhow::Error::msg).context("--synthetic")?;
        }
        let kind = stage.net_kind();
        let init = args.init.as_deref().map(|p| load_hourglass(p, kind, &device)).transpose()?;
        if let Some(net) = &init {
            config.width = net.config(kind).widths[0];
        }
        if args.device == "cpu" {
            check_memory(&config, stage, args.config.as_deref())?;
        }
        let trainer = Trainer::new(stage, config, labelled(&args)?, args.videos.as_deref(), init, &device)?;
        match &args.input_normals {
            Some(weights) => trainer.with_input_normals(input_normal_net(weights.as_deref(), &device)?)?,
            None => trainer,
        }
    };
    if let Some(steps) = args.steps {
        trainer.config.steps = steps;
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create", args.out.display()))?;
    checkpoint::remove_stale(&checkpoints);
    let log_path = args.out.join("train_log.jsonl");
    forget_lines_after(&log_path, trainer.step)?;
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("{}: cannot open", log_path.display()))?;

    let held_out = args.heldout.as_deref().map(HeldOut::open).transpose()?;
    let config = trainer.config.clone();
    let bar = super::batch::progress(config.steps as usize);
    bar.set_position(trainer.step);
    let clock = Clock { start: Instant::now(), cpu_before: last_cpu_seconds(&log_path) };
    let first_step = trainer.step;
    while trainer.step < config.steps {
        let losses = trainer.step()?;
        let step = trainer.step;
        let rate = (step - first_step) as f64 / clock.start.elapsed().as_secs_f64();
        bar.set_message(format!("{} | {rate:.2} steps/s", summary(&losses.named())));
        bar.set_position(step);
        if step % config.log_every == 0 || step == config.steps {
            writeln!(log, "{}", log_line(clock.fields(stage, step), &losses))
                .with_context(|| format!("{}: cannot write", log_path.display()))?;
        }
        if step % config.visualize_every == 0 || step == config.steps {
            let path = args.out.join("progress").join(format!("step{step:08}.png"));
            write_panel(&path, stage, &trainer.preview()?)?;
        }
        if step % config.checkpoint_every == 0 || step == config.steps {
            let dir = trainer.save(&checkpoints)?;
            bar.suspend(|| println!("checkpoint {}", dir.display()));
            if let Some(held_out) = &held_out {
                let scores = trainer.validate(held_out)?;
                writeln!(log, "{}", held_out_line(clock.fields(stage, step), &scores))
                    .with_context(|| format!("{}: cannot write", log_path.display()))?;
                bar.suspend(|| println!("held-out {}", summary(&scores)));
            }
        }
    }
    bar.finish();
    println!("{} steps done; log {}", trainer.step, log_path.display());
    Ok(ExitCode::SUCCESS)
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

/// Drops the log lines of steps after `step` (written after the checkpoint a run resumes from),
/// so that the resumed run's lines do not repeat them.
fn forget_lines_after(log: &Path, step: u64) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(log) else { return Ok(()) };
    let step_of = |line: &str| serde_json::from_str::<serde_json::Value>(line).ok().and_then(|v| v["step"].as_u64());
    let kept: Vec<&str> = text.lines().filter(|line| step_of(line).is_none_or(|s| s <= step)).collect();
    if kept.len() < text.lines().count() {
        let mut rewritten = kept.join("\n");
        if !rewritten.is_empty() {
            rewritten.push('\n');
        }
        hdnet_formats::write_atomic(log, rewritten.as_bytes())?;
    }
    Ok(())
}

/// Refuses a configuration whose estimated memory exceeds what this machine has available (it
/// would grow until the system kills it), naming the estimate.
fn check_memory(config: &TrainConfig, stage: Stage, file: Option<&Path>) -> anyhow::Result<()> {
    let Some(available) = available_memory() else { return Ok(()) };
    let needed = config.memory_estimate(stage);
    if needed > available {
        let source = file.map_or_else(|| "the default settings".to_string(), |f| f.display().to_string());
        bail!(
            "{source}: width {} and batch_size {} need about {:.1} GiB per training step, more than the {:.1} GiB available",
            config.width,
            config.batch_size,
            needed / GIB,
            available / GIB
        );
    }
    Ok(())
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Memory available to a new process (Linux's MemAvailable), when the system says.
fn available_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

fn summary<V: Into<f64> + Copy>(values: &[(&str, V)]) -> String {
    values.iter().map(|&(n, v)| format!("{n} {:.4}", v.into())).collect::<Vec<_>>().join(" ")
}

type Fields = serde_json::Map<String, serde_json::Value>;

/// What the log's time fields count from.
struct Clock {
    /// This process's start ("seconds": wall-clock time since).
    start: Instant,
    /// The run's CPU seconds before this process (its last logged "cpu_seconds" when resumed).
    cpu_before: f64,
}

impl Clock {
    /// The fields every log line starts with; "cpu_seconds" is the run's CPU time over all its
    /// processes and threads (what runs sharing a machine are compared by).
    fn fields(&self, stage: Stage, step: u64) -> Fields {
        let mut fields = Fields::from_iter([
            ("stage".into(), stage.name().into()),
            ("step".into(), step.into()),
            ("seconds".into(), self.start.elapsed().as_secs_f64().into()),
        ]);
        if let Some(cpu) = cpu_seconds() {
            fields.insert("cpu_seconds".into(), (self.cpu_before + cpu).into());
        }
        fields
    }
}

/// The last "cpu_seconds" in the log (0 for a new run or a log without them).
fn last_cpu_seconds(log: &Path) -> f64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()?["cpu_seconds"].as_f64())
        .unwrap_or(0.0)
}

/// The CPU time this process has used (user and system), where the system tells.
#[cfg(not(unix))]
fn cpu_seconds() -> Option<f64> {
    None
}

/// The CPU time this process has used (user and system).
#[cfg(unix)]
fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given and nothing else.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: the call succeeded, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

fn log_line(mut fields: Fields, losses: &StepReport) -> String {
    for (name, value) in losses.named() {
        fields.insert(name.into(), f64::from(value).into());
    }
    serde_json::Value::Object(fields).to_string()
}

fn held_out_line(mut fields: Fields, scores: &[(&str, f64)]) -> String {
    let scores = scores.iter().map(|&(name, value)| (name.to_string(), value.into()));
    fields.insert("heldout".into(), serde_json::Map::from_iter(scores).into());
    serde_json::Value::Object(fields).to_string()
}

/// input | prediction(s) | ground truth, like the original's training_progress images: normal
/// stage input | predicted normals | GT normals; depth stages input | predicted depth | normals of
/// the predicted depth | GT depth | GT normals.
fn write_panel(path: &Path, stage: Stage, preview: &Preview) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().expect("progress folder")).context("creating progress/")?;
    let f = &preview.frame;
    let (h, w) = f.person.size();
    let blank = || Array3::from_elem((h, w, 3), 255u8);
    let normals = |n: &Array3<f32>| {
        white_off_mask(normal_colors(&unit_normals(n, &f.person.mask), &f.person.mask), &f.person.mask)
    };
    let panels = match stage {
        Stage::Normal => vec![to_u8(&f.person.image), normals(&preview.prediction), normals(&f.normals)],
        Stage::Depth | Stage::Hdnet => {
            let depth = preview.prediction.index_axis(Axis(2), 0).to_owned();
            vec![
                to_u8(&f.person.image),
                depth_heat_map(&depth, &f.person.mask).unwrap_or_else(blank),
                preview.normals_from_depth.as_ref().map_or_else(blank, normals),
                depth_heat_map(&f.depth, &f.person.mask).unwrap_or_else(blank),
                normals(&f.normals),
            ]
        }
    };
    Ok(save_png(path, &side_by_side(&panels))?)
}
