//! Dataset subcommands: `correspond`, `predict-normals` and `data check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use hdnet_data::check::{Kind, check, detect};
use hdnet_data::correspond::{MatchParams, correspond_video};
use hdnet_data::layout::{Form, dirs, frame_names, frame_png, write_normals};
use hdnet_formats::FileError;
use hdnet_formats::images::{PersonImage, read_mask, read_rgb};
use hdnet_formats::item::ItemWriter;

use super::batch::{Batch, progress};

/// Which files to write.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FormArg {
    /// The original text files (readable by the original code).
    Original,
    /// hdnet's .npy files (fast to read).
    Binary,
    /// Both.
    Both,
}

impl From<FormArg> for Form {
    fn from(f: FormArg) -> Self {
        match f {
            FormArg::Original => Form::Original,
            FormArg::Binary => Form::Binary,
            FormArg::Both => Form::Both,
        }
    }
}

#[derive(clap::Args)]
pub struct CorrespondArgs {
    /// Video folder (color_WO_bg/, mask/, densepose/ with 7-digit frame names).
    dir: PathBuf,
    /// Largest (U, V) distance of an accepted match.
    #[arg(long, default_value_t = 0.02)]
    threshold: f32,
    /// Files to write into correspondences/.
    #[arg(long, value_enum, default_value = "both")]
    format: FormArg,
    /// Replace an existing correspondences/ (for example the exact ones `synth video` wrote).
    #[arg(long)]
    overwrite: bool,
}

pub fn correspond(args: CorrespondArgs) -> anyhow::Result<ExitCode> {
    if !(args.threshold > 0.0 && args.threshold < 1.0) {
        bail!("--threshold must lie in (0, 1)");
    }
    let existing = args.dir.join(dirs::CORRESPONDENCES);
    if existing.exists() {
        if !args.overwrite {
            bail!("{}: already exists (pass --overwrite to replace it)", existing.display());
        }
        std::fs::remove_dir_all(&existing).with_context(|| format!("{}: cannot remove", existing.display()))?;
    }
    let params = MatchParams { max_uv_distance: args.threshold, ..Default::default() };
    let frames = frame_names(&args.dir)?.len();
    let bar = progress(frames);
    let start = Instant::now();
    let report = correspond_video(&args.dir, &params, args.format.into(), || bar.inc(1))?;
    bar.finish();
    for problem in &report.bad_frames {
        eprintln!("skipped frame: {problem}");
    }
    if !report.partnering.frames_without_partner.is_empty() {
        eprintln!(
            "{} frames have no usable partner (fewer than {} parts with {} matches): {}",
            report.partnering.frames_without_partner.len(),
            params.min_parts,
            params.min_matches,
            report.partnering.frames_without_partner.join(", ")
        );
    }
    println!(
        "{} frames, {} pairs tried, {} written in {:.2} s -> {}",
        report.frames,
        report.partnering.pairs_tried,
        report.partnering.pairs_written,
        start.elapsed().as_secs_f64(),
        args.dir.join(dirs::CORRESPONDENCES).display()
    );
    Ok(if report.bad_frames.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[derive(clap::Args)]
pub struct PredictNormalsArgs {
    /// Video folder (color_WO_bg/, mask/).
    dir: PathBuf,
    /// hdnet .safetensors weights, or a folder with the original TF1 checkpoints (default: the
    /// bundled model).
    #[arg(long)]
    weights: Option<PathBuf>,
    #[command(flatten)]
    flip: super::FlipArgs,
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, value_enum, default_value = "both")]
    format: FormArg,
    /// Replace existing predictions.
    #[arg(long)]
    overwrite: bool,
}

fn read_frame(root: &Path, name: &str) -> Result<PersonImage, FileError> {
    let rgb = read_rgb(frame_png(root, dirs::COLOR, name), None)?;
    let mask_path = frame_png(root, dirs::MASK, name);
    let mask = read_mask(&mask_path, Some((rgb.dim().0, rgb.dim().1)))?;
    let (h, w, _) = rgb.dim();
    hdnet_model::pipeline::check_network_size(h, w)
        .map_err(|e| FileError::new(frame_png(root, dirs::COLOR, name), e))?;
    Ok(PersonImage::new(name, &rgb, mask, ndarray::Array3::zeros((h, w, 3))))
}

/// A frame's predicted normals (three text files and/or an .npy) as one item: all or none.
fn write_frame_normals(
    out: &Path,
    name: &str,
    normals: &ndarray::Array3<f32>,
    form: Form,
    overwrite: bool,
) -> Result<(), FileError> {
    std::fs::create_dir_all(out).map_err(|e| FileError::new(out, e))?;
    let item = ItemWriter::new(out, name)?;
    write_normals(item.dir(), name, normals, form).map_err(|e| item.named_finally(e))?;
    item.commit(overwrite).map(drop)
}

pub fn predict_normals(args: PredictNormalsArgs) -> anyhow::Result<ExitCode> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let names = frame_names(&args.dir)?;
    let out = args.dir.join(dirs::PRED_NORMALS);
    let form: Form = args.format.into();
    let exists = |n: &String| out.join(format!("{n}.npy")).exists() || out.join(format!("{n}_1.txt")).exists();
    let todo: Vec<&String> = names.iter().filter(|n| args.overwrite || !exists(n)).collect();
    if todo.len() < names.len() {
        eprintln!("{} frames already have predictions (pass --overwrite to redo them)", names.len() - todo.len());
    }
    let hdnet = super::load_model(args.weights.as_deref(), &args.device, args.flip)?;
    ItemWriter::remove_stale(&out);
    let mut batch = Batch::new(todo.len());
    for chunk in todo.chunks(args.batch) {
        let mut frames = Vec::new();
        for name in chunk {
            match read_frame(&args.dir, name) {
                Ok(f) => frames.push(f),
                Err(e) => batch.fail(format!("skipped {name}: {e}")),
            }
        }
        // Frames of different sizes cannot share a forward pass.
        for group in frames.chunk_by(|a, b| a.image.dim() == b.image.dim()) {
            let normals = hdnet.normals(&group.iter().collect::<Vec<_>>());
            for (frame, n) in group.iter().zip(normals) {
                if let Err(e) = write_frame_normals(&out, &frame.name, &n, form, args.overwrite) {
                    batch.fail(format!("failed {}: {e}", frame.name));
                }
            }
        }
        batch.advance(chunk.len());
    }
    println!("{} of {} frames predicted into {}", todo.len() - batch.failed(), todo.len(), out.display());
    Ok(batch.finish())
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Dataset folder.
    dir: PathBuf,
    /// labelled or video (default: guessed from the folders present).
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Labelled,
    Video,
}

pub fn check_cmd(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let kind = match args.kind {
        Some(KindArg::Labelled) => Kind::Labelled,
        Some(KindArg::Video) => Kind::Video,
        None => match detect(&args.dir) {
            Some(k) => k,
            None => bail!("{}: neither depth/ nor pred_normals/ found; pass --kind", args.dir.display()),
        },
    };
    let report = check(&args.dir, kind);
    for p in &report.problems {
        println!("{p}");
    }
    println!(
        "{} ({:?}): {} frames, {} pairs, {} problems",
        args.dir.display(),
        kind,
        report.frames,
        report.pairs,
        report.problems.len()
    );
    Ok(if report.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
