//! `hdnet infer`: HDNet on a folder in the original test-data layout, or on photos of any size
//! (a photo, or a folder of photos or video frames, with masks or with the person found by
//! hdnet-segment), through `hdnet_infer`. Without `--weights` the model bundled in the binary is
//! used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use hdnet_formats::FileError;
use hdnet_formats::images::{PersonImage, list_photos, list_samples};
use hdnet_infer::outputs::{output_names, write_item};
use hdnet_infer::photo::{
    Finder, IMAGE_SIZE, Input, MaskFrom, PhotoFile, PhotoSettings, SizedBy, load_photo, person_fill,
};
use hdnet_model::Hdnet;

use super::batch::{Batch, OutFolder};

#[derive(clap::Args)]
pub struct Args {
    /// A photo (PNG, JPEG or WebP, any size); or a folder of photos or video frames; or a folder with
    /// NAME_img.png, NAME_mask.png and NAME_dp.png files (256x256, the original's test layout;
    /// NAME_dp.png only for depth nets that read DensePose).
    input: PathBuf,
    /// The person's mask for a photo (grey, person > 100), or a folder of masks named as the
    /// frames (same stem, PNG). Without it a cut-out PNG (transparent background) is its own
    /// mask, and in any other photo hdnet finds the person itself (`hdnet segment`) and writes
    /// NAME_mask.png and NAME_keypoints.json with the results.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// DensePose IUV for a photo, or a folder named as the frames; needed by depth nets with
    /// DensePose inputs (the original's), not by the bundled model.
    #[arg(long)]
    dp: Option<PathBuf>,
    /// hdnet .safetensors weights, or a folder with the original TF1 checkpoints (default: the
    /// bundled model).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output folder (default: INPUT/infer_out for folders, as the original; next to a photo).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Share of the crop's side the person's larger extent spans, for photos (default: as the
    /// weights state, else 0.9).
    #[arg(long)]
    fill: Option<f32>,
    /// The real size in metres of the person's larger extent in a photo: the meshes' width
    /// against their depth (default: measured by the pose model's metric keypoints, pooled over
    /// the last frames of a video's shot, else 1.75, a standing adult). Without it the
    /// refinement (`--refine`) takes the size of a pixel from the depth net's relief instead.
    #[arg(long)]
    extent: Option<f32>,
    /// Render each predicted mesh turning around (NAME_turntable.gif): done by default for a
    /// single photo; this asks for it for every image of a folder too.
    #[arg(long, conflicts_with = "no_turntable")]
    turntable: bool,
    /// No turntable GIF, not even for a single photo.
    #[arg(long)]
    no_turntable: bool,
    #[command(flatten)]
    refine: super::RefineArgs,
    #[command(flatten)]
    flip: super::FlipArgs,
    /// cpu, or wgpu[:ADAPTER] / vulkan[:ADAPTER] / cuda[:N] when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Images per forward pass (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Replace outputs that already exist (otherwise such an image is reported and skipped).
    #[arg(long)]
    overwrite: bool,
}

/// Where one input image comes from.
enum Source {
    /// NAME in a folder of the original test-data layout.
    Layout { dir: PathBuf, name: String },
    /// A photo of any size with its mask (found by hdnet when `None`) and maybe DensePose.
    Photo { image: PathBuf, mask: Option<PathBuf>, dp: Option<PathBuf> },
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Layout { name, .. } => name.clone(),
            Source::Photo { image, .. } => {
                image.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned())
            }
        }
    }
}

fn sources(args: &Args) -> anyhow::Result<(Vec<Source>, PathBuf)> {
    let input = &args.input;
    if !input.exists() {
        bail!("{}: file not found", input.display());
    }
    if input.is_file() {
        if args.mask.as_ref().is_some_and(|m| m.is_dir()) {
            bail!("{}: a photo's --mask is a file", input.display());
        }
        let out = args.out.clone().unwrap_or_else(|| input.parent().unwrap_or(Path::new(".")).join("infer_out"));
        return Ok((vec![Source::Photo { image: input.clone(), mask: args.mask.clone(), dp: args.dp.clone() }], out));
    }
    let out = args.out.clone().unwrap_or_else(|| input.join("infer_out"));
    let samples = list_samples(input)?;
    if args.mask.is_none() && !samples.is_empty() {
        return Ok((samples.into_iter().map(|name| Source::Layout { dir: input.clone(), name }).collect(), out));
    }
    if let Some(masks) = args.mask.as_ref().filter(|m| !m.is_dir()) {
        bail!("{}: frames in a folder need a folder of masks", masks.display());
    }
    let frames = list_photos(input)?;
    if frames.is_empty() {
        bail!("{}: no PNG, JPEG or WebP photos found", input.display());
    }
    let named = |dir: &Path, frame: &Path| dir.join(frame.file_stem().unwrap_or_default()).with_extension("png");
    let list = frames
        .iter()
        .map(|f| Source::Photo {
            image: f.clone(),
            mask: args.mask.as_ref().map(|m| named(m, f)),
            dp: args.dp.as_ref().map(|d| named(d, f)),
        })
        .collect();
    Ok((list, out))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.fill.is_some_and(|f| !(f > 0.05 && f <= 1.0)) {
        bail!("--fill must be in (0.05, 1]");
    }
    if args.extent.is_some_and(|e| !(e > 0.01 && e < 100.0)) {
        bail!("--extent must be in metres, between 0.01 and 100");
    }
    let (sources, out) = sources(&args)?;
    let hdnet = super::load_model(args.weights.as_deref(), &args.device, args.flip)?;
    let settings = PhotoSettings { fill: person_fill(&hdnet, args.fill), extent: args.extent };
    let refine = args.refine.integration(&hdnet)?;
    let out_folder = OutFolder::make(out)?;
    let out = out_folder.path();
    let turntable = args.turntable || (!args.no_turntable && args.input.is_file());

    let mut batch = Batch::new(sources.len());
    let mut finder = Finder::new(hdnet.device.clone());
    for chunk in sources.chunks(args.batch) {
        let mut loaded = Vec::new();
        for source in chunk {
            match load_checked(source, out, &hdnet, settings, turntable, args.overwrite, &mut finder) {
                Ok(l) => loaded.push(l),
                Err(e) => {
                    batch.fail(format!("skipped {}: {e}", source.name()));
                    batch.advance(1);
                }
            }
        }
        if loaded.is_empty() {
            continue;
        }
        let predictions = hdnet.predict(&loaded.iter().map(|l| &l.sample).collect::<Vec<_>>());
        for (l, prediction) in loaded.iter().zip(&predictions) {
            batch.working_on(&l.sample.name);
            match write_item(out, l, prediction, refine, turntable, args.overwrite) {
                Ok(warnings) => report_written(&batch, l, &warnings),
                Err(e) => batch.fail(format!("failed {}: {e}", l.sample.name)),
            }
            batch.advance(1);
        }
    }
    println!("{} of {} images written to {}", sources.len() - batch.failed(), sources.len(), out.display());
    Ok(batch.finish())
}

/// Tells what hdnet assumed about an image just written: the mask's and the size's sources and
/// their doubts.
fn report_written(batch: &Batch, l: &Input, warnings: &[String]) {
    let name = &l.sample.name;
    warnings.iter().for_each(|w| batch.say(format!("warning: {name}: {w}")));
    match l.photo.as_ref().map(|p| &p.mask_from) {
        Some(MaskFrom::CutOut) => batch.row(format!("{name}: the person is the photo's opaque part (a cut-out)")),
        Some(MaskFrom::Found(person)) => {
            if let Some(doubt) = person.doubt() {
                batch.say(format!("warning: {name}: {doubt}"));
            }
        }
        _ => {}
    }
    match l.photo.as_ref().map(|p| p.framing) {
        Some(f) if f.sized_by == SizedBy::PoseModel => batch
            .row(format!("{name}: the person's larger side is {:.2} m by the pose model (--extent sets it)", f.extent)),
        Some(f) if f.sized_by == SizedBy::Assumption => batch.say(format!(
            "warning: {name}: the pose model could not size the person: {} m assumed (--extent)",
            f.extent
        )),
        _ => {}
    }
}

fn load_checked(
    source: &Source,
    out: &Path,
    hdnet: &Hdnet,
    settings: PhotoSettings,
    turntable: bool,
    overwrite: bool,
    finder: &mut Finder,
) -> Result<Input, FileError> {
    let name = source.name();
    // Checked before the person is searched for (the costly part), after the photo is read: a
    // cut-out gets no NAME_mask.png, so one already there is not in the way.
    let refuse_existing = |photo: bool, searched: bool| {
        let existing =
            output_names(&name, photo, searched, turntable).into_iter().map(|f| out.join(f)).find(|p| p.exists());
        match existing {
            Some(path) if !overwrite => Err(FileError::new(path, "already exists (pass --overwrite to replace it)")),
            _ => Ok(()),
        }
    };
    match source {
        Source::Layout { dir, name } => {
            refuse_existing(false, false)?;
            let sample = if hdnet.needs_densepose() {
                PersonImage::read_test_layout(dir, name, IMAGE_SIZE)?
            } else {
                PersonImage::read_test_layout_dp_optional(dir, name, IMAGE_SIZE)?
            };
            Ok(Input { sample, photo: None })
        }
        Source::Photo { image, mask, dp } => {
            let photo = PhotoFile::read(image, mask.as_deref())?;
            refuse_existing(true, photo.needs_search())?;
            load_photo(&name, photo, dp.as_deref(), hdnet.needs_densepose(), settings, finder)
        }
    }
}
