//! `hdnet segment`: the most prominent person of a photo, or of every photo or video frame of a
//! folder: `NAME_mask.png` and `NAME_keypoints.json` (see hdnet-segment), and with `--iuv`
//! `NAME_iuv.png`; with `--video-layout` a video folder for training.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use hdnet_data::layout::{FrameNumbering, write_pictures};
use hdnet_formats::images::{list_photos, read_photo};
use hdnet_formats::item::ItemWriter;
use hdnet_segment::person::Segmenter;
use hdnet_segment::video::Shot;

use super::batch::Batch;

#[derive(clap::Args)]
pub struct Args {
    /// A photo (PNG, JPEG or WebP), or a folder of photos or video frames (in name order; within
    /// a shot each frame starts from the region the previous one gave, as MediaPipe tracks; a
    /// photo unlike the one before is searched afresh).
    input: PathBuf,
    /// Output folder (default: segment_out next to the photo, or inside the folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The photos of the folder are unrelated, even those alike: find each person afresh (no
    /// tracking).
    #[arg(long)]
    independent: bool,
    /// Also write `NAME_iuv.png`: a DensePose-like IUV map made from the keypoints (body parts
    /// by nearest bone, U along it, V across it), for `hdnet correspond` on videos without
    /// DensePose.
    #[arg(long)]
    iuv: bool,
    /// Write a video folder for training instead (the unlabelled layout `hdnet correspond`,
    /// `predict-normals` and `train hdnet --videos` read): the frames numbered in name order
    /// (after the frames the folder holds, as another video, or from 0 with --overwrite; each
    /// new shot 100 further on, so that `correspond` never pairs two shots), `color/`,
    /// `color_WO_bg/`, `mask/` and `densepose/` (the keypoints' IUV) as `NNNNNNN.png`.
    #[arg(long, conflicts_with = "iuv")]
    video_layout: bool,
    /// cpu, or wgpu[:ADAPTER] / vulkan[:ADAPTER] / cuda[:N] when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Replace outputs that already exist (otherwise such a photo is reported and skipped).
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (photos, default_out) = if args.input.is_dir() {
        (list_photos(&args.input)?, args.input.join("segment_out"))
    } else if args.input.is_file() {
        (vec![args.input.clone()], args.input.parent().unwrap_or(Path::new(".")).join("segment_out"))
    } else {
        bail!("{}: file not found", args.input.display());
    };
    if photos.is_empty() {
        bail!("{}: no PNG, JPEG or WebP photos found", args.input.display());
    }
    let out = args.out.clone().unwrap_or(default_out);
    std::fs::create_dir_all(&out).map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", out.display()))?;
    ItemWriter::remove_stale(&out);
    let segmenter = Segmenter::new(&super::device(&args.device)?);
    let mut batch = Batch::new(photos.len());
    let mut shot = Shot::new();
    // Another video is added to a folder's frames; with --overwrite they are replaced from 0.
    let mut numbering =
        args.video_layout.then(|| if args.overwrite { FrameNumbering::default() } else { FrameNumbering::after(&out) });
    for photo in &photos {
        let name = photo.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        batch.working_on(&name);
        match segment(&segmenter, photo, &name, &out, &mut shot, numbering.as_mut(), &args) {
            Ok(people) if people > 1 => {
                batch.say(format!("{name}: {people} people seen; the most prominent one is used"))
            }
            Ok(_) => {}
            Err(e) => batch.fail(format!("skipped {name}: {e}")),
        }
        batch.advance(1);
    }
    println!("{} of {} photos segmented into {}", photos.len() - batch.failed(), photos.len(), out.display());
    if args.video_layout {
        println!(
            "next: hdnet predict-normals {0} and hdnet correspond {0} (then hdnet train hdnet --videos {0})",
            out.display()
        );
    }
    Ok(batch.finish())
}

/// Finds and writes one photo's person, the next frame of `shot` (named `name`, or by
/// `numbering` in a video folder); returns how many people were seen.
fn segment(
    segmenter: &Segmenter,
    photo: &Path,
    name: &str,
    out: &Path,
    shot: &mut Shot,
    numbering: Option<&mut FrameNumbering>,
    args: &Args,
) -> anyhow::Result<usize> {
    // A cut-out is searched as it shows: laid on white, not its transparent pixels' colour.
    let (rgb, _) = read_photo(photo).inspect_err(|_| shot.found(None))?;
    let new_shot = shot.next_frame(&rgb);
    let numbered = numbering.map(|n| n.next(new_shot));
    let name = numbered.as_deref().unwrap_or(name);
    let found = if args.independent { segmenter.find(&rgb, None) } else { segmenter.follow(&rgb, shot) };
    let person = found.map_err(|e| anyhow::anyhow!("{}: {e}", photo.display()))?;
    let item = ItemWriter::new(out, name)?;
    let written = if args.video_layout {
        write_pictures(item.dir(), name, &rgb, &person.mask, &person.iuv().encode())
    } else if args.iuv {
        person.write(item.dir(), name).and_then(|()| person.write_iuv(item.dir(), name))
    } else {
        person.write(item.dir(), name)
    };
    written.map_err(|e| item.named_finally(e))?;
    item.commit(args.overwrite)?;
    Ok(person.people)
}
