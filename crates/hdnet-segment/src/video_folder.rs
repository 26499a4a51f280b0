//! A video folder for training (the unlabelled layout `hdnet correspond`, `predict-normals` and
//! `train hdnet --videos` read) written from a video's frames: each shot cut by its square
//! ([`crate::shot_crop`]), every frame with its pictures and camera, the frames numbered on
//! after those the folder holds.

use std::path::{Path, PathBuf};

use hdnet_data::layout::{DEPTH_MEDIAN, FrameNumbering, write_camera, write_pictures};
use hdnet_formats::FileError;
use hdnet_formats::images::read_photo;
use hdnet_formats::item::ItemWriter;

use crate::person::Person;
use crate::shot_crop::{FramedShot, ShotFrame, ShotFrames};

/// A frame as the caller knows it: its name and its photo.
type FrameId = (String, PathBuf);

/// A video folder being written: the frames of the shot in progress (written when it ends, all
/// cut by one square) and the numbering of its frames.
pub struct VideoFolder {
    out: PathBuf,
    shot: ShotFrames<FrameId>,
    numbering: FrameNumbering,
    fill: f32,
    size: usize,
    overwrite: bool,
}

/// A shot written: its first and last frames' names, how it was cut, and the frames that could
/// not be written.
pub struct WrittenShot {
    pub first: String,
    pub last: String,
    pub frames: usize,
    /// The square's side in photo pixels.
    pub side: usize,
    /// The person's largest extent over the shot, in metres.
    pub extent: f32,
    /// Whether the pose model sized the person (else a standing adult was assumed).
    pub sized_by_pose: bool,
    pub failed: Vec<(String, FileError)>,
}

impl VideoFolder {
    /// Frames cut to `size` pixels, the person's largest extent `fill` of the square, added after
    /// the frames `out` holds, or from 0 replacing them when `overwrite`.
    pub fn new(out: &Path, fill: f32, size: usize, overwrite: bool) -> Self {
        let numbering = if overwrite { FrameNumbering::default() } else { FrameNumbering::after(out) };
        Self { out: out.to_path_buf(), shot: ShotFrames::new(), numbering, fill, size, overwrite }
    }

    /// Keeps `person`, found on the frame `name` (read from `photo`) of the shot in progress.
    pub fn push(&mut self, name: String, photo: PathBuf, person: &Person) {
        self.shot.push((name, photo), person);
    }

    /// Writes the frames of the shot in progress, cut by its square, each with its camera (the
    /// next frame pushed starts another shot). None when it had no frame.
    pub fn write_shot(&mut self) -> Option<WrittenShot> {
        let framed = self.shot.framed(self.fill, DEPTH_MEDIAN, self.size)?;
        let (first, last) = (&framed.frames().first()?.id.0, &framed.frames().last()?.id.0);
        let mut written = WrittenShot {
            first: first.clone(),
            last: last.clone(),
            frames: framed.frames().len(),
            side: framed.crop.side,
            extent: framed.extent,
            sized_by_pose: framed.sized_by_pose,
            failed: Vec::new(),
        };
        let mut new_shot = true;
        for frame in framed.frames() {
            let number = self.numbering.next(std::mem::take(&mut new_shot));
            if let Err(e) = self.write_frame(&framed, frame, &number) {
                written.failed.push((frame.id.0.clone(), e));
            }
        }
        Some(written)
    }

    /// `frame` read again from its photo, cut, and written as frame `number`.
    fn write_frame(
        &self,
        framed: &FramedShot<FrameId>,
        frame: &ShotFrame<FrameId>,
        number: &str,
    ) -> Result<(), FileError> {
        let (rgb, _) = read_photo(&frame.id.1)?;
        let cut = framed.cut(frame, &rgb);
        let item = ItemWriter::new(&self.out, number)?;
        write_pictures(item.dir(), number, &cut.rgb, &cut.mask, &cut.iuv.encode())
            .and_then(|()| write_camera(item.dir(), number, &framed.camera))
            .map_err(|e| item.named_finally(e))?;
        item.commit(self.overwrite)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hdnet_data::layout::{dirs, frame_names, frame_png, read_camera};
    use hdnet_formats::images::{read_mask, save_mask};
    use ndarray::Array2;

    use super::*;
    use crate::shot_crop::tests::person_at;

    #[test]
    fn shots_are_numbered_apart_after_the_folders_frames_and_a_lost_photo_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("video");
        // Grey 300x400 photos (the cut reads only their colours).
        let photo = |name: &str| {
            let path = dir.path().join(format!("{name}.png"));
            save_mask(&path, &Array2::from_elem((300, 400), 0.5)).unwrap();
            path
        };
        let mut folder = VideoFolder::new(&out, 0.9, 64, false);
        folder.push("a".into(), photo("a"), &person_at(100, 40));
        folder.push("b".into(), photo("b"), &person_at(110, 80));
        let first = folder.write_shot().unwrap();
        assert!(folder.write_shot().is_none(), "the shot was written");
        assert_eq!((first.first.as_str(), first.last.as_str(), first.frames), ("a", "b", 2));
        assert!(first.failed.is_empty() && first.sized_by_pose);
        folder.push("c".into(), photo("c"), &person_at(120, 160));
        folder.push("d".into(), dir.path().join("gone.png"), &person_at(120, 160));
        let second = folder.write_shot().unwrap();
        assert_eq!(second.failed.len(), 1);
        assert_eq!(second.failed[0].0, "d");
        assert!(second.failed[0].1.to_string().contains("gone.png"), "{}", second.failed[0].1);
        // A new shot jumps by SHOT_GAP from the last frame; the lost frame's number is left unused.
        assert_eq!(frame_names(&out).unwrap(), ["0000000", "0000001", "0000101"]);
        let mask = read_mask(frame_png(&out, dirs::MASK, "0000101"), None).unwrap();
        assert_eq!(mask.dim(), (64, 64));
        // The 128-pixel figure at 1 cm a pixel: 1.12 m over 0.9 of the square.
        assert!((second.extent - 1.12).abs() < 1e-4, "{}", second.extent);
        assert_eq!(second.side, 125, "112 pixels over 0.9, rounded up");
        let camera = read_camera(&out, "0000101").unwrap();
        assert!((camera.fx - 400.0).abs() < 1e-2, "1 cm a pixel seen at 4 m: {camera:?}");
        // Another video added to the folder goes on after its frames.
        let mut more = VideoFolder::new(&out, 0.9, 64, false);
        more.push("e".into(), photo("e"), &person_at(100, 40));
        more.write_shot().unwrap();
        assert_eq!(frame_names(&out).unwrap().last().unwrap(), "0000201");
    }
}
