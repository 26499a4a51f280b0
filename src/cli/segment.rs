//! `hdnet segment`: the most prominent person of a photo, or of every photo or video frame of a
//! folder: `NAME_mask.png` and `NAME_keypoints.json` (see hdnet-segment).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use hdnet_formats::images::{list_photos, read_photo};
use hdnet_formats::item::ItemWriter;
use hdnet_segment::person::{Roi, Segmenter};

use super::batch::Batch;

#[derive(clap::Args)]
pub struct Args {
    /// A photo (PNG or JPEG), or a folder of photos or video frames (in name order; each frame
    /// starts from the region the previous one gave, as MediaPipe tracks).
    input: PathBuf,
    /// Output folder (default: segment_out next to the photo, or inside the folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The photos of the folder are unrelated: find each person afresh (no tracking).
    #[arg(long)]
    independent: bool,
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
        bail!("{}: no PNG or JPEG photos found", args.input.display());
    }
    let out = args.out.clone().unwrap_or(default_out);
    std::fs::create_dir_all(&out).map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", out.display()))?;
    ItemWriter::remove_stale(&out);
    let segmenter = Segmenter::new(&super::device(&args.device)?);
    let mut batch = Batch::new(photos.len());
    let mut previous = None;
    for photo in &photos {
        let name = photo.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        batch.working_on(&name);
        let tracked = if args.independent { None } else { previous };
        match segment(&segmenter, photo, &name, &out, tracked, args.overwrite) {
            Ok((people, next)) => {
                if people > 1 {
                    batch.say(format!("{name}: {people} people seen; the most prominent one is used"));
                }
                previous = Some(next);
            }
            Err(e) => {
                batch.fail(format!("skipped {name}: {e}"));
                previous = None;
            }
        }
        batch.advance(1);
    }
    println!("{} of {} photos segmented into {}", photos.len() - batch.failed(), photos.len(), out.display());
    Ok(batch.finish())
}

/// Finds and writes one photo's person; returns how many people were seen and where to look next.
fn segment(
    segmenter: &Segmenter,
    photo: &Path,
    name: &str,
    out: &Path,
    previous: Option<Roi>,
    overwrite: bool,
) -> anyhow::Result<(usize, Roi)> {
    // A cut-out is searched as it shows: laid on white, not its transparent pixels' colour.
    let (rgb, _) = read_photo(photo)?;
    let person = segmenter.find(&rgb, previous).map_err(|e| anyhow::anyhow!("{}: {e}", photo.display()))?;
    let item = ItemWriter::new(out, name)?;
    person.write(item.dir(), name).map_err(|e| item.named_finally(e))?;
    item.commit(overwrite)?;
    Ok((person.people, person.next_roi))
}
