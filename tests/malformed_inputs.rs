//! The malformed-input suite: every reader of a user's file is fed generated damage — truncations,
//! byte flips, forged headers, out-of-range and non-finite values — of a valid file. Each case
//! must end in a value or an error naming the file, never a panic or an abort; and a batch
//! command goes on with its good items. The damage is drawn from a fixed seed, so a failure
//! repeats.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

use burn::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small deterministic generator (64-bit LCG): the cases must not change between runs.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// `count` damaged copies of `good`: half cut short, half with a few bytes replaced.
fn damaged(good: &[u8], count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut draw = Draw(seed);
    (0..count)
        .map(|k| {
            let mut bytes = good.to_vec();
            if k % 2 == 0 {
                bytes.truncate(draw.below(good.len()));
            } else {
                for _ in 0..1 + draw.below(4) {
                    let at = draw.below(bytes.len());
                    bytes[at] = draw.below(256) as u8;
                }
            }
            bytes
        })
        .collect()
}

/// Runs `read` on every case written to `path`: no panic, and every error is one line naming the
/// file (by its name up to the first dot: a checkpoint is named by its prefix).
/// Returns how many cases were rejected.
fn feed<T, E: std::fmt::Display>(path: &Path, cases: &[Vec<u8>], read: impl Fn(&Path) -> Result<T, E>) -> usize {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let name = file.split('.').next().unwrap().to_string();
    let mut rejected = 0;
    for (k, bytes) in cases.iter().enumerate() {
        std::fs::write(path, bytes).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| read(path)));
        match outcome {
            Err(_) => panic!("{name}: case {k} ({} bytes) panicked", bytes.len()),
            Ok(Err(e)) => {
                let message = e.to_string();
                assert!(message.contains(&name), "{name}: case {k}: the error does not name the file: {message}");
                assert!(!message.contains('\n'), "{name}: case {k}: not one line: {message}");
                rejected += 1;
            }
            Ok(Ok(_)) => {}
        }
    }
    rejected
}

#[test]
fn readers_of_every_format_survive_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let at = |f: &str| dir.path().join(f);
    let mut cases = 0;
    let mut check = |what: &str, total: usize, rejected: usize, at_least: usize| {
        println!("{what}: {rejected} of {total} damaged files rejected (at least {at_least} required)");
        assert!(rejected >= at_least, "{what}: only {rejected} of {total} rejected");
        cases += total;
    };

    // .npy: damage anywhere, and headers claiming more than the file holds.
    let npy_path = at("good.npy");
    hdnet_formats::npy::write(&npy_path, &ndarray::Array2::from_elem((16, 16), 1.5f32)).unwrap();
    let good = std::fs::read(&npy_path).unwrap();
    let mut npy_cases = damaged(&good, 60, 1);
    for shape in ["(100000, 100000)", "(16, 17)", "(-1, 16)", "(16,)", "()"] {
        npy_cases.push(String::from_utf8_lossy(&good).replacen("(16, 16)", shape, 1).into_bytes());
    }
    let path = at("damaged.npy");
    let rejected = feed(&path, &npy_cases, |p| hdnet_formats::npy::read::<f32>(p));
    check("npy", npy_cases.len(), rejected, 30);

    // PNG images as colour, mask and IUV; a JPEG.
    let png = std::fs::read(root().join("examples/0043_dp.png")).unwrap();
    let png_cases = damaged(&png, 60, 2);
    let path = at("damaged.png");
    let rejected = feed(&path, &png_cases, |p| hdnet_formats::images::read_rgb(p, None));
    check("png as colour", png_cases.len(), rejected, 20);
    let rejected = feed(&path, &png_cases, |p| hdnet_formats::images::read_iuv(p, Some((256, 256))));
    check("png as IUV", png_cases.len(), rejected, 20);
    let mask = std::fs::read(root().join("examples/0043_mask.png")).unwrap();
    let mask_cases = damaged(&mask, 30, 3);
    let rejected = feed(&path, &mask_cases, |p| hdnet_formats::images::read_mask(p, None));
    check("png as mask", mask_cases.len(), rejected, 10);
    let jpeg_path = at("photo.jpg");
    image::open(root().join("examples/0043_img.png")).unwrap().to_rgb8().save(&jpeg_path).unwrap();
    let jpeg_cases: Vec<Vec<u8>> = damaged(&std::fs::read(&jpeg_path).unwrap(), 30, 4).into_iter().step_by(2).collect();
    let rejected = feed(&at("damaged.jpg"), &jpeg_cases, |p| hdnet_formats::images::read_rgb(p, None));
    check("truncated jpeg", jpeg_cases.len(), rejected, jpeg_cases.len() - 1);

    // Text matrices: garbage tokens, ragged rows, non-numbers.
    let text_path = at("depth.txt");
    hdnet_formats::text::write_matrix(&text_path, &ndarray::Array2::from_elem((8, 8), 4.25)).unwrap();
    let text = std::fs::read(&text_path).unwrap();
    let mut text_cases = damaged(&text, 30, 5);
    for token in ["x", "1e999999", "--3", ",", "4.0 5.0", ""] {
        text_cases.push(String::from_utf8_lossy(&text).replacen("4.25000", token, 1).into_bytes());
    }
    let rejected = feed(&at("damaged.txt"), &text_cases, |p| hdnet_formats::text::read_matrix(p));
    check("text matrix", text_cases.len(), rejected, 10);

    // Correspondences: the original's pair of text files.
    let limits = at("corrs_limit.txt");
    let mut rows: Vec<String> = (1..=24).map(|p| format!("{p},-1,-1")).collect();
    rows[1] = "2,0,2".into();
    std::fs::write(&limits, rows.join("\n")).unwrap();
    let corrs = b"2,1,1,3,4\n2,5,6,7,8\n2,9,9,9,9\n".to_vec();
    let mut corr_cases = damaged(&corrs, 30, 6);
    for bad in ["2,1.5,1,3,4", "2,0,1,3,4", "2,1,1,3", "2,99999999999,1,1,1"] {
        corr_cases.push(format!("{bad}\n2,5,6,7,8\n2,9,9,9,9\n").into_bytes());
    }
    let rejected = feed(&at("corrs.txt"), &corr_cases, |p| {
        hdnet_formats::correspondences::Correspondences::read_original(p, &limits)
            .and_then(|c| c.check_within(64, 64).map(|_| c).map_err(|e| hdnet_formats::FileError::new(p, e)))
    });
    check("correspondences", corr_cases.len(), rejected, 15);

    // hdnet weights (safetensors) and TF1 checkpoints (index and data).
    let weights = std::fs::read(root().join("assets/model/hdnet_default.safetensors")).unwrap();
    let mut weight_cases = damaged(&weights[..4096.min(weights.len())], 20, 7);
    weight_cases.extend(damaged(&weights, 10, 8).into_iter().filter(|c| c.len() < weights.len()));
    let device = Device::flex();
    let rejected = feed(&at("weights.safetensors"), &weight_cases, |p| {
        let bytes = std::fs::read(p).unwrap();
        hdnet_model::weights::hourglass_from_safetensors(p, &bytes, hdnet_model::NetKind::Normal, &device)
    });
    check("safetensors weights", weight_cases.len(), rejected, 20);
    let ckpt = root().join("fixtures/tf_reference/normal_net/model.ckpt");
    let index = std::fs::read(ckpt.with_extension("ckpt.index")).unwrap();
    let prefix = at("model.ckpt");
    std::fs::copy(ckpt.with_extension("ckpt.data-00000-of-00001"), at("model.ckpt.data-00000-of-00001")).unwrap();
    let index_cases = damaged(&index, 30, 9);
    let rejected = feed(&at("model.ckpt.index"), &index_cases, |_| {
        let c = hdnet_formats::tf_checkpoint::TfCheckpoint::open(&prefix)?;
        hdnet_model::weights::hourglass_from_tf(&c, hdnet_model::NetKind::Normal, &device)
            .map_err(|e| hdnet_formats::tf_checkpoint::CheckpointError::Format { path: e.path, what: e.what })
    });
    check("TF checkpoint index", index_cases.len(), rejected, 20);

    // Training settings: values outside their meaning.
    let mut toml_cases: Vec<Vec<u8>> = [
        "beta_1 = 2.0",
        "beta_2 = -0.1",
        "epsilon = 0.0",
        "learning_rate = nan",
        "width = 0",
        "batch_size = 0",
        "[augment]\nflip_probability = 1.5",
        "[augment]\ncolor_jitter = -1.0",
        "steps = -3",
        "width = \"64\"",
        "unknown_key = 1",
        "[augment",
        "seed = 1.5",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    toml_cases.extend(damaged(b"width = 8\nbatch_size = 2\nlearning_rate = 0.001\n", 12, 10));
    let rejected =
        feed(&at("train.toml"), &toml_cases, |p| hdnet_train::TrainConfig::load(p, hdnet_train::Stage::Depth));
    check("training settings", toml_cases.len(), rejected, 13);

    // A frame's camera (camera/NAME.json): damage, and values without a meaning.
    let camera_root = at("cameras");
    let camera = hdnet_geometry::Camera::photo_crop(1800.0, [540.0, 720.0], [100.0, 200.0], 600.0, 256);
    hdnet_data::layout::write_camera(&camera_root, "f", &camera).unwrap();
    let camera_path = camera_root.join("camera/f.json");
    let good = std::fs::read(&camera_path).unwrap();
    let mut camera_cases = damaged(&good, 30, 11);
    for (field, value) in [
        ("\"fx\": 1800.0", "\"fx\": -1.0"),
        ("\"scaling\": 2.34375", "\"scaling\": 0.0"),
        ("\"cx\": 540.0", "\"cx\": \"540\""),
    ] {
        camera_cases.push(String::from_utf8_lossy(&good).replacen(field, value, 1).into_bytes());
    }
    let rejected = feed(&camera_path, &camera_cases, |_| hdnet_data::layout::read_camera(&camera_root, "f"));
    check("camera", camera_cases.len(), rejected, 15);

    // TFLite models: damage at the start (tables) and in the weights.
    let model = std::fs::read(root().join("crates/hdnet-segment/models/selfie_segmentation.tflite")).unwrap();
    let model_cases = damaged(&model[..8192], 20, 12);
    let rejected = feed(&at("model.tflite"), &model_cases, hdnet_formats::tflite::Model::read);
    check("tflite model", model_cases.len(), rejected, 10);

    println!("{cases} malformed inputs in all");
    assert!(cases >= 300, "{cases} cases");
}

#[test]
fn a_batch_goes_on_past_its_bad_items_and_names_each() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in ["good1", "good2", "cut", "noise", "part99"] {
        for kind in ["img", "mask", "dp"] {
            std::fs::copy(root().join(format!("examples/0043_{kind}.png")), input.join(format!("{name}_{kind}.png")))
                .unwrap();
        }
    }
    let img = std::fs::read(input.join("cut_img.png")).unwrap();
    std::fs::write(input.join("cut_img.png"), &img[..img.len() / 3]).unwrap();
    std::fs::write(input.join("noise_mask.png"), b"not an image").unwrap();
    let mut dp = image::open(input.join("part99_dp.png")).unwrap().to_rgb8();
    dp.get_pixel_mut(3, 3).0[2] = 99;
    dp.save(input.join("part99_dp.png")).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_hdnet"))
        .args(["infer", input.to_str().unwrap(), "--weights", root().join("fixtures/tf_reference").to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "bad items make the exit code non-zero");
    for bad in ["cut_img.png", "noise_mask.png", "part99_dp.png"] {
        assert!(err.contains(bad), "{bad} is not named: {err}");
    }
    for good in ["good1", "good2"] {
        assert!(out.join(format!("{good}_depth.npy")).exists(), "{good} was not processed: {err}");
    }
    assert!(!out.join("cut.txt").exists() && !out.join("noise.txt").exists());
}

#[test]
fn batch_commands_leave_no_output_folder_when_nothing_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("photo.png");
    std::fs::write(&photo, b"not an image").unwrap();
    for command in ["infer", "segment"] {
        let out = dir.path().join(format!("{command}_results"));
        let run = || {
            Command::new(env!("CARGO_BIN_EXE_hdnet"))
                .args([command, photo.to_str().unwrap(), "--out", out.to_str().unwrap()])
                .output()
                .unwrap()
        };
        let o = run();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("photo.png"), "{command}: the bad photo is not named: {err}");
        assert!(!out.exists(), "{command}: an empty {} was left", out.display());

        // A folder the user already had stays, empty or not.
        std::fs::create_dir(&out).unwrap();
        assert!(!run().status.success());
        assert!(out.is_dir(), "{command}: the user's folder was removed");
    }
}
