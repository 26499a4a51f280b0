//! Meshes from depth maps: the original `depth2mesh` OBJ (byte-compatible) and a coloured PLY.

use std::fmt::Write as _;
use std::path::Path;

use hdnet_geometry::Upright;
use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;
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

/// A photo laid over a mesh: an sRGB image and each vertex's place on it (u right, v down, from
/// 0 to 1 across the image), indexed as the mesh's points.
pub struct Texture<'a> {
    pub image: &'a RgbImage,
    pub uv: Vec<[f32; 2]>,
}

/// JPEG quality of a GLB's texture: a photo's colours, without visible loss, in a fraction of
/// PNG's size.
const TEXTURE_QUALITY: u8 = 90;

/// glTF's buffer view targets, component types and sampler settings.
const ARRAY_BUFFER: u32 = 34962;
const ELEMENT_ARRAY_BUFFER: u32 = 34963;
const FLOAT: u32 = 5126;
const UNSIGNED_SHORT: u32 = 5123;
const UNSIGNED_INT: u32 = 5125;
const LINEAR: u32 = 9729;
const LINEAR_MIPMAP_LINEAR: u32 = 9987;
const CLAMP_TO_EDGE: u32 = 33071;

/// A glTF 2.0 binary (`.glb`) of a coloured mesh in metres, for Blender, three.js and system
/// viewers. Points are camera space (x right, y down, z forward); glTF's y is up and its z faces
/// the viewer, so they are stored as (x, -y, -z) and the person faces whoever opens the file;
/// the node's rotation stands them upright ([`Upright`]: the camera's pitch taken out), so that
/// viewers turning about their y axis and AR scenes placing them on a floor see them standing.
/// The surface's colours are the `texture` (embedded as JPEG), finer than one colour per
/// vertex, or else the vertex colours: sRGB bytes, stored linearised (16-bit) as glTF's vertex
/// colours are linear (never both: glTF multiplies them); with the mesh's normals, viewers light
/// by those rather than by the facets. Triangles show both sides. Only the vertices used by
/// `faces` are written.
pub fn write_glb(path: impl AsRef<Path>, mesh: &ColoredMesh, texture: Option<&Texture>) -> Result<(), FileError> {
    let path = path.as_ref();
    let (used, faces) = mesh.used_vertices(path)?;
    if texture.is_some_and(|t| t.uv.len() != mesh.points.len()) {
        return Err(FileError::new(path, "texture coordinates and points differ in number"));
    }
    if faces.is_empty() {
        // A glTF accessor may not be empty: a scene without a mesh.
        let document = serde_json::json!({ "asset": glb_asset(), "scene": 0, "scenes": [{ "nodes": [] }] });
        return write_atomic(path, &glb_container(document.to_string().into_bytes(), Vec::new()));
    }
    let to_gltf = |q: [f32; 3]| [q[0], -q[1], -q[2]];
    let positions: Vec<[f32; 3]> = used.iter().map(|&v| to_gltf(mesh.points[v])).collect();
    let mut glb = GlbBuffer::default();
    let bound =
        |pick: fn(f32, f32) -> f32| [0, 1, 2].map(|k| positions.iter().map(|p| p[k]).fold(positions[0][k], pick));
    let mut attributes = serde_json::Map::new();
    let position = glb.floats(positions.iter().flatten().copied(), ("VEC3", used.len()));
    glb.accessors[position]["min"] = bound(f32::min).into();
    glb.accessors[position]["max"] = bound(f32::max).into();
    attributes.insert("POSITION".into(), position.into());
    if let Some(normals) = &mesh.normals {
        let unit = used.iter().map(|&v| to_gltf(unit_or_facing_camera(normals[v])));
        attributes.insert("NORMAL".into(), glb.floats(unit.flatten(), ("VEC3", used.len())).into());
    }
    let (material, image) = match texture {
        Some(t) => {
            let (uv, material, image) =
                glb.texture(t, &used).map_err(|e| FileError::new(path, format!("texture: {e}")))?;
            attributes.insert("TEXCOORD_0".into(), uv.into());
            (material, Some(image))
        }
        None => {
            let (colours, material) = glb.vertex_colours(&mesh.colors, &used);
            attributes.insert("COLOR_0".into(), colours.into());
            (material, None)
        }
    };
    let view = glb.view(faces.iter().flatten().flat_map(|i| i.to_le_bytes()).collect(), Some(ELEMENT_ARRAY_BUFFER));
    let indices = glb.accessor(view, UNSIGNED_INT, ("SCALAR", 3 * faces.len()));
    let upright = Upright::of(used.iter().map(|&v| mesh.points[v]));
    write_atomic(path, &glb.finish(Primitive { attributes, indices, material, image }, upright))
}

/// The `asset` of hdnet's glTF documents.
fn glb_asset() -> serde_json::Value {
    serde_json::json!({ "version": "2.0", "generator": "hdnet" })
}

/// A unit normal, or the one facing the camera where a normal is zero or not finite.
fn unit_or_facing_camera(n: [f32; 3]) -> [f32; 3] {
    let length = n.iter().map(|c| c * c).sum::<f32>().sqrt();
    if length.is_finite() && length > 1e-6 { n.map(|c| c / length) } else { [0.0, 0.0, -1.0] }
}

/// A GLB's triangles: their attributes' accessors, their indices' accessor, their material,
/// and the buffer view of the image its texture reads, if it has one.
struct Primitive {
    attributes: serde_json::Map<String, serde_json::Value>,
    indices: usize,
    material: serde_json::Value,
    image: Option<usize>,
}

/// A GLB's binary chunk as it is filled, with its buffer views and accessors.
#[derive(Default)]
struct GlbBuffer {
    bin: Vec<u8>,
    views: Vec<serde_json::Value>,
    accessors: Vec<serde_json::Value>,
}

impl GlbBuffer {
    /// Appends `bytes` as a buffer view (at a multiple of four, as accessors need); its index.
    fn view(&mut self, bytes: Vec<u8>, target: Option<u32>) -> usize {
        self.bin.resize(self.bin.len().next_multiple_of(4), 0);
        let mut view = serde_json::json!({ "buffer": 0, "byteOffset": self.bin.len(), "byteLength": bytes.len() });
        if let Some(target) = target {
            view["target"] = target.into();
        }
        self.bin.extend(bytes);
        self.views.push(view);
        self.views.len() - 1
    }

    /// An accessor of `count` elements of `kind` (VEC3, SCALAR, ...) over buffer view `view`; its index.
    fn accessor(&mut self, view: usize, component: u32, (kind, count): (&str, usize)) -> usize {
        let accessor =
            serde_json::json!({ "bufferView": view, "componentType": component, "count": count, "type": kind });
        self.accessors.push(accessor);
        self.accessors.len() - 1
    }

    /// Float vertex data as a view and its accessor; the accessor's index.
    fn floats(&mut self, values: impl Iterator<Item = f32>, shape: (&str, usize)) -> usize {
        let view = self.view(values.flat_map(f32::to_le_bytes).collect(), Some(ARRAY_BUFFER));
        self.accessor(view, FLOAT, shape)
    }

    /// The texture's coordinates at the `used` vertices (their accessor), the material that
    /// reads the texture, and the buffer view of its image (a JPEG).
    fn texture(&mut self, t: &Texture, used: &[usize]) -> image::ImageResult<(usize, serde_json::Value, usize)> {
        let uv = self.floats(used.iter().flat_map(|&v| t.uv[v]), ("VEC2", used.len()));
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, TEXTURE_QUALITY).encode_image(t.image)?;
        let image = self.view(jpeg, None);
        let material =
            serde_json::json!({ "baseColorTexture": { "index": 0 }, "metallicFactor": 0.0, "roughnessFactor": 1.0 });
        Ok((uv, material, image))
    }

    /// The `used` vertices' colours, linear 16-bit (their accessor), and the material that
    /// reads them.
    fn vertex_colours(&mut self, colors: &[[u8; 3]], used: &[usize]) -> (usize, serde_json::Value) {
        let linear = used.iter().flat_map(|&v| colors[v].map(srgb_to_linear_u16).into_iter().chain([u16::MAX]));
        let view = self.view(linear.flat_map(u16::to_le_bytes).collect(), Some(ARRAY_BUFFER));
        let accessor = self.accessor(view, UNSIGNED_SHORT, ("VEC4", used.len()));
        self.accessors[accessor]["normalized"] = true.into();
        let material = serde_json::json!({ "baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": 1.0 });
        (accessor, material)
    }

    /// The GLB's bytes: its document (one node turned by `upright` holding one triangle mesh)
    /// and this binary chunk.
    fn finish(self, primitive: Primitive, upright: Upright) -> Vec<u8> {
        use serde_json::json;
        let Primitive { attributes, indices, material, image } = primitive;
        // In glTF's axes (y and z flipped) the camera-space rotation about x by the pitch is one
        // by minus the pitch: the quaternion (x, y, z, w) of half that angle.
        let (s, c) = (-upright.pitch / 2.0).sin_cos();
        let mut document = json!({
            "asset": glb_asset(),
            "scene": 0,
            "scenes": [{ "nodes": [0] }],
            "nodes": [{ "mesh": 0, "name": "person", "rotation": [s, 0.0, 0.0, c] }],
            "meshes": [{ "primitives": [{ "attributes": attributes, "indices": indices, "material": 0 }] }],
            "materials": [{ "pbrMetallicRoughness": material, "doubleSided": true }],
            "buffers": [{ "byteLength": self.bin.len() }],
            "bufferViews": self.views,
            "accessors": self.accessors,
        });
        if let Some(view) = image {
            // Linear filtering, mipmapped when far (the image's sides are powers of two),
            // clamped at the image's edges.
            document["images"] = json!([{ "bufferView": view, "mimeType": "image/jpeg" }]);
            document["samplers"] = json!([{
                "magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR, "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE
            }]);
            document["textures"] = json!([{ "sampler": 0, "source": 0 }]);
        }
        glb_container(document.to_string().into_bytes(), self.bin)
    }
}

/// The GLB container: a 12-byte header, the JSON chunk padded with spaces and the binary chunk
/// padded with zeros to four bytes.
fn glb_container(mut json: Vec<u8>, mut bin: Vec<u8>) -> Vec<u8> {
    json.resize(json.len().next_multiple_of(4), b' ');
    bin.resize(bin.len().next_multiple_of(4), 0);
    let chunks: Vec<_> =
        [(json, 0x4E4F_534Au32), (bin, 0x004E_4942)].into_iter().filter(|(c, _)| !c.is_empty()).collect();
    let total = 12 + chunks.iter().map(|(c, _)| 8 + c.len()).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    for word in [0x4654_6C67u32, 2, total as u32] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (chunk, kind) in chunks {
        out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&chunk);
    }
    out
}

/// An sRGB byte as a linear 16-bit value (the sRGB transfer function).
fn srgb_to_linear_u16(c: u8) -> u16 {
    let s = f32::from(c) / 255.0;
    let linear = if s <= 0.04045 { s / 12.92 } else { ((s + 0.055) / 1.055).powf(2.4) };
    (linear * 65535.0).round() as u16
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
    fn used_vertices(&self, path: &Path) -> Result<(Vec<usize>, Vec<[u32; 3]>), FileError> {
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

    /// The glTF document of a GLB file's bytes and where its binary chunk's header starts.
    fn glb_document(bytes: &[u8]) -> (serde_json::Value, usize) {
        let json_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        (serde_json::from_slice(&bytes[20..20 + json_len]).unwrap(), 20 + json_len)
    }

    #[test]
    fn glb_stands_a_person_seen_from_above_upright() {
        // A plank 1.8 m tall at 3 m, its top tipped 30 degrees towards the camera.
        let (s, c) = 30f32.to_radians().sin_cos();
        let points: Vec<[f32; 3]> =
            [[-0.2, -0.9], [0.2, -0.9], [0.2, 0.9], [-0.2, 0.9]].map(|[x, h]| [x, c * h, 3.0 + s * h]).to_vec();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.glb");
        write_glb(
            &path,
            &ColoredMesh { points, colors: vec![[9, 9, 9]; 4], normals: None, faces: vec![[0, 1, 2], [0, 2, 3]] },
            None,
        )
        .unwrap();
        let q: Vec<f64> = glb_document(&std::fs::read(&path).unwrap()).0["nodes"][0]["rotation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!((q[1], q[2]), (0.0, 0.0));
        // The plank's upward direction as stored, (0, cos 30, sin 30) in glTF's axes (its top
        // nearer), turned by the node's rotation about x, is glTF's up.
        let angle = 2.0 * q[0].atan2(q[3]);
        let (sa, ca) = angle.sin_cos();
        let (y, z) = (f64::from(c), f64::from(s));
        let up = [ca * y - sa * z, sa * y + ca * z];
        assert!((up[0] - 1.0).abs() < 1e-6 && up[1].abs() < 1e-6, "{up:?}");
    }

    /// The container's lengths, chunk types and the document's counts and bounds, read back by
    /// hand; the Khronos validator checks the rest (tests/cli.rs).
    #[test]
    fn glb_holds_the_used_vertices_flipped_to_gltf_axes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.glb");
        let points = [[0.0, 0.0, 4.0], [1.0, 0.5, 4.5], [9.0, 9.0, 9.0], [0.0, 1.0, 4.0]];
        let colors = [[255, 0, 0], [0, 255, 0], [1, 2, 3], [128, 128, 128]];
        write_glb(
            &path,
            &ColoredMesh { points: points.to_vec(), colors: colors.to_vec(), normals: None, faces: vec![[0, 1, 3]] },
            None,
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert_eq!((&bytes[..4], word(4), word(8)), (&b"glTF"[..], 2, bytes.len()));
        assert_eq!(&bytes[16..20], b"JSON");
        let (doc, bin_at) = glb_document(&bytes);
        assert_eq!((word(bin_at), &bytes[bin_at + 4..bin_at + 8]), (3 * 12 + 3 * 8 + 3 * 4, &b"BIN\0"[..]));
        assert_eq!(doc["accessors"][0]["count"], 3);
        assert_eq!(doc["accessors"][0]["min"], serde_json::json!([0.0, -1.0, -4.5]));
        assert_eq!(doc["accessors"][0]["max"], serde_json::json!([1.0, 0.0, -4.0]));
        assert_eq!(doc["accessors"][2]["count"], 3);
        // The second vertex: (1, -0.5, -4.5), pure green linearised.
        let float = |at: usize| f32::from_le_bytes(bytes[bin_at + 8 + at..bin_at + 12 + at].try_into().unwrap());
        assert_eq!([float(12), float(16), float(20)], [1.0, -0.5, -4.5]);
        // sRGB 128 is linear 0.2158605 (the standard's value).
        assert_eq!((srgb_to_linear_u16(255), srgb_to_linear_u16(0)), (65535, 0));
        assert!((f32::from(srgb_to_linear_u16(128)) - 0.215_860_5 * 65535.0).abs() < 1.0);
        write_glb(
            &path,
            &ColoredMesh { points: points.to_vec(), colors: colors.to_vec(), normals: None, faces: vec![] },
            None,
        )
        .unwrap();
        let empty = std::fs::read(&path).unwrap();
        assert_eq!(u32::from_le_bytes(empty[8..12].try_into().unwrap()) as usize, empty.len());
    }

    /// A textured GLB with normals: texture coordinates instead of vertex colours and the normals
    /// in glTF's axes, those of the used vertices, and the image embedded as a JPEG that decodes
    /// to it.
    #[test]
    fn glb_lays_a_texture_and_normals_over_the_used_vertices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.glb");
        let points = vec![[0.0, 0.0, 4.0], [9.0, 9.0, 9.0], [1.0, 0.5, 4.5], [0.0, 1.0, 4.0]];
        // Not unit, unit, zero (no direction: facing the camera), unit.
        let normals = vec![[0.0, 0.0, -2.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.6, 0.8, 0.0]];
        let mesh = ColoredMesh { points, colors: vec![[0, 0, 0]; 4], normals: Some(normals), faces: vec![[0, 2, 3]] };
        // Left half red, right half blue.
        let image =
            RgbImage::from_fn(64, 32, |x, _| if x < 32 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
        let uv = vec![[0.25, 0.5], [0.0, 0.0], [0.75, 0.25], [0.1, 0.9]];
        write_glb(&path, &mesh, Some(&Texture { image: &image, uv: uv.clone() })).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (doc, bin_at) = glb_document(&bytes);
        let attributes = &doc["meshes"][0]["primitives"][0]["attributes"];
        assert!(attributes.get("COLOR_0").is_none());
        assert_eq!(doc["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]["index"], 0);
        assert_eq!(doc["images"][0]["mimeType"], "image/jpeg");
        let view = |k: &serde_json::Value| {
            let v = &doc["bufferViews"][k.as_u64().unwrap() as usize];
            let at = bin_at + 8 + v["byteOffset"].as_u64().unwrap() as usize;
            assert_eq!(at % 4, 0);
            &bytes[at..at + v["byteLength"].as_u64().unwrap() as usize]
        };
        let floats = |attribute: &str| -> Vec<f32> {
            let accessor = &doc["accessors"][attributes[attribute].as_u64().unwrap() as usize];
            view(&accessor["bufferView"]).chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
        };
        assert_eq!(floats("TEXCOORD_0"), [uv[0], uv[2], uv[3]].concat());
        assert_eq!(floats("NORMAL"), [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.6, -0.8, 0.0]].concat());
        let image_view = &doc["images"][0]["bufferView"];
        assert!(doc["bufferViews"][image_view.as_u64().unwrap() as usize].get("target").is_none());
        let decoded = image::load_from_memory(view(image_view)).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (64, 32));
        for (x, want) in [(8, [255, 0, 0]), (56, [0, 0, 255])] {
            let got = decoded.get_pixel(x, 16).0;
            assert!((0..3).all(|k| got[k].abs_diff(want[k]) < 8), "{got:?} at x {x}");
        }
        let short = Texture { image: &image, uv: vec![[0.0, 0.0]; 3] };
        assert!(write_glb(&path, &mesh, Some(&short)).unwrap_err().to_string().contains("differ in number"));
    }
}
