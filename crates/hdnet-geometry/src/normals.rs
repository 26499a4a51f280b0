//! Normals of a depth map on plain arrays (for evaluation and data checks): the same surface
//! normals as the differentiable `NormalsFromDepth::Clean` of the model crate, without a device.

use crate::Camera;

/// Unit normals (row-major, `height * width`) of the surface that `depth` describes through
/// `camera`, on the pixels where `mask > 0` (zero elsewhere). Each tangent is a one-sided
/// difference towards the next column / previous row, taken from the other side where that
/// neighbour is off the mask or outside the image; nothing wraps around.
pub fn normals_of_depth(depth: &[f32], mask: &[f32], height: usize, width: usize, camera: &Camera) -> Vec<[f32; 3]> {
    assert_eq!(depth.len(), height * width, "depth is not {height}x{width}");
    assert_eq!(mask.len(), height * width, "mask is not {height}x{width}");
    let on = |r: usize, c: usize| mask[r * width + c] > 0.0;
    let point = |r: usize, c: usize| {
        let d = if on(r, c) { depth[r * width + c] } else { 0.0 };
        camera.backproject(r as f32, c as f32, d)
    };
    let minus = |a: [f32; 3], b: [f32; 3]| [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    // The difference towards `towards` when it is on the mask, else from `away` when that is on
    // the mask, else zero (an isolated pixel).
    let tangent = |here: (usize, usize), towards: Option<(usize, usize)>, away: Option<(usize, usize)>| {
        let p = point(here.0, here.1);
        match (towards.filter(|&(r, c)| on(r, c)), away.filter(|&(r, c)| on(r, c))) {
            (Some((r, c)), _) => minus(point(r, c), p),
            (None, Some((r, c))) => minus(p, point(r, c)),
            (None, None) => [0.0; 3],
        }
    };
    (0..height * width)
        .map(|i| {
            let (r, c) = (i / width, i % width);
            if !on(r, c) {
                return [0.0; 3];
            }
            let next_col = (c + 1 < width).then_some((r, c + 1));
            let prev_col = c.checked_sub(1).map(|c| (r, c));
            let prev_row = r.checked_sub(1).map(|r| (r, c));
            let next_row = (r + 1 < height).then_some((r + 1, c));
            let dx = tangent((r, c), next_col, prev_col);
            let dy = tangent((r, c), prev_row, next_row);
            let n = [dx[1] * dy[2] - dx[2] * dy[1], dx[2] * dy[0] - dx[0] * dy[2], dx[0] * dy[1] - dx[1] * dy[0]];
            let norm = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2] + 1e-20).sqrt();
            n.map(|v| v / norm)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilted_plane_gives_its_normal_up_to_the_mask_border() {
        let camera = Camera::original();
        let (h, w) = (16, 16);
        // Plane z = 4 + 0.5 x + 0.3 y: depth along each ray d = 4 / (1 - 0.5 r_x - 0.3 r_y).
        let depth: Vec<f32> = (0..h * w)
            .map(|i| {
                let r = camera.ray((i / w) as f32, (i % w) as f32);
                4.0 / (1.0 - 0.5 * r[0] - 0.3 * r[1])
            })
            .collect();
        let mask: Vec<f32> = (0..h * w)
            .map(|i| if (4..12).contains(&(i / w)) && (4..12).contains(&(i % w)) { 1.0 } else { 0.0 })
            .collect();
        let n = normals_of_depth(&depth, &mask, h, w, &camera);
        let want = [0.5f32, 0.3, -1.0].map(|v| v / 1.34f32.sqrt());
        for (i, got) in n.iter().enumerate() {
            let expected = if mask[i] > 0.0 { want } else { [0.0; 3] };
            for k in 0..3 {
                assert!((got[k] - expected[k]).abs() < 2e-3, "pixel {i} k={k}: {} vs {}", got[k], expected[k]);
            }
        }
    }
}
