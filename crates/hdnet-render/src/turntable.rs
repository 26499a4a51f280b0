//! A mesh seen turning about its vertical axis: the view users expect of a predicted 3D person
//! (the original needed MATLAB for it). Shaded by a light at the camera, in the mesh's colours.

use hdnet_geometry::{Camera, Upright};
use ndarray::Array3;

use crate::raster::{BACKGROUND, rasterize, vertex_normals};

/// The colour of a mesh shown for its shape alone: light enough for the shading to show.
pub const CLAY: [u8; 3] = [215, 210, 200];

/// Share of light that does not depend on the surface's orientation.
const AMBIENT: f32 = 0.3;

/// `frames` views of a camera-space mesh (x right, y down, z forward) turning a full circle about
/// the person's vertical axis ([`Upright`]) through its centre, each `size` x `size`, RGB 0..255
/// on white. The mesh fills about 85% of the frame whatever its scale.
pub fn turntable(
    points: &[[f32; 3]],
    colors: &[[u8; 3]],
    faces: &[[u32; 3]],
    frames: usize,
    size: usize,
) -> Vec<Array3<u8>> {
    let used: Vec<usize> = {
        let mut seen = vec![false; points.len()];
        faces.iter().flatten().for_each(|&v| seen[v as usize] = true);
        (0..points.len()).filter(|&v| seen[v]).collect()
    };
    let n = used.len().max(1) as f32;
    let centre = [0, 1, 2].map(|k| used.iter().map(|&v| points[v][k]).sum::<f32>() / n);
    let radius = used
        .iter()
        .map(|&v| (0..3).map(|k| (points[v][k] - centre[k]).powi(2)).sum::<f32>().sqrt())
        .fold(1e-6, f32::max);
    let distance = 4.0 * radius;
    let focal = 0.85 * size as f32 / 2.0 * (distance - radius) / radius;
    let camera = Camera {
        fx: focal,
        fy: focal,
        cx: size as f32 / 2.0 - 0.5,
        cy: size as f32 / 2.0 - 0.5,
        origin: [0.0, 0.0],
        scaling: 1.0,
    };
    // Stood upright about the centre once; each frame only turns it.
    let upright = Upright::of(used.iter().map(|&v| points[v]));
    let standing: Vec<[f32; 3]> =
        points.iter().map(|p| upright.apply([p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]])).collect();
    (0..frames)
        .map(|f| {
            let (s, c) = (std::f32::consts::TAU * f as f32 / frames as f32).sin_cos();
            let turned: Vec<[f32; 3]> =
                standing.iter().map(|d| [c * d[0] + s * d[2], d[1], -s * d[0] + c * d[2] + distance]).collect();
            shade(&turned, colors, faces, &camera, size)
        })
        .collect()
}

fn shade(points: &[[f32; 3]], colors: &[[u8; 3]], faces: &[[u32; 3]], camera: &Camera, size: usize) -> Array3<u8> {
    let raster = rasterize(points, (faces, 0), camera, size, size);
    let normals = vertex_normals(points, faces);
    let mut out = Array3::from_elem((size, size, 3), 255u8);
    for ((r, col), &t) in raster.triangle.indexed_iter() {
        if t == BACKGROUND {
            continue;
        }
        let face = faces[t as usize].map(|i| i as usize);
        let b = [0, 1, 2].map(|i| raster.barycentric[(r, col, i)]);
        let mix = |f: &dyn Fn(usize) -> f32| (0..3).map(|i| b[i] * f(face[i])).sum::<f32>();
        let n = [0, 1, 2].map(|k| mix(&|v| normals[v][k]));
        let p = [0, 1, 2].map(|k| mix(&|v| points[v][k]));
        let (nl, pl) = ((n.iter().map(|x| x * x).sum::<f32>()).sqrt(), (p.iter().map(|x| x * x).sum::<f32>()).sqrt());
        // Headlight: brightness from the angle between the surface and the viewing ray, both sides lit.
        let facing = if nl > 0.0 { ((n[0] * p[0] + n[1] * p[1] + n[2] * p[2]) / (nl * pl)).abs() } else { 1.0 };
        let light = AMBIENT + (1.0 - AMBIENT) * facing;
        for k in 0..3 {
            out[(r, col, k)] = (mix(&|v| f32::from(colors[v][k])) * light).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit square facing the camera at 3 m.
    fn square() -> (Vec<[f32; 3]>, Vec<[u8; 3]>, Vec<[u32; 3]>) {
        let points = vec![[-0.5, -0.5, 3.0], [0.5, -0.5, 3.0], [0.5, 0.5, 3.0], [-0.5, 0.5, 3.0]];
        (points, vec![[200, 100, 50]; 4], vec![[0, 1, 2], [0, 2, 3]])
    }

    /// A box 0.4 m wide, 1.8 m tall and 0.2 m deep at 3 m, its top tipped 30 degrees towards the
    /// camera: a standing person seen by a camera looking down.
    fn leaning_box() -> (Vec<[f32; 3]>, Vec<[u8; 3]>, Vec<[u32; 3]>) {
        let (s, c) = 30f32.to_radians().sin_cos();
        let points = (0..8)
            .map(|i| {
                let [x, y, z] = [
                    0.2 * if i & 1 == 0 { -1.0 } else { 1.0 },
                    if i & 2 == 0 { -0.9 } else { 0.9 },
                    if i & 4 == 0 { -0.1 } else { 0.1 },
                ];
                [x, c * y - s * z, s * y + c * z + 3.0]
            })
            .collect();
        let quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]];
        let faces = quads.iter().flat_map(|q: &[u32; 4]| [[q[0], q[1], q[2]], [q[0], q[2], q[3]]]).collect();
        (points, vec![[200, 100, 50]; 8], faces)
    }

    /// Rows and columns spanned by the mesh's pixels.
    fn extent(img: &Array3<u8>) -> (usize, usize) {
        let on: Vec<(usize, usize)> = (0..img.dim().0)
            .flat_map(|r| (0..img.dim().1).map(move |c| (r, c)))
            .filter(|&(r, c)| (0..3).any(|k| img[(r, c, k)] != 255))
            .collect();
        let span =
            |f: fn(&(usize, usize)) -> usize| on.iter().map(f).max().unwrap() - on.iter().map(f).min().unwrap() + 1;
        (span(|p| p.0), span(|p| p.1))
    }

    #[test]
    fn a_person_leaning_with_the_cameras_pitch_turns_upright() {
        let (points, colors, faces) = leaning_box();
        let frames = turntable(&points, &colors, &faces, 4, 128);
        // Seen from the side the box stands upright: 0.2 m deep against 1.8 m tall (0.11) with the
        // perspective's widening; left leaning it would be 1.07 m wide (0.2 cos 30 + 1.8 sin 30).
        let (rows, cols) = extent(&frames[1]);
        assert!((cols as f32) < 0.2 * rows as f32, "{cols} columns for {rows} rows");
        // From the front its full height shows against its width (4.5), not 1.8 cos 30 (3.9).
        let (rows, cols) = extent(&frames[0]);
        assert!(rows as f32 > 4.2 * cols as f32, "{rows} rows for {cols} columns");
    }

    fn covered(img: &Array3<u8>) -> usize {
        img.outer_iter()
            .flat_map(|row| row.outer_iter().map(|px| px.iter().any(|&v| v != 255)).collect::<Vec<_>>())
            .filter(|&c| c)
            .count()
    }

    #[test]
    fn a_square_turns_edge_on_and_back() {
        let (points, colors, faces) = square();
        let frames = turntable(&points, &colors, &faces, 4, 64);
        assert_eq!(frames.len(), 4);
        // Facing the camera: a large lit square in its own colour (the headlight hits it head on).
        let front = covered(&frames[0]);
        // The bounding sphere fills 85% of the frame; the square's side is 1/sqrt(2) of its diameter.
        assert!(front > 64 * 64 / 8, "{front} pixels");
        assert_eq!(frames[0].slice(ndarray::s![32, 32, ..]).to_vec(), vec![200, 100, 50]);
        // A quarter turn: seen edge on, almost nothing; half a turn: the back, as large as the front.
        assert!(covered(&frames[1]) < front / 10);
        assert!((covered(&frames[2]) as i64 - front as i64).abs() < front as i64 / 10);
    }
}
