//! The original `NAME_results.png`: input | depth in matplotlib's "hot" colours | normal colours,
//! each 256 wide, background white. Pixel-exact with what the original wrote.

use std::path::Path;

use image::RgbImage;
use ndarray::{Array2, Array3};

use crate::FileError;

/// matplotlib's "hot" segment data: (x, y0, y1) per channel.
const HOT: [&[(f64, f64, f64)]; 3] = [
    &[(0.0, 0.0416, 0.0416), (0.365079, 1.0, 1.0), (1.0, 1.0, 1.0)],
    &[(0.0, 0.0, 0.0), (0.365079, 0.0, 0.0), (0.746032, 1.0, 1.0), (1.0, 1.0, 1.0)],
    &[(0.0, 0.0, 0.0), (0.746032, 0.0, 0.0), (1.0, 1.0, 1.0)],
];

/// matplotlib's `LinearSegmentedColormap` lookup table for one channel, N entries, in [0, 1].
fn segment_lut(segments: &[(f64, f64, f64)], n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| {
            if k == 0 {
                return segments[0].2;
            }
            if k == n - 1 {
                return segments[segments.len() - 1].1;
            }
            let x = k as f64 / (n - 1) as f64;
            // numpy.searchsorted(side='left'): the first segment start >= x.
            let hi = segments.iter().position(|s| s.0 >= x).unwrap_or(segments.len() - 1);
            let (x0, _, y1_lo) = segments[hi - 1];
            let (x1, y0_hi, _) = segments[hi];
            let t = (x - x0) / (x1 - x0);
            (t * (y0_hi - y1_lo) + y1_lo).clamp(0.0, 1.0)
        })
        .collect()
}

/// The 256-entry "hot" colormap as RGB bytes, as `plt.imsave` uses it (value * 255, truncated).
pub fn hot_lut() -> Vec<[u8; 3]> {
    let channels = HOT.map(|segments| segment_lut(segments, 256));
    (0..256).map(|k| channels.each_ref().map(|c| (c[k] * 255.0) as u8)).collect()
}

/// The depth panel: depth * mask clipped to the range of its strictly positive values, coloured
/// with "hot" (float32 arithmetic as matplotlib does it); background white. `None` when no depth
/// is positive (the original would crash on that image).
pub fn depth_heat_map(depth: &Array2<f32>, mask: &Array2<f32>) -> Option<Array3<u8>> {
    let masked = depth * mask;
    let positive = masked.iter().copied().filter(|&d| d > 0.0);
    let lo = positive.clone().fold(f32::INFINITY, f32::min);
    let hi = positive.fold(f32::NEG_INFINITY, f32::max);
    if !lo.is_finite() {
        return None;
    }
    let lut = hot_lut();
    let (h, w) = depth.dim();
    let mut out = Array3::from_elem((h, w, 3), 255u8);
    for ((r, c), &d) in masked.indexed_iter() {
        if mask[(r, c)] == 0.0 {
            continue;
        }
        let normalised = if hi > lo { (d.clamp(lo, hi) - lo) / (hi - lo) } else { 0.0 };
        let index = ((normalised * 256.0) as usize).min(255);
        for k in 0..3 {
            out[(r, c, k)] = lut[index][k];
        }
    }
    Some(out)
}

/// The original normal colour encoding: r = -n_x, g = -n_y, b = -(2 n_z + 1), then
/// `uint8((v + 1) / 2 * 255)` with numpy's truncate-then-wrap cast (n_z > 0 wraps). No masking.
pub fn normal_colors(normals: &Array3<f32>, mask: &Array2<f32>) -> Array3<u8> {
    let mut out = Array3::zeros(normals.dim());
    for ((r, c, k), v) in out.indexed_iter_mut() {
        let m = normals[(r, c, k)] * mask[(r, c)];
        let signed = if k == 2 { -(m * 2.0 + 1.0) } else { -m };
        *v = ((signed + 1.0) / 2.0 * 255.0) as i32 as u8;
    }
    out
}

/// Concatenates the three panels: `uint8(image)` | depth heat map | normal colours (white off-mask).
pub fn results_panel(
    image: &Array3<f32>,
    depth: &Array2<f32>,
    normals: &Array3<f32>,
    mask: &Array2<f32>,
) -> Option<RgbImage> {
    let heat = depth_heat_map(depth, mask)?;
    let colors = white_off_mask(normal_colors(normals, mask), mask);
    Some(side_by_side(&[to_u8(image), heat, colors]))
}

/// `uint8(x)` of a 0..255 float image (truncation, as NumPy).
pub fn to_u8(image: &Array3<f32>) -> Array3<u8> {
    image.mapv(|v| v as u8)
}

/// Sets every pixel off the mask to white.
pub fn white_off_mask(mut panel: Array3<u8>, mask: &Array2<f32>) -> Array3<u8> {
    for ((r, c, _), v) in panel.indexed_iter_mut() {
        if mask[(r, c)] == 0.0 {
            *v = 255;
        }
    }
    panel
}

/// Equal-height (H, W, 3) panels placed left to right.
pub fn side_by_side(panels: &[Array3<u8>]) -> RgbImage {
    let h = panels.iter().map(|p| p.dim().0).max().unwrap_or(0);
    let w: usize = panels.iter().map(|p| p.dim().1).sum();
    let mut out = RgbImage::from_pixel(w as u32, h as u32, image::Rgb([255, 255, 255]));
    let mut x0 = 0;
    for p in panels {
        let (ph, pw, _) = p.dim();
        for r in 0..ph {
            for c in 0..pw {
                out.put_pixel((x0 + c) as u32, r as u32, image::Rgb([p[(r, c, 0)], p[(r, c, 1)], p[(r, c, 2)]]));
            }
        }
        x0 += pw;
    }
    out
}

pub fn save_png(path: impl AsRef<Path>, img: &RgbImage) -> Result<(), FileError> {
    let path = path.as_ref();
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| FileError::new(path, e))?;
    crate::write_atomic(path, &bytes)
}

/// An animated GIF of equally sized frames (H x W x 3), `delay_ms` each, looping forever.
pub fn save_gif(path: impl AsRef<Path>, frames: &[Array3<u8>], delay_ms: u32) -> Result<(), FileError> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let path = path.as_ref();
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        encoder.set_repeat(Repeat::Infinite).map_err(|e| FileError::new(path, e))?;
        for frame in frames {
            let (h, w, _) = frame.dim();
            let rgba = image::RgbaImage::from_fn(w as u32, h as u32, |x, y| {
                let p = |k| frame[(y as usize, x as usize, k)];
                image::Rgba([p(0), p(1), p(2), 255])
            });
            let delay = image::Delay::from_numer_denom_ms(delay_ms, 1);
            encoder.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay)).map_err(|e| FileError::new(path, e))?;
        }
    }
    crate::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gif_frames_decode_back() {
        use image::AnimationDecoder;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gif");
        let frames: Vec<Array3<u8>> = (0..3)
            .map(|f| Array3::from_shape_fn((8, 10, 3), |(r, _, k)| if k == f { 255 } else { (r * 20) as u8 }))
            .collect();
        save_gif(&path, &frames, 80).unwrap();
        let decoded = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap();
        assert_eq!(decoded.len(), 3);
        for (f, frame) in decoded.iter().enumerate() {
            let px = frame.buffer().get_pixel(0, 7);
            assert_eq!((frame.buffer().width(), frame.buffer().height()), (10, 8));
            // Pure primary in channel f; the others the row's grey (within palette error).
            assert!(px[f] > 245 && (0..3).filter(|&k| k != f).all(|k| (i32::from(px[k]) - 140).abs() < 12), "{px:?}");
        }
    }

    #[test]
    fn normal_colour_cast_wraps_like_numpy() {
        let normals = Array3::from_shape_vec((1, 3, 3), vec![0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0, 1.0, 0.5]).unwrap();
        let mask = Array2::from_elem((1, 3), 1.0);
        let c = normal_colors(&normals, &mask);
        // front-facing n_z = -1 -> 255; n_z = 0 -> 0; n_z = 0.5 -> (-2+1)/2*255 = -127.5 -> -127 -> 129.
        assert_eq!([c[(0, 0, 2)], c[(0, 1, 2)], c[(0, 2, 2)]], [255, 0, 129]);
        assert_eq!([c[(0, 2, 0)], c[(0, 2, 1)]], [255, 0]);
    }

    #[test]
    fn heat_map_needs_a_positive_depth() {
        let mask = Array2::from_elem((2, 2), 1.0);
        assert!(depth_heat_map(&Array2::from_elem((2, 2), -1.0), &mask).is_none());
        let d = Array2::from_shape_vec((2, 2), vec![1.0, 2.0, -5.0, 1.5]).unwrap();
        let heat = depth_heat_map(&d, &mask).unwrap();
        let lut = hot_lut();
        assert_eq!(heat[(0, 0, 0)], lut[0][0]);
        assert_eq!(heat[(1, 0, 0)], lut[0][0]); // negative clipped to the lowest positive
        assert_eq!([heat[(0, 1, 0)], heat[(0, 1, 1)], heat[(0, 1, 2)]], lut[255]);
        assert_eq!(heat[(1, 1, 1)], lut[128][1]);
    }
}
