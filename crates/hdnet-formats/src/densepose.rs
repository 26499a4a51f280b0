//! DensePose's body parts as HDNet's data stores them (the part index in an IUV image's third
//! channel): 0 is the background, 1..=NUM_PARTS are parts of the body; and the IUV images
//! themselves, an RGB PNG with R = V * 255, G = U * 255 and B = the part index.

use ndarray::{Array2, Array3};

/// Number of DensePose body parts.
pub const NUM_PARTS: u8 = 24;

/// Part after a left/right mirror (index = part 0..=NUM_PARTS).
pub const MIRRORED_PART: [u8; NUM_PARTS as usize + 1] =
    [0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 23, 24];

/// The body region a part belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRegion {
    Background,
    /// Torso back and front.
    Torso,
    Hand,
    Foot,
    /// Upper and lower legs, back and front.
    Leg,
    /// Upper and lower arms, back and front.
    Arm,
    Head,
}

/// The region of part `part` (indices above NUM_PARTS are not parts: background).
pub fn region(part: u8) -> BodyRegion {
    match part {
        1..=2 => BodyRegion::Torso,
        3..=4 => BodyRegion::Hand,
        5..=6 => BodyRegion::Foot,
        7..=14 => BodyRegion::Leg,
        15..=22 => BodyRegion::Arm,
        23..=24 => BodyRegion::Head,
        _ => BodyRegion::Background,
    }
}

/// Checks that a part index read from an image is one: an integer in 0..=NUM_PARTS.
pub fn check_part(value: f32) -> Result<u8, String> {
    if (0.0..=f32::from(NUM_PARTS)).contains(&value) && value.fract() == 0.0 {
        Ok(value as u8)
    } else {
        Err(format!("part index {value} (expected an integer 0..={NUM_PARTS})"))
    }
}

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

    /// Writes the stored form as an RGB PNG (atomically).
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), crate::FileError> {
        use crate::visual::{save_png, side_by_side, to_u8};
        save_png(path, &side_by_side(&[to_u8(&self.encode())]))
    }
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
    fn mirroring_twice_is_the_identity_and_keeps_regions() {
        for p in 0..=NUM_PARTS {
            let m = MIRRORED_PART[p as usize];
            assert_eq!(MIRRORED_PART[m as usize], p);
            assert_eq!(region(m), region(p));
        }
        assert_eq!(region(25), BodyRegion::Background);
    }

    #[test]
    fn part_values_are_checked() {
        assert_eq!(check_part(24.0), Ok(24));
        assert_eq!(check_part(0.0), Ok(0));
        assert!(check_part(25.0).unwrap_err().contains("part index 25"));
        assert!(check_part(2.5).is_err());
        assert!(check_part(-1.0).is_err());
    }
}
