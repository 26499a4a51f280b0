//! A DensePose-like IUV map from the pose model's keypoints, for training on one's own videos
//! without DensePose (a Python/Detectron2 model): each pixel of the person's mask goes to the
//! body part whose bone (keypoint to keypoint) it is nearest, relative to the part's thickness;
//! U runs along the bone from its first keypoint to its second, V across it, from one side of the
//! part's silhouette to the other at that height. The front or back part of a pair (DensePose
//! numbers the front and back of torso, arms and legs apart) is chosen by which way the person
//! faces, and the head's two halves by the side of its axis.
//!
//! The same spot of a limb gets about the same (U, V) in two frames as long as the limb is seen
//! from about the same side, which is what `hdnet correspond` needs; unlike DensePose's charts,
//! a part's surface is not followed around as the person turns.

use hdnet_formats::densepose::Iuv;
use ndarray::Array2;

use crate::person::Keypoint;

/// MediaPipe's keypoint indices used here.
mod k {
    pub const NOSE: usize = 0;
    pub const LEFT_EAR: usize = 7;
    pub const RIGHT_EAR: usize = 8;
    pub const LEFT_SHOULDER: usize = 11;
    pub const RIGHT_SHOULDER: usize = 12;
    pub const LEFT_ELBOW: usize = 13;
    pub const RIGHT_ELBOW: usize = 14;
    pub const LEFT_WRIST: usize = 15;
    pub const RIGHT_WRIST: usize = 16;
    pub const LEFT_PINKY: usize = 17;
    pub const RIGHT_PINKY: usize = 18;
    pub const LEFT_INDEX: usize = 19;
    pub const RIGHT_INDEX: usize = 20;
    pub const LEFT_HIP: usize = 23;
    pub const RIGHT_HIP: usize = 24;
    pub const LEFT_KNEE: usize = 25;
    pub const RIGHT_KNEE: usize = 26;
    pub const LEFT_ANKLE: usize = 27;
    pub const RIGHT_ANKLE: usize = 28;
    pub const LEFT_HEEL: usize = 29;
    pub const RIGHT_HEEL: usize = 30;
    pub const LEFT_FOOT_INDEX: usize = 31;
    pub const RIGHT_FOOT_INDEX: usize = 32;
}

/// Keypoints the pose model is less sure than this lie outside the photo: their parts are not
/// drawn.
const PRESENT: f32 = 0.5;
/// A part whose keypoints are all less visible than this is hidden (an arm behind the back) and
/// does not claim pixels.
const VISIBLE: f32 = 0.3;
/// Pixels farther than this many part radii from every part (loose hair, a wide skirt's hem)
/// stay unlabelled.
const MAX_RADII: f32 = 3.0;
/// A limb's shape covers the pixels within this many of its radii (its silhouette, a little
/// wider than the radius guessed from the body's width).
const COVERS: f32 = 1.2;
/// Between covering limbs, a radius nearer the bone counts as much as this many body widths
/// nearer the camera (the keypoints' depths are rough).
const WIDTHS_PER_RADIUS: f32 = 0.5;
/// Bins along a part in which V is spread across the silhouette's width.
const V_BINS: usize = 8;
/// A torso is about this many shoulder widths long (hips to shoulders): the body's scale when the
/// shoulders are foreshortened (a side view).
const TORSO_PER_WIDTH: f32 = 1.4;

/// Where a bone's ends are (photo pixels) and how far (the pose model's z: smaller is nearer):
/// two keypoints, or (torso, head) points made from several.
#[derive(Debug, Clone, Copy)]
struct Bone {
    a: [f32; 2],
    b: [f32; 2],
    z: [f32; 2],
}

/// A part of the body as drawn: its DensePose parts (front, back; the same for hands and feet;
/// the head's right and left halves), its bone and its radius in pixels.
#[derive(Debug, Clone, Copy)]
struct Limb {
    front: u8,
    back: u8,
    bone: Bone,
    radius: f32,
}

/// Where a part's bone runs.
#[derive(Debug, Clone, Copy)]
enum Ends {
    /// From a keypoint to another (or to the midpoint of two).
    Keypoints(usize, [usize; 2]),
    /// From the shoulders' midpoint to the hips'.
    Torso,
    /// Up through the head's centre (see [`Body::head`]).
    Head,
}

/// A person's body parts: front part, back part (the head: its right half, left half), the
/// bone, the radius as a share of the body's width.
const PARTS: [(u8, u8, Ends, f32); 14] = [
    (2, 1, Ends::Torso, 0.5),
    (HEAD_RIGHT, HEAD_LEFT, Ends::Head, 0.32),
    (15, 17, Ends::Keypoints(k::LEFT_SHOULDER, [k::LEFT_ELBOW; 2]), 0.14),
    (16, 18, Ends::Keypoints(k::RIGHT_SHOULDER, [k::RIGHT_ELBOW; 2]), 0.14),
    (19, 21, Ends::Keypoints(k::LEFT_ELBOW, [k::LEFT_WRIST; 2]), 0.11),
    (20, 22, Ends::Keypoints(k::RIGHT_ELBOW, [k::RIGHT_WRIST; 2]), 0.11),
    (4, 4, Ends::Keypoints(k::LEFT_WRIST, [k::LEFT_INDEX, k::LEFT_PINKY]), 0.12),
    (3, 3, Ends::Keypoints(k::RIGHT_WRIST, [k::RIGHT_INDEX, k::RIGHT_PINKY]), 0.12),
    (10, 8, Ends::Keypoints(k::LEFT_HIP, [k::LEFT_KNEE; 2]), 0.22),
    (9, 7, Ends::Keypoints(k::RIGHT_HIP, [k::RIGHT_KNEE; 2]), 0.22),
    (14, 12, Ends::Keypoints(k::LEFT_KNEE, [k::LEFT_ANKLE; 2]), 0.15),
    (13, 11, Ends::Keypoints(k::RIGHT_KNEE, [k::RIGHT_ANKLE; 2]), 0.15),
    (5, 5, Ends::Keypoints(k::LEFT_HEEL, [k::LEFT_FOOT_INDEX; 2]), 0.12),
    (6, 6, Ends::Keypoints(k::RIGHT_HEEL, [k::RIGHT_FOOT_INDEX; 2]), 0.12),
];
/// The head's right half and left half in DensePose's numbering.
const HEAD_RIGHT: u8 = 23;
const HEAD_LEFT: u8 = 24;

/// The IUV map of the person in `mask` (1 on the person) from their 33 keypoints (photo pixels,
/// as [`crate::person::Segmenter`] gives them). Pixels off the mask, and all pixels when the
/// shoulders or hips are not in the photo, are background.
pub fn iuv_from_keypoints(mask: &Array2<f32>, keypoints: &[Keypoint]) -> Iuv {
    let (h, w) = mask.dim();
    let mut iuv = Iuv { part: Array2::zeros((h, w)), u: Array2::zeros((h, w)), v: Array2::zeros((h, w)) };
    let Some(body) = Body::of(keypoints) else { return iuv };
    let limbs = body.limbs(keypoints);
    // Per pixel: which limb, its position along (t) and across (s) the bone.
    let mut claims = Vec::new();
    for ((r, c), &m) in mask.indexed_iter() {
        if m >= 0.5
            && let Some((i, t, s)) = claim(&limbs, body.width, [c as f32 + 0.5, r as f32 + 0.5])
        {
            claims.push((r, c, i, t, s));
        }
    }
    let spans = Spans::of(&claims, limbs.len());
    for &(r, c, i, t, s) in &claims {
        let limb = &limbs[i];
        iuv.part[(r, c)] = body.part(limb, s);
        iuv.u[(r, c)] = t;
        iuv.v[(r, c)] = spans.v(i, t, s);
    }
    iuv
}

/// The limb a pixel at `p` shows, and where along and across its bone: of the limbs whose
/// shape covers it the nearest to the camera (an arm in front of the chest), else the one it is
/// nearest to in radii; none beyond [`MAX_RADII`].
fn claim(limbs: &[Limb], width: f32, p: [f32; 2]) -> Option<(usize, f32, f32)> {
    let (mut covering, mut nearest): (Option<Placed>, Option<Placed>) = (None, None);
    for (i, limb) in limbs.iter().enumerate() {
        let placed = Placed::on(i, limb, width, p);
        if placed.covers && covering.is_none_or(|c| placed.depth < c.depth) {
            covering = Some(placed);
        }
        if nearest.is_none_or(|n| placed.radii < n.radii) {
            nearest = Some(placed);
        }
    }
    let chosen = covering.or(nearest)?;
    (chosen.radii <= MAX_RADII).then_some((chosen.limb, chosen.t, chosen.s))
}

/// A pixel seen against one limb.
#[derive(Clone, Copy)]
struct Placed {
    limb: usize,
    /// Along the bone, clamped to it (0..1).
    t: f32,
    /// Across the bone, signed.
    s: f32,
    /// Distance from the bone in the limb's radii.
    radii: f32,
    /// Within the limb's shape.
    covers: bool,
    /// The bone's depth there in body widths, plus [`WIDTHS_PER_RADIUS`] a radius off it.
    depth: f32,
}

impl Placed {
    fn on(i: usize, limb: &Limb, width: f32, p: [f32; 2]) -> Self {
        let (along, s) = along_across(limb.bone, p);
        let t = along.clamp(0.0, 1.0);
        let radii = length(sub(p, add(limb.bone.a, scale(sub(limb.bone.b, limb.bone.a), t)))) / limb.radius;
        let z = limb.bone.z[0] + (limb.bone.z[1] - limb.bone.z[0]) * t;
        Self {
            limb: i,
            t,
            s,
            radii,
            covers: radii <= COVERS && along == t,
            depth: z / width + radii * WIDTHS_PER_RADIUS,
        }
    }
}

/// The person's scale and which way they face, from the shoulders and hips.
struct Body {
    /// Pixels: the shoulders' width, or the torso's length over [`TORSO_PER_WIDTH`] if larger.
    width: f32,
    /// The person's front is towards the camera (their left shoulder on the photo's right).
    facing: bool,
    shoulders: [f32; 2],
    hips: [f32; 2],
    shoulders_z: f32,
    hips_z: f32,
}

impl Body {
    fn of(keypoints: &[Keypoint]) -> Option<Self> {
        let torso = [k::LEFT_SHOULDER, k::RIGHT_SHOULDER, k::LEFT_HIP, k::RIGHT_HIP];
        if keypoints.len() != 33 || torso.iter().any(|&i| !present(&keypoints[i])) {
            return None;
        }
        let at = |i: usize| [keypoints[i].x, keypoints[i].y];
        let shoulders = midpoint(at(k::LEFT_SHOULDER), at(k::RIGHT_SHOULDER));
        let hips = midpoint(at(k::LEFT_HIP), at(k::RIGHT_HIP));
        let width = length(sub(at(k::LEFT_SHOULDER), at(k::RIGHT_SHOULDER)))
            .max(length(sub(shoulders, hips)) / TORSO_PER_WIDTH);
        let facing = (keypoints[k::LEFT_SHOULDER].x - keypoints[k::RIGHT_SHOULDER].x)
            + (keypoints[k::LEFT_HIP].x - keypoints[k::RIGHT_HIP].x)
            > 0.0;
        let z = |a: usize, b: usize| (keypoints[a].z + keypoints[b].z) / 2.0;
        let (shoulders_z, hips_z) = (z(k::LEFT_SHOULDER, k::RIGHT_SHOULDER), z(k::LEFT_HIP, k::RIGHT_HIP));
        (width > 0.0).then_some(Self { width, facing, shoulders, hips, shoulders_z, hips_z })
    }

    /// The limbs the keypoints show: the torso, the head and every limb whose keypoints lie in
    /// the photo and are not all hidden.
    fn limbs(&self, keypoints: &[Keypoint]) -> Vec<Limb> {
        let at = |i: usize| [keypoints[i].x, keypoints[i].y];
        let mut limbs = Vec::new();
        for &(front, back, ends, share) in &PARTS {
            let radius = share * self.width;
            let bone = match ends {
                Ends::Torso => Bone { a: self.shoulders, b: self.hips, z: [self.shoulders_z, self.hips_z] },
                Ends::Head => self.head(keypoints),
                Ends::Keypoints(a, [b1, b2]) => {
                    let ends = [&keypoints[a], &keypoints[b1], &keypoints[b2]];
                    if ends.iter().any(|e| !present(e)) || ends.iter().all(|e| e.visibility < VISIBLE) {
                        continue;
                    }
                    let z = [ends[0].z, (ends[1].z + ends[2].z) / 2.0];
                    Bone { a: at(a), b: midpoint(at(b1), at(b2)), z }
                }
            };
            limbs.push(Limb { front, back, bone, radius });
        }
        limbs
    }

    /// The head's axis: from below the ears' (or the nose's) midpoint to above it, along the
    /// torso's direction.
    fn head(&self, keypoints: &[Keypoint]) -> Bone {
        let ears = [&keypoints[k::LEFT_EAR], &keypoints[k::RIGHT_EAR]];
        let (centre, z) = if ears.iter().all(|e| present(e)) {
            (midpoint([ears[0].x, ears[0].y], [ears[1].x, ears[1].y]), (ears[0].z + ears[1].z) / 2.0)
        } else {
            ([keypoints[k::NOSE].x, keypoints[k::NOSE].y], keypoints[k::NOSE].z)
        };
        let up = sub(self.shoulders, self.hips);
        let up = scale(up, 1.0 / length(up).max(f32::EPSILON));
        let (a, b) = (add(centre, scale(up, -0.2 * self.width)), add(centre, scale(up, 0.25 * self.width)));
        Bone { a, b, z: [z; 2] }
    }

    /// The DensePose part of a pixel of `limb` at signed distance `s` across its bone.
    fn part(&self, limb: &Limb, s: f32) -> u8 {
        if limb.front == HEAD_RIGHT {
            // Across the head's upward axis, positive s is the photo's left: the person's right
            // when they face the camera.
            if (s > 0.0) == self.facing { limb.front } else { limb.back }
        } else if self.facing {
            limb.front
        } else {
            limb.back
        }
    }
}

/// Per limb and bin along it, the extent of s over the limb's pixels.
struct Spans(Vec<[(f32, f32); V_BINS]>);

impl Spans {
    fn of(claims: &[(usize, usize, usize, f32, f32)], limbs: usize) -> Self {
        let mut spans = vec![[(f32::INFINITY, f32::NEG_INFINITY); V_BINS]; limbs];
        for &(_, _, i, t, s) in claims {
            let span = &mut spans[i][bin(t)];
            *span = (span.0.min(s), span.1.max(s));
        }
        Self(spans)
    }

    /// V in [0, 1]: where `s` lies between the silhouette's two sides at `t`.
    fn v(&self, limb: usize, t: f32, s: f32) -> f32 {
        let (lo, hi) = self.0[limb][bin(t)];
        if hi - lo < 1.0 { 0.5 } else { ((s - lo) / (hi - lo)).clamp(0.0, 1.0) }
    }
}

fn bin(t: f32) -> usize {
    ((t * V_BINS as f32) as usize).min(V_BINS - 1)
}

fn present(k: &Keypoint) -> bool {
    k.presence >= PRESENT && k.x.is_finite() && k.y.is_finite()
}

/// `p`'s position along `bone` (0 at a, 1 at b, beyond them outside) and its signed distance across it
/// (positive to the left of a -> b as drawn in the photo, whose y runs down).
fn along_across(bone: Bone, p: [f32; 2]) -> (f32, f32) {
    let d = sub(bone.b, bone.a);
    let len2 = d[0] * d[0] + d[1] * d[1];
    let q = sub(p, bone.a);
    if len2 < f32::EPSILON {
        return (0.5, 0.0);
    }
    let t = (q[0] * d[0] + q[1] * d[1]) / len2;
    let s = (q[0] * d[1] - q[1] * d[0]) / len2.sqrt();
    (t, s)
}

fn midpoint(a: [f32; 2], b: [f32; 2]) -> [f32; 2] {
    scale(add(a, b), 0.5)
}

fn add(a: [f32; 2], b: [f32; 2]) -> [f32; 2] {
    [a[0] + b[0], a[1] + b[1]]
}

fn sub(a: [f32; 2], b: [f32; 2]) -> [f32; 2] {
    [a[0] - b[0], a[1] - b[1]]
}

fn scale(a: [f32; 2], f: f32) -> [f32; 2] {
    [a[0] * f, a[1] * f]
}

fn length(a: [f32; 2]) -> f32 {
    a[0].hypot(a[1])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::person::KEYPOINT_NAMES;

    /// The hand-made figure's photo side (the shot crop's tests use it too).
    pub(crate) const SIZE: usize = 128;

    /// A figure in a T-pose facing the camera (the person's left on the photo's right), 128x128:
    /// (name, x, y) of the keypoints used, every one present and visible at depth 0.
    const T_POSE: [(usize, f32, f32); 23] = [
        (k::NOSE, 64.0, 24.0),
        (k::LEFT_EAR, 68.0, 22.0),
        (k::RIGHT_EAR, 60.0, 22.0),
        (k::LEFT_SHOULDER, 74.0, 40.0),
        (k::RIGHT_SHOULDER, 54.0, 40.0),
        (k::LEFT_ELBOW, 94.0, 40.0),
        (k::RIGHT_ELBOW, 34.0, 40.0),
        (k::LEFT_WRIST, 112.0, 40.0),
        (k::RIGHT_WRIST, 16.0, 40.0),
        (k::LEFT_PINKY, 120.0, 41.0),
        (k::RIGHT_PINKY, 8.0, 41.0),
        (k::LEFT_INDEX, 120.0, 39.0),
        (k::RIGHT_INDEX, 8.0, 39.0),
        (k::LEFT_HIP, 70.0, 80.0),
        (k::RIGHT_HIP, 58.0, 80.0),
        (k::LEFT_KNEE, 70.0, 100.0),
        (k::RIGHT_KNEE, 58.0, 100.0),
        (k::LEFT_ANKLE, 70.0, 116.0),
        (k::RIGHT_ANKLE, 58.0, 116.0),
        (k::LEFT_HEEL, 70.0, 120.0),
        (k::RIGHT_HEEL, 58.0, 120.0),
        (k::LEFT_FOOT_INDEX, 74.0, 124.0),
        (k::RIGHT_FOOT_INDEX, 54.0, 124.0),
    ];

    pub(crate) fn keypoints(mirror: bool) -> Vec<Keypoint> {
        let mut all: Vec<Keypoint> = KEYPOINT_NAMES
            .iter()
            .map(|&name| Keypoint { name, x: 64.0, y: 60.0, z: 0.0, visibility: 0.0, presence: 0.0, world: [0.0; 3] })
            .collect();
        for &(i, x, y) in &T_POSE {
            let x = if mirror { SIZE as f32 - x } else { x };
            all[i] = Keypoint { x, y, visibility: 1.0, presence: 1.0, ..all[i].clone() };
        }
        all
    }

    /// The figure's silhouette: torso, arms, legs and head as rectangles and a disc (pixel
    /// centres), symmetric about x = 64.
    pub(crate) fn mask() -> Array2<f32> {
        Array2::from_shape_fn((SIZE, SIZE), |(r, c)| {
            let (x, y) = (c as f32 + 0.5, r as f32 + 0.5);
            let torso = (52.0..76.0).contains(&x) && (38.0..82.0).contains(&y);
            let arms = (8.0..120.0).contains(&x) && (37.0..43.0).contains(&y);
            let legs = ((54.0..62.0).contains(&x) || (66.0..74.0).contains(&x)) && (80.0..125.0).contains(&y);
            let head = (x - 64.0).hypot(y - 22.0) < 9.0;
            f32::from(u8::from(torso || arms || legs || head))
        })
    }

    #[test]
    fn a_figure_facing_the_camera_gets_the_front_parts() {
        let iuv = iuv_from_keypoints(&mask(), &keypoints(false));
        // (row, column) -> part: torso front, upper arms, forearms, hands, thighs, shins, head
        // halves (the person's right on the photo's left).
        let expected = [
            ((60, 64), 2),
            ((40, 84), 15),
            ((40, 43), 16),
            ((40, 103), 19),
            ((40, 24), 20),
            ((40, 116), 4),
            ((40, 11), 3),
            ((90, 70), 10),
            ((90, 57), 9),
            ((108, 70), 14),
            ((108, 57), 13),
            ((18, 60), 23),
            ((18, 67), 24),
        ];
        for ((r, c), part) in expected {
            assert_eq!(iuv.part[(r, c)], part, "part at ({r}, {c})");
        }
        assert!(iuv.part.iter().zip(mask().iter()).all(|(&p, &m)| (p == 0) == (m == 0.0)));
        // U runs along the left upper arm from the shoulder (x 74) to the elbow (x 94).
        for c in [76, 80, 84, 88, 92] {
            let u = iuv.u[(40, c)];
            assert!((u - (c as f32 + 0.5 - 74.0) / 20.0).abs() < 1e-5, "u {u} at column {c}");
        }
        // V spans the torso from one side to the other, evenly.
        let across: Vec<f32> = (52..76).map(|c| iuv.v[(60, c)]).collect();
        assert!(across.windows(2).all(|w| (w[1] - w[0]).abs() > 0.03), "{across:?}");
        assert!(across[0].min(across[23]) < 0.01 && across[0].max(across[23]) > 0.99, "{across:?}");
    }

    #[test]
    fn a_figure_seen_from_behind_gets_the_back_parts() {
        // The same silhouette with the keypoints' sides swapped: the person's left on the
        // photo's left, so their back faces the camera.
        let iuv = iuv_from_keypoints(&mask(), &keypoints(true));
        let expected = [((60, 64), 1), ((40, 84), 18), ((40, 43), 17), ((90, 70), 7), ((18, 60), 24), ((18, 67), 23)];
        for ((r, c), part) in expected {
            assert_eq!(iuv.part[(r, c)], part, "part at ({r}, {c})");
        }
    }

    #[test]
    fn a_forearm_across_the_chest_is_drawn_only_in_front_of_it() {
        let mut keypoints = keypoints(false);
        keypoints[k::LEFT_ELBOW].x = 80.0;
        keypoints[k::LEFT_ELBOW].y = 56.0;
        keypoints[k::LEFT_WRIST].x = 56.0;
        keypoints[k::LEFT_WRIST].y = 60.0;
        for (z, part) in [(-10.0, 19), (10.0, 2)] {
            keypoints[k::LEFT_ELBOW].z = z;
            keypoints[k::LEFT_WRIST].z = z;
            let iuv = iuv_from_keypoints(&mask(), &keypoints);
            assert_eq!(iuv.part[(58, 66)], part, "forearm at depth {z}");
        }
    }

    #[test]
    fn the_same_spot_gets_the_same_coordinates_when_the_person_moves() {
        let (dy, dx) = (3, 5);
        let keypoints_moved: Vec<Keypoint> =
            keypoints(false).into_iter().map(|k| Keypoint { x: k.x + dx as f32, y: k.y + dy as f32, ..k }).collect();
        let mask = mask();
        let moved =
            Array2::from_shape_fn((SIZE, SIZE), |(r, c)| if r >= dy && c >= dx { mask[(r - dy, c - dx)] } else { 0.0 });
        let (a, b) = (iuv_from_keypoints(&mask, &keypoints(false)), iuv_from_keypoints(&moved, &keypoints_moved));
        for r in 0..SIZE - dy {
            for c in 0..SIZE - dx {
                let (p, q) = ((r, c), (r + dy, c + dx));
                assert_eq!(a.part[p], b.part[q], "part at {p:?}");
                assert!((a.u[p] - b.u[q]).abs() < 1e-4 && (a.v[p] - b.v[q]).abs() < 1e-4, "(u, v) at {p:?}");
            }
        }
    }

    #[test]
    fn keypoint_indices_name_the_pose_models_keypoints() {
        let named = [
            (k::NOSE, "nose"),
            (k::LEFT_EAR, "left_ear"),
            (k::RIGHT_EAR, "right_ear"),
            (k::LEFT_SHOULDER, "left_shoulder"),
            (k::RIGHT_SHOULDER, "right_shoulder"),
            (k::LEFT_ELBOW, "left_elbow"),
            (k::RIGHT_ELBOW, "right_elbow"),
            (k::LEFT_WRIST, "left_wrist"),
            (k::RIGHT_WRIST, "right_wrist"),
            (k::LEFT_PINKY, "left_pinky"),
            (k::RIGHT_PINKY, "right_pinky"),
            (k::LEFT_INDEX, "left_index"),
            (k::RIGHT_INDEX, "right_index"),
            (k::LEFT_HIP, "left_hip"),
            (k::RIGHT_HIP, "right_hip"),
            (k::LEFT_KNEE, "left_knee"),
            (k::RIGHT_KNEE, "right_knee"),
            (k::LEFT_ANKLE, "left_ankle"),
            (k::RIGHT_ANKLE, "right_ankle"),
            (k::LEFT_HEEL, "left_heel"),
            (k::RIGHT_HEEL, "right_heel"),
            (k::LEFT_FOOT_INDEX, "left_foot_index"),
            (k::RIGHT_FOOT_INDEX, "right_foot_index"),
        ];
        for (i, name) in named {
            assert_eq!(KEYPOINT_NAMES[i], name);
        }
    }

    #[test]
    fn without_shoulders_or_hips_nothing_is_labelled() {
        let mut keypoints = keypoints(false);
        keypoints[k::RIGHT_HIP].presence = 0.1;
        assert!(iuv_from_keypoints(&mask(), &keypoints).part.iter().all(|&p| p == 0));
        // Nor with a keypoint list that is not the pose model's 33.
        assert!(iuv_from_keypoints(&mask(), &keypoints[..20]).part.iter().all(|&p| p == 0));
    }
}
