//! `hdnet bench`: speed of inference and of the correspondence tool.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::prelude::*;
use burn::tensor::Distribution;
use hdnet_data::correspond::{MatchParams, correspond_video};
use hdnet_data::layout::Form;
use hdnet_model::{HourglassConfig, NetKind};
use image::{GrayImage, Luma, Rgb, RgbImage};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Inference time of the two networks at a given width, batch and device.
    Infer(InferArgs),
    /// `hdnet correspond` on a procedural video of moving body parts.
    Correspond(CorrespondArgs),
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Infer(args) => infer(args),
        BenchCommand::Correspond(args) => correspond(args),
    }
}

#[derive(clap::Args)]
pub struct InferArgs {
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

fn infer(args: InferArgs) -> anyhow::Result<ExitCode> {
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
        let net = config.init(&device, 0);
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

#[derive(clap::Args)]
pub struct CorrespondArgs {
    /// Frames of the procedural video.
    #[arg(long, default_value_t = 300)]
    frames: usize,
}

/// Writes frame `t` of a 256x256 video: 12 body parts (4 x 3 blocks of 40 x 30 pixels) with
/// per-part (U, V) charts, the whole body translating and each part sliding a little.
fn write_procedural_frame(root: &std::path::Path, t: usize) -> anyhow::Result<()> {
    let name = format!("{t:07}");
    let (mut dp, mut mask, color) = (RgbImage::new(256, 256), GrayImage::new(256, 256), RgbImage::from_pixel(256, 256, Rgb([200, 150, 120])));
    let tf = t as f32;
    let (oy, ox) = (60.0 + 20.0 * (tf / 13.0).sin(), 70.0 + 30.0 * (tf / 21.0).cos());
    for part in 0..12u32 {
        let (br, bc) = (part / 3, part % 3);
        let slide = 4.0 * (tf / 7.0 + part as f32).sin();
        for r in 0..40u32 {
            for c in 0..30u32 {
                let y = (oy + (br * 40 + r) as f32) as u32;
                let x = (ox + slide + (bc * 30 + c) as f32) as u32;
                if y < 256 && x < 256 {
                    let (u, v) = ((c as f32 + 0.5) / 30.0, (r as f32 + 0.5) / 40.0);
                    dp.put_pixel(x, y, Rgb([(v * 255.0) as u8, (u * 255.0) as u8, part as u8 + 1]));
                    mask.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }
    for (dir, save) in [("densepose", 0), ("mask", 1), ("color_WO_bg", 2)] {
        let path = root.join(dir);
        std::fs::create_dir_all(&path)?;
        let file = path.join(format!("{name}.png"));
        match save {
            0 => dp.save(&file)?,
            1 => mask.save(&file)?,
            _ => color.save(&file)?,
        }
    }
    Ok(())
}

fn correspond(args: CorrespondArgs) -> anyhow::Result<ExitCode> {
    if args.frames < 2 {
        bail!("--frames must be at least 2");
    }
    let dir = std::env::temp_dir().join(format!("hdnet-bench-correspond-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    for t in 0..args.frames {
        write_procedural_frame(&dir, t)?;
    }
    let params = MatchParams::default();
    let mut rows = Vec::new();
    for form in [Form::Binary, Form::Original] {
        let _ = std::fs::remove_dir_all(dir.join("correspondences"));
        let start = Instant::now();
        let report = correspond_video(&dir, &params, form, || {})?;
        rows.push((form, start.elapsed().as_secs_f64(), report.pairs_tried, report.pairs_written));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("hdnet bench correspond: {} frames of 256x256, {} threads", args.frames, rayon_threads());
    println!("{:<10} {:>10} {:>12} {:>14} {:>12}", "files", "seconds", "pairs tried", "pairs written", "frames/s");
    for (form, secs, tried, written) in rows {
        println!("{:<10} {:>10.2} {:>12} {:>14} {:>12.1}", format!("{form:?}"), secs, tried, written, args.frames as f64 / secs);
    }
    Ok(ExitCode::SUCCESS)
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
