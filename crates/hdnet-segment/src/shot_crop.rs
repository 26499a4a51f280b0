//! A video's frames framed for training as the original's dance videos are: one square crop per
//! shot around everywhere its person goes (framed alike on every frame, not zoomed as they move
//! their arms), resized to the networks' input, with the camera of that crop, which sees the
//! person at their real size at the depth the networks place people at. A shot's frames are
//! kept until it ends as their person's mask within its bounds and keypoints (the frames are
//! read again to be cut), so that a long shot of large frames stays small.

use hdnet_formats::crop::{Bounds, Crop};
use hdnet_formats::densepose::Iuv;
use hdnet_geometry::{Camera, median};
use ndarray::{Array2, Array3, Axis, s};

use crate::body_parts::iuv_from_keypoints;
use crate::person::{DEFAULT_EXTENT, Keypoint, Person, metres_per_pixel};

/// The frames of the shot in progress.
pub struct ShotFrames<T> {
    frames: Vec<ShotFrame<T>>,
    /// The frames' size (rows, columns); one shot's frames share it.
    photo: (usize, usize),
}

/// A frame of a shot: what the caller names it by, and its person.
pub struct ShotFrame<T> {
    pub id: T,
    bounds: Bounds,
    /// The mask (0 or 1) within `bounds`.
    mask: Array2<u8>,
    keypoints: Vec<Keypoint>,
}

/// A shot framed: the square every frame is cut by and its camera.
pub struct FramedShot<T> {
    pub crop: Crop,
    pub camera: Camera,
    /// The person's largest extent over the shot, in metres, as the camera sees them.
    pub extent: f32,
    /// Whether the pose model sized the person (else [`DEFAULT_EXTENT`] was assumed).
    pub sized_by_pose: bool,
    /// The networks' input side.
    size: usize,
    frames: Vec<ShotFrame<T>>,
}

/// One frame cut by its shot's crop, at the networks' input size.
pub struct FramedFrame {
    /// 0..255, white past the photo's borders.
    pub rgb: Array3<f32>,
    /// 1 on the person.
    pub mask: Array2<f32>,
    /// From the keypoints, on the cut mask.
    pub iuv: Iuv,
}

impl<T> Default for ShotFrames<T> {
    fn default() -> Self {
        Self { frames: Vec::new(), photo: (0, 0) }
    }
}

impl<T> ShotFrames<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `person`, found on the frame `id` of the shot in progress.
    pub fn push(&mut self, id: T, person: &Person) {
        let Some(bounds) = Bounds::of(&person.mask) else { return };
        let mask =
            person.mask.slice(s![bounds.top..=bounds.bottom, bounds.left..=bounds.right]).mapv(|m| u8::from(m > 0.0));
        self.photo = person.mask.dim();
        self.frames.push(ShotFrame { id, bounds, mask, keypoints: person.keypoints.clone() });
    }

    /// Ends the shot (the next frame starts another): the square around its person on every
    /// frame, their largest extent `fill` of its side (see [`Crop::around`]), cut to `size`
    /// pixels; its camera sees them at their size at `depth` metres: the pose model's metres per
    /// pixel (the median over the frames it could measure), else [`DEFAULT_EXTENT`] over their
    /// larger extent. None when no frame had a person.
    pub fn framed(&mut self, fill: f32, depth: f32, size: usize) -> Option<FramedShot<T>> {
        let frames = std::mem::take(&mut self.frames);
        let bounds = frames.iter().map(|f| f.bounds).reduce(|a, b| a.union(&b))?;
        let crop = Crop::around_bounds(bounds, self.photo, fill);
        let measured: Vec<f32> = frames.iter().filter_map(|f| metres_per_pixel(&f.keypoints)).collect();
        let sized_by_pose = !measured.is_empty();
        let metres_per_pixel = if sized_by_pose {
            median(measured)
        } else {
            DEFAULT_EXTENT / median(frames.iter().map(|f| f.bounds.longer_side() as f32).collect())
        };
        let camera = crop_camera(crop, self.photo, depth / metres_per_pixel, size);
        let extent = metres_per_pixel * bounds.longer_side() as f32;
        Some(FramedShot { crop, camera, extent, sized_by_pose, size, frames })
    }
}

impl<T> FramedShot<T> {
    pub fn frames(&self) -> &[ShotFrame<T>] {
        &self.frames
    }

    /// `frame` of this shot cut from `rgb`, its photo (H x W x 3, 0..255).
    pub fn cut(&self, frame: &ShotFrame<T>, rgb: &Array3<f32>) -> FramedFrame {
        let (crop, n) = (self.crop, self.size);
        // The crop as seen from the mask's bounds: nothing lies outside them.
        let b = frame.bounds;
        let local = Crop { top: crop.top - b.top as i64, left: crop.left - b.left as i64, ..crop };
        let on = frame.mask.mapv(|m| f32::from(m) * 255.0).insert_axis(Axis(2));
        let mask =
            local.resample(&on, n, 0.0, true).index_axis_move(Axis(2), 0).mapv(|m| f32::from(u8::from(m >= 128.0)));
        let scale = n as f32 / crop.side as f32;
        let keypoints: Vec<Keypoint> = frame
            .keypoints
            .iter()
            .map(|k| Keypoint {
                x: (k.x - crop.left as f32) * scale,
                y: (k.y - crop.top as f32) * scale,
                z: k.z * scale,
                ..k.clone()
            })
            .collect();
        FramedFrame { rgb: crop.resample(rgb, n, 255.0, true), iuv: iuv_from_keypoints(&mask, &keypoints), mask }
    }
}

/// The camera of `crop` (cut to `size` pixels) of an `h` x `w` photo taken with focal length
/// `focal` (photo pixels) from its centre: crop pixel (r, c) is the photo's point under its
/// centre, (left + (c + 1/2) side/size - 1/2, ...) in pixel indices.
fn crop_camera(crop: Crop, (h, w): (usize, usize), focal: f32, size: usize) -> Camera {
    let half = (crop.side as f32 / size as f32 - 1.0) / 2.0;
    let centre = [(w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0];
    Camera::photo_crop(focal, centre, [crop.left as f32 + half, crop.top as f32 + half], crop.side as f32, size)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::body_parts::tests::{SIZE, keypoints, mask};
    use crate::person::Roi;

    /// The hand-made figure placed at (`dy`, `dx`) of a 300x400 photo; its keypoints' world
    /// coordinates at 1 cm a pixel.
    pub(crate) fn person_at(dy: usize, dx: usize) -> Person {
        let figure = mask();
        let mut photo = Array2::zeros((300, 400));
        photo.slice_mut(s![dy..dy + SIZE, dx..dx + SIZE]).assign(&figure);
        let keypoints = keypoints(false)
            .into_iter()
            .map(|k| {
                let (x, y) = (k.x + dx as f32, k.y + dy as f32);
                Keypoint { x, y, world: [0.01 * x, 0.01 * y, 0.0], ..k }
            })
            .collect();
        let region = Roi::whole(300, 400);
        Person { mask: photo, keypoints, presence: 1.0, people: 1, region, next_roi: region }
    }

    #[test]
    fn a_shot_is_cut_by_one_square_around_everywhere_its_person_goes() {
        let mut shot = ShotFrames::new();
        for (k, (dy, dx)) in [(100, 40), (110, 80), (120, 160)].into_iter().enumerate() {
            shot.push(k, &person_at(dy, dx));
        }
        // The figure's mask spans rows 13..=124 and columns 8..=119 of its 128 square: over the
        // shot rows 113..=244, columns 48..=279, 232 wide; at fill 232/256 the side is 256.
        let size = 256;
        let framed = shot.framed(0.906_25, 4.0, size).unwrap();
        assert!(shot.framed(0.9, 4.0, size).is_none(), "the shot was ended");
        let figure = mask();
        let bounds = Bounds::of(&figure).unwrap();
        assert_eq!((bounds.top, bounds.bottom, bounds.left, bounds.right), (13, 124, 8, 119));
        assert_eq!(framed.crop, Crop { top: 179 - 128, left: 164 - 128, side: 256 });
        // At one crop pixel a photo pixel, each frame's cut is the figure where it stood, and its
        // IUV the figure's own.
        let own = iuv_from_keypoints(&figure, &keypoints(false));
        for (frame, (dy, dx)) in framed.frames().iter().zip([(100, 40), (110, 80), (120, 160)]) {
            let rgb = Array3::from_elem((300, 400, 3), 7.0);
            let cut = framed.cut(frame, &rgb);
            let (oy, ox) = (dy - 51, dx - 36);
            for ((r, c), &m) in cut.mask.indexed_iter() {
                let inside = (oy..oy + SIZE).contains(&r) && (ox..ox + SIZE).contains(&c);
                let (fr, fc) = (r.wrapping_sub(oy), c.wrapping_sub(ox));
                assert_eq!(m, if inside { figure[(fr, fc)] } else { 0.0 }, "mask at ({r}, {c}) of frame {}", frame.id);
                if inside && m > 0.0 {
                    assert_eq!(cut.iuv.part[(r, c)], own.part[(fr, fc)]);
                    assert!((cut.iuv.u[(r, c)] - own.u[(fr, fc)]).abs() < 1e-4);
                }
            }
            // The crop reaches 6 rows past the photo's bottom: white there.
            assert!(cut.rgb.indexed_iter().all(|((r, _, _), &v)| v == if r < 300 - 51 { 7.0 } else { 255.0 }));
        }
    }

    #[test]
    fn a_shots_camera_sees_its_person_at_their_size_where_the_photo_shows_them() {
        let mut shot = ShotFrames::new();
        shot.push("a", &person_at(100, 40));
        // Cut to half the crop's side: a crop pixel spans two photo pixels.
        let framed = shot.framed(0.5, 4.0, 112).unwrap();
        let crop = framed.crop;
        assert_eq!(crop.side, 224);
        let camera = framed.camera;
        // The keypoints say 1 cm a photo pixel: at 4 m, focal length 400.
        assert!((camera.fx - 400.0).abs() < 1e-3 && camera.fx == camera.fy, "{camera:?}");
        assert!(framed.sized_by_pose && (framed.extent - 1.12).abs() < 1e-4, "112 pixels at 1 cm: {}", framed.extent);
        // Crop pixel (r, c) looks through photo pixel (top + 2r + 1/2, left + 2c + 1/2).
        for (r, c) in [(0.0, 0.0), (50.0, 30.0), (111.0, 111.0)] {
            let [x, y] = camera.project_to_frame(camera.backproject(r, c, 4.0));
            assert!((x - (crop.left as f32 + 2.0 * c + 0.5)).abs() < 1e-3, "{x} at column {c}");
            assert!((y - (crop.top as f32 + 2.0 * r + 0.5)).abs() < 1e-3, "{y} at row {r}");
        }
        // Two crop pixels 10 apart lie 20 photo pixels, 20 cm, apart at 4 m.
        let (a, b) = (camera.backproject(40.0, 40.0, 4.0), camera.backproject(40.0, 50.0, 4.0));
        assert!((b[0] - a[0] - 0.2).abs() < 1e-4, "{a:?} {b:?}");
        // The cut mask is the figure's, halved.
        let cut = framed.cut(&framed.frames()[0], &Array3::zeros((300, 400, 3)));
        let (on, figure_on) = (cut.mask.sum(), mask().sum());
        assert!((on / (figure_on / 4.0) - 1.0).abs() < 0.05, "{on} vs {figure_on} / 4");
        // Without a measurable keypoint, the person's extent is taken for a standing adult's.
        let mut unsure = person_at(100, 40);
        unsure.keypoints.iter_mut().for_each(|k| k.visibility = 0.0);
        shot.push("b", &unsure);
        let assumed = shot.framed(0.5, 4.0, 112).unwrap();
        assert!((assumed.camera.fx - 4.0 * 112.0 / DEFAULT_EXTENT).abs() < 1e-2, "{:?}", assumed.camera);
        assert!(!assumed.sized_by_pose && (assumed.extent - DEFAULT_EXTENT).abs() < 1e-5);
    }
}
