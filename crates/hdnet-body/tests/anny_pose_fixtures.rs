//! The body model against `fixtures/anny_pose` (three cases computed in float64 by the asset's
//! reference implementation, stored as float32): shape coefficients from the phenotype, rest
//! vertices and bone heads, posed vertices. Tolerance 1e-5 m (the float32 storage of the
//! fixtures is ~1e-7 m); measured errors are printed.

use std::path::PathBuf;

use hdnet_body::{BodyModel, Phenotype};
use hdnet_formats::npy;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn f64s(case: &str, what: &str) -> Vec<f64> {
    let path = root().join(format!("fixtures/anny_pose/{case}_{what}.npy"));
    match npy::read::<f64>(&path) {
        Ok(a) => a.iter().copied().collect(),
        Err(_) => npy::read::<f32>(&path).unwrap().iter().map(|&v| f64::from(v)).collect(),
    }
}

fn phenotype(case: &str) -> Phenotype {
    let text = std::fs::read_to_string(root().join(format!("fixtures/anny_pose/{case}_phenotype.json"))).unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let g = |k: &str| j[k].as_f64().unwrap();
    Phenotype {
        gender: g("gender"),
        age: g("age"),
        muscle: g("muscle"),
        weight: g("weight"),
        height: g("height"),
        proportions: g("proportions"),
        cupsize: g("cupsize"),
        firmness: g("firmness"),
        race: [g("african"), g("asian"), g("caucasian")],
    }
}

fn max_err(a: &[[f64; 3]], b: &[f64]) -> f64 {
    assert_eq!(a.len() * 3, b.len());
    a.iter().flatten().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn shapes_and_poses_match_the_reference() {
    let model = BodyModel::load(&root().join("assets/anny/anny_body.safetensors")).unwrap();
    for case in ["case0_rest_default", "case1_woman_random_pose", "case2_man_random_pose"] {
        let coeffs = f64s(case, "shape_coeffs");
        let ours = model.shape_coefficients(&phenotype(case));
        let coeff_err = ours.iter().zip(&coeffs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let rest = model.shape(&coeffs);
        let rest_err = max_err(&rest.vertices, &f64s(case, "rest_vertices"));
        let head_err = max_err(&rest.bone_heads, &f64s(case, "bone_heads"));
        let rot: Vec<[f64; 3]> = f64s(case, "pose_rotvecs").chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let t = f64s(case, "root_translation");
        let posed = model.pose(&rest, &rot, [t[0], t[1], t[2]]);
        let posed_err = max_err(&posed, &f64s(case, "posed_vertices"));
        println!("{case}: coefficients {coeff_err:.2e}, rest {rest_err:.2e} m, bone heads {head_err:.2e} m, posed {posed_err:.2e} m");
        assert!(coeff_err < 1e-6 && rest_err < 1e-5 && head_err < 1e-5 && posed_err < 1e-5);
    }
}

#[test]
fn not_the_body_asset_is_an_error() {
    let err = BodyModel::load(&root().join("fixtures/tf_reference/inference/input_png/0043_img.png")).err().unwrap().to_string();
    assert!(err.contains("0043_img.png") && err.contains("not a safetensors file"), "{err}");
}
