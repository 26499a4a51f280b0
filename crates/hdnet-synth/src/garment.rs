//! Clothes as surfaces offset from the skin: which body vertices a person's top and bottom cover
//! (sleeve and leg lengths, waist line, neckline), how far the cloth stands off, and its
//! wrinkles: static folds from a few random waves over the rest shape, rings bunching at elbows
//! and knees whose depth grows with how far the joint is bent, and vertical folds on
//! skirts; shoes with soles; hair given volume away from the head; and fine wrinkles, which the
//! renderer lays on the cloth per pixel. Geometry only; colours and prints are in `appearance`.

use hdnet_body::BodyModel;
use hdnet_formats::densepose::{self, BodyRegion};

use crate::pose::bone;
use nalgebra::Vector3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// What covers a body vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Skin,
    Top,
    Bottom,
    Shoe,
    /// The asset's skirt or hair meshes (drawn only on people who wear them).
    Skirt,
    Hair,
}

impl Region {
    /// Woven cloth, which wrinkles (not skin, hair or shoes).
    pub fn is_cloth(self) -> bool {
        matches!(self, Region::Top | Region::Bottom | Region::Skirt)
    }
}

/// Joints where cloth bunches: (bone of the joint, bone above it, bone below it).
const BENDS: [[&str; 3]; 4] = [
    ["lowerarm01.L", "upperarm01.L", "wrist.L"],
    ["lowerarm01.R", "upperarm01.R", "wrist.R"],
    ["lowerleg01.L", "upperleg01.L", "foot.L"],
    ["lowerleg01.R", "upperleg01.R", "foot.R"],
];

/// Falloff (metres) of bunching around a bent joint.
const BEND_REACH: f64 = 0.09;

/// A person's clothing geometry, per vertex of the asset.
pub struct Dressing {
    pub region: Vec<Region>,
    /// Offset along the normal at rest (metres): thickness plus static folds.
    rest_offset: Vec<f32>,
    /// Per vertex: the bend joint it is near (index into BENDS), the ring phase there and the
    /// falloff weight; None when no joint is near or the vertex is not covered.
    bunching: Vec<Option<(usize, f32, f32)>>,
    bend_bones: [[usize; 3]; 4],
    /// Depth of bunching rings at a fully bent joint (metres).
    bunch_depth: f32,
    /// How far hair stands off the head (metres): it moves away from the head bone, as a normal
    /// offset would tear the asset's hair strips apart.
    hair_volume: f32,
    head_bone: usize,
    pub wrinkles: Wrinkles,
}

/// Fine wrinkles of the cloth, 0.8 to 2.5 cm long and 1 to 2.5 mm deep in all: a displacement
/// along the surface's normal, a sum of short waves over the rest shape, in patches (a long wave,
/// 15 to 40 cm, sets how deep they are where). The body's mesh (about 1 cm between vertices)
/// cannot carry them, so the renderer applies them per pixel, to the depth and normals it writes
/// as to its shading. A wave shorter than four pixels fades out, and one shorter than two is gone:
/// the ground truth holds what its pixels resolve.
pub struct Wrinkles {
    waves: Vec<Wave>,
    patches: Wave,
}

struct Wave {
    /// Wave vector (radians per metre of the rest shape).
    k: Vector3<f32>,
    phase: f32,
    amplitude: f32,
    wavelength: f32,
}

impl Wave {
    fn sample(rng: &mut ChaCha8Rng, wavelengths: [f32; 2], amplitude: f32) -> Self {
        let d =
            Vector3::new(rng.random::<f32>() - 0.5, rng.random::<f32>() - 0.5, rng.random::<f32>() - 0.5).normalize();
        let wavelength = wavelengths[0] + (wavelengths[1] - wavelengths[0]) * rng.random::<f32>();
        Wave {
            k: d * std::f32::consts::TAU / wavelength,
            phase: std::f32::consts::TAU * rng.random::<f32>(),
            amplitude,
            wavelength,
        }
    }

    /// Value and gradient at `t`, faded out as `footprint` nears half the wavelength.
    fn at(&self, t: &Vector3<f32>, footprint: f32) -> (f32, Vector3<f32>) {
        let fade = (self.wavelength / footprint / 2.0 - 1.0).clamp(0.0, 1.0);
        if fade == 0.0 {
            return (0.0, Vector3::zeros());
        }
        let (sin, cos) = (self.k.dot(t) + self.phase).sin_cos();
        (fade * self.amplitude * sin, self.k * (fade * self.amplitude * cos))
    }
}

impl Wrinkles {
    fn sample(rng: &mut ChaCha8Rng) -> Self {
        let depth = 0.001 + 0.0015 * rng.random::<f32>();
        let waves = (0..WRINKLE_WAVES)
            .map(|_| {
                let amplitude = depth * (0.5 + rng.random::<f32>()) / WRINKLE_WAVES as f32;
                Wave::sample(rng, [0.008, 0.025], amplitude)
            })
            .collect();
        Self { waves, patches: Wave::sample(rng, [0.15, 0.4], 0.5) }
    }

    /// Height (metres, out of the cloth) and its gradient over the rest shape at rest point `t`,
    /// seen by a pixel `footprint` metres across.
    pub fn at(&self, t: [f32; 3], footprint: f32) -> (f32, Vector3<f32>) {
        let t = Vector3::from(t);
        let (mut height, mut gradient) = (0.0, Vector3::zeros());
        for wave in &self.waves {
            let (h, g) = wave.at(&t, footprint);
            height += h;
            gradient += g;
        }
        if height == 0.0 {
            return (0.0, gradient);
        }
        // Depth in patches: h * (0.5 + p), p the patch wave in [-0.5, 0.5].
        let (p, dp) = self.patches.at(&t, footprint);
        (height * (0.5 + p), gradient * (0.5 + p) + dp * height)
    }
}

/// Lengths and style drawn per person.
struct Cut {
    /// Sleeve end as a fraction of shoulder -> wrist (0 = sleeveless, 1 = to the wrist).
    sleeve: f64,
    /// Leg end as a fraction of hip -> ankle.
    leg: f64,
    /// Waist line as a fraction of hips -> neck base.
    waist: f64,
    thickness_top: f64,
    thickness_bottom: f64,
    /// How far a loose top (a jacket, a hoodie) stands off the body beyond its thickness.
    loose_top: f64,
    /// How far wide trousers flare out at the ankle (growing from the hip).
    flare: f64,
    shoes: bool,
    shoe_thickness: f64,
    /// How much thicker the shoe is at its sole.
    sole: f64,
}

/// Shares of people in loose tops, in wide trousers and in shoes.
const LOOSE_TOP: f64 = 0.35;
const WIDE_TROUSERS: f64 = 0.35;
const SHOES: f64 = 0.85;
/// Waves summed into a person's fine wrinkles.
const WRINKLE_WAVES: usize = 3;
/// The sole's offset fades out this far (metres) above the lowest point of the feet at rest.
const SOLE_HEIGHT: f64 = 0.03;

fn sample_cut(rng: &mut ChaCha8Rng) -> Cut {
    let pick = |rng: &mut ChaCha8Rng, options: &[f64]| options[rng.random_range(0..options.len())];
    Cut {
        sleeve: pick(rng, &[0.0, 0.25, 0.35, 0.7, 1.0]) + 0.05 * rng.random::<f64>(),
        leg: pick(rng, &[0.35, 0.5, 0.95, 1.0, 1.0]),
        waist: 0.15 + 0.2 * rng.random::<f64>(),
        thickness_top: 0.004 + 0.008 * rng.random::<f64>(),
        thickness_bottom: 0.005 + 0.01 * rng.random::<f64>(),
        loose_top: if rng.random::<f64>() < LOOSE_TOP { 0.01 + 0.025 * rng.random::<f64>() } else { 0.0 },
        flare: if rng.random::<f64>() < WIDE_TROUSERS { 0.02 + 0.05 * rng.random::<f64>() } else { 0.0 },
        shoes: rng.random::<f64>() < SHOES,
        shoe_thickness: 0.004 + 0.008 * rng.random::<f64>(),
        sole: 0.01 + 0.02 * rng.random::<f64>(),
    }
}

/// Where `p` lies along segment a -> b (0 at a, 1 at b), and its distance from the segment.
fn along(p: Vector3<f64>, a: Vector3<f64>, b: Vector3<f64>) -> (f64, f64) {
    let t = (p - a).dot(&(b - a)) / (b - a).norm_squared();
    (t, (p - (a + t.clamp(0.0, 1.0) * (b - a))).norm())
}

/// Sum of a few plane waves over the rest shape: folds that stay on the same cloth in every pose.
struct Waves(Vec<(Vector3<f64>, f64, f64)>);

impl Waves {
    fn new(rng: &mut ChaCha8Rng, count: usize, wavelengths: [f64; 2], amplitude: f64) -> Self {
        Self(
            (0..count)
                .map(|_| {
                    let d =
                        Vector3::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5)
                            .normalize();
                    let k = std::f64::consts::TAU
                        / (wavelengths[0] + (wavelengths[1] - wavelengths[0]) * rng.random::<f64>());
                    (
                        d * k,
                        std::f64::consts::TAU * rng.random::<f64>(),
                        amplitude * (0.5 + rng.random::<f64>()) / count as f64,
                    )
                })
                .collect(),
        )
    }

    fn at(&self, p: Vector3<f64>) -> f64 {
        // The sine in single precision (phases stay below a few hundred radians, about 1e-5
        // rad apart there): it is most of the time of dressing a person.
        self.0.iter().map(|(k, phase, a)| a * f64::from(((k.dot(&p) + phase) as f32).sin())).sum()
    }
}

/// Where a body's clothes end: per side (left, right) the shoulder, wrist, hip and ankle along
/// which sleeves and legs end, and the hips and neck between which the waist line lies.
struct Landmarks {
    limbs: [[Vector3<f64>; 4]; 2],
    hips: Vector3<f64>,
    neck: Vector3<f64>,
}

impl Landmarks {
    fn new(model: &BodyModel, joints: &[Vector3<f64>]) -> Result<Self, String> {
        let j = |name: &str| bone(model, name).map(|b| joints[b]);
        let limb = |s: &str| -> Result<[Vector3<f64>; 4], String> {
            Ok([
                j(&format!("upperarm01{s}"))?,
                j(&format!("wrist{s}"))?,
                j(&format!("upperleg01{s}"))?,
                j(&format!("foot{s}"))?,
            ])
        };
        Ok(Self {
            limbs: [limb(".L")?, limb(".R")?],
            hips: (j("upperleg01.L")? + j("upperleg01.R")?) / 2.0,
            neck: j("neck01")?,
        })
    }

    /// What covers body point `p` of DensePose part `part` under `cut`.
    fn region(&self, p: Vector3<f64>, part: u8, cut: &Cut) -> Region {
        let [shoulder, wrist, hip, ankle] = self.limbs[usize::from(p.x < 0.0)];
        match densepose::region(part) {
            BodyRegion::Torso => match along(p, self.hips, self.neck).0 {
                t if t >= 0.97 => Region::Skin,
                t if t >= cut.waist => Region::Top,
                _ => Region::Bottom,
            },
            BodyRegion::Arm if along(p, shoulder, wrist).0 <= cut.sleeve => Region::Top,
            BodyRegion::Foot if cut.shoes => Region::Shoe,
            BodyRegion::Leg | BodyRegion::Foot if along(p, hip, ankle).0 <= cut.leg => Region::Bottom,
            _ => Region::Skin,
        }
    }
}

impl Dressing {
    /// Draws a cut and folds for a body at rest (its posed-at-rest vertices and joints).
    /// `skirt` and `hair`: whether the person wears the asset's skirt and hair meshes.
    pub fn sample(
        model: &BodyModel,
        (vertices, joints): (&[[f64; 3]], &[[f64; 3]]),
        rng: &mut ChaCha8Rng,
        skirt: bool,
        hair: bool,
    ) -> Result<Self, String> {
        let mut bend_bones = [[0; 3]; 4];
        for (slot, names) in bend_bones.iter_mut().zip(BENDS) {
            for (b, name) in slot.iter_mut().zip(names) {
                *b = bone(model, name)?;
            }
        }
        let joints: Vec<Vector3<f64>> = joints.iter().copied().map(Vector3::from).collect();
        let vertices: Vec<Vector3<f64>> = vertices.iter().copied().map(Vector3::from).collect();
        let landmarks = Landmarks::new(model, &joints)?;
        let cut = sample_cut(rng);
        let skirt_vertices = vertex_set(&model.skirt_faces, vertices.len());
        let hair_vertices = vertex_set(&model.hair_faces, vertices.len());
        let worn = |wears: bool, covering: Region| if wears { covering } else { Region::Skin };
        let region: Vec<Region> = (0..vertices.len())
            .map(|v| match (skirt_vertices[v], hair_vertices[v]) {
                (true, _) => worn(skirt, Region::Skirt),
                (_, true) => worn(hair, Region::Hair),
                _ => landmarks.region(vertices[v], model.vertex_part[v], &cut),
            })
            .collect();
        let rest_offset = rest_offsets(&vertices, &region, (&cut, &landmarks), rng);
        let bunching = bunching(&vertices, &joints, &region, &bend_bones, rng);
        Ok(Self {
            region,
            rest_offset,
            bunching,
            bend_bones,
            bunch_depth: (0.006 + 0.008 * rng.random::<f64>()) as f32,
            hair_volume: (0.005 + 0.025 * rng.random::<f64>()) as f32,
            head_bone: bone(model, "head")?,
            wrinkles: Wrinkles::sample(rng),
        })
    }

    /// Moves posed `vertices` (with unit `normals` of the bare body, same frame) off the skin by
    /// the cloth's offset; bunching follows how far each elbow and knee is bent in `joints`; hair
    /// moves away from the head.
    pub fn dress(&self, vertices: &mut [[f64; 3]], normals: &[[f32; 3]], joints: &[[f64; 3]]) {
        let head = Vector3::from(joints[self.head_bone]);
        let bends = self.bend_bones.map(|[joint, above, below]| {
            let j = |b: usize| Vector3::from(joints[b]);
            let (upper, lower) = (j(joint) - j(above), j(below) - j(joint));
            // 0 for a straight limb, 1 at a right angle or more.
            (upper.angle(&lower) / std::f64::consts::FRAC_PI_2).min(1.0) as f32
        });
        for (v, p) in vertices.iter_mut().enumerate() {
            if self.region[v] == Region::Hair {
                let away = (Vector3::from(*p) - head).try_normalize(1e-9).unwrap_or_default();
                *p = (Vector3::from(*p) + f64::from(self.hair_volume) * away).into();
                continue;
            }
            let mut offset = self.rest_offset[v];
            if let Some((k, phase, weight)) = self.bunching[v] {
                offset += self.bunch_depth * weight * bends[k] * (0.5 + 0.5 * phase.sin());
            }
            if offset != 0.0 {
                for a in 0..3 {
                    p[a] += f64::from(offset * normals[v][a]);
                }
            }
        }
    }
}

fn vertex_set(faces: &[[u32; 3]], n: usize) -> Vec<bool> {
    let mut set = vec![false; n];
    faces.iter().flatten().for_each(|&v| set[v as usize] = true);
    set
}

/// Offset along the normal at rest of each vertex: the cloth's thickness, how loose it is (a
/// loose top stands off evenly, wide trousers flare towards the ankle) and static folds (random
/// waves over the rest shape, deeper on loose cloth; vertical ones on skirts); shoes thicken
/// towards their soles.
fn rest_offsets(
    vertices: &[Vector3<f64>],
    region: &[Region],
    (cut, landmarks): (&Cut, &Landmarks),
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let fold_depth = 0.006 + 0.006 * rng.random::<f64>();
    let folds = Waves::new(rng, 4, [0.06, 0.16], fold_depth);
    let loose_folds = Waves::new(rng, 4, [0.08, 0.2], 0.25);
    let skirt_folds = Waves::new(rng, 3, [0.08, 0.14], 0.02);
    let ground = vertices.iter().map(|p| p.z).fold(f64::INFINITY, f64::min);
    vertices
        .iter()
        .zip(region)
        .map(|(&p, region)| {
            (match region {
                Region::Top => cut.thickness_top + cut.loose_top * (1.0 + loose_folds.at(p)) + folds.at(p),
                Region::Bottom => {
                    let [_, _, hip, ankle] = landmarks.limbs[usize::from(p.x < 0.0)];
                    let t = along(p, hip, ankle).0.clamp(0.0, 1.0);
                    cut.thickness_bottom + cut.flare * t * t * (1.0 + loose_folds.at(p)) + folds.at(p)
                }
                Region::Shoe => cut.shoe_thickness + cut.sole * (1.0 - (p.z - ground) / SOLE_HEIGHT).clamp(0.0, 1.0),
                // Vertical folds: waves over the horizontal position only.
                Region::Skirt => skirt_folds.at(Vector3::new(p.x, p.y, 0.0)).abs(),
                Region::Skin | Region::Hair => 0.0,
            }) as f32
        })
        .collect()
}

/// Per covered vertex near a bend joint: that joint (index into BENDS), the phase of the rings
/// that bunch there and their falloff weight.
fn bunching(
    vertices: &[Vector3<f64>],
    joints: &[Vector3<f64>],
    region: &[Region],
    bend_bones: &[[usize; 3]; 4],
    rng: &mut ChaCha8Rng,
) -> Vec<Option<(usize, f32, f32)>> {
    let ring_wavelength = 0.035 + 0.02 * rng.random::<f64>();
    vertices
        .iter()
        .zip(region)
        .map(|(&p, region)| {
            if !matches!(region, Region::Top | Region::Bottom) {
                return None;
            }
            let (k, d) = bend_bones
                .iter()
                .enumerate()
                .map(|(k, b)| (k, (p - joints[b[0]]).norm()))
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            let weight = (-(d / BEND_REACH).powi(2)).exp();
            let [_, above, below] = bend_bones[k];
            let phase = std::f64::consts::TAU
                * along(p, joints[above], joints[below]).0
                * (joints[below] - joints[above]).norm()
                / ring_wavelength;
            (weight > 0.02).then_some((k, phase as f32, weight as f32))
        })
        .collect()
}
