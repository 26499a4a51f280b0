//! glTF 2.0 binary meshes (`.glb`): written for Blender, three.js, system and AR viewers, and read
//! back (`hdnet render`, tests).

use std::borrow::Cow;
use std::path::Path;

use hdnet_geometry::Upright;
use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

use crate::mesh::{ColoredMesh, unit_or_facing_camera};
use crate::{FileError, write_atomic};

/// A photo laid over a mesh: an sRGB image and each vertex's place on it (u right, v down, from
/// 0 to 1 across the image), indexed as the mesh's points.
pub struct Texture<'a> {
    pub image: Cow<'a, RgbImage>,
    pub uv: Vec<[f32; 2]>,
}

/// JPEG quality of a GLB's texture: a photo's colours, without visible loss, in a fraction of
/// PNG's size.
const TEXTURE_QUALITY: u8 = 90;

/// glTF's buffer view targets, component types, sampler settings and triangles' mode.
const ARRAY_BUFFER: u32 = 34962;
const ELEMENT_ARRAY_BUFFER: u32 = 34963;
const FLOAT: u32 = 5126;
const UNSIGNED_BYTE: u32 = 5121;
const UNSIGNED_SHORT: u32 = 5123;
const UNSIGNED_INT: u32 = 5125;
const LINEAR: u32 = 9729;
const LINEAR_MIPMAP_LINEAR: u32 = 9987;
const CLAMP_TO_EDGE: u32 = 33071;
const TRIANGLES: u64 = 4;

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
        JpegEncoder::new_with_quality(&mut jpeg, TEXTURE_QUALITY).encode_image(&*t.image)?;
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

/// A GLB read back by [`read_glb`]: its mesh, and its texture where it has one.
pub struct GlbMesh {
    pub mesh: ColoredMesh,
    pub texture: Option<Texture<'static>>,
}

/// Reads a GLB of one triangle mesh as [`write_glb`] writes it: float positions, maybe float
/// normals, vertex colours (16- or 8-bit normalised, or float; linear) or texture coordinates
/// with an embedded image (JPEG or PNG), indices of 8, 16 or 32 bits or none. Points and normals
/// come back in camera space (glTF's y and z flipped back), as written before the node's
/// rotation; the colours as sRGB bytes: the vertex colours', or the texture's pixel under each
/// vertex.
pub fn read_glb(path: impl AsRef<Path>) -> Result<GlbMesh, FileError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| FileError::new(path, e))?;
    GlbFile::parse(&bytes).and_then(|glb| glb.mesh()).map_err(|e| FileError::new(path, e))
}

/// glTF's element types: the number of components of each.
const ELEMENT_WIDTHS: [(&str, usize); 4] = [("SCALAR", 1), ("VEC2", 2), ("VEC3", 3), ("VEC4", 4)];

/// A GLB's document and binary chunk.
struct GlbFile<'a> {
    document: serde_json::Value,
    bin: &'a [u8],
}

impl<'a> GlbFile<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let word =
            |at: usize| bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
        if bytes.get(..4) != Some(b"glTF") {
            return Err("not a GLB file (no glTF header)".into());
        }
        if word(4) != Some(2) {
            return Err("not a glTF 2.0 binary (its header's version is not 2)".into());
        }
        if word(8) != Some(bytes.len()) {
            let said = word(8).map_or_else(|| "nothing".into(), |n| format!("{n} bytes"));
            return Err(format!("cut short or padded: {} bytes, its header says {said}", bytes.len()));
        }
        let json_len = word(12).filter(|_| bytes.get(16..20) == Some(b"JSON")).ok_or("no JSON chunk")?;
        let json = bytes.get(20..).and_then(|b| b.get(..json_len)).ok_or("the JSON chunk runs past the file's end")?;
        let document = serde_json::from_slice(json).map_err(|e| format!("the JSON chunk: {e}"))?;
        let bin_at = 20 + json_len;
        let bin = if bin_at == bytes.len() {
            &[][..]
        } else {
            let len = word(bin_at).filter(|_| bytes.get(bin_at + 4..bin_at + 8) == Some(b"BIN\0"));
            let len = len.ok_or("the chunk after the JSON is not a binary chunk")?;
            bytes.get(bin_at + 8..).and_then(|b| b.get(..len)).ok_or("the binary chunk runs past the file's end")?
        };
        Ok(Self { document, bin })
    }

    /// The bytes of the buffer view that `index` names.
    fn view(&self, index: &serde_json::Value) -> Result<&'a [u8], String> {
        let view = index.as_u64().and_then(|k| self.document["bufferViews"].get(k as usize));
        let view = view.ok_or_else(|| format!("no buffer view {index}"))?;
        if view["buffer"].as_u64() != Some(0) || view.get("byteStride").is_some() {
            return Err("a buffer view outside the binary chunk or interleaved (not read)".into());
        }
        let offset = view.get("byteOffset").map_or(Some(0), serde_json::Value::as_u64);
        let range = offset.zip(view["byteLength"].as_u64());
        range
            .and_then(|(offset, length)| {
                self.bin.get(usize::try_from(offset).ok()?..)?.get(..usize::try_from(length).ok()?)
            })
            .ok_or_else(|| format!("buffer view {index} runs past the binary chunk"))
    }

    /// The values of accessor `index` (of `kind`, one of glTF's element types), as groups of
    /// `N`: floats as they are, integers normalised to 0..1 where the accessor says so.
    fn elements<const N: usize>(&self, index: &serde_json::Value, kind: &str) -> Result<Vec<[f64; N]>, String> {
        let accessor = index.as_u64().and_then(|k| self.document["accessors"].get(k as usize));
        let accessor = accessor.ok_or_else(|| format!("no accessor {index}"))?;
        let width = ELEMENT_WIDTHS.iter().find(|(name, _)| accessor["type"] == *name).map(|&(_, w)| w);
        if accessor["type"] != kind || width != Some(N) {
            return Err(format!("accessor {index} is {}, not {kind}", accessor["type"]));
        }
        let component = accessor["componentType"].as_u64().map(|c| c as u32);
        let size = match component {
            Some(UNSIGNED_BYTE) => 1,
            Some(UNSIGNED_SHORT) => 2,
            Some(UNSIGNED_INT | FLOAT) => 4,
            _ => return Err(format!("accessor {index} has component type {}", accessor["componentType"])),
        };
        let count =
            accessor["count"].as_u64().and_then(|c| usize::try_from(c).ok()).ok_or("an accessor without a count")?;
        let offset = accessor.get("byteOffset").map_or(Some(0), serde_json::Value::as_u64).ok_or("a bad byteOffset")?;
        let bytes = self.view(&accessor["bufferView"])?;
        let bytes = count
            .checked_mul(N * size)
            .and_then(|length| bytes.get(usize::try_from(offset).ok()?..)?.get(..length))
            .ok_or_else(|| format!("accessor {index} runs past its buffer view"))?;
        let scale = match (component, accessor["normalized"].as_bool() == Some(true)) {
            (Some(UNSIGNED_BYTE), true) => 1.0 / 255.0,
            (Some(UNSIGNED_SHORT), true) => 1.0 / 65535.0,
            _ => 1.0,
        };
        let value = |b: &[u8]| match component {
            Some(UNSIGNED_BYTE) => f64::from(b[0]),
            Some(UNSIGNED_SHORT) => f64::from(u16::from_le_bytes([b[0], b[1]])),
            Some(UNSIGNED_INT) => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        };
        Ok(bytes.chunks_exact(N * size).map(|e| std::array::from_fn(|k| value(&e[k * size..]) * scale)).collect())
    }

    fn mesh(&self) -> Result<GlbMesh, String> {
        let meshes = self.document.get("meshes").map_or(Some(&[][..]), |m| m.as_array().map(Vec::as_slice));
        let primitives = match meshes.ok_or("`meshes` is not a list")? {
            [] => {
                let empty = ColoredMesh { points: vec![], colors: vec![], normals: None, faces: vec![] };
                return Ok(GlbMesh { mesh: empty, texture: None });
            }
            [mesh] => mesh["primitives"].as_array().map(Vec::as_slice),
            _ => None,
        };
        let [primitive] = primitives.ok_or("not one mesh of one primitive")? else {
            return Err("not one mesh of one primitive".into());
        };
        if primitive.get("mode").is_some_and(|m| m != TRIANGLES) {
            return Err(format!("primitives of mode {} (not triangles)", primitive["mode"]));
        }
        let attributes = &primitive["attributes"];
        let attribute = |name: &str, kind: &str| attributes.get(name).map(|a| self.elements::<3>(a, kind)).transpose();
        let to_camera = |q: [f64; 3]| [q[0] as f32, -q[1] as f32, -q[2] as f32];
        let points: Vec<[f32; 3]> =
            attribute("POSITION", "VEC3")?.ok_or("no POSITION")?.into_iter().map(to_camera).collect();
        let normals = attribute("NORMAL", "VEC3")?.map(|n| n.into_iter().map(to_camera).collect::<Vec<_>>());
        let texture = attributes.get("TEXCOORD_0").map(|uv| self.texture(uv)).transpose()?;
        let colors = match (attributes.get("COLOR_0"), &texture) {
            (Some(colours), _) => self.colours(colours)?,
            (None, Some(t)) => t.uv.iter().map(|&uv| texel(&t.image, uv)).collect(),
            (None, None) => vec![[255; 3]; points.len()],
        };
        let uv_count = texture.as_ref().map(|t| t.uv.len());
        let per_point = [Some(colors.len()), normals.as_ref().map(Vec::len), uv_count];
        if per_point.into_iter().flatten().any(|n| n != points.len()) {
            return Err("its attributes differ in number".into());
        }
        let indices: Vec<usize> = match primitive.get("indices") {
            Some(a) => self.elements::<1>(a, "SCALAR")?.into_iter().map(|[i]| i as usize).collect(),
            None => (0..points.len()).collect(),
        };
        if !indices.len().is_multiple_of(3) || indices.iter().any(|&i| i >= points.len()) {
            return Err(format!("its {} indices are not triangles of its {} vertices", indices.len(), points.len()));
        }
        let faces = indices.chunks_exact(3).map(|f| [f[0] as u32, f[1] as u32, f[2] as u32]).collect();
        Ok(GlbMesh { mesh: ColoredMesh { points, colors, normals, faces }, texture })
    }

    /// Vertex colours (linear, RGB or RGBA) as sRGB bytes.
    fn colours(&self, accessor: &serde_json::Value) -> Result<Vec<[u8; 3]>, String> {
        let kind = accessor.as_u64().map(|k| &self.document["accessors"][k as usize]["type"]);
        let rgb = if kind.is_some_and(|t| t == "VEC4") {
            self.elements::<4>(accessor, "VEC4")?.into_iter().map(|c| [c[0], c[1], c[2]]).collect()
        } else {
            self.elements::<3>(accessor, "VEC3")?
        };
        Ok(rgb.into_iter().map(|c| c.map(linear_to_srgb)).collect())
    }

    /// The texture coordinates at `uv` (an accessor) and the image the first texture shows.
    fn texture(&self, uv: &serde_json::Value) -> Result<Texture<'static>, String> {
        let uv = self.elements::<2>(uv, "VEC2")?.into_iter().map(|q| q.map(|v| v as f32)).collect();
        let source = &self.document["textures"][0]["source"];
        let image = source.as_u64().and_then(|k| self.document["images"].get(k as usize));
        let bytes = self.view(&image.ok_or("texture coordinates without an embedded image")?["bufferView"])?;
        let image = image::load_from_memory(bytes).map_err(|e| format!("its texture: {e}"))?.to_rgb8();
        Ok(Texture { image: Cow::Owned(image), uv })
    }
}

/// The image's pixel under texture coordinates `uv` (clamped to the image).
fn texel(image: &RgbImage, [u, v]: [f32; 2]) -> [u8; 3] {
    let at = |t: f32, side: u32| ((t * side as f32 - 0.5).round().max(0.0) as u32).min(side - 1);
    image.get_pixel(at(u, image.width()), at(v, image.height())).0
}

/// A linear value in 0..1 as an sRGB byte (the inverse of [`srgb_to_linear_u16`]'s function).
fn linear_to_srgb(linear: f64) -> u8 {
    let l = linear.clamp(0.0, 1.0);
    let s = if l <= 0.003_130_8 { l * 12.92 } else { 1.055 * l.powf(1.0 / 2.4) - 0.055 };
    (s * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let bytes = std::fs::read(&path).unwrap();
        let q: Vec<f64> = GlbFile::parse(&bytes).unwrap().document["nodes"][0]["rotation"]
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
        let GlbFile { document: doc, bin } = GlbFile::parse(&bytes).unwrap();
        assert_eq!(bin.len(), 3 * 12 + 3 * 8 + 3 * 4);
        assert_eq!(doc["accessors"][0]["count"], 3);
        assert_eq!(doc["accessors"][0]["min"], serde_json::json!([0.0, -1.0, -4.5]));
        assert_eq!(doc["accessors"][0]["max"], serde_json::json!([1.0, 0.0, -4.0]));
        assert_eq!(doc["accessors"][2]["count"], 3);
        // The second vertex: (1, -0.5, -4.5), pure green linearised.
        let float = |at: usize| f32::from_le_bytes(bin[at..at + 4].try_into().unwrap());
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
        write_glb(&path, &mesh, Some(&Texture { image: Cow::Borrowed(&image), uv: uv.clone() })).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let doc = GlbFile::parse(&bytes).unwrap().document;
        let attributes = &doc["meshes"][0]["primitives"][0]["attributes"];
        assert!(attributes.get("COLOR_0").is_none());
        assert_eq!(doc["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]["index"], 0);
        assert_eq!(doc["images"][0]["mimeType"], "image/jpeg");
        assert!(doc["bufferViews"].as_array().unwrap().iter().all(|v| v["byteOffset"].as_u64().unwrap() % 4 == 0));
        let image_view = &doc["images"][0]["bufferView"];
        assert!(doc["bufferViews"][image_view.as_u64().unwrap() as usize].get("target").is_none());
        // Read back: the used vertices' coordinates and normals (unit, camera space), the image
        // decoded, and each vertex coloured by its pixel (red, blue, red).
        let GlbMesh { mesh: back, texture } = read_glb(&path).unwrap();
        let texture = texture.unwrap();
        assert_eq!(texture.uv, [uv[0], uv[2], uv[3]]);
        assert_eq!(back.normals.unwrap(), [[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.6, 0.8, 0.0]]);
        assert_eq!(texture.image.dimensions(), (64, 32));
        for (x, want) in [(8, [255, 0, 0]), (56, [0, 0, 255])] {
            let got = texture.image.get_pixel(x, 16).0;
            assert!((0..3).all(|k| got[k].abs_diff(want[k]) < 8), "{got:?} at x {x}");
        }
        for (got, want) in back.colors.iter().zip([[255, 0, 0], [0, 0, 255], [255, 0, 0]]) {
            assert!((0..3).all(|k| got[k].abs_diff(want[k]) < 8), "{got:?} for {want:?}");
        }
        let short = Texture { image: Cow::Borrowed(&image), uv: vec![[0.0, 0.0]; 3] };
        assert!(write_glb(&path, &mesh, Some(&short)).unwrap_err().to_string().contains("differ in number"));
    }

    /// A vertex-coloured GLB reads back as written: the used vertices in camera space, their
    /// sRGB colours exactly (every byte value through 16-bit linear and back), the faces
    /// renumbered over them.
    #[test]
    fn glb_reads_back_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.glb");
        let points: Vec<[f32; 3]> = (0..258).map(|i| [i as f32 * 0.01, -0.5 + (i % 7) as f32 * 0.1, 3.0]).collect();
        let colors: Vec<[u8; 3]> = (0..258).map(|i| [i as u8, 255 - i as u8, (i / 3) as u8]).collect();
        // Vertex 257 unused; 256 used last.
        let faces: Vec<[u32; 3]> = (0..85).map(|t| [3 * t + 2, 3 * t + 1, 3 * t]).chain([[255, 256, 0]]).collect();
        let mesh = ColoredMesh { points: points.clone(), colors: colors.clone(), normals: None, faces };
        write_glb(&path, &mesh, None).unwrap();
        let GlbMesh { mesh: back, texture } = read_glb(&path).unwrap();
        assert!(texture.is_none() && back.normals.is_none());
        let used: Vec<usize> = (0..85).flat_map(|t| [3 * t + 2, 3 * t + 1, 3 * t]).chain([255, 256]).collect();
        assert_eq!(back.points, used.iter().map(|&v| points[v]).collect::<Vec<_>>());
        assert_eq!(back.colors, used.iter().map(|&v| colors[v]).collect::<Vec<_>>());
        assert_eq!((back.faces[0], back.faces[85]), ([0, 1, 2], [255, 256, 2]));
        assert!((0..=255).all(|c| linear_to_srgb(f64::from(srgb_to_linear_u16(c)) / 65535.0) == c));
        // An empty mesh is a scene without one.
        write_glb(&path, &ColoredMesh { faces: vec![], ..mesh }, None).unwrap();
        assert!(read_glb(&path).unwrap().mesh.points.is_empty());
    }

    /// Damaged GLBs are errors naming the file, never panics: every truncation (with the header's
    /// length made to agree), an index past the vertices, an accessor past its view.
    #[test]
    fn damaged_glbs_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.glb");
        let image = RgbImage::from_pixel(8, 8, image::Rgb([9, 99, 199]));
        let mesh = ColoredMesh {
            points: vec![[0.0, 0.0, 4.0], [1.0, 0.5, 4.5], [0.0, 1.0, 4.0]],
            colors: vec![[0; 3]; 3],
            normals: Some(vec![[0.0, 0.0, -1.0]; 3]),
            faces: vec![[0, 1, 2]],
        };
        let texture = Texture { image: Cow::Borrowed(&image), uv: vec![[0.5, 0.5]; 3] };
        write_glb(&path, &mesh, Some(&texture)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let back = read_glb(&path).unwrap();
        let centre = back.texture.unwrap().image.get_pixel(4, 4).0;
        assert_eq!(back.mesh.colors, vec![centre; 3]);
        assert!((0..3).all(|k| centre[k].abs_diff([9, 99, 199][k]) < 4), "{centre:?}");
        for cut in 0..bytes.len() {
            let mut short = bytes[..cut].to_vec();
            if cut >= 12 {
                short[8..12].copy_from_slice(&(cut as u32).to_le_bytes());
            }
            std::fs::write(&path, &short).unwrap();
            let err = read_glb(&path).err().unwrap_or_else(|| panic!("{cut} bytes read"));
            assert!(err.to_string().contains("m.glb"), "{err}");
        }
        let json_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let edited = |from: &str, to: &str| {
            let text = std::str::from_utf8(&bytes[20..20 + json_len]).unwrap();
            assert!(text.contains(from), "{text}");
            let mut json = text.replacen(from, to, 1).into_bytes();
            json.resize(json_len, b' ');
            std::fs::write(&path, [&bytes[..20], &json, &bytes[20 + json_len..]].concat()).unwrap();
            read_glb(&path).err().map(|e| e.to_string()).unwrap_or_default()
        };
        // The indices are the binary chunk's last 12 bytes: the last one, 2, made 3.
        let mut past = bytes.clone();
        let end = past.len();
        past[end - 4..].copy_from_slice(&3u32.to_le_bytes());
        std::fs::write(&path, &past).unwrap();
        assert!(read_glb(&path).err().unwrap().to_string().contains("not triangles of its 3 vertices"));
        assert!(edited("\"count\":3,\"type\":\"SCALAR\"", "\"count\":6,\"type\":\"SCALAR\"").contains("runs past"));
        assert!(edited("\"count\":3,\"type\":\"VEC3\"", "\"count\":2,\"type\":\"VEC3\"").contains("differ in number"));
        assert!(edited("\"type\":\"VEC2\"", "\"type\":\"VEC4\"").contains("not VEC2"));
    }
}
