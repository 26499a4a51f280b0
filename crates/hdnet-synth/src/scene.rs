//! Where a synthetic person stands: a floor and a wall in perspective, with textures (tiles,
//! planks, stripes, noise) and blurred clutter on the wall, lit by the person's light (their
//! shadow included) and seen slightly out of focus.

use ndarray::Array3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use hdnet_geometry::Camera;
use hdnet_render::light::ShadowMap;

use crate::appearance::Lighting;

/// The camera's place in the world (Z up, metres) and the ground's height: what turns a crop
/// pixel into a point of the floor or the wall.
#[derive(Debug, Clone)]
pub struct Stage {
    pub eye: [f64; 3],
    /// World directions of the camera's x (right), y (down) and z (forward) axes.
    pub axes: [[f64; 3]; 3],
    pub ground: f64,
}

impl Stage {
    /// World to camera space.
    pub fn to_camera(&self, p: [f64; 3]) -> [f32; 3] {
        let d = [p[0] - self.eye[0], p[1] - self.eye[1], p[2] - self.eye[2]];
        self.axes.map(|a| (a[0] * d[0] + a[1] * d[1] + a[2] * d[2]) as f32)
    }

    /// A camera-space direction in the world.
    fn to_world(&self, v: [f32; 3]) -> [f64; 3] {
        [0, 1, 2].map(|k| (0..3).map(|i| self.axes[i][k] * f64::from(v[i])).sum())
    }
}

/// A surface pattern over plane coordinates (metres).
#[derive(Debug, Clone, Copy)]
enum Texture {
    Plain([f32; 3]),
    Tiles { a: [f32; 3], b: [f32; 3], period: f64 },
    Planks { a: [f32; 3], b: [f32; 3], width: f64 },
    Stripes { a: [f32; 3], b: [f32; 3], period: f64 },
    Noise { a: [f32; 3], b: [f32; 3], scale: f64 },
}

impl Texture {
    fn sample(rng: &mut ChaCha8Rng) -> Self {
        let (a, b) = (colour(rng), colour(rng));
        match rng.random_range(0..5) {
            0 => Texture::Plain(a),
            1 => Texture::Tiles { a, b, period: rng.random_range(0.2..0.8) },
            2 => Texture::Planks { a, b: a.map(|v| v * 0.8), width: rng.random_range(0.08..0.25) },
            3 => Texture::Stripes { a, b, period: rng.random_range(0.05..0.6) },
            _ => Texture::Noise { a, b, scale: rng.random_range(0.05..0.5) },
        }
    }

    fn at(&self, u: f64, v: f64) -> [f32; 3] {
        let mix = |a: [f32; 3], b: [f32; 3], t: f64| [0, 1, 2].map(|k| a[k] + (b[k] - a[k]) * t as f32);
        match *self {
            Texture::Plain(a) => a,
            Texture::Tiles { a, b, period } => {
                let odd = ((u / period).floor() + (v / period).floor()).rem_euclid(2.0) == 1.0;
                if odd { b } else { a }
            }
            Texture::Planks { a, b, width } => {
                let plank = (u / width).floor();
                let grain = 0.5 + 0.5 * (v * 7.0 + plank * 12.9898).sin() * (v * 23.0 + plank).cos();
                mix(a, b, grain)
            }
            Texture::Stripes { a, b, period } => mix(a, b, f64::from(u8::from((u / period).rem_euclid(1.0) < 0.5))),
            Texture::Noise { a, b, scale } => mix(a, b, value_noise(u / scale, v / scale)),
        }
    }
}

/// Smooth value noise in [0, 1] (hashed lattice, smoothstep interpolation).
fn value_noise(x: f64, y: f64) -> f64 {
    // An integer hash of the lattice point, to [0, 1].
    let hash = |i: f64, j: f64| {
        crate::splitmix64((i as i64 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (j as i64 as u64)) as f64
            / u64::MAX as f64
    };
    let (i, j) = (x.floor(), y.floor());
    let (fx, fy) = (x - i, y - j);
    let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (smooth(fx), smooth(fy));
    let top = hash(i, j) + (hash(i + 1.0, j) - hash(i, j)) * sx;
    let bottom = hash(i, j + 1.0) + (hash(i + 1.0, j + 1.0) - hash(i, j + 1.0)) * sx;
    top + (bottom - top) * sy
}

fn colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    let brightness = 0.15 + 0.75 * rng.random::<f32>();
    [0; 3].map(|_| (brightness * (0.6 + 0.8 * rng.random::<f32>())).clamp(0.03, 0.95))
}

/// A shape hung on the wall (a picture, a shelf, a plant): an ellipse or a rectangle.
#[derive(Debug, Clone, Copy)]
struct Clutter {
    centre: [f64; 2],
    half: [f64; 2],
    round: bool,
    colour: [f32; 3],
}

/// The floor, the wall and what hangs on it.
#[derive(Debug, Clone)]
pub struct Scene {
    floor: Texture,
    wall: Texture,
    /// How far behind the person the wall stands (metres).
    wall_distance: f64,
    clutter: Vec<Clutter>,
    /// Defocus of the background (pixels at 256 x 256).
    pub blur: f32,
}

impl Scene {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let clutter = (0..rng.random_range(0..8))
            .map(|_| Clutter {
                centre: [rng.random_range(-4.0..4.0), rng.random_range(0.3..2.5)],
                half: [rng.random_range(0.1..0.8), rng.random_range(0.1..0.8)],
                round: rng.random(),
                colour: colour(rng),
            })
            .collect();
        Self {
            floor: Texture::sample(rng),
            wall: Texture::sample(rng),
            wall_distance: rng.random_range(0.8..5.0),
            clutter,
            blur: rng.random_range(0.0..2.5),
        }
    }

    /// What the crop pixel (row, col) of `camera` sees behind the person: the reflectance, the
    /// camera-space normal and the camera-space point of the floor or the wall there.
    fn hit(&self, stage: &Stage, camera: &Camera, row: f32, col: f32) -> ([f32; 3], [f32; 3], [f32; 3]) {
        let ray = stage.to_world(camera.ray(row, col));
        let floor_t = if ray[2] < 0.0 { (stage.ground - stage.eye[2]) / ray[2] } else { f64::INFINITY };
        let wall_t = if ray[1] > 0.0 { (self.wall_distance - stage.eye[1]) / ray[1] } else { f64::INFINITY };
        let t = floor_t.min(wall_t).min(1e3);
        let p = [0, 1, 2].map(|k| stage.eye[k] + t * ray[k]);
        let (albedo, normal) = if floor_t <= wall_t {
            (self.floor.at(p[0], p[1]), [0.0, 0.0, 1.0])
        } else {
            let height = p[2] - stage.ground;
            let hung = self.clutter.iter().find(|c| {
                let d = [(p[0] - c.centre[0]) / c.half[0], (height - c.centre[1]) / c.half[1]];
                if c.round { d[0] * d[0] + d[1] * d[1] < 1.0 } else { d[0].abs() < 1.0 && d[1].abs() < 1.0 }
            });
            (hung.map_or_else(|| self.wall.at(p[0], height), |c| c.colour), [0.0, -1.0, 0.0])
        };
        let normal = stage.to_camera([stage.eye[0] + normal[0], stage.eye[1] + normal[1], stage.eye[2] + normal[2]]);
        (albedo, normal, stage.to_camera(p))
    }

    /// The background of a `size` x `size` crop (0..255), lit by `lighting` with the person's
    /// `shadows`, blurred by the scene's defocus.
    pub fn render(
        &self,
        stage: &Stage,
        camera: &Camera,
        lighting: &Lighting,
        shadows: Option<&ShadowMap>,
        size: usize,
    ) -> Array3<f32> {
        let mut out = Array3::zeros((size, size, 3));
        for r in 0..size {
            for c in 0..size {
                let (albedo, normal, point) = self.hit(stage, camera, r as f32, c as f32);
                let key = shadows.map_or(1.0, |s| s.light_at(point));
                let colour = lighting.diffuse(albedo, normal, key);
                for k in 0..3 {
                    out[(r, c, k)] = colour[k];
                }
            }
        }
        let sigma = self.blur * size as f32 / 256.0;
        if sigma > 0.2 { crate::photo::gaussian_blur(&out, sigma) } else { out }
    }
}
