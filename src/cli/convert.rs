//! `hdnet convert`: the authors' TF1 checkpoints -> one hdnet safetensors file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use hdnet_model::weights::{StoreDtype, save_safetensors};
use hdnet_model::{Hdnet, NetKind};

#[derive(clap::Args)]
pub struct Args {
    /// Folder holding the original checkpoints (e.g. `model/` with normal_prediction/ and depth_prediction/).
    #[arg(long)]
    weights: PathBuf,
    /// The .safetensors file to write.
    #[arg(long)]
    out: PathBuf,
    /// Store float16 weights (half the size).
    #[arg(long)]
    f16: bool,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.out.exists() && !args.overwrite {
        bail!("{}: already exists (pass --overwrite to replace it)", args.out.display());
    }
    if !args.weights.is_dir() {
        bail!("{}: not a folder of TF checkpoints", args.weights.display());
    }
    let hdnet = Hdnet::load(&args.weights, &super::device("cpu")?)?;
    let notes = HashMap::from([("source".to_string(), format!("TF1 checkpoints under {}", args.weights.display()))]);
    let dtype = if args.f16 { StoreDtype::F16 } else { StoreDtype::F32 };
    save_safetensors(
        &args.out,
        &[(NetKind::Normal, &hdnet.normal_net), (NetKind::Depth, &hdnet.depth_net)],
        dtype,
        notes,
    )
    .context("writing the converted weights")?;
    for (kind, net) in [(NetKind::Normal, &hdnet.normal_net), (NetKind::Depth, &hdnet.depth_net)] {
        let c = net.config(kind);
        println!("{}: {} -> {} channels, widths {:?}", kind.name(), c.in_channels, c.out_channels, c.widths);
    }
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
