//! Parity of the ML-free formats with `fixtures/tf_reference` (outputs of the ORIGINAL TensorFlow
//! code on sample 0043). Everything here is exact: bytes or pixels, no tolerance.

use std::path::PathBuf;

use hdnet_formats::images::PersonImage;
use hdnet_formats::tf_checkpoint::{CheckpointError, TfCheckpoint};
use hdnet_formats::{mesh, npy, text, visual};
use ndarray::{Array2, Array3, Axis, Ix4};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tf_reference").join(rel)
}

fn npy4(rel: &str) -> ndarray::Array4<f32> {
    npy::read::<f32>(fixture(rel)).unwrap().into_dimensionality::<Ix4>().unwrap()
}

/// (1,H,W,C) -> (H,W,C)
fn hwc(rel: &str) -> Array3<f32> {
    npy4(rel).index_axis_move(Axis(0), 0)
}

fn hw(rel: &str) -> Array2<f32> {
    hwc(rel).index_axis_move(Axis(2), 0)
}

/// Byte equality, reporting the first differing line instead of megabytes of text.
fn assert_same_lines(ours: &str, theirs: &str) {
    if let Some((i, (a, b))) = ours.lines().zip(theirs.lines()).enumerate().find(|(_, (a, b))| a != b) {
        panic!("line {}: ours '{a}', original '{b}'", i + 1);
    }
    assert_eq!(ours.len(), theirs.len(), "same lines but different lengths");
}

#[test]
fn every_checkpoint_variable_loads_with_valid_checksums() {
    for (dir, scope, params) in [
        ("normal_net", "hourglass_normal_prediction", 445_747),
        ("depth_net", "hourglass_stack_fused_depth_prediction", 446_161),
    ] {
        let ckpt = TfCheckpoint::open(fixture(&format!("{dir}/model.ckpt"))).unwrap();
        let names: Vec<String> = ckpt.variables().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names.len(), 87, "{dir}");
        let mut total = 0;
        for name in &names {
            assert!(name.starts_with(scope), "{name}");
            let (shape, values) = ckpt.read_f32(name).unwrap();
            assert_eq!(shape.iter().product::<usize>(), values.len());
            total += values.len();
        }
        assert_eq!(total, params, "{dir}");
        let (shape, _) = ckpt.read_f32(&format!("{scope}/conv1/weights")).unwrap();
        assert_eq!(shape, vec![3, 3, if dir == "normal_net" { 3 } else { 9 }, 8]);
    }
}

#[test]
fn corrupted_and_truncated_checkpoints_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("normal_net/model.ckpt");
    let dst = dir.path().join("model.ckpt");
    let index = std::fs::read(src.with_extension("ckpt.index")).unwrap();
    let data = std::fs::read(src.with_extension("ckpt.data-00000-of-00001")).unwrap();
    let write = |index: &[u8], data: &[u8]| {
        std::fs::write(dst.with_extension("ckpt.index"), index).unwrap();
        std::fs::write(dst.with_extension("ckpt.data-00000-of-00001"), data).unwrap();
    };

    // One flipped bit in a tensor: its crc32c no longer matches.
    let mut bad = data.clone();
    bad[100] ^= 0x10;
    write(&index, &bad);
    let ckpt = TfCheckpoint::open(&dst).unwrap();
    let failures =
        ckpt.variables().filter(|(n, _)| matches!(ckpt.read_f32(n), Err(CheckpointError::Checksum { .. }))).count();
    assert_eq!(failures, 1);

    // A truncated data shard.
    write(&index, &data[..data.len() / 2]);
    let ckpt = TfCheckpoint::open(&dst).unwrap();
    let err = ckpt.variables().find_map(|(n, _)| ckpt.read_f32(n).err()).unwrap().to_string();
    assert!(err.contains("data-00000-of-00001") && err.contains("truncated"), "{err}");

    // A corrupted index block and a truncated index.
    let mut bad_index = index.clone();
    bad_index[10] ^= 0x01;
    write(&bad_index, &data);
    let err = TfCheckpoint::open(&dst).unwrap_err().to_string();
    assert!(err.contains("model.ckpt.index") && err.contains("checksum"), "{err}");
    write(&index[..index.len() - 7], &data);
    let err = TfCheckpoint::open(&dst).unwrap_err().to_string();
    assert!(err.contains("model.ckpt.index"), "{err}");

    // Missing files.
    let err = TfCheckpoint::open(dir.path().join("nothing")).unwrap_err().to_string();
    assert!(err.contains("nothing.index"), "{err}");
}

#[test]
fn preprocessing_matches_read_test_data_exactly() {
    let sample = PersonImage::read_test_layout(&fixture("inference/input_png"), "0043", (256, 256)).unwrap();
    assert_eq!(sample.image, hwc("inference/X.npy"));
    assert_eq!(sample.mask, hw("inference/Z.npy"));
    assert_eq!(sample.iuv, hwc("inference/DP.npy"));
}

#[test]
fn depth_txt_is_byte_identical() {
    let depth = hw("inference/depth_pred.npy") * hw("inference/Z.npy");
    let ours = text::format_matrix(&depth);
    let theirs = std::fs::read_to_string(fixture("inference/infer_out/0043.txt")).unwrap();
    assert_same_lines(&ours, &theirs);
}

#[test]
fn mesh_obj_is_byte_identical() {
    let mask = hw("inference/Z.npy");
    let depth = hw("inference/depth_pred.npy") * &mask;
    let ours = mesh::format_depth2mesh_obj(&depth, &mask);
    let theirs = std::fs::read_to_string(fixture("inference/infer_out/0043_mesh.obj")).unwrap();
    assert_eq!(ours.lines().filter(|l| l.starts_with("f ")).count(), 460);
    assert_same_lines(&ours, &theirs);
}

#[test]
fn hot_colormap_matches_matplotlib() {
    let lut = npy::read::<u8>(fixture("inference/hot_lut_uint8.npy")).unwrap();
    let ours = visual::hot_lut();
    for k in 0..256 {
        assert_eq!(ours[k], [lut[[k, 0]], lut[[k, 1]], lut[[k, 2]]], "entry {k}");
    }
}

#[test]
fn normal_colours_and_results_png_are_pixel_identical() {
    let mask = hw("inference/Z.npy");
    let normals = hwc("inference/normal_pred.npy");
    let expected = npy::read::<u8>(fixture("inference/normal_map_rgb.npy")).unwrap();
    assert_eq!(visual::normal_colors(&normals, &mask).into_dyn(), expected);

    let panel =
        visual::results_panel(&hwc("inference/X.npy"), &hw("inference/depth_pred.npy"), &normals, &mask).unwrap();
    let theirs = image::open(fixture("inference/infer_out/0043_results.png")).unwrap().to_rgb8();
    assert_eq!(panel.dimensions(), (768, 256));
    let differing = panel.pixels().zip(theirs.pixels()).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "pixels differing from the original's results PNG");
}
