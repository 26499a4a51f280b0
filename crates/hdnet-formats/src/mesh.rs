//! Meshes from depth maps: the original `depth2mesh` OBJ (byte-compatible) and a coloured PLY
//! (the GLB is [`crate::glb`]).

use std::fmt::Write as _;
use std::io::Read as _;
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

/// A binary little-endian PLY mesh with per-vertex colours, and normals when the mesh has them.
/// Only the vertices used by `faces` are written, so background pixels do not pile up at the
/// camera centre.
pub fn write_ply(path: impl AsRef<Path>, mesh: &ColoredMesh) -> Result<(), FileError> {
    let path = path.as_ref();
    let (used, faces) = mesh.used_vertices(path)?;
    let properties: String =
        ply_vertex_properties(mesh.normals.is_some()).iter().map(|p| format!("property {p}\n")).collect();
    let header = format!(
        "ply\nformat binary_little_endian 1.0\ncomment written by hdnet\nelement vertex {}\n{properties}\
         element face {}\nproperty {PLY_FACE}\nend_header\n",
        used.len(),
        faces.len()
    );
    let mut bytes = header.into_bytes();
    for &v in &used {
        let normal = mesh.normals.as_ref().map(|n| unit_or_facing_camera(n[v]));
        bytes.extend(mesh.points[v].into_iter().chain(normal.into_iter().flatten()).flat_map(f32::to_le_bytes));
        bytes.extend_from_slice(&mesh.colors[v]);
    }
    for face in &faces {
        bytes.push(3);
        bytes.extend(face.iter().flat_map(|v| v.to_le_bytes()));
    }
    write_atomic(path, &bytes)
}

/// A unit normal, or the one facing the camera where a normal is zero or not finite.
pub(crate) fn unit_or_facing_camera(n: [f32; 3]) -> [f32; 3] {
    let length = n.iter().map(|c| c * c).sum::<f32>().sqrt();
    if length.is_finite() && length > 1e-6 { n.map(|c| c / length) } else { [0.0, 0.0, -1.0] }
}

/// A triangle mesh with per-vertex colours, and per-vertex normals where they are known.
#[derive(Debug, Clone, PartialEq)]
pub struct ColoredMesh {
    pub points: Vec<[f32; 3]>,
    pub colors: Vec<[u8; 3]>,
    /// Unit normals of the points (camera space, facing the camera), finer than the mesh's
    /// facets: the normal net's, which see folds the depth smooths away. Viewers light by them.
    pub normals: Option<Vec<[f32; 3]>>,
    pub faces: Vec<[u32; 3]>,
}

impl ColoredMesh {
    /// The vertices the faces use, in first-use order, and the faces renumbered over them: a mesh of a
    /// depth map keeps no background pixels.
    pub(crate) fn used_vertices(&self, path: &Path) -> Result<(Vec<usize>, Vec<[u32; 3]>), FileError> {
        let per_point = [Some(self.colors.len()), self.normals.as_ref().map(Vec::len)];
        if per_point.into_iter().flatten().any(|n| n != self.points.len()) {
            return Err(FileError::new(path, "points and their colours or normals differ in number"));
        }
        let vertices = self.points.len();
        let mut remap = vec![u32::MAX; vertices];
        let mut used = Vec::new();
        let mut renumber = |v: u32| -> Result<u32, FileError> {
            let slot = remap
                .get_mut(v as usize)
                .ok_or_else(|| FileError::new(path, format!("face uses vertex {v} of {vertices}")))?;
            if *slot == u32::MAX {
                *slot = used.len() as u32;
                used.push(v as usize);
            }
            Ok(*slot)
        };
        let faces = self
            .faces
            .iter()
            .map(|f| Ok([renumber(f[0])?, renumber(f[1])?, renumber(f[2])?]))
            .collect::<Result<_, _>>()?;
        Ok((used, faces))
    }
}

/// The vertex properties of hdnet's PLYs: position, normal (when the mesh has normals), colour;
/// and the faces' one.
const PLY_POSITION: [&str; 3] = ["float x", "float y", "float z"];
const PLY_NORMAL: [&str; 3] = ["float nx", "float ny", "float nz"];
const PLY_COLOUR: [&str; 3] = ["uchar red", "uchar green", "uchar blue"];
const PLY_FACE: &str = "list uchar uint vertex_indices";

fn ply_vertex_properties(normals: bool) -> Vec<&'static str> {
    let normal: &[&str] = if normals { &PLY_NORMAL } else { &[] };
    [&PLY_POSITION[..], normal, &PLY_COLOUR].concat()
}

/// Reads a mesh from a PLY in [`write_ply`]'s layout or a GLB in [`crate::glb::write_glb`]'s,
/// told apart by their first bytes, not their names.
pub fn read_mesh(path: impl AsRef<Path>) -> Result<ColoredMesh, FileError> {
    let path = path.as_ref();
    let mut start = [0; 4];
    let mut file = std::fs::File::open(path).map_err(|e| FileError::new(path, e))?;
    let start = file.read_exact(&mut start).map(|()| start).unwrap_or_default();
    match &start {
        b"glTF" => crate::glb::read_glb(path).map(|glb| glb.mesh),
        b"ply\n" => read_ply(path),
        _ => Err(FileError::new(path, "neither a PLY nor a GLB mesh (no ply or glTF header)".to_string())),
    }
}

/// Reads a mesh written by [`write_ply`] (binary little-endian: float x, y, z, maybe float nx,
/// ny, nz, then uchar r, g, b; triangles as a uchar-counted uint list).
pub fn read_ply(path: impl AsRef<Path>) -> Result<ColoredMesh, FileError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| FileError::new(path, e))?;
    let bad = |what: &str| FileError::new(path, what.to_string());
    const END: &[u8] = b"end_header\n";
    let end = bytes.windows(END.len()).position(|w| w == END).ok_or_else(|| bad("not a PLY file (no end_header)"))?;
    let header = std::str::from_utf8(&bytes[..end]).map_err(|_| bad("PLY header is not text"))?;
    let properties: Vec<&str> = header.lines().filter_map(|l| l.strip_prefix("property ")).collect();
    let layout = |normals: bool| [ply_vertex_properties(normals), vec![PLY_FACE]].concat();
    let with_normals = properties == layout(true);
    if !header.starts_with("ply\nformat binary_little_endian 1.0") || !(with_normals || properties == layout(false)) {
        return Err(bad("not a PLY in hdnet's layout (binary little-endian xyz [+ normals] + rgb, triangle faces)"));
    }
    let count = |element: &str| -> Result<usize, FileError> {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("element {element} ")))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| bad(&format!("no element {element} count")))
    };
    let (vertices, faces) = (count("vertex")?, count("face")?);
    let stride = if with_normals { 27 } else { 15 };
    let body = &bytes[end + END.len()..];
    let expected = vertices.checked_mul(stride).zip(faces.checked_mul(13)).and_then(|(v, f)| v.checked_add(f));
    if expected != Some(body.len()) {
        return Err(bad(&format!(
            "{} bytes after the header, not {vertices} vertices of {stride} bytes and {faces} triangles of 13",
            body.len()
        )));
    }
    let f32_at = |o: usize| f32::from_le_bytes(body[o..o + 4].try_into().expect("4 bytes"));
    let points = (0..vertices).map(|v| [0, 1, 2].map(|k| f32_at(v * stride + 4 * k))).collect();
    let normals =
        with_normals.then(|| (0..vertices).map(|v| [0, 1, 2].map(|k| f32_at(v * stride + 12 + 4 * k))).collect());
    let colors = (0..vertices).map(|v| [0, 1, 2].map(|k| body[v * stride + stride - 3 + k])).collect();
    let faces = (0..faces)
        .map(|f| {
            let o = vertices * stride + f * 13;
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
    Ok(ColoredMesh { points, colors, normals, faces })
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
        write_ply(
            &path,
            &ColoredMesh { points: points.clone(), colors: colors.clone(), normals: None, faces: vec![[0, 2, 1]] },
        )
        .unwrap();
        // The unused vertex is dropped; the others are numbered in order of first use.
        let mesh = read_ply(&path).unwrap();
        let order = [0, 2, 1];
        assert_eq!(
            mesh,
            ColoredMesh {
                points: order.map(|i| points[i]).to_vec(),
                colors: order.map(|i| colors[i]).to_vec(),
                normals: None,
                faces: vec![[0, 1, 2]]
            }
        );
        // With normals: written as unit vectors (a zero one facing the camera), read back.
        let normals = vec![[0.0, 0.0, -2.0], [0.0, 0.0, 0.0], [0.6, 0.8, 0.0]];
        let with_normals = ColoredMesh { normals: Some(normals), ..mesh.clone() };
        write_ply(&path, &with_normals).unwrap();
        assert_eq!(read_ply(&path).unwrap().normals, Some(vec![[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.6, 0.8, 0.0]]));
        let short = ColoredMesh { normals: Some(vec![[0.0, 0.0, -1.0]; 2]), ..mesh };
        assert!(write_ply(&path, &short).unwrap_err().to_string().contains("differ in number"));
        write_ply(
            &path,
            &ColoredMesh { points: points.clone(), colors: colors.clone(), normals: None, faces: vec![[0, 2, 1]] },
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let err = read_ply(&path).unwrap_err().to_string();
        assert!(err.contains("m.ply") && err.contains("bytes after the header"), "{err}");
        std::fs::write(&path, b"v 1 2 3").unwrap();
        assert!(read_ply(&path).unwrap_err().to_string().contains("not a PLY"));
        // A forged vertex count whose size overflows is an error, not a panic.
        let forged =
            String::from_utf8_lossy(&bytes).replacen("element vertex 3", &format!("element vertex {}", usize::MAX), 1);
        std::fs::write(&path, forged.as_bytes()).unwrap();
        assert!(read_ply(&path).unwrap_err().to_string().contains("bytes after the header"));
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

    /// A PLY and a GLB of one mesh read alike whatever their names; anything else is named.
    #[test]
    fn read_mesh_tells_plys_and_glbs_by_their_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mesh = ColoredMesh {
            points: vec![[0.0, 0.0, 4.0], [1.0, 0.5, 4.5], [0.0, 1.0, 4.0]],
            colors: vec![[255, 0, 0], [0, 255, 0], [128, 128, 128]],
            normals: None,
            faces: vec![[0, 1, 2]],
        };
        let (ply, glb, other) = (dir.path().join("a.glb"), dir.path().join("b.ply"), dir.path().join("c.ply"));
        write_ply(&ply, &mesh).unwrap();
        crate::glb::write_glb(&glb, &mesh, None).unwrap();
        let (from_ply, from_glb) = (read_mesh(&ply).unwrap(), read_mesh(&glb).unwrap());
        assert_eq!(from_ply.faces, from_glb.faces);
        for (a, b) in from_ply.points.iter().zip(&from_glb.points) {
            assert!(a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-6), "{a:?} {b:?}");
        }
        for bytes in [&b"v 1 2 3"[..], b"gl", b""] {
            std::fs::write(&other, bytes).unwrap();
            let err = read_mesh(&other).unwrap_err().to_string();
            assert!(err.contains("c.ply") && err.contains("neither a PLY nor a GLB"), "{err}");
        }
    }

    #[test]
    fn ply_keeps_only_used_vertices() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.ply");
        let points = [[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [9.0, 9.0, 9.0], [0.0, 1.0, 1.0]];
        let colors = [[255, 0, 0], [0, 255, 0], [1, 2, 3], [0, 0, 255]];
        write_ply(
            &p,
            &ColoredMesh { points: points.to_vec(), colors: colors.to_vec(), normals: None, faces: vec![[0, 1, 3]] },
        )
        .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("element vertex 3\n") && text.contains("element face 1\n"));
        let body = &bytes[text.find("end_header\n").unwrap() + 11..];
        assert_eq!(body.len(), 3 * 15 + 13);
        assert!(
            write_ply(
                &p,
                &ColoredMesh {
                    points: points.to_vec(),
                    colors: colors.to_vec(),
                    normals: None,
                    faces: vec![[0, 1, 7]]
                }
            )
            .is_err()
        );
    }
}
