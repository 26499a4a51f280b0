//! How a synthetic person is photographed, as photos of people are: the camera's distance,
//! height, aim and lens, the person turned through the full circle, and the square crop the
//! networks see, which frames the whole person at 0.5 to 1.0 of its side or cuts them at the
//! border (upper body, three-quarter shots, cut at the knees).

use hdnet_geometry::Camera;
use nalgebra::Vector3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::photo::Effects;
use crate::pose::MotionFrame;
use crate::scene::Stage;

/// Camera distance from the person's vertical axis (metres), drawn log-uniformly.
pub const DISTANCE: [f64; 2] = [1.5, 6.0];
/// Lens, 35 mm full-frame equivalent (millimetres).
pub const FOCAL_MM: [f64; 2] = [35.0, 85.0];
/// Camera height above the ground (metres).
pub const CAMERA_HEIGHT: [f64; 2] = [0.6, 2.1];
/// Share of the crop's side the whole person's longer extent spans.
pub const FILL: [f64; 2] = [0.5, 1.0];
/// Share of frames cut by the border, and how many times the crop's side the person's height
/// then is (1.25: cut below the knees; 3: head and shoulders).
pub const CUT: f64 = 0.35;
pub const CUT_FILL: [f64; 2] = [1.25, 3.0];

/// How the crop frames the person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Framing {
    /// The whole person, their longer extent `fill` of the side, placed at `offset` (-1..1 per
    /// axis) of the room left around them.
    Whole { fill: f64, offset: [f64; 2] },
    /// The top of the person: their height `fill` (> 1) times the side, the head just inside.
    Cut { fill: f64, offset: f64 },
}

/// One photograph's camera and framing (a video keeps one for all its frames).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shot {
    pub distance: f64,
    pub camera_height: f64,
    /// The height the camera aims at, as a share of the person's height (0 feet, 1 top).
    pub aim: f64,
    pub focal_mm: f64,
    /// The photo's width and height (pixels): portrait or landscape, 3:4.
    pub photo: [f64; 2],
    /// The person's heading: 0 faces the camera; a motion's turns add to it.
    pub heading: f64,
    pub framing: Framing,
    /// What the camera does to the picture.
    pub effects: Effects,
}

impl Shot {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let mut u = |[lo, hi]: [f64; 2]| lo + (hi - lo) * rng.random::<f64>();
        let distance = (u([DISTANCE[0].ln(), DISTANCE[1].ln()])).exp();
        let focal_mm = u(FOCAL_MM);
        let camera_height = u(CAMERA_HEIGHT);
        let photo = if u([0.0, 1.0]) < 0.5 { [1080.0, 1440.0] } else { [1440.0, 1080.0] };
        let heading = u([-std::f64::consts::PI, std::f64::consts::PI]);
        let (framing, aim) = if u([0.0, 1.0]) < CUT {
            (Framing::Cut { fill: u(CUT_FILL), offset: u([-1.0, 1.0]) }, u([0.6, 0.9]))
        } else {
            (Framing::Whole { fill: u(FILL), offset: [u([-1.0, 1.0]), u([-1.0, 1.0])] }, u([0.35, 0.75]))
        };
        Self { distance, camera_height, aim, focal_mm, photo, heading, framing, effects: Effects::sample(rng) }
    }

    /// The photo's focal length in pixels (36 mm across its longer side).
    pub fn focal_px(&self) -> f64 {
        self.focal_mm / 36.0 * self.photo[0].max(self.photo[1])
    }

    /// World points (Z up, metres; the person's root at the origin facing -Y, its rest body from
    /// `heights[0]` to `heights[1]` high) in camera space (x right, y down, z forward): the
    /// person turned by the heading and `frame.turn` and stepped by `frame.step` (sideways, away),
    /// the camera in front at `distance`, `camera_height` above the feet, aiming at `aim`.
    pub fn to_camera(&self, world: &[[f64; 3]], heights: [f64; 2], frame: &MotionFrame) -> Vec<[f32; 3]> {
        let (s, c) = (self.heading + frame.turn).sin_cos();
        let stage = self.stage(heights);
        world
            .iter()
            .map(|p| stage.to_camera([c * p[0] - s * p[1] + frame.step[0], s * p[0] + c * p[1] + frame.step[1], p[2]]))
            .collect()
    }

    /// The camera's place for a person whose rest body spans `heights` (feet, top) above the root.
    pub fn stage(&self, heights: [f64; 2]) -> Stage {
        let eye = [0.0, -self.distance, heights[0] + self.camera_height];
        let target = [0.0, 0.0, heights[0] + self.aim * (heights[1] - heights[0])];
        let forward = (Vector3::from(target) - Vector3::from(eye)).normalize();
        let right = forward.cross(&Vector3::z()).normalize();
        let down = forward.cross(&right);
        let [forward, right, down] = [forward, right, down].map(Into::into);
        Stage { eye, axes: [right, down, forward], ground: heights[0] }
    }

    /// The camera of the `size` x `size` crop that frames the person at `vertices` (camera space)
    /// as this shot says.
    pub fn crop(&self, vertices: &[[f32; 3]], size: usize) -> Camera {
        let focal = self.focal_px();
        let centre = self.photo.map(|v| v / 2.0);
        let [mut u0, mut v0, mut u1, mut v1] = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        for p in vertices.iter().filter(|p| p[2] > 0.05) {
            let (u, v) = (focal * f64::from(p[0] / p[2]) + centre[0], focal * f64::from(p[1] / p[2]) + centre[1]);
            (u0, v0, u1, v1) = (u0.min(u), v0.min(v), u1.max(u), v1.max(v));
        }
        let (width, height) = (u1 - u0, v1 - v0);
        let (side, origin) = match self.framing {
            Framing::Whole { fill, offset } => {
                let side = width.max(height) / fill;
                let slack = [(side - width) / 2.0, (side - height) / 2.0];
                let middle = [(u0 + u1) / 2.0 + offset[0] * slack[0], (v0 + v1) / 2.0 + offset[1] * slack[1]];
                (side, [middle[0] - side / 2.0, middle[1] - side / 2.0])
            }
            Framing::Cut { fill, offset } => {
                let side = height / fill;
                let left = (u0 + u1) / 2.0 - side / 2.0 + offset * 0.1 * side;
                (side, [left, v0 - 0.04 * side])
            }
        };
        Camera::photo_crop(focal as f32, centre.map(|v| v as f32), origin.map(|v| v as f32), side as f32, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A level camera aimed at the middle of a 2 m pole sees it upright, centred, at depth
    /// `distance`; the crop of a whole framing holds it at `fill` of its side.
    #[test]
    fn a_level_camera_sees_an_upright_pole_framed_as_asked() {
        let shot = Shot {
            distance: 4.0,
            camera_height: 1.0,
            aim: 0.5,
            focal_mm: 50.0,
            photo: [1080.0, 1440.0],
            heading: 0.0,
            framing: Framing::Whole { fill: 0.8, offset: [0.0, 0.0] },
            effects: Effects::none(),
        };
        let frame = MotionFrame { pose: crate::pose::Pose(vec![]), turn: 0.0, step: [0.0; 2] };
        let pole = shot.to_camera(&[[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]], [0.0, 2.0], &frame);
        assert_eq!(pole, vec![[0.0, 1.0, 4.0], [0.0, -1.0, 4.0]]);
        let camera = shot.crop(&pole, 256);
        let rows: Vec<f32> = pole.iter().map(|p| hdnet_render::raster::to_pixel(&camera, *p)[0]).collect();
        // 2 m at 4 m through a 2000 px lens: 1000 px, 0.8 of the crop.
        assert!((camera.fx - 2000.0).abs() < 1e-3 && (camera.scaling * 256.0 - 1250.0).abs() < 1e-2);
        assert!((rows[0] - rows[1] - 0.8 * 256.0).abs() < 0.01, "{rows:?}");
    }

    #[test]
    fn shots_cover_the_ranges() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let shots: Vec<Shot> = (0..400).map(|_| Shot::sample(&mut rng)).collect();
        let cut = shots.iter().filter(|s| matches!(s.framing, Framing::Cut { .. })).count() as f64 / 400.0;
        assert!((0.25..0.45).contains(&cut), "{cut}");
        let backs = shots.iter().filter(|s| s.heading.abs() > 2.0).count();
        assert!(backs > 60, "{backs} of 400 turned away");
        assert!(shots.iter().all(|s| (DISTANCE[0]..=DISTANCE[1]).contains(&s.distance)));
    }
}
