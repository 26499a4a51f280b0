//! Where light does not reach: a shadow map for a directional key light (soft edges by
//! percentage-closer filtering) and screen-space ambient occlusion from a depth buffer (contact
//! shading under arms, between legs, inside folds).

use hdnet_geometry::Camera;
use ndarray::Array2;

use crate::raster::{BACKGROUND, cross, dot, rasterize, to_pixel};

/// The light's view sits this far away, so that its perspective is nearly orthographic.
const FAR: f32 = 1000.0;
/// Depth tolerance of the shadow test (metres): a surface does not shadow itself.
const BIAS: f32 = 0.015;

/// Depth of the nearest surface along a directional light, over the scene's extent.
pub struct ShadowMap {
    /// Camera-space axes of the light's view: right, down, along the light.
    axes: [[f32; 3]; 3],
    camera: Camera,
    depth: Array2<f32>,
    mask: Array2<bool>,
    /// Map rows and columns (first, last) holding any surface: most points a frame asks about
    /// (the background) lie outside them and are lit without a lookup.
    occupied: [[f32; 2]; 2],
}

fn normalize(a: [f32; 3]) -> [f32; 3] {
    let n = dot(a, a).sqrt();
    a.map(|v| v / n)
}

impl ShadowMap {
    /// The map of `faces` over camera-space `positions` (the first `closed` of them closed
    /// surfaces, as [`rasterize`] takes them) for light arriving from `towards_light` (unit,
    /// camera space), `resolution` pixels across the scene's larger extent.
    pub fn new(
        positions: &[[f32; 3]],
        faces: (&[[u32; 3]], usize),
        towards_light: [f32; 3],
        resolution: usize,
    ) -> Self {
        let along = towards_light.map(|v| -v);
        let helper = if along[1].abs() < 0.9 { [0.0, 1.0, 0.0] } else { [1.0, 0.0, 0.0] };
        let right = normalize(cross(helper, along));
        let down = cross(along, right);
        let axes = [right, down, along];
        let view: Vec<[f32; 3]> =
            positions.iter().map(|&p| [dot(right, p), dot(down, p), dot(along, p) + FAR]).collect();
        let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
        for p in &view {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let margin = 0.02;
        let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]) + 2.0 * margin;
        let camera = Camera::photo_crop(FAR, [0.0, 0.0], [lo[0] - margin, lo[1] - margin], extent, resolution);
        let raster = rasterize(&view, faces, &camera, resolution, resolution);
        let mask = raster.triangle.mapv(|t| t != BACKGROUND);
        let mut occupied = [[f32::MAX, f32::MIN]; 2];
        for ((r, c), _) in mask.indexed_iter().filter(|(_, on)| **on) {
            for (range, at) in occupied.iter_mut().zip([r, c]) {
                range[0] = range[0].min(at as f32);
                range[1] = range[1].max(at as f32);
            }
        }
        Self { axes, camera, mask, depth: raster.depth, occupied }
    }

    /// How much of the key light reaches camera-space point `p`: the share of the 3x3 map
    /// pixels around its position where it is the nearest surface (1 outside the map).
    pub fn light_at(&self, p: [f32; 3]) -> f32 {
        let q = [dot(self.axes[0], p), dot(self.axes[1], p), dot(self.axes[2], p) + FAR];
        let pixel = to_pixel(&self.camera, q);
        // The 3x3 pixels around the rounded position reach 1.5 pixels from it.
        if pixel.iter().zip(&self.occupied).any(|(&x, range)| x < range[0] - 1.5 || x > range[1] + 1.5) {
            return 1.0;
        }
        let [row, col] = pixel.map(f32::round);
        let (h, w) = self.depth.dim();
        let mut lit = 0;
        for (dr, dc) in (-1..=1).flat_map(|dr| (-1..=1).map(move |dc| (dr, dc))) {
            let (r, c) = (row as i64 + dr, col as i64 + dc);
            let inside = r >= 0 && c >= 0 && (r as usize) < h && (c as usize) < w;
            let blocked =
                inside && self.mask[(r as usize, c as usize)] && self.depth[(r as usize, c as usize)] < q[2] - BIAS;
            lit += usize::from(!blocked);
        }
        lit as f32 / 9.0
    }
}

/// Screen-space ambient occlusion of the surface in `depth` (0 where `mask` is 0): per pixel, the
/// share of 16 nearby samples (two rings of eight, `radius` and `radius / 2` pixels) that lie in
/// front of it by 2 cm to 30 cm, weighted by `strength`; 1 is unoccluded, lower is darker.
pub fn ambient_occlusion(depth: &Array2<f32>, mask: &Array2<f32>, radius: f32, strength: f32) -> Array2<f32> {
    let (h, w) = depth.dim();
    let offsets: Vec<(i64, i64)> = (0..16)
        .map(|i| {
            let angle = std::f32::consts::TAU * (i as f32 + 0.5 * (i / 8) as f32) / 8.0;
            let r = if i < 8 { radius } else { radius / 2.0 };
            ((r * angle.sin()).round() as i64, (r * angle.cos()).round() as i64)
        })
        .collect();
    Array2::from_shape_fn((h, w), |(r, c)| {
        if mask[(r, c)] == 0.0 {
            return 1.0;
        }
        let own = depth[(r, c)];
        let occluded = offsets
            .iter()
            .filter(|(dr, dc)| {
                let (y, x) = (r as i64 + dr, c as i64 + dc);
                if y < 0 || x < 0 || y as usize >= h || x as usize >= w || mask[(y as usize, x as usize)] == 0.0 {
                    return false;
                }
                let gap = own - depth[(y as usize, x as usize)];
                (0.02..0.3).contains(&gap)
            })
            .count();
        1.0 - strength * occluded as f32 / offsets.len() as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small square 1 m in front of a large one, the light from the camera's side: the large
    /// square is dark right behind the small one and lit beside it; the small one is lit.
    #[test]
    fn a_plate_shadows_what_lies_behind_it() {
        let square = |half: f32, z: f32| [[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]];
        let positions: Vec<[f32; 3]> = square(0.2, 3.0).into_iter().chain(square(2.0, 4.0)).collect();
        let faces = [[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]];
        let map = ShadowMap::new(&positions, (&faces, 0), [0.0, 0.0, -1.0], 256);
        assert_eq!(map.light_at([0.0, 0.0, 3.0]), 1.0);
        assert_eq!(map.light_at([0.0, 0.0, 4.0]), 0.0);
        assert_eq!(map.light_at([1.0, 1.0, 4.0]), 1.0);
    }

    /// A step in depth: the lower surface next to the step is occluded, the upper one is not,
    /// and a flat surface never is.
    #[test]
    fn occlusion_darkens_only_beside_nearer_surfaces() {
        let depth = Array2::from_shape_fn((20, 20), |(_, c)| if c < 10 { 3.0 } else { 3.1 });
        let mask = Array2::ones((20, 20));
        let ao = ambient_occlusion(&depth, &mask, 4.0, 0.8);
        assert_eq!(ao[(10, 5)], 1.0);
        assert!(ao[(10, 10)] < 0.9, "{}", ao[(10, 10)]);
        assert_eq!(ao[(10, 19)], 1.0);
        let flat = ambient_occlusion(&Array2::from_elem((20, 20), 3.0), &mask, 4.0, 0.8);
        assert!(flat.iter().all(|&v| v == 1.0));
    }
}
