//! Photos of any size: a square crop around the person's mask, resized to the network's input,
//! and results pasted back into the photo's frame.

use image::ImageBuffer;
use image::imageops::{FilterType, resize};
use ndarray::{Array2, Array3, Axis};

/// The rows and columns a mask's pixels (> 0) span, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Bounds {
    /// None for an empty mask.
    pub fn of(mask: &Array2<f32>) -> Option<Self> {
        let on = || mask.indexed_iter().filter(|(_, m)| **m > 0.0).map(|(p, _)| p);
        Some(Self {
            top: on().map(|p| p.0).min()?,
            bottom: on().map(|p| p.0).max()?,
            left: on().map(|p| p.1).min()?,
            right: on().map(|p| p.1).max()?,
        })
    }

    /// The larger of the height and width, in pixels.
    pub fn longer_side(&self) -> usize {
        (self.bottom - self.top + 1).max(self.right - self.left + 1)
    }

    /// The bounds spanning both.
    pub fn union(&self, other: &Bounds) -> Self {
        Self {
            top: self.top.min(other.top),
            bottom: self.bottom.max(other.bottom),
            left: self.left.min(other.left),
            right: self.right.max(other.right),
        }
    }
}

/// A square window of a photo (it may reach past the borders, where it is padded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub top: i64,
    pub left: i64,
    pub side: usize,
}

impl Crop {
    /// The square centred on the mask's bounding box whose side makes the box's longer side
    /// `fill` of it, except where the person is cut by the photo's border: that side of the
    /// square is then the photo's border too, so that a close-up stays a close-up (cut at the
    /// crop's border, as photos of people and hdnet's synthetic training crops are) rather than a
    /// body ending in blank padding. None for an empty mask.
    pub fn around(mask: &Array2<f32>, fill: f32) -> Option<Self> {
        Some(Self::around_bounds(Bounds::of(mask)?, mask.dim(), fill))
    }

    /// [`Crop::around`] the person within `bounds` of an `h` x `w` photo.
    pub fn around_bounds(bounds: Bounds, (h, w): (usize, usize), fill: f32) -> Self {
        let Bounds { top: r0, bottom: r1, left: c0, right: c1 } = bounds;
        let side = (bounds.longer_side() as f32 / fill.clamp(0.05, 1.0)).ceil() as usize;
        // Centred, or flush with the one photo border the person touches on this axis.
        let place = |lo: usize, hi: usize, size: usize| match (lo == 0, hi + 1 == size) {
            (true, false) => 0,
            (false, true) => size as i64 - side as i64,
            _ => (lo + hi + 1) as i64 / 2 - side as i64 / 2,
        };
        Self { top: place(r0, r1, h), left: place(c0, c1, w), side }
    }

    /// The crop of `image` (H x W x C, any channels, integer values 0..255), padded with `pad`, resized
    /// to `size` x `size`: smoothly (triangle filter) for images, by nearest neighbour for labels.
    pub fn resample(&self, image: &Array3<f32>, size: usize, pad: f32, smooth: bool) -> Array3<f32> {
        let (h, w, channels) = image.dim();
        let mut out = Array3::zeros((size, size, channels));
        for k in 0..channels {
            let window: ImageBuffer<image::Luma<f32>, Vec<f32>> =
                ImageBuffer::from_fn(self.side as u32, self.side as u32, |x, y| {
                    let (r, c) = (self.top + i64::from(y), self.left + i64::from(x));
                    let inside = r >= 0 && c >= 0 && (r as usize) < h && (c as usize) < w;
                    // The resizer clamps float pixels to 0..1.
                    image::Luma([if inside { image[(r as usize, c as usize, k)] } else { pad } / 255.0])
                });
            let filter = if smooth { FilterType::Triangle } else { FilterType::Nearest };
            let resized = resize(&window, size as u32, size as u32, filter);
            for (x, y, p) in resized.enumerate_pixels() {
                // Inputs are 8-bit images and integer labels.
                out[(y as usize, x as usize, k)] = (p[0] * 255.0).round();
            }
        }
        out
    }

    /// `values` (size x size x C, the network's frame) placed back into a photo on the pixels
    /// where `photo_mask` is on (zero elsewhere and outside the crop): each interpolated
    /// bilinearly from the network pixels around its centre where `valid` is on (the person's;
    /// the others' weights are dropped, so no value from off the person bleeds in), the nearest
    /// network pixel where none of the four is. Nearest neighbours alone would repeat a network
    /// pixel over several photo pixels: terraces whose slopes, and so normals, are wrong.
    pub fn paste_back(&self, values: &Array3<f32>, valid: &Array2<f32>, photo_mask: &Array2<f32>) -> Array3<f32> {
        let (size, _, channels) = values.dim();
        let (h, w) = photo_mask.dim();
        let scale = size as f64 / self.side as f64;
        // Each photo row's and column's network neighbours, or None outside the crop.
        let along = |n: usize, start: i64| -> Vec<Option<Corners>> {
            (0..n as i64)
                .map(|v| v - start)
                .map(|v| (v >= 0 && (v as usize) < self.side).then(|| corners(v, scale, size)))
                .collect()
        };
        let (rows, cols) = (along(h, self.top), along(w, self.left));
        let mut out = Array3::zeros((h, w, channels));
        let mut total = vec![0.0f64; channels];
        for ((r, c), _) in photo_mask.indexed_iter().filter(|(_, m)| **m > 0.0) {
            let (Some((ys, near_y)), Some((xs, near_x))) = (&rows[r], &cols[c]) else { continue };
            total.fill(0.0);
            let mut weight = 0.0;
            let neighbours = ys.iter().flat_map(|&(i, wi)| xs.iter().map(move |&(j, wj)| (i, j, wi * wj)));
            for (i, j, wij) in neighbours.filter(|&(i, j, wij)| wij > 0.0 && valid[(i, j)] > 0.0) {
                weight += wij;
                total.iter_mut().enumerate().for_each(|(k, t)| *t += wij * f64::from(values[(i, j, k)]));
            }
            for k in 0..channels {
                out[(r, c, k)] = if weight > 0.0 { (total[k] / weight) as f32 } else { values[(*near_y, *near_x, k)] };
            }
        }
        out
    }

    /// [`Crop::paste_back`] for one map (size x size).
    pub fn paste_back_map(&self, map: &Array2<f32>, valid: &Array2<f32>, photo_mask: &Array2<f32>) -> Array2<f32> {
        self.paste_back(&map.clone().insert_axis(Axis(2)), valid, photo_mask).index_axis_move(Axis(2), 0)
    }
}

/// The two network pixels on either side of a photo pixel's centre along one axis with their
/// bilinear weights, and the nearest network pixel.
type Corners = ([(usize, f64); 2], usize);

/// The [`Corners`] of photo pixel `v` (counted from the crop's edge), clamped at the borders.
fn corners(v: i64, scale: f64, size: usize) -> Corners {
    let at = (v as f64 + 0.5) * scale - 0.5;
    let last = (size - 1) as f64;
    let lo = at.floor().clamp(0.0, last);
    let t = (at - lo).clamp(0.0, 1.0);
    let nearest = (((v as f64 + 0.5) * scale) as usize).min(size - 1);
    ([(lo as usize, 1.0 - t), ((lo + 1.0).min(last) as usize, t)], nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_span_every_pixel_of_the_mask() {
        let mut mask = Array2::zeros((10, 20));
        mask[(2, 3)] = 1.0;
        mask[(7, 15)] = 0.5;
        let bounds = Bounds::of(&mask).unwrap();
        assert_eq!(bounds, Bounds { top: 2, bottom: 7, left: 3, right: 15 });
        assert_eq!(bounds.longer_side(), 13);
        let other = Bounds { top: 5, bottom: 9, left: 1, right: 4 };
        assert_eq!(bounds.union(&other), Bounds { top: 2, bottom: 9, left: 1, right: 15 });
        assert_eq!(Bounds::of(&Array2::zeros((4, 4))), None);
    }

    #[test]
    fn pasting_back_interpolates_between_the_persons_pixels_only() {
        // A 4x4 network frame of a 8x8 square at (1, 2) of a 10x12 photo: photo pixel (r, c) has
        // its centre at network coordinates ((r - 1 + 0.5) / 2 - 0.5, (c - 2 + 0.5) / 2 - 0.5).
        let crop = Crop { top: 1, left: 2, side: 8 };
        let ramp = Array3::from_shape_fn((4, 4, 1), |(i, j, _)| (10 * i + j) as f32);
        let all = Array2::ones((4, 4));
        let photo = Array2::ones((10, 12));
        let back = crop.paste_back(&ramp, &all, &photo);
        // Photo pixel (4, 5): network (1.25, 1.25) -> 10 * 1.25 + 1.25; (1, 2): the corner,
        // clamped to network pixel (0, 0); outside the square: zero.
        assert!((back[(4, 5, 0)] - 13.75).abs() < 1e-5, "{}", back[(4, 5, 0)]);
        assert_eq!((back[(1, 2, 0)], back[(0, 0, 0)], back[(9, 11, 0)]), (0.0, 0.0, 0.0));
        // Network column 2 off the person, holding 1000: photo pixel (4, 5) now interpolates
        // between column 1's pixels only (rows 1 and 2: 10 * 1.25 + 1), and photo pixel (4, 7)
        // (network column 2.25) between column 3's.
        let mut walled = ramp.clone();
        walled.slice_mut(ndarray::s![.., 2, ..]).fill(1000.0);
        let valid = Array2::from_shape_fn((4, 4), |(_, j)| if j == 2 { 0.0 } else { 1.0 });
        let back = crop.paste_back(&walled, &valid, &photo);
        assert!((back[(4, 5, 0)] - 13.5).abs() < 1e-5, "{}", back[(4, 5, 0)]);
        assert!((back[(4, 7, 0)] - 15.5).abs() < 1e-5, "{}", back[(4, 7, 0)]);
        // Where no neighbour is on the person, the nearest pixel's value.
        let none = Array2::zeros((4, 4));
        assert_eq!(crop.paste_back(&walled, &none, &photo)[(4, 5, 0)], walled[(1, 1, 0)]);
        // Off the photo's mask: zero.
        let mut photo = photo;
        photo[(4, 5)] = 0.0;
        assert_eq!(crop.paste_back(&ramp, &all, &photo)[(4, 5, 0)], 0.0);
    }

    #[test]
    fn crop_centres_the_person_and_pastes_back_where_it_came_from() {
        // A 40x20 person (rows 30..70, cols 100..120) in a 100x200 photo.
        let mask =
            Array2::from_shape_fn(
                (100, 200),
                |(r, c)| if (30..70).contains(&r) && (100..120).contains(&c) { 1.0 } else { 0.0 },
            );
        let crop = Crop::around(&mask, 0.5).unwrap();
        assert_eq!(crop, Crop { top: 10, left: 70, side: 80 });
        let m = crop.resample(&mask.clone().insert_axis(Axis(2)), 32, 0.0, false);
        // The person covers the middle half in rows, a quarter in columns.
        let on: f32 = m.sum();
        assert_eq!(on, 16.0 * 8.0);
        assert_eq!((m[(8, 12, 0)], m[(23, 19, 0)], m[(7, 16, 0)], m[(16, 11, 0)]), (1.0, 1.0, 0.0, 0.0));
        // Pasting the network-frame mask back on itself covers the photo's mask, and reaches no
        // further than a network pixel (2.5 photo pixels) beyond it.
        let back = crop.paste_back(&m, &m.index_axis(Axis(2), 0).to_owned(), &Array2::ones((100, 200)));
        let near = |r: usize, c: usize| (28..72).contains(&r) && (98..122).contains(&c);
        assert!(back.indexed_iter().all(|((r, c, _), v)| if mask[(r, c)] > 0.0 {
            *v == 1.0
        } else {
            near(r, c) || *v == 0.0
        }));
        // A person cut by the photo's top and left borders stays cut at the crop's.
        let corner = Array2::from_shape_fn((50, 50), |(r, c)| if r < 10 && c < 10 { 1.0 } else { 0.0 });
        assert_eq!(Crop::around(&corner, 0.5).unwrap(), Crop { top: 0, left: 0, side: 20 });
        // A person cut at the bottom: the crop ends at the photo's bottom; centred across.
        let bust = Array2::from_shape_fn((60, 50), |(r, c)| if r >= 40 && (20..30).contains(&c) { 1.0 } else { 0.0 });
        assert_eq!(Crop::around(&bust, 0.5).unwrap(), Crop { top: 20, left: 5, side: 40 });
        // Past the photo's border the crop is padded.
        let crop = Crop { top: -5, left: -5, side: 20 };
        let img = Array3::from_elem((50, 50, 3), 10.0);
        let r = crop.resample(&img, 16, 255.0, true);
        assert_eq!((r[(0, 0, 0)], r[(15, 15, 1)]), (255.0, 10.0));
        assert!(Crop::around(&Array2::zeros((4, 4)), 0.5).is_none());
    }
}
