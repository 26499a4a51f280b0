//! One person in a photo: where they are (the selfie model's mask of the whole photo, its
//! largest person), then the pose model on a square around them, twice: the second time on the
//! region its own keypoints give (hips' centre, body scale and rotation, as MediaPipe tracks).
//! Results come back at the photo's resolution.

use std::path::Path;

use burn::prelude::*;
use hdnet_formats::crop::Bounds;
use hdnet_formats::densepose::Iuv;
use hdnet_formats::images::save_mask;
use hdnet_formats::item::ItemWriter;
use hdnet_formats::{FileError, write_atomic};
use ndarray::{Array2, Array3};
use serde::Serialize;

use crate::body_parts::iuv_from_keypoints;
use crate::models::{INPUT_SIZE, PoseLandmarks, PoseOutput, SelfieSegmentation};
use crate::video::Shot;

/// BlazePose's 33 body keypoints, in the model's order.
pub const KEYPOINT_NAMES: [&str; 33] = [
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
];

/// The landmarks that place the next region: the hips' centre and a point whose distance from it
/// is the body's radius and whose direction is the body's "up".
const ALIGNMENT: (usize, usize) = (33, 34);
/// A region is this much larger than the body's extent (MediaPipe's 1.25).
const ROI_MARGIN: f32 = 1.25;
/// The pose model's presence below which a region holds no person.
const PRESENCE: f32 = 0.5;
/// A person the pose model doubts still stands where the selfie model's region of them covers
/// at least this share of the photo.
const PLAIN_PERSON: f32 = 0.01;
/// A selfie-mask region counts as another person when it is at least this share of the largest.
const OTHER_PERSON: f32 = 0.2;
/// Pieces of the selfie model's mask this close (input pixels) belong to one person.
const JOIN: usize = 4;
/// How many times the search looks closer (see [`tiles`]).
const SEARCH_LEVELS: usize = 3;
/// At most this many passes of the pose model after the first.
const MAX_REFINEMENTS: usize = 2;
/// A region has settled when its centre and side move by less than this share of its side.
const SETTLED: f32 = 0.02;
/// Regions smaller than this share of the selfie model's input are noise.
const MIN_REGION: f32 = 0.002;
/// Keypoints at least this likely to be visible and inside the photo size the person.
const SIZING_CONFIDENCE: f32 = 0.5;
/// Fewer sizing keypoints than this do not span enough of a body to size it.
const MIN_SIZING_KEYPOINTS: usize = 6;

/// A square region of a photo, possibly rotated: where a model's 256 x 256 input comes from.
/// Input coordinates run over [0, 256] (pixel i's centre at i + 0.5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Roi {
    /// Centre (x, y) in photo pixels.
    pub center: [f32; 2],
    /// Side in photo pixels.
    pub side: f32,
    /// The turn of the region's axes against the photo's, in radians (clockwise on screen, as
    /// y grows downwards).
    pub rotation: f32,
}

impl Roi {
    /// The square around a whole `h` x `w` photo (the rest padded).
    pub fn whole(h: usize, w: usize) -> Self {
        Self { center: [w as f32 / 2.0, h as f32 / 2.0], side: h.max(w) as f32, rotation: 0.0 }
    }

    /// The photo point at input coordinates (u, v).
    pub fn to_photo(&self, u: f32, v: f32) -> [f32; 2] {
        let scale = self.side / INPUT_SIZE as f32;
        let (dx, dy) = ((u - INPUT_SIZE as f32 / 2.0) * scale, (v - INPUT_SIZE as f32 / 2.0) * scale);
        let (s, c) = self.rotation.sin_cos();
        [self.center[0] + c * dx - s * dy, self.center[1] + s * dx + c * dy]
    }

    /// The input coordinates of photo point (x, y).
    pub fn to_input(&self, x: f32, y: f32) -> [f32; 2] {
        let (dx, dy) = (x - self.center[0], y - self.center[1]);
        let (s, c) = self.rotation.sin_cos();
        let scale = INPUT_SIZE as f32 / self.side;
        [(c * dx + s * dy) * scale + INPUT_SIZE as f32 / 2.0, (-s * dx + c * dy) * scale + INPUT_SIZE as f32 / 2.0]
    }

    /// The model input: the region of `rgb` (H x W x 3, 0..255) as 256 x 256 x 3 in [0, 1],
    /// bilinear, black outside the photo.
    pub fn sample(&self, rgb: &Array3<f32>) -> Array3<f32> {
        let mut out = Array3::zeros((INPUT_SIZE, INPUT_SIZE, 3));
        for v in 0..INPUT_SIZE {
            for u in 0..INPUT_SIZE {
                let [x, y] = self.to_photo(u as f32 + 0.5, v as f32 + 0.5);
                for k in 0..3 {
                    out[(v, u, k)] = bilinear(|r, c| rgb.get((r, c, k)).copied(), x - 0.5, y - 0.5) / 255.0;
                }
            }
        }
        out
    }

    /// `values` of the model's 256 x 256 frame at each pixel of an `h` x `w` photo (bilinear,
    /// 0 outside the region).
    pub fn paste(&self, values: &Array2<f32>, h: usize, w: usize) -> Array2<f32> {
        Array2::from_shape_fn((h, w), |(r, c)| {
            let [u, v] = self.to_input(c as f32 + 0.5, r as f32 + 0.5);
            bilinear(|y, x| values.get((y, x)).copied(), u - 0.5, v - 0.5)
        })
    }

    /// [`Roi::paste`] of probabilities, as a mask: 1 where over 0.5, else 0.
    fn paste_mask(&self, probability: &Array2<f32>, h: usize, w: usize) -> Array2<f32> {
        self.paste(probability, h, w).mapv(|p| f32::from(u8::from(p > 0.5)))
    }

    /// The square around the box (x0, y0)-(x1, y1) with [`ROI_MARGIN`].
    fn around_box([x0, y0, x1, y1]: [f32; 4]) -> Self {
        Self { center: [(x0 + x1) / 2.0, (y0 + y1) / 2.0], side: (x1 - x0).max(y1 - y0) * ROI_MARGIN, rotation: 0.0 }
    }
}

/// Bilinear interpolation of `at(row, col)` at continuous (x, y) in pixel-index units; pixels
/// outside (`None`) count as 0.
fn bilinear(at: impl Fn(usize, usize) -> Option<f32>, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let pixel = |r: f32, c: f32| if r < 0.0 || c < 0.0 { 0.0 } else { at(r as usize, c as usize).unwrap_or(0.0) };
    let top = pixel(y0, x0) * (1.0 - fx) + pixel(y0, x0 + 1.0) * fx;
    let bottom = pixel(y0 + 1.0, x0) * (1.0 - fx) + pixel(y0 + 1.0, x0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// One of the 33 keypoints.
#[derive(Debug, Clone, Serialize)]
pub struct Keypoint {
    pub name: &'static str,
    /// Photo pixels.
    pub x: f32,
    pub y: f32,
    /// Depth relative to the hips, at the scale of x (smaller is nearer the camera).
    pub z: f32,
    /// Probability that the point is visible (not occluded) in the photo.
    pub visibility: f32,
    /// Probability that the point lies inside the photo.
    pub presence: f32,
    /// Metres around the hips' centre: x right, y down, z away from the camera.
    pub world: [f32; 3],
}

/// The person found in a photo.
#[derive(Debug, Clone)]
pub struct Person {
    /// 1 on the person, 0 elsewhere, at the photo's resolution.
    pub mask: Array2<f32>,
    pub keypoints: Vec<Keypoint>,
    /// The pose model's confidence that its region holds a person.
    pub presence: f32,
    /// How many people the selfie model saw (0 when the region came from the previous frame).
    pub people: usize,
    /// The region the pose model looked at last.
    pub region: Roi,
    /// Where the next frame of a video should look.
    pub next_roi: Roi,
}

impl Person {
    /// Whether the pose model doubts this is a person.
    pub fn doubted(&self) -> bool {
        self.presence < PRESENCE
    }

    /// What a user should know when the pose model doubts this is a person: the mask is then
    /// the selfie model's and the keypoints are guesses.
    pub fn doubt(&self) -> Option<String> {
        self.doubted().then(|| {
            format!(
                "the pose model doubts a person is there ({:.2}; a person seen from behind?): the mask is the \
                 selfie model's and the keypoints are guesses; look at the mask (--mask gives one)",
                self.presence
            )
        })
    }

    /// Writes `NAME_mask.png` (grey, 255 on the person, at the photo's resolution) and
    /// `NAME_keypoints.json` (the 33 keypoints) into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> Result<(), FileError> {
        save_mask(dir.join(format!("{name}_mask.png")), &self.mask)?;
        /// The JSON file, its fields in this order.
        #[derive(Serialize)]
        struct KeypointsFile<'a> {
            width: usize,
            height: usize,
            presence: f32,
            people_seen: usize,
            region: Roi,
            keypoints: &'a [Keypoint],
        }
        let (height, width) = self.mask.dim();
        let file = KeypointsFile {
            width,
            height,
            presence: self.presence,
            people_seen: self.people,
            region: self.region,
            keypoints: &self.keypoints,
        };
        let path = dir.join(format!("{name}_keypoints.json"));
        let text = serde_json::to_string_pretty(&file).map_err(|e| FileError::new(&path, e))?;
        write_atomic(&path, text.as_bytes())
    }

    /// The DensePose-like IUV map of the person from their keypoints (see
    /// [`crate::body_parts`]), at the photo's resolution.
    pub fn iuv(&self) -> Iuv {
        iuv_from_keypoints(&self.mask, &self.keypoints)
    }

    /// Writes [`Person::iuv`] as `NAME_iuv.png`.
    pub fn write_iuv(&self, dir: &Path, name: &str) -> Result<(), FileError> {
        self.iuv().save(dir.join(format!("{name}_iuv.png")))
    }

    /// Writes the person's files into `out` as one item (all of them or none): [`Person::write`]
    /// and, with `iuv`, [`Person::write_iuv`]; files already there are kept unless `overwrite`.
    pub fn write_item(&self, out: &Path, name: &str, iuv: bool, overwrite: bool) -> Result<(), FileError> {
        let item = ItemWriter::new(out, name)?;
        let written =
            self.write(item.dir(), name).and_then(|()| if iuv { self.write_iuv(item.dir(), name) } else { Ok(()) });
        written.map_err(|e| item.named_finally(e))?;
        item.commit(overwrite)?;
        Ok(())
    }
}

/// Why no person was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotFound {
    #[error("no person found")]
    Nobody,
    #[error("no person found (the pose model's confidence is {0:.2})")]
    Unsure(f32),
}

/// Both models, loaded once.
#[derive(Debug)]
pub struct Segmenter {
    selfie: SelfieSegmentation,
    pose: PoseLandmarks,
    device: Device,
}

impl Segmenter {
    pub fn new(device: &Device) -> Self {
        Self { selfie: SelfieSegmentation::new(device), pose: PoseLandmarks::new(device), device: device.clone() }
    }

    /// The most prominent person of `rgb` (H x W x 3, 0..255). With `previous`, the region a
    /// previous frame gave is tried first (videos), and the search only when it holds nobody.
    pub fn find(&self, rgb: &Array3<f32>, previous: Option<Roi>) -> Result<Person, NotFound> {
        let (h, w, _) = rgb.dim();
        // A tracked region comes from the previous frame's keypoints already: one pass is enough.
        let tracked = previous.map(|roi| (roi, self.pose.run(&roi.sample(rgb), &self.device)));
        let Searched { roi, out, people, doubted } = match tracked {
            Some((roi, out)) if out.presence >= PRESENCE => Searched { roi, out, people: 0, doubted: None },
            _ => self.search(rgb)?,
        };
        let mask = match doubted {
            // The pose model's mask is of a body: it leaves out the hair it doubted.
            Some(bounds) => self.selfie_mask(rgb, bounds),
            None => roi.paste_mask(&out.segmentation.mapv(sigmoid), h, w),
        };
        if mask.iter().all(|&m| m == 0.0) {
            return Err(NotFound::Nobody);
        }
        Ok(Person {
            mask,
            keypoints: keypoints(&out, &roi),
            presence: out.presence,
            people,
            region: roi,
            next_roi: aligned_roi(&out, &roi),
        })
    }

    /// The most prominent person of `rgb`, the current frame of `shot`: searched from where the
    /// shot's previous frame had its person ([`Segmenter::find`]), and where they are now
    /// recorded for the next frame.
    pub fn follow(&self, rgb: &Array3<f32>, shot: &mut Shot) -> Result<Person, NotFound> {
        let found = self.find(rgb, shot.tracked());
        shot.found(found.as_ref().ok().map(|p| p.next_roi));
        found
    }

    /// The keypoints of the person within `b`, a mask's bounds in the photo: the pose model on
    /// the square around them, then on the region its keypoints give. The mask says a person is
    /// there, so the pose model's doubt (a close-up, a cut body) is not a refusal: each keypoint
    /// carries its own confidence. Its presence score would not tell a person from a grey
    /// surface here: held-out synthetic close-ups under their masks score as low (0.0005), and
    /// their sizes, though poor, are closer than an assumed standing adult's.
    pub fn keypoints_within(&self, rgb: &Array3<f32>, b: Bounds) -> Vec<Keypoint> {
        let roi = Roi::around_box([b.left, b.top, b.right + 1, b.bottom + 1].map(|v| v as f32));
        let first = self.pose.run(&roi.sample(rgb), &self.device);
        let (roi, out) = self.refine(rgb, roi, first);
        keypoints(&out, &roi)
    }

    /// The largest person the selfie model sees, looked for ever closer (the whole photo, then
    /// overlapping halves, then quarters: a small person vanishes at 256 x 256) until the pose
    /// model confirms one; with the pose model's refined region and output, and the people seen.
    /// Where it confirms none, the region it was surest of stands if the selfie model saw a
    /// person there plainly: the pose model doubts people seen from behind or with hair over
    /// the face, whom the selfie model sees as well as any; the selfie model's box of the person
    /// then comes with the region.
    fn search(&self, rgb: &Array3<f32>) -> Result<Searched, NotFound> {
        let (h, w, _) = rgb.dim();
        let mut unsure: Option<Searched> = None;
        let mut failure = NotFound::Nobody;
        for level in 0..SEARCH_LEVELS {
            let seen = self.people_seen(rgb, &tiles(h, w, level));
            let Some(largest) = seen.iter().max_by(|a, b| a.area.total_cmp(&b.area)) else { continue };
            let people = seen.iter().filter(|p| p.area >= OTHER_PERSON * largest.area).count();
            let roi = Roi::around_box(largest.bounds);
            let first = self.pose.run(&roi.sample(rgb), &self.device);
            if first.presence >= PRESENCE {
                let (roi, out) = self.refine(rgb, roi, first);
                return Ok(Searched { roi, out, people, doubted: None });
            }
            failure = NotFound::Unsure(first.presence);
            let plain = largest.area >= PLAIN_PERSON * (h * w) as f32;
            if plain && unsure.as_ref().is_none_or(|best| first.presence > best.out.presence) {
                unsure = Some(Searched { roi, out: first, people, doubted: Some(largest.bounds) });
            }
        }
        let Some(Searched { roi, out, people, doubted }) = unsure else { return Err(failure) };
        let (roi, out) = self.refine(rgb, roi, out);
        // Refined, the pose model may be sure of the person after all.
        let doubted = doubted.filter(|_| out.presence < PRESENCE);
        Ok(Searched { roi, out, people, doubted })
    }

    /// The pose model run again on the region its keypoints give until that region settles:
    /// a first region cut around a mask misses the body's extent where the photo cuts it. A
    /// region it doubts is kept only over one it doubts more.
    fn refine(&self, rgb: &Array3<f32>, mut roi: Roi, mut out: PoseOutput) -> (Roi, PoseOutput) {
        for _ in 0..MAX_REFINEMENTS {
            let next = aligned_roi(&out, &roi);
            let moved = (next.center[0] - roi.center[0]).hypot(next.center[1] - roi.center[1]);
            if moved < SETTLED * roi.side && (next.side - roi.side).abs() < SETTLED * roi.side {
                break;
            }
            let again = self.pose.run(&next.sample(rgb), &self.device);
            if again.presence < PRESENCE.min(out.presence) {
                break;
            }
            (roi, out) = (next, again);
        }
        (roi, out)
    }

    /// The selfie model's mask of the person within `bounds` (photo pixels), looked at closely:
    /// its largest region on the square around them, at the photo's resolution.
    fn selfie_mask(&self, rgb: &Array3<f32>, bounds: [f32; 4]) -> Array2<f32> {
        let (h, w, _) = rgb.dim();
        let roi = Roi::around_box(bounds);
        let probability = self.selfie.run(&roi.sample(rgb), &self.device);
        let person = largest_region(&probability.mapv(|p| p > 0.5));
        let kept = Array2::from_shape_fn(probability.dim(), |p| if person[p] { probability[p] } else { 0.0 });
        roi.paste_mask(&kept, h, w)
    }

    /// The people the selfie model sees in `tiles`, in photo pixels; pieces of one person seen
    /// in overlapping tiles are joined.
    fn people_seen(&self, rgb: &Array3<f32>, tiles: &[Roi]) -> Vec<Seen> {
        let mut seen: Vec<Seen> = Vec::new();
        for tile in tiles {
            let mask = self.selfie.run(&tile.sample(rgb), &self.device).mapv(|p| p > 0.5);
            let pixel_area = (tile.side / INPUT_SIZE as f32).powi(2);
            for region in
                regions(&mask).into_iter().filter(|r| r.area() as f32 >= MIN_REGION * (INPUT_SIZE * INPUT_SIZE) as f32)
            {
                let [u0, v0, u1, v1] = region.bounds;
                let ([x0, y0], [x1, y1]) = (tile.to_photo(u0, v0), tile.to_photo(u1, v1));
                let found = Seen { bounds: [x0, y0, x1, y1], area: region.area() as f32 * pixel_area };
                // Pieces of a person cut by a tile's edge meet there.
                let near = JOIN as f32 * tile.side / INPUT_SIZE as f32;
                match seen.iter_mut().find(|s| s.near(&found, near)) {
                    Some(s) => s.join(&found),
                    None => seen.push(found),
                }
            }
        }
        seen
    }
}

/// What the search found.
struct Searched {
    /// The pose model's region and its output there.
    roi: Roi,
    out: PoseOutput,
    /// The people the selfie model saw (0 when a tracked region held the person).
    people: usize,
    /// The selfie model's box of the person when the pose model doubts them.
    doubted: Option<[f32; 4]>,
}

/// A person the selfie model saw: bounds (x0, y0, x1, y1) and area in photo pixels.
struct Seen {
    bounds: [f32; 4],
    area: f32,
}

impl Seen {
    /// Whether the two boxes overlap or come within `distance` of each other.
    fn near(&self, other: &Seen, distance: f32) -> bool {
        let [a, b] = [self.bounds, other.bounds];
        a[0] <= b[2] + distance && b[0] <= a[2] + distance && a[1] <= b[3] + distance && b[1] <= a[3] + distance
    }

    /// The same person seen again: the union of the bounds and, as tiles overlap, the larger
    /// area unless the two pieces lie side by side.
    fn join(&mut self, other: &Seen) {
        let [a, b] = [self.bounds, other.bounds];
        let apart = a[2] <= b[0] || b[2] <= a[0] || a[3] <= b[1] || b[3] <= a[1];
        self.bounds = [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])];
        self.area = if apart { self.area + other.area } else { self.area.max(other.area) };
    }
}

/// The squares the selfie model looks at on search level `level`: the whole photo, then squares
/// of half its longer side, then a quarter, each overlapping its neighbours by half; none once a
/// square would be under half the models' input (looking closer only blurs).
fn tiles(h: usize, w: usize, level: usize) -> Vec<Roi> {
    if level == 0 {
        return vec![Roi::whole(h, w)];
    }
    let side = h.max(w) as f32 / (1 << level) as f32;
    if side < INPUT_SIZE as f32 / 2.0 {
        return Vec::new();
    }
    let centres = |extent: f32| -> Vec<f32> {
        if extent <= side {
            return vec![extent / 2.0];
        }
        let steps = ((extent - side) / (side / 2.0)).ceil() as usize;
        (0..=steps).map(|i| side / 2.0 + (extent - side) * i as f32 / steps as f32).collect()
    };
    let (xs, ys) = (centres(w as f32), centres(h as f32));
    ys.iter().flat_map(|&y| xs.iter().map(move |&x| Roi { center: [x, y], side, rotation: 0.0 })).collect()
}

/// The region MediaPipe tracks a body with: centred on the hips, its side 2 x 1.25 the body's
/// radius, turned so that the body points up.
fn aligned_roi(out: &PoseOutput, roi: &Roi) -> Roi {
    let point = |i: usize| roi.to_photo(out.landmarks[(i, 0)], out.landmarks[(i, 1)]);
    let (center, top) = (point(ALIGNMENT.0), point(ALIGNMENT.1));
    let (dx, dy) = (top[0] - center[0], top[1] - center[1]);
    let radius = dx.hypot(dy);
    // The angle of centre -> top against the photo's up (y grows downwards), turned to 90 degrees.
    let angle = (-dy).atan2(dx);
    let rotation = normalize_angle(std::f32::consts::FRAC_PI_2 - angle);
    Roi { center, side: 2.0 * radius * ROI_MARGIN, rotation }
}

/// A standing adult's height in metres: a person's larger extent when neither the user nor the
/// pose model tells.
pub const DEFAULT_EXTENT: f32 = 1.75;

/// The person's metres per photo pixel: the pose model's metric keypoints (`world`, sized as
/// its training bodies) against where it sees them in the photo, by least squares over the
/// keypoints it is sure of (both sets centred; the world's x and y lie along the photo's).
/// None when too few keypoints are sure or they do not spread.
pub fn metres_per_pixel(keypoints: &[Keypoint]) -> Option<f32> {
    let sure: Vec<&Keypoint> = keypoints
        .iter()
        .filter(|k| k.visibility >= SIZING_CONFIDENCE && k.presence >= SIZING_CONFIDENCE)
        .filter(|k| k.x.is_finite() && k.y.is_finite() && k.world.iter().all(|w| w.is_finite()))
        .collect();
    if sure.len() < MIN_SIZING_KEYPOINTS {
        return None;
    }
    let n = sure.len() as f32;
    let mean = |f: &dyn Fn(&Keypoint) -> f32| sure.iter().map(|k| f(k)).sum::<f32>() / n;
    let (px, py) = (mean(&|k| k.x), mean(&|k| k.y));
    let (wx, wy) = (mean(&|k| k.world[0]), mean(&|k| k.world[1]));
    let (mut along, mut spread) = (0.0, 0.0);
    for k in &sure {
        let (dx, dy) = (k.x - px, k.y - py);
        along += (k.world[0] - wx) * dx + (k.world[1] - wy) * dy;
        spread += dx * dx + dy * dy;
    }
    let scale = along / spread;
    (scale.is_finite() && scale > 0.0).then_some(scale)
}

fn normalize_angle(a: f32) -> f32 {
    let tau = std::f32::consts::TAU;
    a - tau * ((a + std::f32::consts::PI) / tau).floor()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn keypoints(out: &PoseOutput, roi: &Roi) -> Vec<Keypoint> {
    let (s, c) = roi.rotation.sin_cos();
    KEYPOINT_NAMES
        .iter()
        .enumerate()
        .map(|(i, &name)| {
            let l = out.landmarks.row(i);
            let [x, y] = roi.to_photo(l[0], l[1]);
            let world = out.world.row(i);
            Keypoint {
                name,
                x,
                y,
                z: l[2] * roi.side / INPUT_SIZE as f32,
                visibility: sigmoid(l[3]),
                presence: sigmoid(l[4]),
                world: [c * world[0] - s * world[1], s * world[0] + c * world[1], world[2]],
            }
        })
        .collect()
}

/// A 4-connected region of a mask: its pixel count and bounds (u0, v0, u1, v1) in input coordinates.
struct Region {
    bounds: [f32; 4],
    /// (row, col) of each of its pixels.
    pixels: Vec<(usize, usize)>,
}

impl Region {
    fn area(&self) -> usize {
        self.pixels.len()
    }
}

/// The people of a mask: its 4-connected regions once each is grown by [`JOIN`] pixels, so that
/// the pieces of one person (the selfie model often misses a small person's limbs) count as one.
/// Areas and bounds are of the mask's own pixels.
fn regions(mask: &Array2<bool>) -> Vec<Region> {
    let (h, w) = mask.dim();
    let grown = Array2::from_shape_fn((h, w), |(r, c)| {
        let near = |a: usize, n: usize| a.saturating_sub(JOIN)..(a + JOIN + 1).min(n);
        near(r, h).any(|y| near(c, w).any(|x| mask[(y, x)]))
    });
    let mut seen = Array2::from_elem((h, w), false);
    let mut found = Vec::new();
    for start in mask.indexed_iter().filter(|(_, m)| **m).map(|(p, _)| p) {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let (mut stack, mut pixels, mut bounds) = (vec![start], Vec::new(), [f32::MAX, f32::MAX, 0.0f32, 0.0f32]);
        while let Some((r, c)) = stack.pop() {
            if mask[(r, c)] {
                pixels.push((r, c));
                let [u0, v0, u1, v1] = bounds;
                bounds = [u0.min(c as f32), v0.min(r as f32), u1.max(c as f32 + 1.0), v1.max(r as f32 + 1.0)];
            }
            let neighbours = [(r.wrapping_sub(1), c), (r + 1, c), (r, c.wrapping_sub(1)), (r, c + 1)];
            for n in neighbours {
                if n.0 < h && n.1 < w && grown[n] && !seen[n] {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        found.push(Region { bounds, pixels });
    }
    found
}

/// The pixels of the largest of [`regions`] of `mask`.
fn largest_region(mask: &Array2<bool>) -> Array2<bool> {
    let mut kept = Array2::from_elem(mask.dim(), false);
    if let Some(largest) = regions(mask).into_iter().max_by_key(Region::area) {
        for p in largest.pixels {
            kept[p] = true;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_maps_input_to_photo_and_back() {
        let roi = Roi { center: [300.0, 200.0], side: 128.0, rotation: 0.4 };
        let [x, y] = roi.to_photo(10.0, 250.0);
        let [u, v] = roi.to_input(x, y);
        assert!((u - 10.0).abs() < 1e-3 && (v - 250.0).abs() < 1e-3, "{u} {v}");
        // The input's centre is the region's centre; its top-left corner is half a side away.
        assert_eq!(roi.to_photo(128.0, 128.0), [300.0, 200.0]);
        let unrotated = Roi { rotation: 0.0, ..roi };
        assert_eq!(unrotated.to_photo(0.0, 0.0), [236.0, 136.0]);
    }

    fn keypoint(x: f32, y: f32, world: [f32; 3], visibility: f32) -> Keypoint {
        Keypoint { name: "nose", x, y, z: 0.0, visibility, presence: 1.0, world }
    }

    /// Seven sure keypoints 0.004 m per pixel apart (depth does not matter) and two hidden ones
    /// placed wrongly: the scale is the sure ones', exactly.
    #[test]
    fn a_person_is_sized_by_the_keypoints_the_pose_model_is_sure_of() {
        let pixels = [
            (100.0, 50.0),
            (120.0, 60.0),
            (90.0, 200.0),
            (130.0, 210.0),
            (80.0, 120.0),
            (140.0, 125.0),
            (110.0, 300.0),
        ];
        let mut points: Vec<Keypoint> = pixels
            .iter()
            .enumerate()
            .map(|(i, &(x, y))| keypoint(x, y, [(x - 110.0) * 0.004, (y - 150.0) * 0.004, 0.1 * i as f32], 0.9))
            .collect();
        points.push(keypoint(0.0, 0.0, [5.0, -3.0, 0.0], 0.2));
        points.push(Keypoint { presence: 0.1, ..keypoint(500.0, 0.0, [-2.0, 7.0, 0.0], 0.9) });
        let scale = metres_per_pixel(&points).unwrap();
        assert!((scale - 0.004).abs() < 1e-7, "{scale}");
        // Too few sure keypoints, or all in one place: no size.
        points[0].visibility = 0.4;
        assert!(metres_per_pixel(&points).is_some(), "six are enough");
        points[1].visibility = 0.4;
        assert_eq!(metres_per_pixel(&points), None);
        let one_place: Vec<Keypoint> = (0..8).map(|_| keypoint(10.0, 10.0, [0.0, 0.0, 0.0], 1.0)).collect();
        assert_eq!(metres_per_pixel(&one_place), None);
    }

    #[test]
    fn regions_are_counted_with_their_bounds() {
        let mut mask = Array2::from_elem((20, 12), false);
        // Two pieces 4 pixels apart are one person; a third 5 pixels further is another.
        for (r, c) in [(1, 1), (1, 2), (2, 2), (2, 6), (17, 9), (18, 9), (18, 10), (19, 10)] {
            mask[(r, c)] = true;
        }
        let found = regions(&mask);
        let mut areas: Vec<_> = found.iter().map(|r| (r.area(), r.bounds)).collect();
        areas.sort_by_key(|a| a.0);
        assert_eq!(areas, vec![(4, [1.0, 1.0, 7.0, 3.0]), (4, [9.0, 17.0, 11.0, 20.0])]);
    }

    /// A body pointing straight up needs no rotation; one lying with its head to the right needs
    /// a quarter turn.
    #[test]
    fn the_tracked_region_is_turned_so_that_the_body_points_up() {
        let roi = Roi { center: [128.0, 128.0], side: 256.0, rotation: 0.0 };
        let out = |top: [f32; 2]| {
            let mut landmarks = Array2::zeros((39, 5));
            landmarks.row_mut(33).assign(&ndarray::arr1(&[128.0, 128.0, 0.0, 0.0, 0.0]));
            landmarks.row_mut(34).assign(&ndarray::arr1(&[top[0], top[1], 0.0, 0.0, 0.0]));
            PoseOutput { landmarks, presence: 1.0, segmentation: Array2::zeros((1, 1)), world: Array2::zeros((39, 3)) }
        };
        let up = aligned_roi(&out([128.0, 88.0]), &roi);
        assert_eq!((up.center, up.side, up.rotation), ([128.0, 128.0], 100.0, 0.0));
        let right = aligned_roi(&out([168.0, 128.0]), &roi);
        // The region's "up" (input v decreasing) must point along the photo's +x.
        let [x0, y0] = right.to_photo(128.0, 128.0);
        let [x1, y1] = right.to_photo(128.0, 28.0);
        assert!((x1 - x0 - 39.06).abs() < 0.1 && (y1 - y0).abs() < 1e-3, "{x0} {y0} -> {x1} {y1}");
    }
}
