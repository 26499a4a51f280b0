//! `hdnet bench`: inference time of the two networks at a given width, batch and device.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use burn::prelude::*;
use burn::tensor::Distribution;
use hdnet_model::{HourglassConfig, NetKind};

#[derive(clap::Args)]
pub struct Args {
    /// Base width (64 = the original networks).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Image size (square, divisible by 16).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Timed runs per network (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// cpu, or vulkan / cuda when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.size % 16 != 0 || args.size == 0 || args.width == 0 || args.batch == 0 || args.runs == 0 {
        bail!("--size must be a positive multiple of 16; --width, --batch and --runs positive");
    }
    let device = super::device(&args.device)?;
    println!(
        "hdnet bench: width {}, batch {}, {}x{}, device {}, {} runs (median)",
        args.width, args.batch, args.size, args.size, args.device, args.runs
    );
    println!("{:<10} {:>12} {:>14} {:>10} {:>10}", "network", "ms/image", "images/s", "GFLOP", "GFLOP/s");
    for kind in [NetKind::Normal, NetKind::Depth] {
        let config = HourglassConfig::new(kind, args.width);
        let net = config.init(&device);
        let input = || Tensor::<4>::random([args.batch, config.in_channels, args.size, args.size], Distribution::Default, &device);
        // Reading the result back forces the (possibly asynchronous) device to finish.
        let _ = net.forward(input()).try_into_vec_as::<f32>();
        let mut times: Vec<f64> = (0..args.runs)
            .map(|_| {
                let x = input();
                let start = Instant::now();
                let _ = net.forward(x).try_into_vec_as::<f32>();
                start.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let per_image = times[times.len() / 2] / args.batch as f64;
        let gflop = config.flops(args.size, args.size) / 1e9;
        println!(
            "{:<10} {:>12.1} {:>14.2} {:>10.1} {:>10.1}",
            kind.name(),
            per_image * 1e3,
            1.0 / per_image,
            gflop,
            gflop / per_image
        );
    }
    Ok(ExitCode::SUCCESS)
}
