//! Geometry and losses against `fixtures/tf_reference/geometry` (the ORIGINAL `Geometry_MB.py`,
//! `Loss_functions.py` and `denspose_transform_functions.py` run in TF). Tolerances from the
//! fixture README for a float32 port: normal maps atol 1e-3; losses rtol 1e-4; gradients atol
//! 1e-4 * max|grad|, except the warp loss's gradients (below). Measured errors are printed.
//!
//! The warp-loss gradient of a row is the unit residual direction (b - R a - t)/|...|. Its points
//! are ~4 m from the camera, so float32 rounds them to ~5e-7 m, and for a row whose residual is
//! only 75 um (this fixture has one; the mean is 3.8 mm) the direction itself carries ~0.6% noise
//! in TF as in any float32 port (computing in float64 here moves no closer to TF). So the warp
//! gradients are held to rel-L2 < 1e-3 and max error < 5e-3 of max|grad|.

use std::path::PathBuf;

use burn::prelude::*;
use hdnet_formats::correspondences::Correspondences;
use hdnet_formats::npy;
use hdnet_geometry::Camera;
use hdnet_model::geometry::{NormalsFromDepth, depth_to_normals, ray_map};
use hdnet_model::losses::{AngularLoss, depth_l2, normal_angular, scale_invariant_depth};
use hdnet_model::warp_loss::{RotationFit, WarpBatch, WarpPair, warp_loss};

/// The device under test: the CPU, or the one `HDNET_TEST_DEVICE` names (a GPU build's `wgpu`,
/// as CI runs these tests on Mesa's lavapipe); the tolerances are the same on every device.
fn device() -> Device {
    let name = std::env::var("HDNET_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    hdnet_model::device::open(&name).unwrap_or_else(|e| panic!("HDNET_TEST_DEVICE: {e}"))
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tf_reference").join(rel)
}

fn read(rel: &str) -> (Vec<usize>, Vec<f32>) {
    let a = npy::read::<f32>(fixture(rel)).unwrap();
    (a.shape().to_vec(), a.iter().copied().collect())
}

/// NHWC fixture -> NCHW tensor on `device`.
fn nchw(rel: &str, device: &Device) -> Tensor<4> {
    let (shape, values) = read(rel);
    let [b, h, w, c] = [shape[0], shape[1], shape[2], shape[3]];
    Tensor::<4>::from_data(TensorData::new(values, [b, h, w, c]), device).permute([0, 3, 1, 2])
}

fn host(t: Tensor<4>) -> Vec<f32> {
    t.permute([0, 2, 3, 1]).try_into_vec_as::<f32>().unwrap()
}

fn mask_a(device: &Device) -> Tensor<4, Bool> {
    nchw("inference/Z.npy", device).greater_elem(0.0)
}

fn mask_b(device: &Device) -> Tensor<4, Bool> {
    let a = npy::read::<bool>(fixture("geometry/b_mask.npy")).unwrap();
    let values: Vec<bool> = a.iter().copied().collect();
    Tensor::<4, Bool>::from_data(TensorData::new(values, [1, 256, 256, 1]), device).permute([0, 3, 1, 2])
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn max_abs(a: &[f32]) -> f32 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

struct Case {
    name: &'static str,
    depth: &'static str,
    mask: fn(&Device) -> Tensor<4, Bool>,
}

const CASES: [Case; 2] = [
    Case { name: "a", depth: "inference/depth_pred.npy", mask: mask_a },
    Case { name: "b", depth: "geometry/b_depth.npy", mask: mask_b },
];

#[test]
fn normal_maps_match_dmap_to_nmap() {
    let device = device();
    let rays = ray_map(&[Camera::original()], 256, 256, &device);
    for case in CASES {
        let n =
            depth_to_normals(nchw(case.depth, &device), (case.mask)(&device), rays.clone(), NormalsFromDepth::Original);
        let (_, want) = read(&format!("geometry/{}_nmap.npy", case.name));
        let err = max_abs_diff(&host(n), &want);
        println!("case {}: normal map max abs error {err:.3e} (tolerance 1e-3)", case.name);
        assert!(err < 1e-3);
    }
}

#[test]
fn losses_and_their_gradients_match_tf() {
    let device = device().autodiff();
    let rays = ray_map(&[Camera::original()], 256, 256, &device);
    for case in CASES {
        let mask = (case.mask)(&device);
        let y = nchw(&format!("geometry/{}_y_gt.npy", case.name), &device);
        let n_gt = nchw(&format!("geometry/{}_n_gt.npy", case.name), &device);
        let (_, want_losses) = read(&format!("geometry/{}_losses.npy", case.name));
        let grad_files = ["grad_calc_loss", "grad_calc_loss_d_refined_mask", "grad_calc_loss_normal2"];
        for (k, grad_file) in grad_files.iter().enumerate() {
            let pred = nchw(case.depth, &device).require_grad();
            let loss = match k {
                0 => depth_l2(pred.clone(), y.clone(), &mask),
                1 => scale_invariant_depth(pred.clone(), y.clone(), &mask),
                _ => {
                    let nmap = depth_to_normals(pred.clone(), mask.clone(), rays.clone(), NormalsFromDepth::Original);
                    normal_angular(nmap, n_gt.clone(), &mask, AngularLoss::Acos)
                }
            };
            let value: f32 = loss.clone().into_scalar();
            let rel = ((value - want_losses[k]) / want_losses[k]).abs();
            let grad = host(pred.grad(&loss.backward()).unwrap());
            let (_, want_grad) = read(&format!("geometry/{}_{grad_file}.npy", case.name));
            let grad_err = max_abs_diff(&grad, &want_grad) / max_abs(&want_grad);
            println!(
                "case {} {grad_file}: loss {value} vs {} (rel {rel:.2e}), grad max err {grad_err:.2e} of max|grad|",
                case.name, want_losses[k]
            );
            assert!(rel < 1e-4 && grad_err < 1e-4);
        }
    }
}

fn fixture_correspondences() -> Correspondences {
    let dir = fixture("geometry/corrs");
    Correspondences::read_original(
        &dir.join("0000000_0000001_i_r1_c1_r2_c2.txt"),
        &dir.join("0000000_0000001_i_limit.txt"),
    )
    .unwrap()
}

#[test]
fn correspondence_files_parse_like_the_original_reader() {
    let corr = fixture_correspondences();
    let rows = npy::read::<i32>(fixture("geometry/warp_i_r1_c1_r2_c2.npy")).unwrap();
    assert_eq!(corr.len(), 1746);
    for k in 0..corr.len() {
        let want = [rows[[k, 1]], rows[[k, 2]], rows[[k, 3]], rows[[k, 4]]].map(|v| v as u32 - 1);
        assert_eq!([corr.pixel_i[k][0], corr.pixel_i[k][1], corr.pixel_j[k][0], corr.pixel_j[k][1]], want);
    }
    let present: Vec<usize> =
        corr.part_ranges().iter().enumerate().filter(|(_, r)| !r.is_empty()).map(|(p, _)| p + 1).collect();
    assert_eq!(present, vec![2, 3, 4, 9, 10, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
}

#[test]
fn warp_loss_matches_tf_in_value_points_and_gradients() {
    let device = device().autodiff();
    let corr = fixture_correspondences();
    let camera = Camera::original();
    let pairs = [WarpPair { correspondences: &corr, camera_i: camera, camera_j: camera }];
    let batch = WarpBatch::new(&pairs, 256, 256, &device).unwrap();
    let d_i = nchw("geometry/warp_d_i.npy", &device).require_grad();
    let d_j = nchw("geometry/warp_d_j.npy", &device).require_grad();
    let out = warp_loss(d_i.clone(), d_j.clone(), &batch, RotationFit::Original);
    let (_, want) = read("geometry/warp_losses.npy");
    let (l3, l2): (f32, f32) = (out.loss3d.clone().into_scalar(), out.loss2d.clone().into_scalar());
    let (rel3, rel2) = (((l3 - want[0]) / want[0]).abs(), ((l2 - want[1]) / want[1]).abs());
    println!("loss3d {l3} vs {} (rel {rel3:.2e}); loss2d {l2} vs {} (rel {rel2:.2e})", want[0], want[1]);
    assert!(rel3 < 1e-4 && rel2 < 1e-4);

    let pts = |t: Tensor<2>| t.try_into_vec_as::<f32>().unwrap();
    let err_pc2 = max_abs_diff(&pts(out.points_j.clone()), &read("geometry/warp_PC2p.npy").1);
    let err_pc1 = max_abs_diff(&pts(out.points_i_fitted.clone()), &read("geometry/warp_PC1_2.npy").1);
    println!("PC2p max err {err_pc2:.2e}, PC1_2 max err {err_pc1:.2e} (tolerance 1e-4 m)");
    assert!(err_pc2 < 1e-4 && err_pc1 < 1e-4);

    let grads = out.loss3d.backward();
    for (name, d) in [("d_i", d_i), ("d_j", d_j)] {
        let g = host(d.grad(&grads).unwrap());
        let (_, want_g) = read(&format!("geometry/warp_grad_loss3d_{name}.npy"));
        let err = max_abs_diff(&g, &want_g) / max_abs(&want_g);
        let rel_l2 = (g.iter().zip(&want_g).map(|(a, b)| (a - b).powi(2)).sum::<f32>()
            / want_g.iter().map(|b| b * b).sum::<f32>())
        .sqrt();
        let nonzero = g.iter().filter(|v| **v != 0.0).count();
        println!(
            "grad loss3d wrt {name}: rel-L2 {rel_l2:.2e}, max err {err:.2e} of max|grad|, {nonzero} non-zero pixels"
        );
        assert!(rel_l2 < 1e-3 && err < 5e-3);
        assert_eq!(nonzero, 1746);
    }
}
