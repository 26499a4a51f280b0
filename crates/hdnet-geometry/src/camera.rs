//! The pinhole camera and crop transform of the original: a 256x256 crop of a 1920x1080 frame.
//!
//! Pixel (row r, col c) of the crop lies at frame position x = c*s + o_x, y = r*s + o_y; its 3D
//! point at depth D is D * K^-1 [x, y, 1].

/// Intrinsics plus the crop's origin (in frame pixels) and scale (frame pixels per crop pixel).
/// Stored with synthetic frames as `camera/NAME.json` with these field names.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Camera {
    pub fx: f32,
    pub fy: f32,
    pub cx: f32,
    pub cy: f32,
    /// (x, y) = (column, row) offset of the crop in the frame.
    pub origin: [f32; 2],
    pub scaling: f32,
}

impl Camera {
    /// The original's fixed camera (`IO.get_camera` / `read_test_data` for 256x256 crops):
    /// f = 1111.6, c = (960, 540), origin (838, 48), scaling 3.5390625, from its bounding boxes
    /// [[25,477],[420,872],[1,453],[1,453]].
    pub fn original() -> Self {
        Self::from_bounding_boxes(
            [[25.0, 477.0], [420.0, 872.0], [1.0, 453.0], [1.0, 453.0]],
            256,
            1111.6,
            [960.0, 540.0],
        )
    }

    /// The original's `get_origin_scaling`: rows 0/1 are the person box (rows, cols, 1-based),
    /// rows 2/3 the crop box; the factor 2 maps half-resolution boxes to the full frame.
    pub fn from_bounding_boxes(bbs: [[f32; 2]; 4], image_size: usize, focal: f32, centre: [f32; 2]) -> Self {
        let b = bbs.map(|r| r.map(|v| v - 1.0));
        let origin = [2.0 * (b[1][0] - b[3][0]), 2.0 * (b[0][0] - b[2][0])];
        let square = (b[0][1] - b[0][0] + 1.0).max(b[1][1] - b[1][0] + 1.0);
        Self { fx: focal, fy: focal, cx: centre[0], cy: centre[1], origin, scaling: 2.0 * square / image_size as f32 }
    }

    /// A `size` x `size` crop of a photo taken with focal length `focal` (pixels) and principal
    /// point `centre`: its top-left corner at `origin`, `side` photo pixels wide.
    pub fn photo_crop(focal: f32, centre: [f32; 2], origin: [f32; 2], side: f32, size: usize) -> Self {
        Self { fx: focal, fy: focal, cx: centre[0], cy: centre[1], origin, scaling: side / size as f32 }
    }

    /// This camera with its focal length scaled by `to / from`: a surface seen at depth `from`
    /// and moved to depth `to` keeps its metric size and shape through it (to first order in its
    /// relief over the distance), as the original's shift of every depth map to median 4 m needs.
    pub fn moved_to_depth(&self, from: f32, to: f32) -> Self {
        let k = to / from;
        Self { fx: self.fx * k, fy: self.fy * k, ..*self }
    }

    /// The camera that meshes a predicted depth map of a photo's crop (`size` x `size`): each
    /// pixel spans `footprint` metres at the median depth on the mask (the networks see a crop,
    /// not the photo's lens; their depth is metric in relief, placed at about 4 m).
    pub fn for_crop(depth: &[f32], mask: &[f32], footprint: f32, size: usize) -> Self {
        let on: Vec<f32> = depth.iter().zip(mask).filter(|(_, m)| **m > 0.0).map(|(d, _)| *d).collect();
        let median = if on.is_empty() { 1.0 } else { median(on) };
        let (focal, centre) = (median / footprint, (size as f32 - 1.0) / 2.0);
        Self { fx: focal, fy: focal, cx: centre, cy: centre, origin: [0.0, 0.0], scaling: 1.0 }
    }

    /// This camera of a `size` x `size` network crop (in its pixels: origin 0, scaling 1) in the
    /// photo the crop was resampled from: the square `side` photo pixels wide whose top-left
    /// corner is photo pixel `corner` (x, y). The intrinsics become the photo's, and the crop's
    /// pixels keep their rays (the crop's pixel centres lie at the square's, `side / size` apart).
    pub fn in_photo(&self, corner: [f32; 2], side: f32, size: usize) -> Self {
        let s = side / size as f32;
        let photo_centre = |crop_centre: f32, corner: f32| corner - 0.5 + (crop_centre + 0.5) * s;
        Self {
            fx: self.fx * s,
            fy: self.fy * s,
            cx: photo_centre(self.cx, corner[0]),
            cy: photo_centre(self.cy, corner[1]),
            origin: corner.map(|c| c - 0.5 + 0.5 * s),
            scaling: s,
        }
    }

    /// The camera of the full frame's own pixels (no crop).
    pub fn full_frame(&self) -> Self {
        Self { origin: [0.0, 0.0], scaling: 1.0, ..*self }
    }

    /// Whether the values can be a camera: finite, focal lengths and scaling positive.
    pub fn is_valid(&self) -> bool {
        let values = [self.fx, self.fy, self.cx, self.cy, self.origin[0], self.origin[1], self.scaling];
        values.iter().all(|v| v.is_finite()) && self.fx > 0.0 && self.fy > 0.0 && self.scaling > 0.0
    }

    /// The same crop at `factor` times the resolution (for supersampling).
    pub fn finer(&self, factor: usize) -> Self {
        Self { scaling: self.scaling / factor as f32, ..*self }
    }

    /// The camera of the crop mirrored left to right (`width` pixels wide): pixel column
    /// `width - 1 - c` sees the mirror image of what column `c` saw, its ray's x negated.
    pub fn mirrored(&self, width: usize) -> Self {
        let origin_x = 2.0 * self.cx - self.origin[0] - (width - 1) as f32 * self.scaling;
        Self { origin: [origin_x, self.origin[1]], ..*self }
    }

    /// The ray K^-1 [x, y, 1] through crop pixel (row, col); multiply by depth for the point.
    /// Uses K^-1's entries in float32 as the original's `np.linalg.inv(K)` cast does.
    pub fn ray(&self, row: f32, col: f32) -> [f32; 3] {
        let x = col * self.scaling + self.origin[0];
        let y = row * self.scaling + self.origin[1];
        let (ifx, ify) = (1.0 / f64::from(self.fx), 1.0 / f64::from(self.fy));
        let ki = [ifx as f32, (-f64::from(self.cx) * ifx) as f32, ify as f32, (-f64::from(self.cy) * ify) as f32];
        [ki[0] * x + ki[1], ki[2] * y + ki[3], 1.0]
    }

    /// The camera-space point of crop pixel (row, col) at `depth`.
    pub fn backproject(&self, row: f32, col: f32, depth: f32) -> [f32; 3] {
        self.ray(row, col).map(|v| v * depth)
    }

    /// Projects a camera-space point to full-frame pixel coordinates (x, y).
    pub fn project_to_frame(&self, p: [f32; 3]) -> [f32; 2] {
        [self.fx * p[0] / p[2] + self.cx, self.fy * p[1] / p[2] + self.cy]
    }
}

/// NumPy's median of non-empty float32 values (the mean of the middle two for an even count),
/// as the original shifts depth maps by.
pub fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crop_camera_gives_each_pixel_its_footprint_at_the_median_depth() {
        // 3 mask pixels at 3, 5 and 9 m (median 5) and one off the mask at 100 m.
        let (depth, mask) = ([3.0, 5.0, 9.0, 100.0], [1.0, 1.0, 1.0, 0.0]);
        let c = Camera::for_crop(&depth, &mask, 0.01, 2);
        let (a, b) = (c.backproject(0.0, 0.0, 5.0), c.backproject(0.0, 1.0, 5.0));
        assert!((b[0] - a[0] - 0.01).abs() < 1e-7 && a[1] == b[1], "{a:?} {b:?}");
        assert_eq!(c.backproject(0.5, 0.5, 5.0), [0.0, 0.0, 5.0], "centred on the optical axis");
    }

    #[test]
    fn a_crop_camera_placed_in_its_photo_keeps_every_rays_direction() {
        // A 4x4 crop of the 8-pixel square at photo pixel (10, 20): crop pixel (r, c) covers
        // photo pixels 20 + 2r .. 21 + 2r (rows), so its centre is photo row 20.5 + 2r.
        let crop = Camera::for_crop(&[5.0; 16], &[1.0; 16], 0.01, 4);
        let placed = crop.in_photo([10.0, 20.0], 8.0, 4);
        assert_eq!(placed.fx, crop.fx * 2.0);
        for (row, col) in [(0.0, 0.0), (1.0, 3.0), (3.0, 2.0)] {
            let (a, b) = (crop.ray(row, col), placed.ray(row, col));
            assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6, "{a:?} {b:?}");
            // The same ray through the photo's own pixel at the crop pixel's centre.
            let photo = placed.full_frame().ray(20.5 + 2.0 * row, 10.5 + 2.0 * col);
            assert!((a[0] - photo[0]).abs() < 1e-6 && (a[1] - photo[1]).abs() < 1e-6, "{a:?} {photo:?}");
        }
        assert!(placed.is_valid());
        assert!(!Camera { fx: 0.0, ..placed }.is_valid() && !Camera { cx: f32::NAN, ..placed }.is_valid());
    }

    #[test]
    fn original_camera_constants() {
        let c = Camera::original();
        assert_eq!(c.origin, [838.0, 48.0]);
        assert_eq!(c.scaling, 3.5390625);
        // Ki from the fixture: [[8.9960417e-04, 0, -8.6362004e-01], [0, 8.9960417e-04, -4.8578626e-01]]
        let r = c.ray(0.0, 0.0);
        assert!((r[0] - (8.996_042e-4 * 838.0 - 0.863_620_04)).abs() < 1e-6);
        assert!((r[1] - (8.996_042e-4 * 48.0 - 0.485_786_26)).abs() < 1e-6);
    }

    #[test]
    fn a_mirrored_crop_sees_the_mirror_image() {
        let c = Camera::photo_crop(900.0, [540.0, 720.0], [300.0, 200.0], 512.0, 128);
        let m = c.mirrored(128);
        for (row, col) in [(0.0, 0.0), (17.0, 100.0), (127.0, 127.0)] {
            let (a, b) = (c.ray(row, col), m.ray(row, 127.0 - col));
            assert!((a[0] + b[0]).abs() < 1e-5 && (a[1] - b[1]).abs() < 1e-6, "{a:?} {b:?}");
        }
        assert_eq!(m.mirrored(128), c);
    }

    #[test]
    fn projection_inverts_backprojection() {
        let c = Camera::original();
        let p = c.backproject(100.0, 37.0, 4.2);
        let [x, y] = c.project_to_frame(p);
        assert!((x - (37.0 * c.scaling + 838.0)).abs() < 1e-3);
        assert!((y - (100.0 * c.scaling + 48.0)).abs() < 1e-3);
    }
}
