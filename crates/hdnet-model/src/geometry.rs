//! Differentiable geometry of HDNet: depth maps to 3D point maps and to normal maps.
//!
//! Tensors are NCHW: depth `[B, 1, H, W]`, masks `[B, 1, H, W]` (bool), points and normals
//! `[B, 3, H, W]`. Each sample has its own [`Camera`] (the original hard-codes one).

use burn::prelude::*;
use hdnet_geometry::Camera;

/// The original's threshold below which a normal component is replaced by +1e-5.
const SMALL_COMPONENT: f32 = 1e-5;

/// How normals are computed from depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalsFromDepth {
    /// The original `dmap_to_nmap`: one-sided differences to the next column and the previous
    /// row with wrap-around at the image border, zero points off the mask, the small-component
    /// clamp, normalisation (twice: before and after the identity rotation).
    #[default]
    Original,
    /// No wrap-around and no off-mask neighbours: each difference uses the other side when the
    /// neighbour is off the mask or outside the image; normals are zero off the mask.
    Clean,
}

/// Rays K^-1 [x, y, 1] of every pixel for each sample's camera: `[B, 3, H, W]`.
pub fn ray_map(cameras: &[Camera], height: usize, width: usize, device: &Device) -> Tensor<4> {
    let mut values = Vec::with_capacity(cameras.len() * 3 * height * width);
    for camera in cameras {
        let rays: Vec<[f32; 3]> =
            (0..height * width).map(|i| camera.ray((i / width) as f32, (i % width) as f32)).collect();
        for k in 0..3 {
            values.extend(rays.iter().map(|r| r[k]));
        }
    }
    Tensor::from_data(TensorData::new(values, [cameras.len(), 3, height, width]), device)
}

/// Camera-space points of every pixel, `[B, 3, H, W]` (depth times the pixel's ray).
pub fn depth_to_points(depth: Tensor<4>, rays: Tensor<4>) -> Tensor<4> {
    rays * depth
}

/// Normal map `[B, 3, H, W]` from depth, as chosen by `method`.
pub fn depth_to_normals(
    depth: Tensor<4>,
    mask: Tensor<4, Bool>,
    rays: Tensor<4>,
    method: NormalsFromDepth,
) -> Tensor<4> {
    match method {
        NormalsFromDepth::Original => original_normals(depth, mask, rays),
        NormalsFromDepth::Clean => clean_normals(depth, mask, rays),
    }
}

fn original_normals(depth: Tensor<4>, mask: Tensor<4, Bool>, rays: Tensor<4>) -> Tensor<4> {
    let off = mask.bool_not().repeat_dim(1, 3);
    let points = depth_to_points(depth, rays).mask_fill(off, 0.0);
    // tf.roll(P, -1, axis=W): the next column; tf.roll(P, +1, axis=H): the previous row.
    let dx = points.clone().roll_dim(-1, 3) - points.clone();
    let dy = points.clone().roll_dim(1, 2) - points;
    // R = identity in the original, but it normalises twice; the second pass changes rounding only.
    clamp_and_normalise(clamp_and_normalise(cross(dx, dy)))
}

/// The original's normalisation: components with |n_k| < 1e-5 become +1e-5, then n / |n|.
pub fn clamp_and_normalise(n: Tensor<4>) -> Tensor<4> {
    let small = n.clone().abs().lower_elem(SMALL_COMPONENT);
    let n = n.mask_fill(small, SMALL_COMPONENT);
    let norm = n.clone().square().sum_dim(1).sqrt();
    n / norm
}

/// Channel-wise cross product of two `[B, 3, H, W]` tensors.
pub fn cross(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let c = |t: &Tensor<4>, k: usize| t.clone().narrow(1, k, 1);
    let (ax, ay, az) = (c(&a, 0), c(&a, 1), c(&a, 2));
    let (bx, by, bz) = (c(&b, 0), c(&b, 1), c(&b, 2));
    Tensor::cat(
        vec![ay.clone() * bz.clone() - az.clone() * by.clone(), az * bx.clone() - ax.clone() * bz, ax * by - ay * bx],
        1,
    )
}

/// `x` moved by `offset` along `dim` (out[i] = x[i + offset]), zero-filled, no wrap-around.
fn shifted(x: Tensor<4>, dim: usize, offset: isize) -> Tensor<4> {
    let n = x.dims()[dim];
    let k = offset.unsigned_abs();
    let mut pad_shape = x.dims();
    pad_shape[dim] = k;
    let zeros = Tensor::zeros(pad_shape, &x.device());
    if offset > 0 {
        Tensor::cat(vec![x.narrow(dim, k, n - k), zeros], dim)
    } else {
        Tensor::cat(vec![zeros, x.narrow(dim, 0, n - k)], dim)
    }
}

fn clean_normals(depth: Tensor<4>, mask: Tensor<4, Bool>, rays: Tensor<4>) -> Tensor<4> {
    let m = mask.float();
    let points = depth_to_points(depth, rays) * m.clone();
    // A one-sided difference towards `offset`, falling back to the other side where that
    // neighbour is off the mask; both approximate the same derivative direction.
    let difference = |dim: usize, offset: isize| {
        let forward = (shifted(points.clone(), dim, offset) - points.clone()) * shifted(m.clone(), dim, offset);
        let backward = (points.clone() - shifted(points.clone(), dim, -offset)) * shifted(m.clone(), dim, -offset);
        let use_forward = shifted(m.clone(), dim, offset).repeat_dim(1, 3).bool();
        backward.mask_where(use_forward, forward)
    };
    let n = cross(difference(3, 1), difference(2, -1)) * m.clone();
    let norm = (n.clone().square().sum_dim(1) + 1e-20).sqrt();
    n / norm * m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilted_plane_gives_its_normal_with_both_methods() {
        let device = Device::flex();
        let camera = Camera::original();
        let (h, w) = (16, 16);
        let rays = ray_map(&[camera], h, w, &device);
        // Plane z = 4 + 0.5 x + 0.3 y: depth along each ray d = 4 / (1 - 0.5 r_x - 0.3 r_y).
        // (Tilted in both directions: the original's absolute 1e-5 clamp would bend a zero
        // component of these ~1e-4 long cross products.)
        let r = rays.clone().try_into_vec_as::<f32>().unwrap();
        let depth: Vec<f32> = (0..h * w).map(|i| 4.0 / (1.0 - 0.5 * r[i] - 0.3 * r[h * w + i])).collect();
        let depth = Tensor::<4>::from_data(TensorData::new(depth, [1, 1, h, w]), &device);
        let mut mask = vec![false; h * w];
        for r in 4..12 {
            for c in 4..12 {
                mask[r * w + c] = true;
            }
        }
        let mask = Tensor::<4, Bool>::from_data(TensorData::new(mask, [1, 1, h, w]), &device);
        // dx = d/dcol (x right), dy = -d/drow (y up): n = dx x dy ~ (0.5, 0.3, -1), facing the camera.
        let want = [0.5f32, 0.3, -1.0].map(|v| v / 1.34f32.sqrt());
        for method in [NormalsFromDepth::Original, NormalsFromDepth::Clean] {
            let n = depth_to_normals(depth.clone(), mask.clone(), rays.clone(), method);
            let n = n.try_into_vec_as::<f32>().unwrap();
            for r in 5..11 {
                for c in 5..11 {
                    for k in 0..3 {
                        let got = n[k * h * w + r * w + c];
                        assert!((got - want[k]).abs() < 2e-3, "{method:?} ({r},{c}) k={k}: {got} vs {}", want[k]);
                    }
                }
            }
        }
    }
    #[test]
    fn clean_normals_match_the_plain_array_version() {
        // Evaluation uses hdnet_geometry::normals_of_depth: the same normals without a device.
        let device = Device::flex();
        let camera = Camera::original();
        let (h, w) = (12, 10);
        let depth: Vec<f32> = (0..h * w).map(|i| 3.0 + ((i * 7919) % 13) as f32 * 0.05).collect();
        let mask: Vec<f32> = (0..h * w).map(|i| if (i * 31) % 7 < 5 { 1.0 } else { 0.0 }).collect();
        let plain = hdnet_geometry::normals_of_depth(&depth, &mask, h, w, &camera);
        let tensor = |v: &Vec<f32>| Tensor::<4>::from_data(TensorData::new(v.clone(), [1, 1, h, w]), &device);
        let burn = depth_to_normals(
            tensor(&depth),
            tensor(&mask).greater_elem(0.0),
            ray_map(&[camera], h, w, &device),
            NormalsFromDepth::Clean,
        );
        let burn = burn.try_into_vec_as::<f32>().unwrap();
        for (i, n) in plain.iter().enumerate() {
            for k in 0..3 {
                assert!(
                    (n[k] - burn[k * h * w + i]).abs() < 1e-5,
                    "pixel {i} k={k}: {} vs {}",
                    n[k],
                    burn[k * h * w + i]
                );
            }
        }
    }
}
