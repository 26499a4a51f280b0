//! The `hdnet` subcommands.

mod bench;
mod convert;
mod infer;

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
    /// Convert the original TF1 checkpoints to one hdnet .safetensors file.
    Convert(convert::Args),
    /// Measure inference speed of the networks.
    Bench(bench::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Infer(args) => infer::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// `--device` as a Burn device, with the list of built-in backends on error.
fn device(name: &str) -> anyhow::Result<hdnet_model::device::Device> {
    hdnet_model::device::parse(name).map_err(anyhow::Error::msg)
}
