//! The original test-data layout: `NAME_img.png` (RGB), `NAME_mask.png` (grey, person > 100) and
//! `NAME_dp.png` (DensePose IUV as stored: channels 0/1 the scaled surface coordinates, channel 2
//! the part index 0..24), read the way the original's `scipy.misc.imread` did.

use std::path::{Path, PathBuf};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use ndarray::{Array2, Array3};

use crate::FileError;

/// The original's mask rule: a pixel is the person when its mask value is strictly above 100.
pub const MASK_THRESHOLD: f32 = 100.0;

fn decode(path: &Path) -> Result<DynamicImage, FileError> {
    if !path.exists() {
        return Err(FileError::new(path, "file not found"));
    }
    let bytes = std::fs::read(path).map_err(|e| FileError::new(path, e))?;
    let reader =
        ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format().map_err(|e| FileError::new(path, e))?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_complete(&bytes) {
        return Err(FileError::new(path, "truncated JPEG (the image data ends before its end-of-image marker)"));
    }
    let unreadable = |e: image::ImageError| FileError::new(path, format!("not a readable image: {e}"));
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    // Phones store a photo as the sensor saw it and say in EXIF how to turn it upright; viewers
    // (and so masks drawn over them) show it turned.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Whether a JPEG's last scan is followed by its end-of-image marker. The decoder fills a cut
/// file's missing rows with grey and reports success; inside scan data 0xFF is always stuffed, so
/// an end marker after the last start-of-scan exists only in a complete file.
fn jpeg_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(scan), Some(end)) => end > scan,
        _ => false,
    }
}

fn check_size(path: &Path, img: &DynamicImage, size: Option<(usize, usize)>) -> Result<(), FileError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    match size {
        Some((eh, ew)) if (h, w) != (eh, ew) => {
            Err(FileError::new(path, format!("image is {w}x{h}, expected {ew}x{eh}")))
        }
        _ => Ok(()),
    }
}

/// Reads a colour image as float32 (H, W, 3) with values 0..255. An alpha channel is dropped;
/// a grey image is repeated to three channels.
pub fn read_rgb(path: impl AsRef<Path>, size: Option<(usize, usize)>) -> Result<Array3<f32>, FileError> {
    let path = path.as_ref();
    let img = decode(path)?;
    check_size(path, &img, size)?;
    rgb_array(path, &img)
}

/// Reads a photo as [`read_rgb`] does and, when it is a cut-out (an alpha channel that leaves
/// some pixels transparent, as background removers write them), its person: the pixels whose
/// alpha is above 100 (the mask rule), with the photo laid on white as its alpha says.
pub fn read_photo(path: impl AsRef<Path>) -> Result<(Array3<f32>, Option<Array2<f32>>), FileError> {
    let path = path.as_ref();
    let img = decode(path)?;
    let mut rgb = rgb_array(path, &img)?;
    if !img.color().has_alpha() {
        return Ok((rgb, None));
    }
    let rgba = img.to_rgba8();
    let alpha =
        Array2::from_shape_fn((rgb.dim().0, rgb.dim().1), |(y, x)| f32::from(rgba.get_pixel(x as u32, y as u32)[3]));
    if alpha.iter().all(|&a| a > MASK_THRESHOLD) {
        return Ok((rgb, None));
    }
    for ((y, x, _), v) in rgb.indexed_iter_mut() {
        let a = alpha[(y, x)] / 255.0;
        *v = *v * a + 255.0 * (1.0 - a);
    }
    Ok((rgb, Some(alpha.mapv(|a| f32::from(u8::from(a > MASK_THRESHOLD))))))
}

fn rgb_array(path: &Path, img: &DynamicImage) -> Result<Array3<f32>, FileError> {
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let values = rgb.into_raw().into_iter().map(f32::from).collect();
    Array3::from_shape_vec((h, w, 3), values).map_err(|e| FileError::new(path, e))
}

/// Reads a DensePose IUV image (H, W, 3) as stored, 0..255, checked: a colour image whose third
/// channel holds part indices 0..=NUM_PARTS only. The one check every reader of IUV files uses.
pub fn read_iuv(path: impl AsRef<Path>, size: Option<(usize, usize)>) -> Result<Array3<f32>, FileError> {
    let path = path.as_ref();
    let img = decode(path)?;
    check_size(path, &img, size)?;
    if img.color().channel_count() < 3 {
        return Err(FileError::new(path, "not a DensePose IUV image: a grey image (IUV images are RGB)"));
    }
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let iuv = Array3::from_shape_vec((h, w, 3), rgb.into_raw().into_iter().map(f32::from).collect())
        .map_err(|e| FileError::new(path, e))?;
    if let Some(((r, c, _), &part)) =
        iuv.indexed_iter().find(|((_, _, k), p)| *k == 2 && crate::densepose::check_part(**p).is_err())
    {
        return Err(FileError::new(
            path,
            format!(
                "not a DensePose IUV image: part index {part} at row {r}, column {c} (expected an integer 0..={})",
                crate::densepose::NUM_PARTS
            ),
        ));
    }
    Ok(iuv)
}

/// Reads a single-channel image as float32 (H, W) with values 0..255 (colour images: luma).
pub fn read_grey(path: impl AsRef<Path>, size: Option<(usize, usize)>) -> Result<Array2<f32>, FileError> {
    let path = path.as_ref();
    let img = decode(path)?;
    check_size(path, &img, size)?;
    let grey = img.to_luma8();
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let values = grey.into_raw().into_iter().map(f32::from).collect();
    Array2::from_shape_vec((h, w), values).map_err(|e| FileError::new(path, e))
}

/// Reads a person mask: 1 where the stored value is above 100 (the original's rule), else 0.
/// A mask without any person pixel is an error.
pub fn read_mask(path: impl AsRef<Path>, size: Option<(usize, usize)>) -> Result<Array2<f32>, FileError> {
    let path = path.as_ref();
    let mask = read_grey(path, size)?.mapv(|v| f32::from(u8::from(v > MASK_THRESHOLD)));
    if mask.iter().all(|&z| z == 0.0) {
        return Err(FileError::new(path, "empty mask: no pixel is above 100"));
    }
    Ok(mask)
}

/// A person's picture as the networks take it: the image, the mask and the DensePose IUV of one
/// frame, whatever layout it came from (test samples, labelled and video frames, photos).
#[derive(Debug, Clone)]
pub struct PersonImage {
    pub name: String,
    /// Normal-net input `X`: RGB 0..255 with every background pixel set to white (255).
    pub image: Array3<f32>,
    /// `Z`: 1 on the person (mask > 100), 0 elsewhere.
    pub mask: Array2<f32>,
    /// `DP`: the DensePose PNG as stored, 0..255, not masked.
    pub iuv: Array3<f32>,
}

impl PersonImage {
    /// The person of `rgb` under `mask`, on white.
    pub fn new(name: &str, rgb: &Array3<f32>, mask: Array2<f32>, iuv: Array3<f32>) -> Self {
        Self { name: name.to_string(), image: white_background(rgb, &mask), mask, iuv }
    }

    /// Reads `[rgb, mask, iuv]` files. With a `size` (H, W) each must have it; without, the three
    /// must agree and the odd one out is the file named.
    pub fn read(name: &str, paths: &[PathBuf; 3], size: Option<(usize, usize)>) -> Result<Self, FileError> {
        let rgb = read_rgb(&paths[0], size)?;
        let mask = read_mask(&paths[1], size)?;
        let iuv = read_iuv(&paths[2], size)?;
        let sizes = [(rgb.dim().0, rgb.dim().1), mask.dim(), (iuv.dim().0, iuv.dim().1)];
        let odd = match sizes {
            [a, b, c] if a == b && b == c => return Ok(Self::new(name, &rgb, mask, iuv)),
            [_, b, c] if b == c => 0,
            [a, _, c] if a == c => 1,
            _ => 2,
        };
        let [(h, w), (mh, mw)] = [sizes[odd], sizes[(odd + 1) % 3]];
        let other = &paths[(odd + 1) % 3];
        Err(FileError::new(&paths[odd], format!("image is {w}x{h}, but {} is {mw}x{mh}", other.display())))
    }

    /// The three file paths of sample `name` in a folder of the original test-data layout.
    pub fn test_layout_paths(dir: &Path, name: &str) -> [PathBuf; 3] {
        ["img", "mask", "dp"].map(|kind| dir.join(format!("{name}_{kind}.png")))
    }

    /// Reads and preprocesses sample `name` of the test-data layout as `read_test_data` does; all
    /// three images must be `size` (H, W).
    pub fn read_test_layout(dir: &Path, name: &str, size: (usize, usize)) -> Result<Self, FileError> {
        Self::read(name, &Self::test_layout_paths(dir, name), Some(size))
    }

    /// As [`Self::read_test_layout`], but a missing `NAME_dp.png` gives zero IUV (what a depth
    /// net trained to do without DensePose takes for none).
    pub fn read_test_layout_dp_optional(dir: &Path, name: &str, size: (usize, usize)) -> Result<Self, FileError> {
        let paths = Self::test_layout_paths(dir, name);
        if paths[2].exists() {
            return Self::read(name, &paths, Some(size));
        }
        let rgb = read_rgb(&paths[0], Some(size))?;
        let mask = read_mask(&paths[1], Some(size))?;
        Ok(Self::new(name, &rgb, mask, Array3::zeros((size.0, size.1, 3))))
    }

    /// Leaves the person only where `keep` holds (white elsewhere).
    pub fn restrict_mask(&mut self, keep: impl Fn((usize, usize)) -> bool) {
        for (p, m) in self.mask.indexed_iter_mut() {
            if !keep(p) {
                *m = 0.0;
            }
        }
        self.image = white_background(&self.image, &self.mask);
    }

    /// (H, W).
    pub fn size(&self) -> (usize, usize) {
        self.mask.dim()
    }
}

/// Writes `mask` as a grey PNG: 255 on the person (mask > 0), 0 elsewhere.
pub fn save_mask(path: impl AsRef<Path>, mask: &Array2<f32>) -> Result<(), FileError> {
    let path = path.as_ref();
    let (h, w) = mask.dim();
    let grey = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
        image::Luma([if mask[(y as usize, x as usize)] > 0.0 { 255 } else { 0 }])
    });
    grey.save(path).map_err(|e| FileError::new(path, e))
}

/// `where(mask, rgb, 255)`: the person on a white background.
pub fn white_background(rgb: &Array3<f32>, mask: &Array2<f32>) -> Array3<f32> {
    let mut out = rgb.clone();
    for ((r, c, _), v) in out.indexed_iter_mut() {
        if mask[(r, c)] == 0.0 {
            *v = 255.0;
        }
    }
    out
}

/// Extensions of the photos and video frames hdnet reads from a folder.
pub const PHOTO_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// The photos (PNG, JPEG or WebP) of a folder, in name order.
pub fn list_photos(dir: &Path) -> Result<Vec<PathBuf>, FileError> {
    let entries = std::fs::read_dir(dir).map_err(|e| FileError::new(dir, format!("cannot list the folder: {e}")))?;
    let mut photos: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension().is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
        })
        .collect();
    photos.sort();
    Ok(photos)
}

/// Names of every `NAME_img.png` in `dir`, sorted. Missing partner files are not checked here:
/// loading reports them per sample so a batch can go on with the others.
pub fn list_samples(dir: &Path) -> Result<Vec<String>, FileError> {
    let entries = std::fs::read_dir(dir).map_err(|e| FileError::new(dir, e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter_map(|f| f.strip_suffix("_img.png").map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32, channels: u8, f: impl Fn(u32, u32, u8) -> u8) {
        let mut buf = Vec::new();
        for y in 0..h {
            for x in 0..w {
                for c in 0..channels {
                    buf.push(f(x, y, c));
                }
            }
        }
        let color = match channels {
            1 => image::ExtendedColorType::L8,
            _ => image::ExtendedColorType::Rgb8,
        };
        image::save_buffer(path, &buf, w, h, color).unwrap();
    }

    fn sample_dir(mask_value: u8, part: u8) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        write_png(&p.join("s_img.png"), 4, 4, 3, |x, y, c| (x * 10 + y * 40 + c as u32) as u8);
        write_png(&p.join("s_mask.png"), 4, 4, 1, |x, _, _| if x < 2 { mask_value } else { 0 });
        write_png(&p.join("s_dp.png"), 4, 4, 3, |_, _, c| if c == 2 { part } else { 128 });
        dir
    }

    #[test]
    fn a_truncated_jpeg_is_an_error_and_a_whole_one_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("photo.jpg");
        let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
        img.save(&path).unwrap();
        assert_eq!(read_rgb(&path, None).unwrap().dim(), (48, 64, 3));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_rgb(&path, None).unwrap_err().to_string();
        assert!(err.contains("photo.jpg: truncated JPEG"), "{err}");
    }

    /// A phone's portrait photo: stored lying on its side (the upright picture turned 90 degrees
    /// anticlockwise) with EXIF orientation 6, "turn 90 degrees clockwise to view".
    #[test]
    fn a_photo_is_read_upright_as_its_exif_orientation_says() {
        use image::ImageEncoder;
        let upright = image::RgbImage::from_fn(32, 48, |x, y| image::Rgb([(x * 8) as u8, (y * 5) as u8, 200]));
        let stored = image::imageops::rotate270(&upright);
        // A little-endian TIFF header, one IFD entry: tag 0x0112 (orientation), SHORT, 1, 6.
        let exif =
            [b"II*\0".as_slice(), &[8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]].concat();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portrait.jpg");
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(std::fs::File::create(&path).unwrap(), 95);
        encoder.set_exif_metadata(exif).unwrap();
        encoder.write_image(&stored, stored.width(), stored.height(), image::ExtendedColorType::Rgb8).unwrap();
        let read = read_rgb(&path, None).unwrap();
        assert_eq!(read.dim(), (48, 32, 3));
        let worst = read
            .indexed_iter()
            .map(|((y, x, c), &v)| (v - f32::from(upright.get_pixel(x as u32, y as u32)[c])).abs())
            .fold(0.0, f32::max);
        assert!(worst < 12.0, "{worst}");
        // Without the tag the same pixels read as stored, on their side.
        let plain = dir.path().join("plain.jpg");
        stored.save(&plain).unwrap();
        assert_eq!(read_rgb(&plain, None).unwrap().dim(), (32, 48, 3));
    }

    /// In PNG and in WebP (lossless, as the image crate writes it; the web's photos often come
    /// as WebP).
    #[test]
    fn a_cut_out_photos_alpha_is_its_person() {
        for ext in ["png", "webp"] {
            let dir = tempfile::tempdir().unwrap();
            let path = |name: &str| dir.path().join(format!("{name}.{ext}"));
            // Opaque on the left half, half transparent (alpha 100, not the person) in the third
            // column, transparent on the right.
            let alpha = |x: u32| [255, 255, 100, 0][x as usize];
            let cut_out = image::RgbaImage::from_fn(4, 3, |x, y| image::Rgba([40, 80 + y as u8, 120, alpha(x)]));
            cut_out.save(path("cut")).unwrap();
            let (rgb, mask) = read_photo(path("cut")).unwrap();
            let mask = mask.expect("a cut-out has a person");
            assert_eq!(mask.row(0).to_vec(), [1.0, 1.0, 0.0, 0.0], "{ext}");
            assert_eq!(rgb[(2, 1, 1)], 82.0, "{ext}");
            // Laid on white: 40 at alpha 100/255 gives 40 a + 255 (1 - a).
            let a = 100.0 / 255.0;
            assert!((rgb[(0, 2, 0)] - (40.0 * a + 255.0 * (1.0 - a))).abs() < 1e-3, "{ext}");
            assert_eq!(rgb[(0, 3, 0)], 255.0, "{ext}");
            // An opaque alpha channel, or none, is no cut-out.
            let opaque = image::RgbaImage::from_pixel(4, 3, image::Rgba([1, 2, 3, 255]));
            opaque.save(path("opaque")).unwrap();
            assert!(read_photo(path("opaque")).unwrap().1.is_none(), "{ext}");
            image::RgbImage::from_pixel(4, 3, image::Rgb([7, 8, 9])).save(path("rgb")).unwrap();
            let (rgb, mask) = read_photo(path("rgb")).unwrap();
            assert!(mask.is_none() && rgb[(2, 3, 2)] == 9.0, "{ext}");
            assert_eq!(list_photos(dir.path()).unwrap().len(), 3, "{ext}");
        }
    }

    #[test]
    fn loads_and_whitens_background() {
        let dir = sample_dir(101, 3);
        let s = PersonImage::read_test_layout(dir.path(), "s", (4, 4)).unwrap();
        assert_eq!(s.mask[(0, 0)], 1.0);
        assert_eq!(s.mask[(0, 3)], 0.0);
        assert_eq!(s.image[(1, 1, 2)], (10 + 40 + 2) as f32);
        assert_eq!(s.image[(1, 3, 0)], 255.0);
        assert_eq!(s.iuv[(0, 0, 2)], 3.0);
        assert_eq!(list_samples(dir.path()).unwrap(), vec!["s".to_string()]);
    }

    #[test]
    fn a_saved_mask_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mask = Array2::from_shape_fn((3, 5), |(r, c)| f32::from(u8::from(r + c == 3)));
        save_mask(dir.path().join("m.png"), &mask).unwrap();
        assert_eq!(read_mask(dir.path().join("m.png"), Some((3, 5))).unwrap(), mask);
    }

    #[test]
    fn mask_threshold_is_strict() {
        let dir = sample_dir(100, 3);
        let err = PersonImage::read_test_layout(dir.path(), "s", (4, 4)).unwrap_err().to_string();
        assert!(err.contains("s_mask.png") && err.contains("empty mask"), "{err}");
    }

    #[test]
    fn wrong_size_names_file_and_sizes() {
        let dir = sample_dir(255, 3);
        let err = PersonImage::read_test_layout(dir.path(), "s", (256, 256)).unwrap_err().to_string();
        assert!(err.contains("s_img.png") && err.contains("4x4, expected 256x256"), "{err}");
    }

    #[test]
    fn where_dp_is_optional_a_missing_one_is_zero_iuv_and_a_present_one_is_read() {
        let (with_dp, without_dp) = (sample_dir(255, 3), sample_dir(255, 3));
        std::fs::remove_file(without_dp.path().join("s_dp.png")).unwrap();
        let read = PersonImage::read_test_layout_dp_optional(with_dp.path(), "s", (4, 4)).unwrap();
        let zeros = PersonImage::read_test_layout_dp_optional(without_dp.path(), "s", (4, 4)).unwrap();
        assert_eq!(read.iuv[(0, 0, 2)], 3.0);
        assert!(zeros.iuv.iter().all(|&v| v == 0.0));
        assert_eq!((&zeros.image, &zeros.mask), (&read.image, &read.mask));
    }

    #[test]
    fn missing_dp_and_non_png() {
        let dir = sample_dir(255, 3);
        std::fs::remove_file(dir.path().join("s_dp.png")).unwrap();
        let err = PersonImage::read_test_layout(dir.path(), "s", (4, 4)).unwrap_err().to_string();
        assert!(err.contains("s_dp.png") && err.contains("not found"), "{err}");
        std::fs::write(dir.path().join("s_img.png"), b"this is text, not a PNG").unwrap();
        let err = PersonImage::read_test_layout(dir.path(), "s", (4, 4)).unwrap_err().to_string();
        assert!(err.contains("s_img.png") && err.contains("not a readable image"), "{err}");
    }

    #[test]
    fn part_index_above_24_is_rejected() {
        let dir = sample_dir(255, 25);
        let err = PersonImage::read_test_layout(dir.path(), "s", (4, 4)).unwrap_err().to_string();
        assert!(err.contains("s_dp.png") && err.contains("part index 25"), "{err}");
    }
}
