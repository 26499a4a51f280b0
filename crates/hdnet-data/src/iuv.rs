//! DensePose IUV images as the original data stores them: an RGB PNG with R = V * 255,
//! G = U * 255 and B = the part index 1..24 (0 = background).

pub use hdnet_formats::densepose::NUM_PARTS;
use hdnet_formats::densepose::check_part;
use ndarray::{Array2, Array3};

/// A decoded IUV map.
#[derive(Debug, Clone, PartialEq)]
pub struct Iuv {
    /// 0 background, 1..24 body part.
    pub part: Array2<u8>,
    /// Surface coordinates in [0, 1].
    pub u: Array2<f32>,
    pub v: Array2<f32>,
}

impl Iuv {
    /// Decodes an (H, W, 3) IUV image with values 0..255. Part indices above 24 are an error.
    pub fn decode(rgb: &Array3<f32>) -> Result<Self, String> {
        let (h, w, c) = rgb.dim();
        if c != 3 {
            return Err(format!("IUV image has {c} channels, expected 3"));
        }
        let mut part = Array2::zeros((h, w));
        for ((r, col), p) in part.indexed_iter_mut() {
            *p = check_part(rgb[(r, col, 2)]).map_err(|e| format!("{e} at row {r}, column {col}"))?;
        }
        Ok(Self {
            part,
            u: rgb.index_axis(ndarray::Axis(2), 1).mapv(|g| g / 255.0),
            v: rgb.index_axis(ndarray::Axis(2), 0).mapv(|r| r / 255.0),
        })
    }

    /// The stored form: (H, W, 3) with R = V*255, G = U*255, B = part (rounded to bytes).
    pub fn encode(&self) -> Array3<f32> {
        let (h, w) = self.part.dim();
        Array3::from_shape_fn((h, w, 3), |(r, c, k)| match k {
            0 => (self.v[(r, c)] * 255.0).round(),
            1 => (self.u[(r, c)] * 255.0).round(),
            _ => f32::from(self.part[(r, c)]),
        })
    }
}

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
    fn decode_follows_the_densepose_png_convention() {
        let mut rgb = Array3::zeros((1, 2, 3));
        rgb[(0, 0, 0)] = 51.0; // V
        rgb[(0, 0, 1)] = 255.0; // U
        rgb[(0, 0, 2)] = 7.0; // part
        let iuv = Iuv::decode(&rgb).unwrap();
        assert_eq!(iuv.part[(0, 0)], 7);
        assert_eq!(iuv.part[(0, 1)], 0);
        assert!((iuv.u[(0, 0)] - 1.0).abs() < 1e-6 && (iuv.v[(0, 0)] - 0.2).abs() < 1e-6);
        assert_eq!(iuv.encode(), rgb);
        rgb[(0, 1, 2)] = 25.0;
        assert!(Iuv::decode(&rgb).unwrap_err().contains("part index 25"));
    }

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
