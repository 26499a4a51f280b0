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

/// A triangle mesh with per-vertex colours.
#[derive(Debug, Clone, PartialEq)]
pub struct ColoredMesh {
    pub points: Vec<[f32; 3]>,
    pub colors: Vec<[u8; 3]>,
    pub faces: Vec<[u32; 3]>,
}

/// Reads a mesh written by [`write_ply`] (binary little-endian: float x, y, z, uchar r, g, b;
/// triangles as a uchar-counted uint list).
pub fn read_ply(path: impl AsRef<Path>) -> Result<ColoredMesh, FileError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| FileError::new(path, e))?;
    let bad = |what: &str| FileError::new(path, what.to_string());
    const END: &[u8] = b"end_header\n";
    let end = bytes.windows(END.len()).position(|w| w == END).ok_or_else(|| bad("not a PLY file (no end_header)"))?;
    let header = std::str::from_utf8(&bytes[..end]).map_err(|_| bad("PLY header is not text"))?;
    let expected = [
        "property float x",
        "property float y",
        "property float z",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
        "property list uchar uint vertex_indices",
    ];
    if !header.starts_with("ply\nformat binary_little_endian 1.0") || expected.iter().any(|p| !header.contains(p)) {
        return Err(bad("not a PLY in hdnet's layout (binary little-endian xyz + rgb, triangle faces)"));
    }
    let count = |element: &str| -> Result<usize, FileError> {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("element {element} ")))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| bad(&format!("no element {element} count")))
    };
    let (vertices, faces) = (count("vertex")?, count("face")?);
    let body = &bytes[end + END.len()..];
    if body.len() != vertices * 15 + faces * 13 {
        return Err(bad(&format!(
            "{} bytes after the header, expected {} for {vertices} vertices and {faces} triangles",
            body.len(),
            vertices * 15 + faces * 13
        )));
    }
    let f32_at = |o: usize| f32::from_le_bytes(body[o..o + 4].try_into().expect("4 bytes"));
    let points = (0..vertices).map(|v| [0, 1, 2].map(|k| f32_at(v * 15 + 4 * k))).collect();
    let colors = (0..vertices).map(|v| [0, 1, 2].map(|k| body[v * 15 + 12 + k])).collect();
    let faces = (0..faces)
        .map(|f| {
            let o = vertices * 15 + f * 13;
            if body[o] != 3 {
                return Err(bad(&format!("face {f} is not a triangle")));
            }
            let face =
                [0, 1, 2].map(|k| u32::from_le_bytes(body[o + 1 + 4 * k..o + 5 + 4 * k].try_into().expect("4 bytes")));
            if face.iter().any(|&i| i as usize >= vertices) {
                return Err(bad(&format!("face {f} names a vertex beyond {vertices}")));
            }
            Ok(face)
        })
        .collect::<Result<_, _>>()?;
    Ok(ColoredMesh { points, colors, faces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ply_round_trips_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ply");
        let points = vec![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.5], [9.0, 9.0, 9.0]];
        let colors = vec![[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 0]];
        write_ply(&path, &points, &colors, &[[0, 2, 1]]).unwrap();
        // The unused vertex is dropped; the others are numbered in order of first use.
        let mesh = read_ply(&path).unwrap();
        let order = [0, 2, 1];
        assert_eq!(
            mesh,
            ColoredMesh {
                points: order.map(|i| points[i]).to_vec(),
                colors: order.map(|i| colors[i]).to_vec(),
                faces: vec![[0, 1, 2]]
            }
        );
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let err = read_ply(&path).unwrap_err().to_string();
        assert!(err.contains("m.ply") && err.contains("bytes after the header"), "{err}");
        std::fs::write(&path, b"v 1 2 3").unwrap();
        assert!(read_ply(&path).unwrap_err().to_string().contains("not a PLY"));
    }

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
