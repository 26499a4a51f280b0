//! A video's person followed from frame to frame: the search starts where the previous frame's
//! person was, and the pose model's size of a person, which moves by a few percent from frame to
//! frame while the person does not, is pooled with the last frames of the same shot. Shots are
//! told apart by the frames' thumbnails, so that a cut, or a folder of unrelated photos, starts
//! afresh.

use std::collections::VecDeque;

use hdnet_geometry::median;
use ndarray::{Array3, s};

use crate::person::Roi;

/// Side of the thumbnails frames are compared by.
const THUMBNAIL: usize = 16;
/// Mean absolute difference (0..255) between two frames' thumbnails above which the second
/// starts a new shot. Consecutive frames of hdnet's synthetic dance videos differ by 0.6-13
/// (13 for a close-up dancer), the cuts between two of them by 48-64.
const CUT: f32 = 25.0;
/// Frames whose sizes are pooled: a third of a second at 30 frames per second.
const WINDOW: usize = 9;

/// A video followed frame by frame, as MediaPipe follows one: the frames of one shot (its last
/// frame's size and thumbnail), the region the person was found in on its last frame (where the
/// next frame's search starts), and its last [`WINDOW`] measured sizes. A frame of another shot
/// starts afresh: a cut, or the next of a folder of unrelated photos, which would otherwise be
/// searched where the previous photo's person was.
#[derive(Default)]
pub struct Shot {
    previous: Option<Frame>,
    region: Option<Roi>,
    recent: VecDeque<f32>,
}

impl Shot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the next frame, `rgb` (H x W x 3, 0..255): one that does not continue the shot
    /// starts a new one, with no region to track and no sizes. Returns whether it did.
    pub fn next_frame(&mut self, rgb: &Array3<f32>) -> bool {
        let frame = Frame::of(rgb);
        let new_shot = !self.previous.as_ref().is_some_and(|p| p.same_shot(&frame));
        if new_shot {
            self.region = None;
            self.recent.clear();
        }
        self.previous = Some(frame);
        new_shot
    }

    /// Where the person was found on the shot's previous frame, if they were.
    pub fn tracked(&self) -> Option<Roi> {
        self.region
    }

    /// Records where the person of this frame was found (None: not found), for the next frame.
    pub fn found(&mut self, region: Option<Roi>) {
        self.region = region;
    }

    /// The size of this frame's person: the median of `measured` (the pose model's, None when
    /// it could not tell) and the measurements of the shot's previous frames, at most
    /// [`WINDOW`] in all. None when no frame of the shot so far was measured.
    pub fn size(&mut self, measured: Option<f32>) -> Option<f32> {
        if let Some(m) = measured {
            if self.recent.len() == WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back(m);
        }
        (!self.recent.is_empty()).then(|| median(self.recent.iter().copied().collect()))
    }
}

/// What frames are compared by: their size, and their mean colour over a [`THUMBNAIL`]-square
/// grid of cells (a frame smaller than the grid is its own thumbnail).
struct Frame {
    size: (usize, usize),
    thumbnail: Array3<f32>,
}

impl Frame {
    fn of(rgb: &Array3<f32>) -> Self {
        let (h, w, c) = rgb.dim();
        let (rows, cols) = (THUMBNAIL.min(h), THUMBNAIL.min(w));
        let thumbnail = Array3::from_shape_fn((rows, cols, c), |(i, j, k)| {
            let cell = rgb.slice(s![i * h / rows..(i + 1) * h / rows, j * w / cols..(j + 1) * w / cols, k]);
            cell.mean().unwrap_or(0.0)
        });
        Self { size: (h, w), thumbnail }
    }

    fn same_shot(&self, next: &Frame) -> bool {
        self.size == next.size && (&self.thumbnail - &next.thumbnail).mapv(f32::abs).mean().is_some_and(|d| d <= CUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scene: a horizontal ramp of one colour, with a dark square (the "person") at `x`.
    fn frame(h: usize, w: usize, tint: [f32; 3], x: usize) -> Array3<f32> {
        Array3::from_shape_fn((h, w, 3), |(r, c, k)| {
            if (40..80).contains(&r) && (x..x + 20).contains(&c) { 30.0 } else { tint[k] * c as f32 / w as f32 }
        })
    }

    /// The size of `shot`'s next frame `rgb`, measured as `measured`.
    fn next_size(shot: &mut Shot, rgb: &Array3<f32>, measured: Option<f32>) -> Option<f32> {
        shot.next_frame(rgb);
        shot.size(measured)
    }

    #[test]
    fn a_shots_sizes_are_its_running_median_and_a_cut_starts_afresh() {
        let mut shot = Shot::new();
        let green = [40.0, 230.0, 90.0];
        // The person moves 4 px a frame; the pose model's sizes scatter, one frame is wild and
        // one could not be measured.
        let measured = [Some(1.0), Some(1.2), Some(0.9), Some(1.1), Some(5.0), None, Some(1.0)];
        let steady: Vec<_> = measured
            .iter()
            .enumerate()
            .map(|(i, &m)| next_size(&mut shot, &frame(120, 160, green, 20 + 4 * i), m))
            .collect();
        let expected = [1.0, 1.1, 1.0, 1.05, 1.1, 1.1, 1.05];
        for (s, e) in steady.iter().zip(expected) {
            assert!((s.unwrap() - e).abs() < 1e-6, "{steady:?}");
        }
        // Another scene, then one of another size: each its own shot.
        let violet = [200.0, 40.0, 230.0];
        assert_eq!(next_size(&mut shot, &frame(120, 160, violet, 60), Some(2.0)), Some(2.0));
        assert_eq!(next_size(&mut shot, &frame(120, 160, violet, 64), None), Some(2.0));
        assert_eq!(next_size(&mut shot, &frame(240, 320, violet, 64), None), None);
    }

    #[test]
    fn a_shot_pools_at_most_a_window_of_frames() {
        let mut shot = Shot::new();
        let scene = frame(64, 64, [128.0; 3], 10);
        for _ in 0..WINDOW {
            next_size(&mut shot, &scene, Some(1.0));
        }
        // WINDOW - 1 ones and a two: still one; WINDOW twos later only twos are left.
        assert_eq!(next_size(&mut shot, &scene, Some(2.0)), Some(1.0));
        let last = (1..WINDOW).map(|_| next_size(&mut shot, &scene, Some(2.0))).last().flatten();
        assert_eq!(last, Some(2.0));
    }

    #[test]
    fn the_person_is_tracked_within_a_shot_only() {
        let mut shot = Shot::new();
        let green = [40.0, 230.0, 90.0];
        let region = Roi { center: [30.0, 60.0], side: 50.0, rotation: 0.1 };
        shot.next_frame(&frame(120, 160, green, 20));
        assert_eq!(shot.tracked(), None);
        shot.found(Some(region));
        shot.next_frame(&frame(120, 160, green, 24));
        assert_eq!(shot.tracked(), Some(region));
        // Not found on this frame: nothing to track on the next.
        shot.found(None);
        shot.next_frame(&frame(120, 160, green, 28));
        assert_eq!(shot.tracked(), None);
        // Another photo (another scene) is searched afresh.
        shot.found(Some(region));
        shot.next_frame(&frame(120, 160, [200.0, 40.0, 230.0], 28));
        assert_eq!(shot.tracked(), None);
    }

    #[test]
    fn frames_differ_by_their_size_and_thumbnails_mean_colour() {
        let grey = |h, w, v| Frame::of(&Array3::from_elem((h, w, 3), v));
        let f = grey(32, 48, 100.0);
        assert_eq!(f.thumbnail.dim(), (16, 16, 3));
        assert!(f.thumbnail.iter().all(|&v| (v - 100.0).abs() < 1e-4));
        assert!(f.same_shot(&grey(32, 48, 100.0 + CUT)));
        assert!(!f.same_shot(&grey(32, 48, 101.0 + CUT)));
        assert!(!f.same_shot(&grey(64, 96, 100.0)));
        // A frame smaller than the grid is its own thumbnail.
        assert_eq!(grey(4, 6, 7.0).thumbnail.dim(), (4, 6, 3));
    }
}
