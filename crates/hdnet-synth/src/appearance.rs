//! How a person looks: skin and hair tones, fabrics with prints laid on the rest-shape surface
//! (so a print stays on the same cloth in every frame of a video) and materials (matte denim to
//! satin), lit by a coloured low-frequency environment (spherical harmonics of order 1) and a key
//! light with a specular highlight; and the scene they stand in.

use nalgebra::Vector3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::garment::Region;
use crate::scene::Scene;

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

/// How a surface reflects the key light: Blinn-Phong strength and sharpness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Material {
    pub specular: f32,
    /// A whole exponent: a few multiplications where `powf` was a tenth of shading.
    pub shininess: i32,
}

const SKIN: Material = Material { specular: 0.12, shininess: 16 };
const HAIR: Material = Material { specular: 0.3, shininess: 40 };
const LEATHER: Material = FABRICS[2];
/// Matte denim, cotton, leather, satin.
const FABRICS: [Material; 4] = [
    Material { specular: 0.02, shininess: 4 },
    Material { specular: 0.06, shininess: 8 },
    Material { specular: 0.25, shininess: 25 },
    Material { specular: 0.45, shininess: 60 },
];

#[derive(Debug, Clone, Copy)]
struct Fabric {
    base: [f32; 3],
    second: [f32; 3],
    pattern: Pattern,
    material: Material,
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
        Self { base: colour(rng), second: colour(rng), pattern, material: FABRICS[rng.random_range(0..FABRICS.len())] }
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

/// The light of a scene, in camera space.
#[derive(Debug, Clone, Copy)]
pub struct Lighting {
    /// Irradiance of the environment per channel: order-1 spherical harmonics, E(n) = e0 + e . n.
    environment: [[f32; 4]; 3],
    /// Direction towards the key light (unit) and its colour.
    pub towards_key: [f32; 3],
    key: [f32; 3],
}

impl Lighting {
    fn sample(rng: &mut ChaCha8Rng) -> Self {
        let ambient = rng.random_range(0.12..0.45);
        let tint = |rng: &mut ChaCha8Rng, spread: f32| [0; 3].map(|_| 1.0 + rng.random_range(-spread..spread));
        let (sky, ground) = (tint(rng, 0.2), tint(rng, 0.2));
        // Brighter from above (camera -y) than from below, with a random sideways part.
        let side = [rng.random_range(-0.3..0.3), rng.random_range(-0.2..0.2)];
        let environment = [0, 1, 2].map(|k| {
            let (top, bottom) = (ambient * sky[k] * 1.3, ambient * ground[k] * 0.6);
            [(top + bottom) / 2.0, side[0] * ambient, -(top - bottom) / 2.0, side[1] * ambient]
        });
        let towards_key =
            Vector3::new(rng.random_range(-0.9..0.9), rng.random_range(-0.9..-0.05), rng.random_range(-1.0..0.2))
                .normalize()
                .into();
        let strength = rng.random_range(0.5..1.1);
        let warmth = rng.random_range(-0.15..0.15);
        Self { environment, towards_key, key: [strength * (1.0 + warmth), strength, strength * (1.0 - warmth)] }
    }

    /// A matte surface's colour (0..255): reflectance `albedo` facing `normal`, receiving `key`
    /// of the key light.
    pub fn diffuse(&self, albedo: [f32; 3], normal: [f32; 3], key: f32) -> [f32; 3] {
        let lambert = (0..3).map(|k| normal[k] * self.towards_key[k]).sum::<f32>().max(0.0) * key;
        let environment = self.environment(normal);
        [0, 1, 2].map(|k| (255.0 * albedo[k] * (environment[k] + self.key[k] * lambert)).clamp(0.0, 255.0))
    }

    /// The environment's irradiance on a surface facing `normal`.
    fn environment(&self, normal: [f32; 3]) -> [f32; 3] {
        self.environment.map(|e| (e[0] + e[1] * normal[0] + e[2] * normal[1] + e[3] * normal[2]).max(0.0))
    }
}

#[derive(Debug, Clone)]
pub struct Appearance {
    top: Fabric,
    bottom: Fabric,
    skin: [f32; 3],
    hair: [f32; 3],
    shoes: ([f32; 3], Material),
    pub lighting: Lighting,
    /// Where they stand.
    pub scene: Scene,
}

impl Appearance {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let tone = rng.random::<f32>();
        let (dark, light) = ([0.36, 0.22, 0.15], [0.95, 0.78, 0.66]);
        let hair = rng.random::<f32>();
        Self {
            top: Fabric::sample(rng),
            bottom: Fabric::sample(rng),
            skin: [0, 1, 2].map(|k| dark[k] + tone * (light[k] - dark[k])),
            hair: [0.05 + 0.6 * hair, 0.04 + 0.45 * hair, 0.03 + 0.25 * hair],
            lighting: Lighting::sample(rng),
            scene: Scene::sample(rng),
            shoes: (colour(rng), if rng.random() { LEATHER } else { FABRICS[0] }),
        }
    }

    /// Reflectance and material of `region` at rest-shape point `p`.
    pub fn surface(&self, region: Region, p: [f32; 3]) -> ([f32; 3], Material) {
        match region {
            Region::Skin => (self.skin, SKIN),
            Region::Hair => (self.hair, HAIR),
            Region::Shoe => self.shoes,
            Region::Top | Region::Skirt => (self.top.at(p), self.top.material),
            Region::Bottom => (self.bottom.at(p), self.bottom.material),
        }
    }

    /// The colour (0..255) of a surface of `albedo` and `material` facing `normal`, seen from
    /// `view` (unit, towards the camera), which receives `key_light` of the key light (0..1, its
    /// shadow) and `ambient` of the environment (0..1, its occlusion).
    pub fn shade(
        &self,
        (albedo, material): ([f32; 3], Material),
        normal: [f32; 3],
        view: [f32; 3],
        key_light: f32,
        ambient: f32,
    ) -> [f32; 3] {
        let l = &self.lighting;
        let dot = |a: [f32; 3], b: [f32; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        let lambert = dot(normal, l.towards_key).max(0.0) * key_light;
        let half = Vector3::from(l.towards_key) + Vector3::from(view);
        let half: [f32; 3] = half.try_normalize(1e-6).map_or([0.0; 3], Into::into);
        let highlight = if lambert > 0.0 {
            material.specular * dot(normal, half).max(0.0).powi(material.shininess) * key_light
        } else {
            0.0
        };
        let environment = l.environment(normal);
        [0, 1, 2].map(|k| {
            (255.0 * (albedo[k] * (environment[k] * ambient + l.key[k] * lambert) + l.key[k] * highlight))
                .clamp(0.0, 255.0)
        })
    }
}
