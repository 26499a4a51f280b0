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
        println!(
            "{case}: coefficients {coeff_err:.2e}, rest {rest_err:.2e} m, bone heads {head_err:.2e} m, posed {posed_err:.2e} m"
        );
        assert!(coeff_err < 1e-6 && rest_err < 1e-5 && head_err < 1e-5 && posed_err < 1e-5);
    }
}

#[test]
fn not_the_body_asset_is_an_error() {
    let err = BodyModel::load(&root().join("fixtures/tf_reference/inference/input_png/0043_img.png"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("0043_img.png") && err.contains("not a safetensors file"), "{err}");
}

#[test]
fn world_axis_rotations_move_limbs_as_named() {
    let model = BodyModel::load(&root().join("assets/anny/anny_body.safetensors")).unwrap();
    let rest = model.shape(&model.shape_coefficients(&Phenotype::default()));
    let b = |name: &str| model.bone(name).unwrap();
    let joints = |bone: &str, w: [f64; 3]| {
        let mut world = vec![[0.0; 3]; model.num_bones()];
        world[b(bone)] = w;
        model.joints(&rest, &model.rotvecs_from_world(&world), [0.0; 3])
    };
    let at_rest = joints("root", [0.0; 3]);
    assert_eq!(model.joints(&rest, &vec![[0.0; 3]; model.num_bones()], [0.0; 3]), at_rest);
    // Hip flexion (a negative pitch about X) brings the knee forward (-Y) by most of the thigh.
    let knee = b("lowerleg01.L");
    let flexed = joints("upperleg01.L", [-std::f64::consts::FRAC_PI_2, 0.0, 0.0]);
    let thigh = (0..3).map(|k| (at_rest[knee][k] - at_rest[b("upperleg01.L")][k]).powi(2)).sum::<f64>().sqrt();
    assert!(at_rest[knee][1] - flexed[knee][1] > 0.8 * thigh, "knee y {} -> {}", at_rest[knee][1], flexed[knee][1]);
    // Raising the left arm sideways (a negative roll about Y) lifts the left wrist.
    let wrist = b("wrist.L");
    let raised = joints("upperarm01.L", [0.0, -1.0, 0.0]);
    assert!(raised[wrist][2] - at_rest[wrist][2] > 0.3, "wrist z {} -> {}", at_rest[wrist][2], raised[wrist][2]);
    // Rotations compose down the chain: bending the elbow after raising the arm moves the hand.
    assert!(at_rest[wrist][0] > 0.0 && at_rest[b("wrist.R")][0] < 0.0, "left is +X");
}
