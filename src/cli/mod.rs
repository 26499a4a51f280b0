//! The `hdnet` subcommands.

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
    /// Predict depth, normals and meshes for every NAME_img.png (+ NAME_mask.png, NAME_dp.png) in a folder.
    Infer(infer::Args),
    /// Find the person in photos or video frames: NAME_mask.png and NAME_keypoints.json.
    Segment(segment::Args),
    /// Convert the original TF1 checkpoints to one hdnet .safetensors file.
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
    }
}

/// `--device` as a Burn device, with the list of built-in backends on error.
fn device(name: &str) -> anyhow::Result<hdnet_model::device::Device> {
    hdnet_model::device::open(name).map_err(anyhow::Error::msg)
}

/// The model trained by hdnet on its synthetic people (see MODEL.md), inside the binary so that
/// an installed `hdnet` needs no files.
pub(crate) const BUNDLED_MODEL: &[u8] = include_bytes!("../../assets/model/hdnet_default.safetensors");

/// The networks of `weights`, or the bundled model, on `device` (`infer` and `eval`).
fn load_model(weights: Option<&std::path::Path>, device: &str) -> anyhow::Result<hdnet_model::Hdnet> {
    let device = self::device(device)?;
    Ok(match weights {
        Some(w) => hdnet_model::Hdnet::load(w, &device)?,
        None => hdnet_model::Hdnet::from_safetensors(std::path::Path::new("<bundled model>"), BUNDLED_MODEL, &device)?,
    })
}
