//! The `hdnet` subcommands.

mod batch;
mod bench;
mod convert;
mod data;
mod eval;
mod infer;
mod plot;
mod render;
mod segment;
mod synth;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hdnet", version, about = "HDNet: high-fidelity depth and normals of dressed humans")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Predict a person's depth, normals and meshes: a photo, a folder of photos or video frames, or the original's test layout.
    Infer(infer::Args),
    /// Find the person in photos or video frames: NAME_mask.png and NAME_keypoints.json, or a
    /// video folder for training (--video-layout).
    Segment(segment::Args),
    /// Combine trained networks or the original TF1 checkpoints into one hdnet .safetensors file.
    Convert(convert::Args),
    /// Make correspondences between frames of a video folder from DensePose IUV.
    Correspond(data::CorrespondArgs),
    /// Fill pred_normals/ of a video folder with the normal net.
    PredictNormals(data::PredictNormalsArgs),
    /// Train a stage: normal, depth or hdnet.
    Train(train::Args),
    /// Accuracy of depth and normal predictions against ground truth.
    Eval(eval::Args),
    /// Draw the convergence curves of a training log to a PNG.
    Plot(plot::Args),
    /// Dataset tools.
    #[command(subcommand)]
    Data(DataCommand),
    /// Render a predicted mesh turning around (GIF or PNG frames).
    Render(render::Args),
    /// Synthetic people with exact ground truth.
    #[command(subcommand)]
    Synth(SynthCommand),
    /// Measure speed.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Opens a device and runs a small network on it (used to try Vulkan drivers safely).
    #[command(hide = true)]
    ProbeDevice { name: String },
}

#[derive(Subcommand)]
enum SynthCommand {
    /// Labelled frames (color/, color_WO_bg/, mask/, densepose/, depth/, normal/).
    Labelled(synth::LabelledArgs),
    /// Dance videos in the video layout with exact correspondences (ground truth kept aside).
    Video(synth::VideoArgs),
    /// A contact sheet PNG of generated people: RGB | depth | normals | IUV.
    Sheet(synth::SheetArgs),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Validate a dataset folder: list every malformed or missing file.
    Check(data::CheckArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Infer(args) => infer::run(args),
        Command::Segment(args) => segment::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Correspond(args) => data::correspond(args),
        Command::PredictNormals(args) => data::predict_normals(args),
        Command::Data(DataCommand::Check(args)) => data::check_cmd(args),
        Command::Train(args) => train::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Synth(SynthCommand::Labelled(args)) => synth::labelled(args),
        Command::Synth(SynthCommand::Sheet(args)) => synth::sheet(args),
        Command::Synth(SynthCommand::Video(args)) => synth::video(args),
        Command::Render(args) => render::run(args),
        Command::Bench(command) => bench::run(command),
        Command::ProbeDevice { name } => probe_device(&name),
    }
}

/// `--device` as a Burn device, with the list of built-in backends on error. A Vulkan device is
/// first tried in a child process (`hdnet probe-device`): a driver that crashes while compiling
/// hdnet's kernels, as Mesa's lavapipe does, then ends the child with a signal, and this command
/// with a one-line error instead of a segmentation fault.
fn device(name: &str) -> anyhow::Result<hdnet_model::device::Device> {
    if cfg!(feature = "vulkan") && (name.starts_with("vulkan") || name == "gpu") {
        probe_in_child(name)?;
    }
    hdnet_model::device::open(name).map_err(anyhow::Error::msg)
}

/// Runs `hdnet probe-device NAME` and turns a crash or failure into an error.
fn probe_in_child(name: &str) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe).args(["probe-device", name]).output()?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let last = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim_start_matches("error: ");
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&out.status) {
        anyhow::bail!(
            "device '{name}': the Vulkan driver crashed (signal {signal}) while compiling hdnet's kernels (Mesa's lavapipe does); try --device wgpu"
        );
    }
    anyhow::bail!("{last}")
}

/// The child of [`probe_in_child`]: opens the device and runs a small hourglass on it.
fn probe_device(name: &str) -> anyhow::Result<ExitCode> {
    use burn::tensor::Distribution;
    let device = hdnet_model::device::open(name).map_err(anyhow::Error::msg)?;
    let net = hdnet_model::HourglassConfig::new(hdnet_model::NetKind::Normal, 4).init(&device, 0);
    let x = burn::tensor::Tensor::<4>::random([1, 3, 32, 32], Distribution::Default, &device);
    let _ = net.forward(x).try_into_vec_as::<f32>();
    Ok(ExitCode::SUCCESS)
}

/// The model trained by hdnet on its synthetic people (see MODEL.md), inside the binary so that
/// an installed `hdnet` needs no files.
pub(crate) static BUNDLED_MODEL: &[u8] = include_bytes!("../../assets/model/hdnet_default.safetensors");

/// What errors about [`BUNDLED_MODEL`] call it.
pub(crate) const BUNDLED_MODEL_NAME: &str = "<bundled model>";

/// The networks of `weights`, or the bundled model, on `device` (`infer`, `eval`,
/// `predict-normals`), flip-averaged as the weights state unless `flip` says otherwise.
fn load_model(weights: Option<&std::path::Path>, device: &str, flip: FlipArgs) -> anyhow::Result<hdnet_model::Hdnet> {
    let device = self::device(device)?;
    let mut hdnet = match weights {
        Some(w) => hdnet_model::Hdnet::load(w, &device)?,
        None => hdnet_model::Hdnet::from_safetensors(std::path::Path::new(BUNDLED_MODEL_NAME), BUNDLED_MODEL, &device)?,
    };
    if flip.given() {
        hdnet.flip_average = flip.flip;
    }
    Ok(hdnet)
}

/// Flip averaging (`Hdnet::flip_average`).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct FlipArgs {
    /// Average each network's output with its output on the mirrored image, mirrored back:
    /// steadier normals and depth for twice the networks' time (default: as the weights state;
    /// the bundled model does).
    #[arg(long, conflicts_with = "no_flip")]
    flip: bool,
    /// Each network once, on the image as it is, even where the weights ask for flip averaging
    /// (the original's output).
    #[arg(long)]
    no_flip: bool,
}

impl FlipArgs {
    /// Whether either flag was given.
    pub fn given(self) -> bool {
        self.flip || self.no_flip
    }
}

/// Depth refined by the predicted normals (`hdnet_geometry::integrate_normals`).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct RefineArgs {
    /// Refine the depth with the predicted normals: the weight (> 0) per pixel of the depth
    /// net's depth against the normals' shape; the smaller, the larger the features the normals
    /// shape (default: as the weights state, else no refinement).
    #[arg(long, value_parser = positive_number::<f32>, conflicts_with = "no_refine")]
    refine: Option<f32>,
    /// The depth net's depth as it is, even where the weights ask for refinement (the
    /// original's output).
    #[arg(long)]
    no_refine: bool,
    /// Steepen the normals' slopes in the refinement by this factor (default: as the weights
    /// state, else 1): the normal net's normals lean towards the camera where it is unsure, and
    /// the surface they give is flatter than the person.
    #[arg(long, value_parser = positive_number::<f32>, conflicts_with = "no_refine")]
    relief: Option<f32>,
}

impl RefineArgs {
    /// Whether either flag was given.
    pub fn given(self) -> bool {
        self.refine.is_some() || self.no_refine || self.relief.is_some()
    }

    /// The refinement for `hdnet`'s predictions, through a known camera.
    /// An error names a weights note that is not a positive number.
    pub fn integration(self, hdnet: &hdnet_model::Hdnet) -> anyhow::Result<Option<hdnet_geometry::Integration>> {
        let noted = |key: &str| {
            let value = hdnet.notes.get(key).map(|a| positive_number::<f32>(a)).transpose();
            value.map_err(|e| anyhow::anyhow!("the weights' note {key}={e}"))
        };
        let anchor = self.refine.or(noted(REFINE_NOTE)?).filter(|_| !self.no_refine);
        let relief = self.relief.or(noted(RELIEF_NOTE)?).unwrap_or(1.0);
        Ok(anchor.map(|anchor| hdnet_geometry::Integration { anchor, relief, ..Default::default() }))
    }
}

/// The weights' note that asks for refinement by default, with its anchor weight.
const REFINE_NOTE: &str = "refine";
/// The weights' note that steepens the refinement's slopes by default.
const RELIEF_NOTE: &str = "relief";

/// A number above zero and finite, for settings such as weights and rates.
pub(crate) fn positive_number<T: std::str::FromStr + Into<f64> + Copy>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(v) if v.into() > 0.0 && v.into().is_finite() => Ok(v),
        _ => Err(format!("{s}: not a positive number")),
    }
}
