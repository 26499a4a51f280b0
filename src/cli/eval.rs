//! `hdnet eval`: accuracy of depth and normal predictions against a labelled folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use hdnet_data::iuv::Iuv;
use hdnet_data::layout::{LabelledFrame, frame_names, read_labelled};
use hdnet_eval::metrics::{DepthMetrics, NormalMetrics, depth_metrics, normal_metrics, per_part};
use hdnet_formats::images::TestSample;
use hdnet_formats::{FileError, npy, text};
use hdnet_geometry::Camera;
use hdnet_model::geometry::{NormalsFromDepth, depth_to_normals, ray_map};
use hdnet_model::pipeline::{from_nchw, to_nchw};
use ndarray::{Array2, Array3, Axis, Ix2, Ix3, stack};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// Labelled folder with the ground truth (color_WO_bg/, mask/, densepose/, depth/, normal/).
    #[arg(long)]
    gt: PathBuf,
    /// Folder of predictions named like the ground truth: NAME_depth.npy or NAME.txt, and
    /// NAME_normal.npy or NAME_normal_{1,2,3}.txt (what `hdnet infer` writes).
    #[arg(long, conflicts_with_all = ["weights", "baseline"])]
    pred: Option<PathBuf>,
    /// Predict with these weights (default, without --pred or --baseline: the bundled model).
    #[arg(long, conflicts_with = "baseline")]
    weights: Option<PathBuf>,
    /// Score a baseline instead: normals facing the camera everywhere, and depth flat (`flat`)
    /// or the per-pixel mean of the ground-truth depth maps of --mean-of (`mean-depth`).
    #[arg(long, value_enum)]
    baseline: Option<Baseline>,
    /// Labelled folder whose ground-truth depth maps `mean-depth` averages: the training set for
    /// the usual baseline; default --gt itself, a baseline that knows the test set and so
    /// flatters itself.
    #[arg(long, requires = "baseline")]
    mean_of: Option<PathBuf>,
    /// Where eval.json and eval.csv go (default: --pred, or --gt/eval when predicting).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Replace an existing eval.json / eval.csv.
    #[arg(long)]
    overwrite: bool,
}

/// Where the scored depth and normals come from.
enum Predictions<'a> {
    Baseline,
    Folder(&'a Path),
    Model(hdnet_model::Hdnet),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Baseline {
    Flat,
    MeanDepth,
}

/// The per-pixel mean depth over the person pixels of every readable ground-truth frame of
/// `dir` of the first frame's size (the original's median depth, 4 m, where no frame has a person).
fn mean_depth(dir: &Path) -> anyhow::Result<Array2<f32>> {
    let frames = frame_names(dir)?.into_iter().filter_map(|n| read_labelled(dir, &n).ok());
    let mut sums: Option<(Array2<f32>, Array2<f32>)> = None;
    for f in frames {
        let (sum, count) = sums.get_or_insert_with(|| (Array2::zeros(f.mask.dim()), Array2::zeros(f.mask.dim())));
        if f.mask.dim() == sum.dim() {
            *sum += &(&f.depth * &f.mask);
            *count += &f.mask;
        }
    }
    let Some((sum, count)) = sums else { bail!("{}: no readable ground-truth frames to average", dir.display()) };
    Ok(ndarray::Zip::from(&sum).and(&count).map_collect(|&s, &c| if c > 0.0 { s / c } else { hdnet_data::layout::DEPTH_MEDIAN }))
}

fn baseline_prediction(gt: &LabelledFrame, mean: Option<&Array2<f32>>) -> Result<(Array2<f32>, Array3<f32>), String> {
    let (h, w) = gt.mask.dim();
    let normals = Array3::from_shape_fn((h, w, 3), |(r, c, k)| if k == 2 { -gt.mask[(r, c)] } else { 0.0 });
    let depth = match mean {
        Some(m) if m.dim() != (h, w) => return Err(format!("{h}x{w}, the mean depth map is {}x{}", m.dim().0, m.dim().1)),
        Some(m) => m * &gt.mask,
        None => gt.mask.mapv(|m| m * hdnet_data::layout::DEPTH_MEDIAN),
    };
    Ok((depth, normals))
}

#[derive(Serialize)]
struct PartRow {
    part: u8,
    depth: Option<DepthMetrics>,
    normals: Option<NormalMetrics>,
}

#[derive(Serialize)]
struct ImageRow {
    name: String,
    depth: Option<DepthMetrics>,
    normals: Option<NormalMetrics>,
    /// The normals of the surface the predicted depth describes: how much of the surface's
    /// shape (not just its distance) the depth has, what HDNet's normal losses train.
    depth_normals: Option<NormalMetrics>,
    parts: Vec<PartRow>,
}

fn read_pred(dir: &Path, name: &str, size: (usize, usize)) -> Result<(Array2<f32>, Array3<f32>), FileError> {
    let npy_depth = dir.join(format!("{name}_depth.npy"));
    let depth = if npy_depth.exists() {
        npy::read::<f32>(&npy_depth)?.into_dimensionality::<Ix2>().map_err(|_| FileError::new(&npy_depth, "not 2-D"))?
    } else {
        text::read_matrix(dir.join(format!("{name}.txt")))?
    };
    let npy_normals = dir.join(format!("{name}_normal.npy"));
    let normals = if npy_normals.exists() {
        npy::read::<f32>(&npy_normals)?.into_dimensionality::<Ix3>().map_err(|_| FileError::new(&npy_normals, "not 3-D"))?
    } else {
        let parts = (1..=3)
            .map(|k| text::read_matrix(dir.join(format!("{name}_normal_{k}.txt"))))
            .collect::<Result<Vec<_>, _>>()?;
        stack(Axis(2), &parts.iter().map(|p| p.view()).collect::<Vec<_>>()).map_err(|e| FileError::new(dir.join(name), e))?
    };
    if depth.dim() != size || (normals.dim().0, normals.dim().1) != size {
        return Err(FileError::new(dir.join(name), format!("prediction size differs from the ground truth {size:?}")));
    }
    // Every score, and the normals computed from the depth, would silently turn NaN.
    if depth.iter().chain(normals.iter()).any(|v| !v.is_finite()) {
        return Err(FileError::new(dir.join(name), "prediction contains NaN or infinite values"));
    }
    Ok((depth, normals))
}

/// Normals of `depth` seen through the original camera (the synthetic data's), computed on the
/// mask without wrap-around (`NormalsFromDepth::Clean`).
fn normals_of_depth(depth: &Array2<f32>, mask: &Array2<f32>) -> Array3<f32> {
    let device = hdnet_model::device::Device::flex();
    let (h, w) = mask.dim();
    let map = |m: &Array2<f32>| to_nchw(&[&m.clone().insert_axis(Axis(2))], &device);
    let rays = ray_map(&[Camera::original()], h, w, &device);
    from_nchw(depth_to_normals(map(depth), map(mask).greater_elem(0.0), rays, NormalsFromDepth::Clean)).remove(0)
}

fn evaluate(name: &str, gt: &LabelledFrame, depth: &Array2<f32>, normals: &Array3<f32>) -> ImageRow {
    let parts = Iuv::decode(&gt.iuv).map(|iuv| iuv.part).unwrap_or_else(|_| Array2::zeros(gt.mask.dim()));
    ImageRow {
        name: name.to_string(),
        depth: depth_metrics(depth, &gt.depth, &gt.mask),
        normals: normal_metrics(normals, &gt.normals, &gt.mask),
        depth_normals: normal_metrics(&normals_of_depth(depth, &gt.mask), &gt.normals, &gt.mask),
        parts: per_part(depth, &gt.depth, normals, &gt.normals, &gt.mask, &parts)
            .into_iter()
            .map(|(part, depth, normals)| PartRow { part, depth, normals })
            .collect(),
    }
}

/// One score of an image: its column in the printed table and eval.csv, its key in eval.json's
/// aggregate (the mean over the images that have it).
struct Column {
    header: &'static str,
    key: &'static str,
    value: fn(&ImageRow) -> Option<f64>,
}

const COLUMNS: [Column; 9] = [
    Column { header: "depth_rmse", key: "depth_rmse", value: |r| r.depth.map(|d| d.rmse) },
    Column { header: "depth_absrel", key: "depth_abs_rel", value: |r| r.depth.map(|d| d.abs_rel) },
    Column { header: "depth_rmse_raw", key: "depth_rmse_raw", value: |r| r.depth.map(|d| d.rmse_raw) },
    Column { header: "normal_mean", key: "normal_mean_deg", value: |r| r.normals.map(|n| n.mean_deg) },
    Column { header: "normal_median", key: "normal_median_deg", value: |r| r.normals.map(|n| n.median_deg) },
    Column { header: "lt_11.25", key: "within_11_25", value: |r| r.normals.map(|n| n.within_11_25) },
    Column { header: "lt_22.5", key: "within_22_5", value: |r| r.normals.map(|n| n.within_22_5) },
    Column { header: "lt_30", key: "within_30", value: |r| r.normals.map(|n| n.within_30) },
    Column { header: "dnormal_mean", key: "depth_normal_mean_deg", value: |r| r.depth_normals.map(|n| n.mean_deg) },
];

fn row_values(r: &ImageRow) -> [f64; 9] {
    COLUMNS.each_ref().map(|c| (c.value)(r).unwrap_or(f64::NAN))
}

fn aggregate_values(rows: &[ImageRow]) -> [f64; 9] {
    COLUMNS.each_ref().map(|c| {
        let v: Vec<f64> = rows.iter().filter_map(c.value).collect();
        if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let names = frame_names(&args.gt)?;
    if names.is_empty() {
        bail!("{}: no ground-truth frames (color_WO_bg/*.png)", args.gt.display());
    }
    let out = args.out.clone().unwrap_or_else(|| {
        args.pred.clone().unwrap_or_else(|| args.gt.join(match args.baseline {
            Some(Baseline::Flat) => "eval_flat",
            Some(Baseline::MeanDepth) => "eval_mean_depth",
            None => "eval",
        }))
    });
    for f in ["eval.json", "eval.csv"] {
        if out.join(f).exists() && !args.overwrite {
            bail!("{}: already exists (pass --overwrite to replace it)", out.join(f).display());
        }
    }
    let predictions = match (&args.pred, args.baseline) {
        (_, Some(_)) => Predictions::Baseline,
        (Some(dir), None) => Predictions::Folder(dir),
        (None, None) => Predictions::Model(super::load_model(args.weights.as_deref(), &args.device)?),
    };
    let mean = match (args.baseline, &args.mean_of) {
        (Some(Baseline::MeanDepth), mean_of) => Some(mean_depth(mean_of.as_ref().unwrap_or(&args.gt))?),
        (_, Some(_)) => bail!("--mean-of is for --baseline mean-depth only"),
        _ => None,
    };
    let bar = super::data::progress(names.len());
    let mut rows = Vec::new();
    let mut failed = 0;
    for name in &names {
        let result = read_labelled(&args.gt, name).and_then(|gt| {
            let (depth, normals) = match &predictions {
                Predictions::Baseline => baseline_prediction(&gt, mean.as_ref())
                    .map_err(|e| FileError::new(args.gt.join("mask").join(format!("{name}.png")), e))?,
                Predictions::Model(net) => {
                    let (h, w) = gt.mask.dim();
                    hdnet_model::pipeline::check_network_size(h, w)
                        .map_err(|e| FileError::new(args.gt.join("color_WO_bg").join(format!("{name}.png")), e))?;
                    let sample = TestSample { name: name.clone(), image: gt.image.clone(), mask: gt.mask.clone(), iuv: gt.iuv.clone() };
                    let p = net.predict(&[&sample]).remove(0);
                    (p.depth * &gt.mask, p.normals)
                }
                Predictions::Folder(dir) => read_pred(dir, name, gt.mask.dim())?,
            };
            Ok(evaluate(name, &gt, &depth, &normals))
        });
        match result {
            Ok(row) => rows.push(row),
            Err(e) => {
                bar.suspend(|| eprintln!("skipped {name}: {e}"));
                failed += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let agg_values = aggregate_values(&rows);
    let header = ["image"].into_iter().chain(COLUMNS.iter().map(|c| c.header));
    println!("{}", header.clone().map(|h| format!("{h:>14}")).collect::<String>());
    for r in &rows {
        println!("{:>14}{}", r.name, row_values(r).iter().map(|v| format!("{v:>14.4}")).collect::<String>());
    }
    println!("{:>14}{}", "mean", agg_values.iter().map(|v| format!("{v:>14.4}")).collect::<String>());

    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut agg = serde_json::Map::from_iter([("images".to_string(), rows.len().into())]);
    agg.extend(COLUMNS.iter().zip(agg_values).map(|(c, v)| (c.key.to_string(), v.into())));
    let json = serde_json::json!({ "images": rows, "aggregate": agg });
    hdnet_formats::write_atomic(&out.join("eval.json"), serde_json::to_string_pretty(&json)?.as_bytes())?;
    let mut csv = header.collect::<Vec<_>>().join(",") + "\n";
    for r in &rows {
        csv += &format!("{},{}\n", r.name, row_values(r).map(|v| v.to_string()).join(","));
    }
    csv += &format!("mean,{}\n", agg_values.map(|v| v.to_string()).join(","));
    hdnet_formats::write_atomic(&out.join("eval.csv"), csv.as_bytes())?;
    println!("{} images evaluated, {failed} skipped; wrote {}", rows.len(), out.join("eval.json").display());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
