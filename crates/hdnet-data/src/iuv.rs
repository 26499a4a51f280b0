//! DensePose IUV images for training (decoded and encoded in hdnet-formats): resized without
//! mixing labels.

pub use hdnet_formats::densepose::{Iuv, NUM_PARTS};
use ndarray::Array3;

/// Nearest-neighbour resize of any (H, W, C) image: part labels and surface coordinates must
/// never be interpolated. Pixel centres are aligned (source = (dst + 0.5) * scale - 0.5, rounded).
pub fn resize_nearest(img: &Array3<f32>, height: usize, width: usize) -> Array3<f32> {
    let (h, w, c) = img.dim();
    let src =
        |dst: usize, from: usize, to: usize| (((dst as f64 + 0.5) * from as f64 / to as f64) as usize).min(from - 1);
    Array3::from_shape_fn((height, width, c), |(r, col, k)| img[(src(r, h, height), src(col, w, width), k)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_resize_never_mixes_labels() {
        let img = Array3::from_shape_fn((2, 2, 1), |(r, c, _)| (r * 2 + c + 1) as f32);
        let up = resize_nearest(&img, 4, 4);
        assert_eq!(
            up.iter().copied().collect::<Vec<_>>(),
            vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]
        );
        let down = resize_nearest(&up, 2, 2);
        assert_eq!(down, img);
    }
}
