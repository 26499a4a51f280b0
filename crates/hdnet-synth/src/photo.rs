//! What a camera and its processing do to a rendered picture: automatic exposure and white balance,
//! vignetting, defocus and motion blur, chromatic shift, down- and up-scaling, sensor noise and
//! JPEG compression. Only the picture changes; the labels stay exact.

use image::codecs::jpeg::JpegEncoder;
use image::{ImageDecoder, RgbImage};
use ndarray::Array3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One photo's camera effects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effects {
    /// Automatic exposure: the picture's mean brightness (0..255) is scaled to this (None: left
    /// as rendered); and per-channel gains (white balance).
    pub exposure: Option<f32>,
    pub white_balance: [f32; 3],
    /// Darkening at the corners: 0 none, 0.4 strong.
    pub vignette: f32,
    /// Gaussian blur (pixels; 0: sharp).
    pub defocus: f32,
    /// Motion blur: the path (pixels, x and y) the image smears along.
    pub motion: [f32; 2],
    /// Red and blue shifted by this many pixels in opposite directions (lateral colour).
    pub chroma_shift: f32,
    /// Down-scaled to this share of the size and back (1: untouched).
    pub rescale: f32,
    /// Sensor noise: standard deviation (0..255 units).
    pub noise: f32,
    /// JPEG quality (None: not compressed).
    pub jpeg: Option<u8>,
    /// The noise's own stream.
    pub noise_seed: u64,
}

impl Effects {
    /// Effects as photos of people have them: most mild, a few strong.
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let mut chance = |p: f64| rng.random::<f64>() < p;
        let (blurred, moving, shifted, rescaled, compressed) =
            (chance(0.4), chance(0.2), chance(0.3), chance(0.4), chance(0.6));
        let angle = rng.random::<f32>() * std::f32::consts::TAU;
        let smear = if moving { rng.random_range(1.0..5.0) } else { 0.0 };
        Self {
            exposure: Some(rng.random_range(70.0..160.0)),
            white_balance: [rng.random_range(0.85..1.15), 1.0, rng.random_range(0.85..1.15)],
            vignette: rng.random_range(0.0..0.4),
            defocus: if blurred { rng.random_range(0.3..1.5) } else { 0.0 },
            motion: [smear * angle.cos(), smear * angle.sin()],
            chroma_shift: if shifted { rng.random_range(0.3..1.2) } else { 0.0 },
            rescale: if rescaled { rng.random_range(0.4..0.9) } else { 1.0 },
            noise: rng.random_range(0.0..6.0),
            jpeg: compressed.then(|| rng.random_range(35..95)),
            noise_seed: rng.random(),
        }
    }

    /// No effect at all.
    pub fn none() -> Self {
        Self {
            exposure: None,
            white_balance: [1.0; 3],
            vignette: 0.0,
            defocus: 0.0,
            motion: [0.0; 2],
            chroma_shift: 0.0,
            rescale: 1.0,
            noise: 0.0,
            jpeg: None,
            noise_seed: 0,
        }
    }

    /// The picture (H x W x 3, 0..255) as this camera would record it, rounded to 8 bits.
    pub fn apply(&self, rgb: &Array3<f32>) -> Array3<f32> {
        let (h, w, _) = rgb.dim();
        let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
        let corner = (cx * cx + cy * cy).max(1.0);
        let mean = rgb.mean().unwrap_or(0.0);
        let gain = self.exposure.map_or(1.0, |target| if mean > 1.0 { target / mean } else { 1.0 });
        let mut out = Array3::from_shape_fn((h, w, 3), |(r, c, k)| {
            let d2 = ((r as f32 - cy).powi(2) + (c as f32 - cx).powi(2)) / corner;
            rgb[(r, c, k)] * gain * self.white_balance[k] * (1.0 - self.vignette * d2)
        });
        if self.defocus > 0.0 {
            out = gaussian_blur(&out, self.defocus);
        }
        if self.motion != [0.0; 2] {
            out = smear(&out, self.motion);
        }
        if self.chroma_shift > 0.0 {
            let mut shifted_out = Array3::zeros((h, w, 3));
            for (k, dx) in [(0, self.chroma_shift), (2, -self.chroma_shift)] {
                add_shifted(&out, &mut shifted_out, [0.0, dx], 1.0, Some(k));
            }
            shifted_out.index_axis_mut(ndarray::Axis(2), 1).assign(&out.index_axis(ndarray::Axis(2), 1));
            out = shifted_out;
        }
        if self.rescale < 1.0 {
            out = rescaled(&out, self.rescale);
        }
        if self.noise > 0.0 {
            let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(self.noise_seed);
            out.iter_mut().for_each(|v| *v += self.noise * roughly_gaussian(&mut rng));
        }
        // Rounds to the nearest level (non-negative after the clamp, so truncating v + 0.5 does).
        out.mapv_inplace(|v| (v.clamp(0.0, 255.0) + 0.5) as u8 as f32);
        match self.jpeg {
            Some(quality) => jpeg_round_trip(&out, quality),
            None => out,
        }
    }
}

/// A draw of mean 0 and variance 1, nearly Gaussian: the sum of four uniforms (Irwin-Hall) from
/// one 64-bit draw, cheap enough for every value of a picture.
fn roughly_gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let bits: u64 = rng.random();
    let sum: f32 = (0..4).map(|i| ((bits >> (16 * i)) & 0xFFFF) as f32 / 65535.0).sum();
    (sum - 2.0) * 3.0f32.sqrt()
}

/// Adds `weight` times `img` shifted by (dy, dx) pixels (bilinear, edges clamped) to `acc`, for
/// channel `only` or all three. One shift has the same weights at every pixel.
fn add_shifted(img: &Array3<f32>, acc: &mut Array3<f32>, [dy, dx]: [f32; 2], weight: f32, only: Option<usize>) {
    let (h, w, _) = img.dim();
    let (fy, fx) = (dy.floor(), dx.floor());
    let (wy, wx) = (dy - fy, dx - fx);
    let taps = [(0, 0, (1.0 - wy) * (1.0 - wx)), (0, 1, (1.0 - wy) * wx), (1, 0, wy * (1.0 - wx)), (1, 1, wy * wx)];
    let src = img.as_slice().expect("standard layout");
    let dst = acc.as_slice_mut().expect("standard layout");
    let clamp = |v: i64, n: usize| v.clamp(0, n as i64 - 1) as usize;
    let channels = only.map_or(0..3, |k| k..k + 1);
    for (oy, ox, tap) in taps.into_iter().filter(|t| t.2 > 0.0) {
        let shift = fx as i64 + ox;
        // Columns whose source lies inside the row: one contiguous run; the rest are clamped.
        let (inside_from, inside_to) =
            ((-shift).clamp(0, w as i64) as usize, (w as i64 - shift).clamp(0, w as i64) as usize);
        let factor = weight * tap;
        for r in 0..h {
            let from = &src[clamp(r as i64 + fy as i64 + oy, h) * w * 3..][..w * 3];
            let row = &mut dst[r * w * 3..(r + 1) * w * 3];
            if only.is_none() && inside_from < inside_to {
                let source =
                    &from[((inside_from as i64 + shift) as usize) * 3..((inside_to as i64 + shift) as usize) * 3];
                row[inside_from * 3..inside_to * 3].iter_mut().zip(source).for_each(|(d, s)| *d += factor * s);
            }
            for c in (0..w).filter(|&c| only.is_some() || c < inside_from || c >= inside_to) {
                let sc = clamp(c as i64 + shift, w);
                for k in channels.clone() {
                    row[c * 3 + k] += factor * from[sc * 3 + k];
                }
            }
        }
    }
}

/// Separable Gaussian blur with standard deviation `sigma` pixels (edges clamped): the sum of
/// the picture shifted by each tap, along rows then columns.
pub(crate) fn gaussian_blur(img: &Array3<f32>, sigma: f32) -> Array3<f32> {
    let radius = (3.0 * sigma).ceil() as i64;
    let weights: Vec<f32> = (-radius..=radius).map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let total: f32 = weights.iter().sum();
    let pass = |src: &Array3<f32>, axis: usize| {
        let mut acc = Array3::zeros(src.dim());
        for (d, wt) in (-radius..=radius).zip(&weights) {
            let shift = if axis == 0 { [d as f32, 0.0] } else { [0.0, d as f32] };
            add_shifted(src, &mut acc, shift, wt / total, None);
        }
        acc
    };
    pass(&pass(img, 1), 0)
}

/// The mean of the image shifted along `path` (pixels) in nine steps.
fn smear(img: &Array3<f32>, path: [f32; 2]) -> Array3<f32> {
    const STEPS: usize = 9;
    let mut acc = Array3::zeros(img.dim());
    for i in 0..STEPS {
        let t = i as f32 / (STEPS - 1) as f32 - 0.5;
        add_shifted(img, &mut acc, [t * path[1], t * path[0]], 1.0 / STEPS as f32, None);
    }
    acc
}

/// Down to `share` of the size and back up (triangle filter both ways): a small photo enlarged.
fn rescaled(img: &Array3<f32>, share: f32) -> Array3<f32> {
    let (h, w, _) = img.dim();
    let (sh, sw) = (((h as f32 * share).round() as usize).max(1), ((w as f32 * share).round() as usize).max(1));
    resized(&resized(img, sh, sw), h, w)
}

/// `img` (H x W x 3, 0..255) resized to `h` x `w` with a triangle filter.
pub(crate) fn resized(img: &Array3<f32>, h: usize, w: usize) -> Array3<f32> {
    use image::imageops::{FilterType, resize};
    let (ih, iw, _) = img.dim();
    let picture: image::Rgb32FImage =
        image::ImageBuffer::from_raw(iw as u32, ih as u32, img.iter().map(|v| v / 255.0).collect()).expect("H x W x 3");
    let out = resize(&picture, w as u32, h as u32, FilterType::Triangle);
    Array3::from_shape_vec((h, w, 3), out.into_raw().into_iter().map(|v| v * 255.0).collect()).expect("h x w x 3")
}

/// The picture compressed as a JPEG of `quality` and decoded again.
fn jpeg_round_trip(img: &Array3<f32>, quality: u8) -> Array3<f32> {
    let (h, w, _) = img.dim();
    let rgb = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        image::Rgb([0, 1, 2].map(|k| img[(y as usize, x as usize, k)] as u8))
    });
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(&rgb).expect("encoding to memory");
    let decoder = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(&bytes)).expect("our own JPEG");
    let mut decoded = vec![0u8; decoder.total_bytes() as usize];
    decoder.read_image(&mut decoded).expect("our own JPEG");
    Array3::from_shape_vec((h, w, 3), decoded.into_iter().map(f32::from).collect()).expect("the encoded size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn picture() -> Array3<f32> {
        Array3::from_shape_fn((48, 64, 3), |(r, c, k)| ((r * 5 + c * 3 + k * 40) % 256) as f32)
    }

    #[test]
    fn no_effect_keeps_the_picture() {
        assert_eq!(Effects::none().apply(&picture()), picture());
    }

    /// Each effect alone changes the picture the way it should: blur lowers the contrast between
    /// neighbours, vignetting darkens the corners only, noise has the asked spread, JPEG stays
    /// close.
    #[test]
    fn each_effect_does_what_it_says() {
        let flat = Array3::from_elem((48, 64, 3), 200.0);
        let vignette = Effects { vignette: 0.3, ..Effects::none() }.apply(&flat);
        assert_eq!(vignette[(24, 32, 0)], 200.0);
        assert!((vignette[(0, 0, 0)] - 140.0).abs() <= 1.0, "{}", vignette[(0, 0, 0)]);
        let checks =
            Array3::from_shape_fn((48, 64, 3), |(r, c, _)| if (r / 2 + c / 2) % 2 == 0 { 40.0 } else { 220.0 });
        let roughness = |a: &Array3<f32>| (1..63).map(|c| (a[(20, c, 1)] - a[(20, c - 1, 1)]).abs()).sum::<f32>();
        for blur in [Effects { defocus: 1.5, ..Effects::none() }, Effects { motion: [3.0, 0.0], ..Effects::none() }] {
            assert!(roughness(&blur.apply(&checks)) < 0.5 * roughness(&checks), "{blur:?}");
        }
        let grey = Array3::from_elem((64, 64, 3), 128.0);
        let noisy = Effects { noise: 5.0, noise_seed: 1, ..Effects::none() }.apply(&grey);
        let sd = (noisy.iter().map(|v| (v - 128.0).powi(2)).sum::<f32>() / noisy.len() as f32).sqrt();
        assert!((sd - 5.0).abs() < 0.3, "{sd}");
        let compressed = Effects { jpeg: Some(80), ..Effects::none() }.apply(&picture());
        let error =
            compressed.iter().zip(&picture()).map(|(a, b)| (a - b).abs()).sum::<f32>() / compressed.len() as f32;
        assert!(error > 0.0 && error < 12.0, "{error}");
    }

    #[test]
    fn sampled_effects_are_a_pure_function_of_the_stream() {
        let draw = || Effects::sample(&mut ChaCha8Rng::seed_from_u64(7)).apply(&picture());
        assert_eq!(draw(), draw());
    }
}
