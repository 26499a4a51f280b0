//! Meshes from depth maps: the original `depth2mesh` OBJ (byte-compatible) and a coloured PLY.

use std::fmt::Write as _;
use std::path::Path;

use ndarray::Array2;

use crate::text::python_float_repr;
use crate::{FileError, write_atomic};

/// The original's smoothness threshold between neighbouring depths (metres).
const SMOOTHNESS: f32 = 0.07;

/// Triangles of the original `depth2mesh` rule, as 0-based row-major vertex indices.
///
/// For each pixel (i, j) with 2 <= i, j < size-1 on the mask whose 3x3 patch passes the original's
/// test (only differences against the patch's first row and column are compared), the quad
/// (i, j)-(i+1, j+1) is emitted as two triangles. Reproduced as is, quirks included.
pub fn depth2mesh_faces(depth: &Array2<f32>, mask: &Array2<f32>) -> Vec<[u32; 3]> {
    let (h, w) = depth.dim();
    let mut faces = Vec::new();
    for i in 2..h.saturating_sub(1) {
        for j in 2..w.saturating_sub(1) {
            if mask[(i, j)] == 0.0 || !smooth_patch(depth, i, j) {
                continue;
            }
            let a = (i * w + j) as u32;
            let below = a + w as u32;
            faces.push([a, a + 1, below]);
            faces.push([below + 1, below, a + 1]);
        }
    }
    faces
}

fn smooth_patch(depth: &Array2<f32>, i: usize, j: usize) -> bool {
    let p = |r: usize, c: usize| depth[(i + r - 1, j + c - 1)];
    (0..3).all(|k| {
        (p(0, k) - p(1, k)).abs() < SMOOTHNESS
            && (p(k, 0) - p(k, 1)).abs() < SMOOTHNESS
            && (p(0, k) - p(2, k)).abs() < SMOOTHNESS
            && (p(k, 0) - p(k, 2)).abs() < SMOOTHNESS
    })
}

/// The original OBJ text: one vertex `v 2i/h 2j/w depth` per pixel (x is the row), numbers as
/// Python prints them, then the faces of [`depth2mesh_faces`] (1-based).
pub fn format_depth2mesh_obj(depth: &Array2<f32>, mask: &Array2<f32>) -> String {
    let (h, w) = depth.dim();
    let mut out = String::with_capacity(h * w * 40);
    for i in 0..h {
        let x = python_float_repr(2.0 * i as f64 / h as f64);
        for j in 0..w {
            let y = python_float_repr(2.0 * j as f64 / w as f64);
            let z = python_float_repr(f64::from(depth[(i, j)]));
            writeln!(out, "v {x} {y} {z}").expect("writing to a String");
        }
    }
    for [a, b, c] in depth2mesh_faces(depth, mask) {
        writeln!(out, "f {} {} {}", a + 1, b + 1, c + 1).expect("writing to a String");
    }
    out
}

pub fn write_depth2mesh_obj(path: impl AsRef<Path>, depth: &Array2<f32>, mask: &Array2<f32>) -> Result<(), FileError> {
    write_atomic(path.as_ref(), format_depth2mesh_obj(depth, mask).as_bytes())
}

/// A binary little-endian PLY mesh with per-vertex colours. Only the vertices used by `faces`
/// are written, so background pixels do not pile up at the camera centre.
pub fn write_ply(
    path: impl AsRef<Path>,
    points: &[[f32; 3]],
    colors: &[[u8; 3]],
    faces: &[[u32; 3]],
) -> Result<(), FileError> {
    let path = path.as_ref();
    if points.len() != colors.len() {
        return Err(FileError::new(path, "points and colours differ in number"));
    }
    let mut remap = vec![u32::MAX; points.len()];
    let mut used = Vec::new();
    for &v in faces.iter().flatten() {
        let slot = remap
            .get_mut(v as usize)
            .ok_or_else(|| FileError::new(path, format!("face uses vertex {v} of {}", points.len())))?;
        if *slot == u32::MAX {
            *slot = used.len() as u32;
            used.push(v as usize);
        }
    }
    let header = format!(
        "ply\nformat binary_little_endian 1.0\ncomment written by hdnet\nelement vertex {}\n\
         property float x\nproperty float y\nproperty float z\n\
         property uchar red\nproperty uchar green\nproperty uchar blue\n\
         element face {}\nproperty list uchar uint vertex_indices\nend_header\n",
        used.len(),
        faces.len()
    );
    let mut bytes = header.into_bytes();
    for &v in &used {
        for c in points[v] {
            bytes.extend_from_slice(&c.to_le_bytes());
        }
        bytes.extend_from_slice(&colors[v]);
    }
    for face in faces {
        bytes.push(3);
        for &v in face {
            bytes.extend_from_slice(&remap[v as usize].to_le_bytes());
        }
    }
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_patch_gives_two_triangles_per_interior_pixel() {
        let depth = Array2::from_elem((5, 5), 2.0f32);
        let mask = Array2::from_elem((5, 5), 1.0f32);
        // Interior pixels 2..4 in each direction: (2,2),(2,3),(3,2),(3,3).
        let faces = depth2mesh_faces(&depth, &mask);
        assert_eq!(faces.len(), 8);
        assert_eq!(faces[0], [12, 13, 17]);
        assert_eq!(faces[1], [18, 17, 13]);
    }

    #[test]
    fn step_larger_than_threshold_breaks_faces() {
        let mut depth = Array2::from_elem((5, 5), 2.0f32);
        depth[(1, 1)] = 2.1; // tested by the patches centred at (2,2) only
        let mask = Array2::from_elem((5, 5), 1.0f32);
        let faces = depth2mesh_faces(&depth, &mask);
        assert_eq!(faces.len(), 6);
        assert!(!faces.contains(&[12, 13, 17]));
    }

    #[test]
    fn ply_keeps_only_used_vertices() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.ply");
        let points = [[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [9.0, 9.0, 9.0], [0.0, 1.0, 1.0]];
        let colors = [[255, 0, 0], [0, 255, 0], [1, 2, 3], [0, 0, 255]];
        write_ply(&p, &points, &colors, &[[0, 1, 3]]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("element vertex 3\n") && text.contains("element face 1\n"));
        let body = &bytes[text.find("end_header\n").unwrap() + 11..];
        assert_eq!(body.len(), 3 * 15 + 13);
        assert!(write_ply(&p, &points, &colors, &[[0, 1, 7]]).is_err());
    }
}
