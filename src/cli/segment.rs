//! `hdnet segment`: the most prominent person of a photo, or of every photo or video frame of a
//! folder: `NAME_mask.png` and `NAME_keypoints.json` (see hdnet-segment), and with `--iuv`
//! `NAME_iuv.png`; with `--video-layout` a video folder for training.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use hdnet_formats::images::{list_photos, read_photo};
use hdnet_infer::photo::{DEFAULT_FILL, IMAGE_SIZE};
use hdnet_segment::person::{Person, Segmenter};
use hdnet_segment::video::Shot;
use hdnet_segment::video_folder::VideoFolder;

use super::batch::{Batch, OutFolder};

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
    /// `predict-normals` and `train hdnet --videos` read): each shot cut by one square around
    /// everywhere its person goes, at 256x256, the frames numbered in name order (after the
    /// frames the folder holds, as another video, or from 0 with --overwrite; each new shot 100
    /// further on, so that `correspond` never pairs two shots): `color/`, `color_WO_bg/`,
    /// `mask/`, `densepose/` (the keypoints' IUV) as `NNNNNNN.png`, and `camera/NNNNNNN.json`
    /// (the crop's camera, the person at their size by the pose model at 4 m).
    #[arg(long, conflicts_with = "iuv")]
    video_layout: bool,
    /// With --video-layout: the share of the square's side the person's largest extent over a
    /// shot spans.
    #[arg(long, default_value_t = DEFAULT_FILL, requires = "video_layout")]
    fill: f32,
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
    if !(args.fill > 0.05 && args.fill <= 1.0) {
        bail!("--fill must be in (0.05, 1]");
    }
    let out = args.out.clone().unwrap_or(default_out);
    let out_folder = OutFolder::make(out)?;
    let out = out_folder.path();
    let segmenter = Segmenter::new(&super::device(&args.device)?);
    let mut batch = Batch::new(photos.len());
    let mut shot = Shot::new();
    let mut destination = if args.video_layout {
        Destination::Video(VideoFolder::new(out, args.fill, IMAGE_SIZE.0, args.overwrite))
    } else {
        Destination::Items { out, iuv: args.iuv, overwrite: args.overwrite }
    };
    for photo in &photos {
        let name = photo.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        batch.working_on(&name);
        // A cut-out is searched as it shows: laid on white, not its transparent pixels' colour.
        let found = read_photo(photo).map_err(anyhow::Error::from).and_then(|(rgb, _)| {
            // A frame of another shot: the shot before it is complete.
            if shot.next_frame(&rgb) {
                destination.end_shot(&mut batch);
            }
            let found = if args.independent { segmenter.find(&rgb, None) } else { segmenter.follow(&rgb, &mut shot) };
            let person = found.map_err(|e| anyhow::anyhow!("{}: {e}", photo.display()))?;
            destination.take(&name, photo, &person)?;
            Ok(person)
        });
        match found {
            Ok(person) => {
                if person.people > 1 {
                    batch.say(format!("{name}: {} people seen; the most prominent one is used", person.people));
                }
                if let Some(doubt) = person.doubt() {
                    batch.say(format!("warning: {name}: {doubt}"));
                }
            }
            Err(e) => batch.fail(format!("skipped {name}: {e}")),
        }
        batch.advance(1);
    }
    destination.end_shot(&mut batch);
    println!("{} of {} photos segmented into {}", photos.len() - batch.failed(), photos.len(), out.display());
    if args.video_layout {
        println!(
            "next: hdnet predict-normals {0} and hdnet correspond {0} (then hdnet train hdnet --videos {0})",
            out.display()
        );
    }
    Ok(batch.finish())
}

/// Where the people found go: each photo's files, or a video folder for training, shot by shot.
enum Destination<'a> {
    Items { out: &'a Path, iuv: bool, overwrite: bool },
    Video(VideoFolder),
}

impl Destination<'_> {
    /// Writes the `person` found in `photo` (named `name`), or adds them to the shot in progress.
    fn take(&mut self, name: &str, photo: &Path, person: &Person) -> anyhow::Result<()> {
        match self {
            Destination::Items { out, iuv, overwrite } => Ok(person.write_item(out, name, *iuv, *overwrite)?),
            // Training matches frames through the keypoints' IUV, which a doubt makes guesses.
            Destination::Video(_) if person.doubted() => bail!(
                "{}: the pose model doubts a person is there ({:.2}): left out of the video",
                photo.display(),
                person.presence
            ),
            Destination::Video(video) => {
                video.push(name.to_string(), photo.to_path_buf(), person);
                Ok(())
            }
        }
    }

    /// Writes a video's shot in progress and reports it (its frames, how they were cut) and
    /// every frame that could not be written.
    fn end_shot(&mut self, batch: &mut Batch) {
        let Destination::Video(video) = self else { return };
        let Some(shot) = video.write_shot() else { return };
        let sized = if shot.sized_by_pose { "by the pose model" } else { "assumed; the pose model could not tell" };
        batch.row(format!(
            "shot {}..{}: {} frames cut by a {} px square; the person spans {:.2} m ({sized})",
            shot.first, shot.last, shot.frames, shot.side, shot.extent
        ));
        for (name, e) in shot.failed {
            batch.fail(format!("skipped {name}: {e}"));
        }
    }
}
