//! `hdnet segment`: the most prominent person of a photo, or of every photo or video frame of a
//! folder: `NAME_mask.png` and `NAME_keypoints.json` (see hdnet-segment), and with `--iuv`
//! `NAME_iuv.png`; with `--video-layout` a video folder for training.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use hdnet_data::layout::{DEPTH_MEDIAN, FrameNumbering, write_camera, write_pictures};
use hdnet_formats::images::{list_photos, read_photo};
use hdnet_formats::item::ItemWriter;
use hdnet_infer::photo::{DEFAULT_FILL, IMAGE_SIZE};
use hdnet_segment::person::{Person, Segmenter};
use hdnet_segment::shot_crop::{FramedShot, ShotFrame, ShotFrames};
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
    std::fs::create_dir_all(&out).map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", out.display()))?;
    ItemWriter::remove_stale(&out);
    let segmenter = Segmenter::new(&super::device(&args.device)?);
    let mut batch = Batch::new(photos.len());
    let mut shot = Shot::new();
    let mut video = args.video_layout.then(|| VideoFolder::new(&out, &args));
    for photo in &photos {
        let name = photo.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        batch.working_on(&name);
        // A cut-out is searched as it shows: laid on white, not its transparent pixels' colour.
        let found = read_photo(photo).map_err(anyhow::Error::from).and_then(|(rgb, _)| {
            // A frame of another shot: the shot before it is complete.
            if shot.next_frame(&rgb)
                && let Some(video) = video.as_mut()
            {
                video.write_shot(&mut batch);
            }
            let found = if args.independent { segmenter.find(&rgb, None) } else { segmenter.follow(&rgb, &mut shot) };
            let person = found.map_err(|e| anyhow::anyhow!("{}: {e}", photo.display()))?;
            match video.as_mut() {
                Some(video) => video.shot.push((name.clone(), photo.clone()), &person),
                None => write_person(&person, &out, &name, &args)?,
            }
            Ok(person.people)
        });
        match found {
            Ok(people) if people > 1 => {
                batch.say(format!("{name}: {people} people seen; the most prominent one is used"))
            }
            Ok(_) => {}
            Err(e) => batch.fail(format!("skipped {name}: {e}")),
        }
        batch.advance(1);
    }
    if let Some(video) = video.as_mut() {
        video.write_shot(&mut batch);
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

/// Writes `person`, found on photo `name`, into `out`.
fn write_person(person: &Person, out: &Path, name: &str, args: &Args) -> anyhow::Result<()> {
    let item = ItemWriter::new(out, name)?;
    let written = if args.iuv {
        person.write(item.dir(), name).and_then(|()| person.write_iuv(item.dir(), name))
    } else {
        person.write(item.dir(), name)
    };
    written.map_err(|e| item.named_finally(e))?;
    item.commit(args.overwrite)?;
    Ok(())
}

/// A video folder for training being written: the frames of the shot in progress (written when
/// it ends, all cut by one square) and the numbering of its frames.
struct VideoFolder {
    out: PathBuf,
    shot: ShotFrames<(String, PathBuf)>,
    numbering: FrameNumbering,
    fill: f32,
    overwrite: bool,
}

impl VideoFolder {
    /// Another video is added to a folder's frames; with --overwrite they are replaced from 0.
    fn new(out: &Path, args: &Args) -> Self {
        let numbering = if args.overwrite { FrameNumbering::default() } else { FrameNumbering::after(out) };
        let (fill, overwrite) = (args.fill, args.overwrite);
        Self { out: out.to_path_buf(), shot: ShotFrames::new(), numbering, fill, overwrite }
    }

    /// Writes the frames of the shot in progress, cut by its square, each with its camera; a
    /// frame that cannot be written is reported.
    fn write_shot(&mut self, batch: &mut Batch) {
        let Some(framed) = self.shot.framed(self.fill, DEPTH_MEDIAN, IMAGE_SIZE.0) else { return };
        let (Some(first), Some(last)) = (framed.frames().first(), framed.frames().last()) else { return };
        let (first, last) = (&first.id.0, &last.id.0);
        let sized = if framed.sized_by_pose { "by the pose model" } else { "assumed; the pose model could not tell" };
        batch.row(format!(
            "shot {first}..{last}: {} frames cut by a {} px square; the person spans {:.2} m ({sized})",
            framed.frames().len(),
            framed.crop.side,
            framed.extent
        ));
        let mut new_shot = true;
        for frame in framed.frames() {
            let (name, photo) = &frame.id;
            let number = self.numbering.next(std::mem::take(&mut new_shot));
            if let Err(e) = self.write_frame(&framed, frame, photo, &number) {
                batch.fail(format!("skipped {name}: {e}"));
            }
        }
    }

    fn write_frame(
        &self,
        framed: &FramedShot<(String, PathBuf)>,
        frame: &ShotFrame<(String, PathBuf)>,
        photo: &Path,
        name: &str,
    ) -> anyhow::Result<()> {
        let (rgb, _) = read_photo(photo)?;
        let cut = framed.cut(frame, &rgb);
        let item = ItemWriter::new(&self.out, name)?;
        write_pictures(item.dir(), name, &cut.rgb, &cut.mask, &cut.iuv.encode())
            .and_then(|()| write_camera(item.dir(), name, &framed.camera))
            .map_err(|e| item.named_finally(e))?;
        item.commit(self.overwrite)?;
        Ok(())
    }
}
