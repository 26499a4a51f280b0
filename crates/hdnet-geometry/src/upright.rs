//! The person's vertical in camera space. A camera looking down at a person sees their top
//! nearer than their feet: their depth grows down the image by the pitch's tangent. Views and
//! files meant to show the person standing (turntables, glTF) rotate that lean out.

/// Steepest pitch taken out (45 degrees): beyond it the mesh is not a person standing or
/// sitting, and standing it upright would lay it on its side.
const MAX_SLOPE: f32 = 1.0;

/// The rotation about the camera's x axis (x right, y down, z forward) that turns the person's
/// vertical onto the camera's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Upright {
    /// Radians; positive when the top of the person is nearer than their feet.
    pub pitch: f32,
}

impl Upright {
    /// The person's vertical is the least-squares slope of depth against height over `points`
    /// (camera space, metres; the mesh's vertices), clamped to 45 degrees.
    pub fn of(points: impl IntoIterator<Item = [f32; 3]>) -> Self {
        // Sums in one pass, so that callers need not collect their vertices.
        let (mut n, mut y, mut z, mut yz, mut yy) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
        for p in points {
            let (py, pz) = (f64::from(p[1]), f64::from(p[2]));
            (n, y, z, yz, yy) = (n + 1.0, y + py, z + pz, yz + py * pz, yy + py * py);
        }
        let n = n.max(1.0);
        let (yz, yy) = (yz - y * z / n, yy - y * y / n);
        // No height (a spread under 0.03 mm, where the sums' rounding would rule), or a point not
        // finite: the mesh left as it is.
        let slope = if yy > 1e-9 * n && (yz / yy).is_finite() { (yz / yy) as f32 } else { 0.0 };
        Self { pitch: slope.clamp(-MAX_SLOPE, MAX_SLOPE).atan() }
    }

    /// A camera-space direction (or a point about the rotation's centre) turned upright.
    pub fn apply(&self, d: [f32; 3]) -> [f32; 3] {
        let (s, c) = self.pitch.sin_cos();
        [d[0], c * d[1] + s * d[2], -s * d[1] + c * d[2]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_seen_from_above_stands_upright() {
        // A pole 1.8 m tall at 3 m, its top tipped 30 degrees towards the camera, and a second
        // pole beside it: their direction up the image turns onto the camera's vertical.
        let (s, c) = 30f32.to_radians().sin_cos();
        let points: Vec<[f32; 3]> = [-0.2f32, 0.2]
            .iter()
            .flat_map(|&x| (0..10).map(move |i| 0.2 * i as f32 - 0.9).map(move |h| [x, c * h, 3.0 + s * h]))
            .collect();
        let upright = Upright::of(points.iter().copied());
        assert!((upright.pitch - 30f32.to_radians()).abs() < 1e-5, "{}", upright.pitch.to_degrees());
        let up = upright.apply([0.0, c, s]);
        assert!(up[0] == 0.0 && (up[1] - 1.0).abs() < 1e-6 && up[2].abs() < 1e-6, "{up:?}");
    }

    #[test]
    fn a_person_lying_along_the_view_is_not_stood_on_end() {
        // Depth rising 3 m over 0.3 m of height is a person lying towards the camera: 45 degrees at most.
        let points = [[0.0, 0.0, 2.0], [0.0, 0.3, 5.0]];
        assert!((Upright::of(points.iter().copied()).pitch - std::f32::consts::FRAC_PI_4).abs() < 1e-6);
        // No height at all: left as it is.
        assert_eq!(Upright::of([[0.0, 0.1, 2.0], [1.0, 0.1, 3.0], [2.0, 0.1, 7.0]]).pitch, 0.0);
        assert_eq!(Upright::of([]).pitch, 0.0);
        assert_eq!(Upright::of([[0.0, 0.0, 2.0], [0.0, 1.0, f32::NAN]]).pitch, 0.0);
    }
}
