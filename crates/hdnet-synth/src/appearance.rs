//! How a person looks: skin and hair tones, fabrics with prints laid on the rest-shape surface
//! (so a print stays on the same cloth in every frame of a video), lights and a background.

use nalgebra::Vector3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::garment::Region;

/// A print on a fabric, over rest-shape coordinates (metres).
#[derive(Debug, Clone, Copy)]
enum Pattern {
    Plain,
    /// Bands across the body's height or (vertical) across its width.
    Stripes {
        period: f32,
        vertical: bool,
    },
    Checks {
        period: f32,
    },
    Dots {
        period: f32,
    },
}

#[derive(Debug, Clone, Copy)]
struct Fabric {
    base: [f32; 3],
    second: [f32; 3],
    pattern: Pattern,
}

impl Fabric {
    fn sample(rng: &mut ChaCha8Rng) -> Self {
        let period = 0.03 + 0.09 * rng.random::<f32>();
        let pattern = match rng.random_range(0..6) {
            0 => Pattern::Stripes { period, vertical: false },
            1 => Pattern::Stripes { period, vertical: true },
            2 => Pattern::Checks { period },
            3 => Pattern::Dots { period },
            _ => Pattern::Plain,
        };
        Self { base: colour(rng), second: colour(rng), pattern }
    }

    fn at(&self, p: [f32; 3]) -> [f32; 3] {
        let phase = |x: f32, period: f32| (x / period).rem_euclid(1.0);
        let second = match self.pattern {
            Pattern::Plain => false,
            Pattern::Stripes { period, vertical } => phase(if vertical { p[0] + p[1] } else { p[2] }, period) < 0.4,
            Pattern::Checks { period } => (phase(p[0] + p[1], 2.0 * period) < 0.5) ^ (phase(p[2], 2.0 * period) < 0.5),
            Pattern::Dots { period } => {
                let d = [phase(p[0] + p[1], period) - 0.5, phase(p[2], period) - 0.5];
                d[0] * d[0] + d[1] * d[1] < 0.06
            }
        };
        // A faint weave so that plain cloth still carries texture.
        let weave = 1.0 + 0.04 * ((p[0] * 900.0).sin() * (p[2] * 900.0).sin());
        (if second { self.second } else { self.base }).map(|c| c * weave)
    }
}

fn colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    let brightness = 0.15 + 0.8 * rng.random::<f32>();
    [0; 3].map(|_| (brightness * (0.5 + rng.random::<f32>())).clamp(0.03, 0.97))
}

/// Behind the person in `color/` (the network reads `color_WO_bg/`, white behind the mask).
#[derive(Debug, Clone, Copy)]
enum Background {
    Flat([f32; 3]),
    /// Top to bottom.
    Gradient([f32; 3], [f32; 3]),
    /// A floor (lower third) under a wall.
    Room {
        wall: [f32; 3],
        floor: [f32; 3],
        horizon: f32,
    },
}

#[derive(Debug, Clone)]
pub struct Appearance {
    top: Fabric,
    bottom: Fabric,
    skin: [f32; 3],
    hair: [f32; 3],
    /// Direction towards the key light (camera space, unit) and the ambient share.
    light: [f32; 3],
    ambient: f32,
    background: Background,
}

impl Appearance {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let tone = rng.random::<f32>();
        let (dark, light) = ([0.36, 0.22, 0.15], [0.95, 0.78, 0.66]);
        let hair = rng.random::<f32>();
        let background = match rng.random_range(0..3) {
            0 => Background::Flat(colour(rng)),
            1 => Background::Gradient(colour(rng), colour(rng)),
            _ => Background::Room { wall: colour(rng), floor: colour(rng), horizon: 0.55 + 0.3 * rng.random::<f32>() },
        };
        Self {
            top: Fabric::sample(rng),
            bottom: Fabric::sample(rng),
            skin: [0, 1, 2].map(|k| dark[k] + tone * (light[k] - dark[k])),
            hair: [0.05 + 0.6 * hair, 0.04 + 0.45 * hair, 0.03 + 0.25 * hair],
            light: Vector3::new(
                rng.random_range(-0.7..0.7),
                rng.random_range(-0.8..-0.1),
                rng.random_range(-1.0..-0.4),
            )
            .normalize()
            .into(),
            ambient: rng.random_range(0.15..0.4),
            background,
        }
    }

    /// Reflectance of `region` at rest-shape point `p`.
    pub fn albedo(&self, region: Region, p: [f32; 3]) -> [f32; 3] {
        match region {
            Region::Skin => self.skin,
            Region::Hair => self.hair,
            Region::Top | Region::Skirt => self.top.at(p),
            Region::Bottom => self.bottom.at(p),
        }
    }

    /// Lambertian reflection with ambient light, 0..255.
    pub fn shade(&self, albedo: [f32; 3], normal: [f32; 3]) -> [f32; 3] {
        let lambert = (0..3).map(|k| normal[k] * self.light[k]).sum::<f32>().max(0.0);
        albedo.map(|a| (255.0 * a * (self.ambient + (1.0 - self.ambient) * lambert)).clamp(0.0, 255.0))
    }

    /// The background at relative image position (row, col) in 0..1, 0..255.
    pub fn background(&self, row: f32, col: f32) -> [f32; 3] {
        let c = match self.background {
            Background::Flat(c) => c,
            Background::Gradient(a, b) => [0, 1, 2].map(|k| a[k] + row * (b[k] - a[k])),
            Background::Room { wall, floor, horizon } => {
                if row < horizon {
                    wall
                } else {
                    // The floor darkens towards the sides.
                    floor.map(|v| v * (1.0 - 0.3 * (2.0 * col - 1.0).abs()))
                }
            }
        };
        c.map(|v| 255.0 * v)
    }
}
