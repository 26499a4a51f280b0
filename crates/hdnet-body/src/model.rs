//! The Anny body model: loading, phenotype -> shape coefficients -> rest shape, and posing by
//! forward kinematics and linear blend skinning. Arithmetic in float64.

use std::path::Path;

use hdnet_formats::FileError;
use nalgebra::{Matrix3, Rotation3, Vector3};
use safetensors::{Dtype, SafeTensors};

/// Influences per vertex.
const INFLUENCES: usize = 12;
/// The 26 phenotype numbers: race 3, gender 2, age 5, muscle 3, weight 3, height 2,
/// proportions 2, cupsize 3, firmness 3 (the asset's `phenotype_variations` order).
const GROUP_SIZES: [usize; 9] = [3, 2, 5, 3, 3, 2, 2, 3, 3];
const PHENOTYPE_LEN: usize = 26;
/// Anchors of the age group (newborn, baby, child, young, old).
const AGE_ANCHORS: [f64; 5] = [-1.0 / 3.0, 0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0];

/// A person's phenotype, each value in [0, 1] (0.5 = average); race as three weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phenotype {
    pub gender: f64,
    pub age: f64,
    pub muscle: f64,
    pub weight: f64,
    pub height: f64,
    pub proportions: f64,
    pub cupsize: f64,
    pub firmness: f64,
    /// african, asian, caucasian (normalised to sum 1).
    pub race: [f64; 3],
}

impl Default for Phenotype {
    fn default() -> Self {
        Self {
            gender: 0.5,
            age: 0.5,
            muscle: 0.5,
            weight: 0.5,
            height: 0.5,
            proportions: 0.5,
            cupsize: 0.5,
            firmness: 0.5,
            race: [1.0 / 3.0; 3],
        }
    }
}

/// Piecewise-linear ("hat") weights of `v` over increasing `anchors`.
fn hat_weights(v: f64, anchors: &[f64]) -> Vec<f64> {
    let mut w = vec![0.0; anchors.len()];
    let last = anchors.len() - 1;
    if v <= anchors[0] {
        w[0] = 1.0;
    } else if v >= anchors[last] {
        w[last] = 1.0;
    } else {
        let k = anchors.windows(2).position(|a| v <= a[1]).expect("v inside the anchors");
        let t = (v - anchors[k]) / (anchors[k + 1] - anchors[k]);
        w[k] = 1.0 - t;
        w[k + 1] = t;
    }
    w
}

impl Phenotype {
    /// The 26 numbers p of the asset README's step 1.
    pub fn weights(&self) -> [f64; PHENOTYPE_LEN] {
        let race_sum: f64 = self.race.iter().sum();
        let mut p: Vec<f64> = self.race.iter().map(|r| r / race_sum).collect();
        let values = [
            self.gender,
            self.age,
            self.muscle,
            self.weight,
            self.height,
            self.proportions,
            self.cupsize,
            self.firmness,
        ];
        for (&n, &v) in GROUP_SIZES[1..].iter().zip(&values) {
            let anchors: Vec<f64> =
                if n == 5 { AGE_ANCHORS.to_vec() } else { (0..n).map(|k| k as f64 / (n - 1) as f64).collect() };
            p.extend(hat_weights(v, &anchors));
        }
        p.try_into().expect("26 phenotype numbers")
    }
}

/// The body model's arrays.
pub struct BodyModel {
    pub template_vertices: Vec<[f64; 3]>,
    /// Per shape coefficient, the vertex offsets as the asset stores them: 16-bit integers
    /// times the shape's scale (reading half the bytes of float32 is most of `shape`'s time).
    blendshapes: Vec<(f32, Vec<i16>)>,
    phenotype_mask: Vec<u8>,
    phenotype_projection: Vec<f32>,
    template_bone_heads: Vec<[f64; 3]>,
    bone_heads_blendshapes: Vec<f32>,
    bone_template_orientations: Vec<f32>,
    bone_orientation_blendshapes: Vec<f32>,
    reference_orientations: Vec<Matrix3<f64>>,
    pub bone_parents: Vec<i16>,
    /// Bone names from the header metadata (e.g. `upperarm01.L`).
    pub bone_labels: Vec<String>,
    vertex_bones: Vec<[u8; INFLUENCES]>,
    vertex_weights: Vec<[f64; INFLUENCES]>,
    /// Triangles of the body.
    pub faces: Vec<[u32; 3]>,
    /// Triangles of the helper garments skinned with the body: tights (6-15 mm off the skin),
    /// an ankle-length skirt, hair strips.
    pub tights_faces: Vec<[u32; 3]>,
    pub skirt_faces: Vec<[u32; 3]>,
    pub hair_faces: Vec<[u32; 3]>,
    /// DensePose-style part 1..24 of each vertex.
    pub vertex_part: Vec<u8>,
    /// Per-part (u, v) in [0, 1] of each vertex.
    pub vertex_part_uv: Vec<[f32; 2]>,
}

/// A body shape at rest.
#[derive(Debug, Clone)]
pub struct RestShape {
    pub vertices: Vec<[f64; 3]>,
    pub bone_heads: Vec<[f64; 3]>,
    /// R_b: the rest orientation of each bone (a rotation).
    pub bone_rotations: Vec<Matrix3<f64>>,
}

fn tensor(st: &SafeTensors, path: &Path, name: &str, dtype: Dtype, shape: &[usize]) -> Result<Vec<u8>, FileError> {
    let view = st.tensor(name).map_err(|_| FileError::new(path, format!("tensor '{name}' is missing")))?;
    if view.dtype() != dtype || view.shape() != shape {
        return Err(FileError::new(
            path,
            format!("tensor '{name}' is {:?} {:?}, expected {dtype:?} {shape:?}", view.dtype(), view.shape()),
        ));
    }
    Ok(view.data().to_vec())
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn vec3s(values: &[f32]) -> Vec<[f64; 3]> {
    values.chunks_exact(3).map(|v| [f64::from(v[0]), f64::from(v[1]), f64::from(v[2])]).collect()
}

fn matrices(values: &[f32]) -> Vec<Matrix3<f64>> {
    values.chunks_exact(9).map(|m| Matrix3::from_row_iterator(m.iter().map(|&v| f64::from(v)))).collect()
}

fn i16s(bytes: &[u8]) -> Vec<i16> {
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// One vertex's bone weights (float16) scaled to sum to 1, which their rounding to float16 undoes.
fn normalised_weights(bytes: &[u8]) -> [f64; INFLUENCES] {
    let w: [f64; INFLUENCES] =
        std::array::from_fn(|i| f64::from(half::f16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]).to_f32()));
    let sum: f64 = w.iter().sum();
    w.map(|x| if sum > 0.0 { x / sum } else { x })
}

impl BodyModel {
    /// Loads `anny_body.safetensors`.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        let bytes = std::fs::read(path).map_err(|e| FileError::new(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Reads the asset from memory; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, FileError> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| FileError::new(path, format!("not a safetensors file: {e}")))?;
        let shape_of = |name: &str| st.tensor(name).map(|t| t.shape().to_vec()).unwrap_or_default();
        let [v, b, k] = [shape_of("template_vertices"), shape_of("template_bone_heads"), shape_of("blendshapes_scale")]
            .map(|s| s.first().copied().unwrap_or(0));
        if v == 0 || b == 0 || k == 0 {
            return Err(FileError::new(
                path,
                "not the Anny body asset (template_vertices, template_bone_heads, blendshapes_scale)",
            ));
        }
        let t = |name: &str, dtype, shape: &[usize]| tensor(&st, path, name, dtype, shape);
        let bone_labels = bone_labels(bytes)
            .filter(|l| l.len() == b)
            .ok_or_else(|| FileError::new(path, format!("metadata lacks {b} bone_labels")))?;
        let scale = f32s(&t("blendshapes_scale", Dtype::F32, &[k])?);
        let raw = t("blendshapes_i16", Dtype::I16, &[k, v, 3])?;
        let blendshapes = raw.chunks_exact(v * 3 * 2).zip(&scale).map(|(chunk, &s)| (s, i16s(chunk))).collect();
        let indices = t("vertex_bone_indices", Dtype::U8, &[v, INFLUENCES])?;
        let weights = t("vertex_bone_weights", Dtype::F16, &[v, INFLUENCES])?;
        let vertex_bones = indices.chunks_exact(INFLUENCES).map(|c| c.try_into().expect("12 bytes")).collect();
        let vertex_weights = weights.chunks_exact(INFLUENCES * 2).map(normalised_weights).collect();
        let faces = |name: &str| -> Result<Vec<[u32; 3]>, FileError> {
            let raw = t(name, Dtype::U16, &[shape_of(name).first().copied().unwrap_or(0), 3])?;
            let faces: Vec<[u32; 3]> = raw
                .chunks_exact(6)
                .map(|c| [0, 1, 2].map(|i| u32::from(u16::from_le_bytes([c[2 * i], c[2 * i + 1]]))))
                .collect();
            if faces.iter().flatten().any(|&i| i as usize >= v) {
                return Err(FileError::new(path, format!("'{name}' names a vertex that does not exist")));
            }
            Ok(faces)
        };
        let part_uv = t("vertex_part_uv", Dtype::U16, &[v, 2])?;
        let parents = t("bone_parents", Dtype::I16, &[b])?;
        let model = Self {
            template_vertices: vec3s(&f32s(&t("template_vertices", Dtype::F32, &[v, 3])?)),
            blendshapes,
            phenotype_mask: t(
                "phenotype_mask",
                Dtype::U8,
                &[shape_of("phenotype_mask").first().copied().unwrap_or(0), PHENOTYPE_LEN],
            )?,
            phenotype_projection: f32s(&t(
                "phenotype_projection",
                Dtype::F32,
                &[shape_of("phenotype_projection").first().copied().unwrap_or(0), k],
            )?),
            template_bone_heads: vec3s(&f32s(&t("template_bone_heads", Dtype::F32, &[b, 3])?)),
            bone_heads_blendshapes: f32s(&t("bone_heads_blendshapes", Dtype::F32, &[k, b, 3])?),
            bone_template_orientations: f32s(&t("bone_template_orientation_matrices", Dtype::F32, &[b, 3, 3])?),
            bone_orientation_blendshapes: f32s(&t("bone_orientation_blendshapes", Dtype::F32, &[k, b, 3, 3])?),
            reference_orientations: matrices(&f32s(&t("reference_bone_orientations", Dtype::F32, &[b, 3, 3])?)),
            bone_parents: i16s(&parents),
            vertex_bones,
            vertex_weights,
            faces: faces("faces")?,
            tights_faces: faces("helper_tights_faces")?,
            skirt_faces: faces("helper_skirt_faces")?,
            hair_faces: faces("helper_hair_faces")?,
            bone_labels,
            vertex_part: t("vertex_part", Dtype::U8, &[v])?,
            vertex_part_uv: part_uv
                .chunks_exact(4)
                .map(|c| [0, 1].map(|i| f32::from(u16::from_le_bytes([c[2 * i], c[2 * i + 1]])) / 65535.0))
                .collect(),
        };
        if model.bone_parents.iter().enumerate().any(|(i, &p)| i > 0 && (p < 0 || p as usize >= i)) {
            return Err(FileError::new(path, "bone_parents is not ordered parents-first"));
        }
        if model.vertex_bones.iter().flatten().any(|&i| usize::from(i) >= b) {
            return Err(FileError::new(path, "vertex_bone_indices name a bone that does not exist"));
        }
        Ok(model)
    }

    /// The index of the bone named `label`.
    pub fn bone(&self, label: &str) -> Option<usize> {
        self.bone_labels.iter().position(|l| l == label)
    }

    pub fn num_bones(&self) -> usize {
        self.template_bone_heads.len()
    }

    pub fn num_shape_coefficients(&self) -> usize {
        self.blendshapes.len()
    }

    /// Shape coefficients c = w . projection, w_r = product of the masked phenotype numbers.
    pub fn shape_coefficients(&self, phenotype: &Phenotype) -> Vec<f64> {
        let p = phenotype.weights();
        let k = self.num_shape_coefficients();
        let mut c = vec![0.0; k];
        for (r, mask) in self.phenotype_mask.chunks_exact(PHENOTYPE_LEN).enumerate() {
            let w: f64 = mask.iter().zip(&p).map(|(&m, &pj)| if m != 0 { pj } else { 1.0 }).product();
            if w == 0.0 {
                continue;
            }
            for (ci, &proj) in c.iter_mut().zip(&self.phenotype_projection[r * k..(r + 1) * k]) {
                *ci += w * f64::from(proj);
            }
        }
        c
    }

    /// The rest shape for shape coefficients `c`.
    pub fn shape(&self, c: &[f64]) -> RestShape {
        // One flat pass per blendshape, summed in single precision (8 lanes a vector instruction;
        // the offsets are 16-bit to begin with): a micrometre at most on a body's metres.
        let mut flat: Vec<f32> = self.template_vertices.iter().flatten().map(|&x| x as f32).collect();
        for ((scale, basis), &ck) in self.blendshapes.iter().zip(c) {
            if ck == 0.0 {
                continue;
            }
            let step = (ck * f64::from(*scale)) as f32;
            flat.iter_mut().zip(basis.iter()).for_each(|(v, &d)| *v += step * f32::from(d));
        }
        let vertices: Vec<[f64; 3]> = flat.chunks_exact(3).map(|v| [0, 1, 2].map(|k| f64::from(v[k]))).collect();
        let b = self.num_bones();
        let mut bone_heads = self.template_bone_heads.clone();
        let mut orientations: Vec<f64> = self.bone_template_orientations.iter().map(|&x| f64::from(x)).collect();
        for (k, &ck) in c.iter().enumerate() {
            for (h, d) in
                bone_heads.iter_mut().zip(self.bone_heads_blendshapes[k * b * 3..(k + 1) * b * 3].chunks_exact(3))
            {
                for a in 0..3 {
                    h[a] += ck * f64::from(d[a]);
                }
            }
            for (o, &d) in orientations.iter_mut().zip(&self.bone_orientation_blendshapes[k * b * 9..(k + 1) * b * 9]) {
                *o += ck * f64::from(d);
            }
        }
        let bone_rotations =
            orientations.chunks_exact(9).map(|m| nearest_rotation(&Matrix3::from_row_slice(m))).collect();
        RestShape { vertices, bone_heads, bone_rotations }
    }

    /// Per-bone rotation vectors (in the reference axes `pose` takes) for rotations given in the
    /// body's world axes (X the character's left, Y its back, Z up). A bone's rotation then turns
    /// its subtree about world axes carried along by the bone's posed parent: with every ancestor
    /// at rest, `[a, 0, 0]` pitches the subtree by `a` about the world X axis.
    pub fn rotvecs_from_world(&self, world: &[[f64; 3]]) -> Vec<[f64; 3]> {
        let u0 = &self.reference_orientations[0];
        world.iter().map(|w| (u0 * Vector3::from(*w)).into()).collect()
    }

    /// Forward kinematics: each bone's world rotation and translation (its posed head).
    fn bone_transforms(
        &self,
        rest: &RestShape,
        rotvecs: &[[f64; 3]],
        root_translation: [f64; 3],
    ) -> Vec<(Matrix3<f64>, Vector3<f64>)> {
        let b = self.num_bones();
        let u = &self.reference_orientations;
        let r = &rest.bone_rotations;
        let h = |i: usize| Vector3::from(rest.bone_heads[i]);
        let mut world: Vec<(Matrix3<f64>, Vector3<f64>)> = Vec::with_capacity(b);
        for i in 0..b {
            let d = Rotation3::from_scaled_axis(Vector3::from(rotvecs[i])).into_inner();
            world.push(match self.bone_parents[i] {
                p if p < 0 => (u[i].transpose() * d * u[i], u[i].transpose() * Vector3::from(root_translation)),
                p => {
                    let p = p as usize;
                    let a_parent = if self.bone_parents[p] < 0 { Matrix3::identity() } else { u[p] * r[p].transpose() };
                    let q = a_parent * (h(i) - h(p));
                    let (rot_p, trans_p) = world[p];
                    (rot_p * (u[p].transpose() * d * u[i]), rot_p * (u[p].transpose() * q) + trans_p)
                }
            });
        }
        world
    }

    /// Posed joint positions: the head of every bone.
    pub fn joints(&self, rest: &RestShape, rotvecs: &[[f64; 3]], root_translation: [f64; 3]) -> Vec<[f64; 3]> {
        self.bone_transforms(rest, rotvecs, root_translation).iter().map(|(_, t)| (*t).into()).collect()
    }

    /// Skinned vertices for per-bone rotation vectors (axis * angle, in each bone's reference
    /// axes; zero = rest) and a root translation.
    pub fn pose(&self, rest: &RestShape, rotvecs: &[[f64; 3]], root_translation: [f64; 3]) -> Vec<[f64; 3]> {
        self.pose_with_joints(rest, rotvecs, root_translation).0
    }

    /// [`Self::pose`] and [`Self::joints`] from one forward-kinematics pass.
    pub fn pose_with_joints(
        &self,
        rest: &RestShape,
        rotvecs: &[[f64; 3]],
        root_translation: [f64; 3],
    ) -> (Vec<[f64; 3]>, Vec<[f64; 3]>) {
        let r = &rest.bone_rotations;
        let transforms = self.bone_transforms(rest, rotvecs, root_translation);
        let joints = transforms.iter().map(|(_, t)| (*t).into()).collect();
        let skin: Vec<(Matrix3<f64>, Vector3<f64>)> = transforms
            .iter()
            .enumerate()
            .map(|(i, (rot, trans))| {
                let s = rot * r[i].transpose();
                (s, trans - s * Vector3::from(rest.bone_heads[i]))
            })
            .collect();
        let vertices = rest
            .vertices
            .iter()
            .zip(self.vertex_bones.iter().zip(&self.vertex_weights))
            .map(|(v, (bones, weights))| {
                let v = Vector3::from(*v);
                let mut out = Vector3::zeros();
                for (&bone, &w) in bones.iter().zip(weights) {
                    if w != 0.0 {
                        let (s, t) = &skin[usize::from(bone)];
                        out += w * (s * v + t);
                    }
                }
                [out.x, out.y, out.z]
            })
            .collect();
        (vertices, joints)
    }
}

/// `bone_labels` of the JSON in the header metadata's "meta" entry.
fn bone_labels(bytes: &[u8]) -> Option<Vec<String>> {
    let (_, metadata) = SafeTensors::read_metadata(bytes).ok()?;
    let meta: serde_json::Value = serde_json::from_str(metadata.metadata().as_ref()?.get("meta")?).ok()?;
    meta.get("bone_labels")?.as_array()?.iter().map(|l| l.as_str().map(String::from)).collect()
}

/// The rotation nearest to `m` (SVD; the smallest singular direction flipped if det < 0).
fn nearest_rotation(m: &Matrix3<f64>) -> Matrix3<f64> {
    let svd = m.svd(true, true);
    let (mut u, v_t) = (svd.u.expect("u requested"), svd.v_t.expect("v_t requested"));
    if (u * v_t).determinant() < 0.0 {
        let smallest =
            (0..3).min_by(|&a, &b| svd.singular_values[a].total_cmp(&svd.singular_values[b])).expect("3 values");
        u.column_mut(smallest).neg_mut();
    }
    u * v_t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hat_weights_interpolate_between_anchors() {
        assert_eq!(hat_weights(0.5, &[0.0, 0.5, 1.0]), vec![0.0, 1.0, 0.0]);
        let w = hat_weights(0.7, &AGE_ANCHORS);
        assert!((w[3] - 0.9).abs() < 1e-12 && (w[4] - 0.1).abs() < 1e-12);
        assert_eq!(hat_weights(-1.0, &[0.0, 1.0]), vec![1.0, 0.0]);
        let p = Phenotype::default().weights();
        assert!((p[..3].iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // race 3; age, gender, height, proportions between two anchors (2 each); the 3-anchor groups sit on one.
        assert_eq!(p.iter().filter(|&&x| x != 0.0).count(), 3 + 4 * 2 + 4);
    }

    #[test]
    fn nearest_rotation_is_a_rotation() {
        let m = Matrix3::new(2.0, 0.1, 0.0, 0.0, 1.0, 0.2, 0.1, 0.0, -0.5);
        let r = nearest_rotation(&m);
        assert!((r.determinant() - 1.0).abs() < 1e-12);
        assert!((r * r.transpose() - Matrix3::identity()).norm() < 1e-12);
    }
}
