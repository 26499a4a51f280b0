//! Rasterisation with pixel centres at integer (row, col), as HDNet's back-projection uses them.

use hdnet_geometry::Camera;
use ndarray::{Array2, Array3};

/// No triangle covers the pixel.
pub const BACKGROUND: u32 = u32::MAX;
/// Points closer than this (metres) are not drawn.
const NEAR: f32 = 1e-3;

/// What is visible at each pixel.
#[derive(Debug, Clone)]
pub struct Raster {
    /// Camera-space z of the visible surface; 0 on the background.
    pub depth: Array2<f32>,
    /// Index of the visible triangle, or [`BACKGROUND`].
    pub triangle: Array2<u32>,
    /// Perspective-correct barycentric weights of the triangle's three vertices.
    pub barycentric: Array3<f32>,
}

impl Raster {
    pub fn mask(&self) -> Array2<f32> {
        self.triangle.mapv(|t| if t == BACKGROUND { 0.0 } else { 1.0 })
    }

    /// Every `factor`-th pixel of each row and column: the raster of the same view at 1/`factor`
    /// of the resolution (a camera's `finer(factor)` puts its pixel (f r, f c) where the coarser
    /// camera's (r, c) is), so supersampled pictures and their exact labels share one pass.
    pub fn subsampled(&self, factor: usize) -> Self {
        let (h, w) = self.triangle.dim();
        let (ch, cw) = (h / factor, w / factor);
        Self {
            depth: Array2::from_shape_fn((ch, cw), |(r, c)| self.depth[(factor * r, factor * c)]),
            triangle: Array2::from_shape_fn((ch, cw), |(r, c)| self.triangle[(factor * r, factor * c)]),
            barycentric: Array3::from_shape_fn((ch, cw, 3), |(r, c, k)| self.barycentric[(factor * r, factor * c, k)]),
        }
    }

    /// Interpolates a per-vertex attribute of `N` components over the visible surface (zero on
    /// the background).
    pub fn interpolate<const N: usize>(&self, faces: &[[u32; 3]], attribute: &[[f32; N]]) -> Array3<f32> {
        let (h, w) = self.triangle.dim();
        let mut out = Array3::zeros((h, w, N));
        for ((r, c), &t) in self.triangle.indexed_iter() {
            if t == BACKGROUND {
                continue;
            }
            let face = faces[t as usize];
            for k in 0..N {
                out[(r, c, k)] = (0..3).map(|i| self.barycentric[(r, c, i)] * attribute[face[i] as usize][k]).sum();
            }
        }
        out
    }
}

/// Crop pixel coordinates (row, col) of a camera-space point.
pub fn to_pixel(camera: &Camera, p: [f32; 3]) -> [f32; 2] {
    let [x, y] = camera.project_to_frame(p);
    [(y - camera.origin[1]) / camera.scaling, (x - camera.origin[0]) / camera.scaling]
}

/// Draws `faces` of the camera-space `positions` into an `height` x `width` crop: nearest surface
/// wins. The first `closed` faces form closed surfaces wound outward (a body): those facing away
/// from the camera are skipped, as a ray always enters a closed surface through a face turned
/// towards it; the rest (cloth, hair cards) are drawn from both sides. Depth is tested per
/// triangle; the winner's barycentric weights are computed once per pixel at the end.
pub fn rasterize(
    positions: &[[f32; 3]],
    (faces, closed): (&[[u32; 3]], usize),
    camera: &Camera,
    height: usize,
    width: usize,
) -> Raster {
    let screen: Vec<[f32; 2]> = positions.iter().map(|&p| to_pixel(camera, p)).collect();
    let mut depth = vec![f32::INFINITY; height * width];
    let mut triangle = vec![BACKGROUND; height * width];
    for (t, face) in faces.iter().enumerate() {
        let p = face.map(|i| positions[i as usize]);
        if p.iter().any(|v| v[2] < NEAR) || (t < closed && faces_away(p)) {
            continue;
        }
        let s = face.map(|i| screen[i as usize]);
        let area = edge(s[0], s[1], s[2]);
        if area.abs() < 1e-12 {
            continue;
        }
        let inv_z = p.map(|v| 1.0 / v[2]);
        let rows = s.iter().map(|v| v[0]);
        let cols = s.iter().map(|v| v[1]);
        let r0 = rows.clone().fold(f32::INFINITY, f32::min).ceil().max(0.0) as usize;
        let r1 = rows.fold(f32::NEG_INFINITY, f32::max).floor().min(height as f32 - 1.0);
        let c0 = cols.clone().fold(f32::INFINITY, f32::min).ceil().max(0.0) as usize;
        let c1 = cols.fold(f32::NEG_INFINITY, f32::max).floor().min(width as f32 - 1.0);
        if r1 < 0.0 || c1 < 0.0 {
            continue;
        }
        // Each weight is linear along a row: start it at c0 and step it per column.
        let step = [s[2][0] - s[1][0], s[0][0] - s[2][0], s[1][0] - s[0][0]].map(|d| d / area);
        for r in r0..=r1 as usize {
            let (depth_row, triangle_row) = (&mut depth[r * width..][..width], &mut triangle[r * width..][..width]);
            let mut b = weights(&s, area, [r as f32, c0 as f32]);
            for c in c0..=c1 as usize {
                let inside = b.iter().all(|&x| x >= -1e-6);
                let current = b;
                b = [b[0] + step[0], b[1] + step[1], b[2] + step[2]];
                if !inside {
                    continue;
                }
                let b = current;
                // Perspective correction: 1/z is linear in screen space.
                let z = 1.0 / (b[0] * inv_z[0] + b[1] * inv_z[1] + b[2] * inv_z[2]);
                if z < depth_row[c] {
                    depth_row[c] = z;
                    triangle_row[c] = t as u32;
                }
            }
        }
    }
    let mut barycentric = Array3::zeros((height, width, 3));
    for (i, &t) in triangle.iter().enumerate().filter(|(_, t)| **t != BACKGROUND) {
        let face = faces[t as usize];
        let b = weights(
            &face.map(|v| screen[v as usize]),
            edge_of(&screen, face),
            [(i / width) as f32, (i % width) as f32],
        );
        for k in 0..3 {
            barycentric[(i / width, i % width, k)] = b[k] / positions[face[k] as usize][2] * depth[i];
        }
    }
    depth.iter_mut().for_each(|d| {
        if d.is_infinite() {
            *d = 0.0;
        }
    });
    Raster {
        depth: Array2::from_shape_vec((height, width), depth).expect("height x width"),
        triangle: Array2::from_shape_vec((height, width), triangle).expect("height x width"),
        barycentric,
    }
}

/// Whether the triangle `p` (camera space, wound counter-clockwise seen from outside) turns its
/// back on the camera at the origin.
fn faces_away(p: [[f32; 3]; 3]) -> bool {
    let edge = |to: usize| [0, 1, 2].map(|k| p[to][k] - p[0][k]);
    dot(cross(edge(1), edge(2)), p[0]) >= 0.0
}

pub(crate) fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// Screen-space barycentric weights of `q` in the triangle `s` of doubled signed area `area`.
fn weights(s: &[[f32; 2]; 3], area: f32, q: [f32; 2]) -> [f32; 3] {
    [edge(s[1], s[2], q) / area, edge(s[2], s[0], q) / area, edge(s[0], s[1], q) / area]
}

/// The doubled signed area of `face` on the screen.
fn edge_of(screen: &[[f32; 2]], face: [u32; 3]) -> f32 {
    let s = face.map(|i| screen[i as usize]);
    edge(s[0], s[1], s[2])
}

/// Twice the signed area of (a, b, q) in (row, col) coordinates.
fn edge(a: [f32; 2], b: [f32; 2], q: [f32; 2]) -> f32 {
    (b[0] - a[0]) * (q[1] - a[1]) - (b[1] - a[1]) * (q[0] - a[0])
}

/// Area-weighted vertex normals of a triangle mesh (not normalised to the camera: orientation
/// follows the faces' winding).
pub fn vertex_normals(positions: &[[f32; 3]], faces: &[[u32; 3]]) -> Vec<[f32; 3]> {
    let mut normals = vec![[0.0f32; 3]; positions.len()];
    for face in faces {
        let [a, b, c] = face.map(|i| positions[i as usize]);
        let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
        let n = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
        for &i in face {
            for k in 0..3 {
                normals[i as usize][k] += n[k];
            }
        }
    }
    for n in &mut normals {
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        if len > 0.0 {
            *n = n.map(|x| x / len);
        }
    }
    normals
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quad through the camera-space points at depth z(x, y) = 4 + 0.5 x + 0.3 y covering the
    /// middle of the crop.
    fn tilted_quad(camera: &Camera) -> (Vec<[f32; 3]>, Vec<[u32; 3]>) {
        let corner = |row: f32, col: f32| {
            let ray = camera.ray(row, col);
            let d = 4.0 / (1.0 - 0.5 * ray[0] - 0.3 * ray[1]);
            ray.map(|v| v * d)
        };
        (
            vec![corner(60.0, 50.0), corner(60.0, 200.0), corner(190.0, 200.0), corner(190.0, 50.0)],
            vec![[0, 1, 2], [0, 2, 3]],
        )
    }

    #[test]
    fn depth_is_perspective_correct_on_a_tilted_plane() {
        let camera = Camera::original();
        let (positions, faces) = tilted_quad(&camera);
        let raster = rasterize(&positions, (&faces, 0), &camera, 256, 256);
        let mut max_err = 0f32;
        let mut covered = 0;
        for ((r, c), &d) in raster.depth.indexed_iter() {
            let inside = (61..190).contains(&r) && (51..200).contains(&c);
            let outside = !(60..=190).contains(&r) || !(50..=200).contains(&c);
            if inside || outside {
                assert_eq!(raster.triangle[(r, c)] != BACKGROUND, inside, "({r},{c})");
            }
            if raster.triangle[(r, c)] != BACKGROUND {
                covered += 1;
                let ray = camera.ray(r as f32, c as f32);
                let want = 4.0 / (1.0 - 0.5 * ray[0] - 0.3 * ray[1]);
                max_err = max_err.max((d - want).abs());
            }
        }
        assert!(covered >= 129 * 149, "{covered}");
        assert!(max_err < 1e-4, "max depth error {max_err}");
    }

    #[test]
    fn interpolated_attributes_and_normals() {
        let camera = Camera::original();
        let (positions, faces) = tilted_quad(&camera);
        let raster = rasterize(&positions, (&faces, 0), &camera, 256, 256);
        // Interpolating the positions themselves gives the camera-space point of each pixel.
        let points = raster.interpolate(&faces, &positions);
        let (r, c) = (100, 120);
        let want = camera.backproject(r as f32, c as f32, raster.depth[(r, c)]);
        for k in 0..3 {
            assert!((points[(r, c, k)] - want[k]).abs() < 1e-4);
        }
        let normals = raster.interpolate(&faces, &vertex_normals(&positions, &faces));
        let n = [0.5f32, 0.3, -1.0].map(|v| v / 1.34f32.sqrt());
        // The quad is wound so that its normal faces the camera (n_z < 0) or away: either sign.
        let dot: f32 = (0..3).map(|k| normals[(r, c, k)] * n[k]).sum();
        assert!((dot.abs() - 1.0).abs() < 1e-4, "{dot}");
    }

    #[test]
    fn nearer_triangle_wins() {
        let camera = Camera::original();
        let at = |row: f32, col: f32, d: f32| camera.ray(row, col).map(|v| v * d);
        let positions = vec![
            at(10.0, 10.0, 5.0),
            at(10.0, 100.0, 5.0),
            at(100.0, 10.0, 5.0),
            at(10.0, 10.0, 3.0),
            at(10.0, 100.0, 3.0),
            at(100.0, 10.0, 3.0),
        ];
        let raster = rasterize(&positions, (&[[0, 1, 2], [3, 4, 5]], 0), &camera, 128, 128);
        assert_eq!(raster.triangle[(30, 30)], 1);
        assert!((raster.depth[(30, 30)] - 3.0).abs() < 1e-4);
        assert_eq!(raster.mask()[(120, 120)], 0.0);
    }
}
