//! Evaluating a labelled folder: predictions read from files or given by the caller, the two
//! baselines, per-image and per-part rows, their aggregate, and the JSON and CSV reports.

use std::path::Path;

use hdnet_data::iuv::Iuv;
use hdnet_data::layout::{DEPTH_MEDIAN, LabelledFrame, frame_names, read_camera_json, read_labelled};
use hdnet_formats::{FileError, npy, row_major, text};
use hdnet_geometry::{Camera, normals_of_depth};
use ndarray::{Array2, Array3, Axis, Ix2, Ix3, stack};
use serde::Serialize;

use crate::metrics::{DepthMetrics, NormalMetrics, depth_metrics, normal_metrics, per_part};

/// A prediction that needs no network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Depth flat at the data's median distance.
    Flat,
    /// The per-pixel mean of a set of ground-truth depth maps.
    MeanDepth,
}

#[derive(Debug, Serialize)]
pub struct PartRow {
    pub part: u8,
    pub depth: Option<DepthMetrics>,
    pub normals: Option<NormalMetrics>,
}

#[derive(Debug, Serialize)]
pub struct ImageRow {
    pub name: String,
    pub depth: Option<DepthMetrics>,
    pub normals: Option<NormalMetrics>,
    /// The normals of the surface the predicted depth describes: how much of the surface's
    /// shape (not just its distance) the depth has, what HDNet's normal losses train.
    pub depth_normals: Option<NormalMetrics>,
    pub parts: Vec<PartRow>,
}

/// The per-pixel mean depth over the person pixels of every readable ground-truth frame of
/// `dir` of the first frame's size (the data's median depth where no frame has a person).
pub fn mean_depth(dir: &Path) -> Result<Array2<f32>, FileError> {
    let frames = frame_names(dir)?.into_iter().filter_map(|n| read_labelled(dir, &n).ok());
    let mut sums: Option<(Array2<f32>, Array2<f32>)> = None;
    for f in frames {
        let (sum, count) =
            sums.get_or_insert_with(|| (Array2::zeros(f.person.mask.dim()), Array2::zeros(f.person.mask.dim())));
        if f.person.mask.dim() == sum.dim() {
            *sum += &(&f.depth * &f.person.mask);
            *count += &f.person.mask;
        }
    }
    let Some((sum, count)) = sums else {
        return Err(FileError::new(dir, "no readable ground-truth frames to average"));
    };
    Ok(ndarray::Zip::from(&sum).and(&count).map_collect(|&s, &c| if c > 0.0 { s / c } else { DEPTH_MEDIAN }))
}

/// The baseline's depth and normals for `gt`: normals facing the camera, depth `mean` (for
/// `MeanDepth`) or flat at the median depth; an error names the size mismatch with `mean`.
pub fn baseline_prediction(
    gt: &LabelledFrame,
    mean: Option<&Array2<f32>>,
) -> Result<(Array2<f32>, Array3<f32>), String> {
    let (h, w) = gt.person.mask.dim();
    let normals = Array3::from_shape_fn((h, w, 3), |(r, c, k)| if k == 2 { -gt.person.mask[(r, c)] } else { 0.0 });
    let depth = match mean {
        Some(m) if m.dim() != (h, w) => {
            return Err(format!("{h}x{w}, the mean depth map is {}x{}", m.dim().0, m.dim().1));
        }
        Some(m) => m * &gt.person.mask,
        None => gt.person.mask.mapv(|m| m * DEPTH_MEDIAN),
    };
    Ok((depth, normals))
}

/// A prediction as `hdnet infer` wrote it.
pub struct SavedPrediction {
    pub depth: Array2<f32>,
    pub normals: Array3<f32>,
    /// The camera the depth is seen through where `infer` wrote one (a photo's
    /// `NAME_camera.json`); a frame's own camera sees the rest.
    pub camera: Option<Camera>,
}

/// The prediction for frame `name` in `dir` as `hdnet infer` writes it (`NAME_depth.npy` or
/// `NAME.txt`, `NAME_normal.npy` or `NAME_normal_{1,2,3}.txt`; for a photo `NAME_depth_full.npy`
/// and `NAME_normal_full.npy` first, at the photo's resolution, where the others are its crop's,
/// and `NAME_camera.json`), checked against `size` and for non-finite values (every score would
/// silently turn NaN).
pub fn read_prediction(dir: &Path, name: &str, size: (usize, usize)) -> Result<SavedPrediction, FileError> {
    // The map's file and whether it is at the photo's resolution.
    let npy_file = |map: &str| {
        [(format!("{name}_{map}_full.npy"), true), (format!("{name}_{map}.npy"), false)]
            .into_iter()
            .map(|(f, full)| (dir.join(f), full))
            .find(|(p, _)| p.exists())
    };
    let depth_file = npy_file("depth");
    let depth = match &depth_file {
        Some((path, _)) => {
            npy::read::<f32>(path)?.into_dimensionality::<Ix2>().map_err(|_| FileError::new(path, "not 2-D"))?
        }
        None => text::read_matrix(dir.join(format!("{name}.txt")))?,
    };
    let normals = if let Some((path, _)) = npy_file("normal") {
        npy::read::<f32>(&path)?.into_dimensionality::<Ix3>().map_err(|_| FileError::new(&path, "not 3-D"))?
    } else {
        let parts = (1..=3)
            .map(|k| text::read_matrix(dir.join(format!("{name}_normal_{k}.txt"))))
            .collect::<Result<Vec<_>, _>>()?;
        stack(Axis(2), &parts.iter().map(|p| p.view()).collect::<Vec<_>>())
            .map_err(|e| FileError::new(dir.join(name), e))?
    };
    if depth.dim() != size || (normals.dim().0, normals.dim().1) != size {
        return Err(FileError::new(dir.join(name), format!("prediction size differs from the ground truth {size:?}")));
    }
    if depth.iter().chain(normals.iter()).any(|v| !v.is_finite()) {
        return Err(FileError::new(dir.join(name), "prediction contains NaN or infinite values"));
    }
    let camera_path = dir.join(format!("{name}_camera.json"));
    let camera = if camera_path.exists() {
        // The photo's depth is in the photo's pixels; its crop's in the crop's, as written.
        let camera = read_camera_json(&camera_path)?;
        let full = depth_file.is_some_and(|(_, full)| full);
        Some(if full { camera.full_frame() } else { camera })
    } else {
        None
    };
    Ok(SavedPrediction { depth, normals, camera })
}

/// The normals of `depth` seen through `camera`, on the mask.
fn depth_normals(depth: &Array2<f32>, mask: &Array2<f32>, camera: &Camera) -> Array3<f32> {
    let (h, w) = mask.dim();
    let normals = normals_of_depth(&row_major(depth), &row_major(mask), h, w, camera);
    Array3::from_shape_fn((h, w, 3), |(r, c, k)| normals[r * w + c][k])
}

/// Scores one image's prediction against its ground truth; the depth's normals are seen through
/// `camera` (the frame's own, or the one the prediction was made with).
pub fn evaluate(
    name: &str,
    gt: &LabelledFrame,
    depth: &Array2<f32>,
    normals: &Array3<f32>,
    camera: &Camera,
) -> ImageRow {
    let parts = Iuv::decode(&gt.person.iuv).map(|iuv| iuv.part).unwrap_or_else(|_| Array2::zeros(gt.person.mask.dim()));
    ImageRow {
        name: name.to_string(),
        depth: depth_metrics(depth, &gt.depth, &gt.person.mask),
        normals: normal_metrics(normals, &gt.normals, &gt.person.mask),
        depth_normals: normal_metrics(&depth_normals(depth, &gt.person.mask, camera), &gt.normals, &gt.person.mask),
        parts: per_part(depth, &gt.depth, normals, &gt.normals, &gt.person.mask, &parts)
            .into_iter()
            .map(|(part, depth, normals)| PartRow { part, depth, normals })
            .collect(),
    }
}

/// What one network alone outputs, for scoring a training stage on held-out frames.
#[derive(Debug, Clone, Copy)]
pub enum StageOutput<'a> {
    /// The normal net's normals (H, W, 3).
    Normals(&'a Array3<f32>),
    /// The depth net's depth (H, W).
    Depth(&'a Array2<f32>),
}

/// Scores one network's output for `gt`: the normals' errors, or the depth's and those of its
/// normals; the other scores and the per-part rows stay empty.
pub fn evaluate_output(name: &str, gt: &LabelledFrame, output: StageOutput) -> ImageRow {
    let mask = &gt.person.mask;
    let (depth, normals, depth_normals_metrics) = match output {
        StageOutput::Normals(n) => (None, normal_metrics(n, &gt.normals, mask), None),
        StageOutput::Depth(d) => (
            depth_metrics(d, &gt.depth, mask),
            None,
            normal_metrics(&depth_normals(d, mask, &gt.camera), &gt.normals, mask),
        ),
    };
    ImageRow { name: name.to_string(), depth, normals, depth_normals: depth_normals_metrics, parts: Vec::new() }
}

/// One score of an image: its column in the printed table and eval.csv, its key in eval.json's
/// aggregate (the mean over the images that have it).
struct Column {
    header: &'static str,
    key: &'static str,
    value: fn(&ImageRow) -> Option<f64>,
}

const COLUMNS: [Column; 12] = [
    Column { header: "depth_rmse", key: "depth_rmse", value: |r| r.depth.map(|d| d.rmse) },
    Column { header: "depth_absrel", key: "depth_abs_rel", value: |r| r.depth.map(|d| d.abs_rel) },
    Column { header: "depth_rmse_raw", key: "depth_rmse_raw", value: |r| r.depth.map(|d| d.rmse_raw) },
    Column { header: "rmse_shift", key: "depth_rmse_shift", value: |r| r.depth.map(|d| d.rmse_shift) },
    Column { header: "normal_mean", key: "normal_mean_deg", value: |r| r.normals.map(|n| n.mean_deg) },
    Column { header: "normal_median", key: "normal_median_deg", value: |r| r.normals.map(|n| n.median_deg) },
    Column { header: "lt_11.25", key: "within_11_25", value: |r| r.normals.map(|n| n.within_11_25) },
    Column { header: "lt_22.5", key: "within_22_5", value: |r| r.normals.map(|n| n.within_22_5) },
    Column { header: "lt_30", key: "within_30", value: |r| r.normals.map(|n| n.within_30) },
    Column { header: "detail_ratio", key: "normal_detail_ratio", value: |r| r.normals?.detail.map(|d| d.ratio) },
    Column { header: "detail_corr", key: "normal_detail_corr", value: |r| r.normals?.detail.map(|d| d.correlation) },
    Column { header: "dnormal_mean", key: "depth_normal_mean_deg", value: |r| r.depth_normals.map(|n| n.mean_deg) },
];

fn row_values(r: &ImageRow) -> [f64; 12] {
    COLUMNS.each_ref().map(|c| (c.value)(r).unwrap_or(f64::NAN))
}

/// The mean of each score over the images that have it (NaN where none has).
pub fn aggregate(rows: &[ImageRow]) -> [f64; 12] {
    COLUMNS.each_ref().map(|c| {
        let v: Vec<f64> = rows.iter().filter_map(c.value).collect();
        if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
    })
}

/// The aggregate by eval.json's keys, leaving out the scores no image has.
pub fn aggregate_named(rows: &[ImageRow]) -> Vec<(&'static str, f64)> {
    COLUMNS.iter().zip(aggregate(rows)).filter(|(_, v)| v.is_finite()).map(|(c, v)| (c.key, v)).collect()
}

fn header() -> impl Iterator<Item = &'static str> + Clone {
    ["image"].into_iter().chain(COLUMNS.iter().map(|c| c.header))
}

/// The table printed by `hdnet eval`: one line per image, then the mean.
pub fn table(rows: &[ImageRow]) -> String {
    let cells = |values: [f64; 12]| values.iter().map(|v| format!("{v:>14.4}")).collect::<String>();
    let mut out = header().map(|h| format!("{h:>14}")).collect::<String>() + "\n";
    for r in rows {
        out += &format!("{:>14}{}\n", r.name, cells(row_values(r)));
    }
    out + &format!("{:>14}{}\n", "mean", cells(aggregate(rows)))
}

/// Writes `eval.json` (every row, parts included, and the aggregate) and `eval.csv` (one line per
/// image and the mean) into `out`, each atomically.
pub fn write_reports(out: &Path, rows: &[ImageRow]) -> Result<(), FileError> {
    std::fs::create_dir_all(out).map_err(|e| FileError::new(out, e))?;
    let means = aggregate(rows);
    let mut agg = serde_json::Map::from_iter([("images".to_string(), rows.len().into())]);
    agg.extend(COLUMNS.iter().zip(means).map(|(c, v)| (c.key.to_string(), v.into())));
    let json = serde_json::json!({ "images": rows, "aggregate": agg });
    let json = serde_json::to_string_pretty(&json).map_err(|e| FileError::new(out.join("eval.json"), e))?;
    hdnet_formats::write_atomic(&out.join("eval.json"), json.as_bytes())?;
    let mut csv = header().collect::<Vec<_>>().join(",") + "\n";
    for r in rows {
        csv += &format!("{},{}\n", r.name, row_values(r).map(|v| v.to_string()).join(","));
    }
    csv += &format!("mean,{}\n", means.map(|v| v.to_string()).join(","));
    hdnet_formats::write_atomic(&out.join("eval.csv"), csv.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(depth: f32) -> LabelledFrame {
        let (h, w) = (6, 5);
        let mask = Array2::from_shape_fn((h, w), |(r, _)| if r < 4 { 1.0 } else { 0.0 });
        LabelledFrame {
            camera: Camera::original(),
            person: hdnet_formats::images::PersonImage::new(
                "f",
                &Array3::zeros((h, w, 3)),
                mask,
                Array3::zeros((h, w, 3)),
            ),
            depth: Array2::from_shape_fn((h, w), |(r, c)| if r < 4 { depth + 0.01 * (r + c) as f32 } else { 0.0 }),
            normals: Array3::from_shape_fn((h, w, 3), |(r, _, k)| if r < 4 && k == 2 { -1.0 } else { 0.0 }),
        }
    }

    #[test]
    fn flat_baseline_has_exact_normals_and_the_aggregate_is_the_mean() {
        let gt = frame(3.0);
        let (depth, normals) = baseline_prediction(&gt, None).unwrap();
        assert!(depth.iter().zip(&gt.person.mask).all(|(d, m)| *d == m * DEPTH_MEDIAN));
        let row = evaluate("f", &gt, &depth, &normals, &gt.camera);
        assert_eq!(row.normals.unwrap().mean_deg, 0.0);
        // A flat depth map fits the tilted ground truth only by its shift: RMSE of a plane's residual.
        let second = evaluate("g", &frame(5.0), &depth, &normals, &gt.camera);
        let means = aggregate(&[row, second]);
        let normal_mean = COLUMNS.iter().position(|c| c.key == "normal_mean_deg").unwrap();
        assert_eq!(means[normal_mean], 0.0);
        assert!(means[0] > 0.0 && means[0] < 0.05, "{}", means[0]);
        let mean = Array2::<f32>::zeros((2, 2));
        assert_eq!(baseline_prediction(&gt, Some(&mean)).unwrap_err(), "6x5, the mean depth map is 2x2");
    }

    #[test]
    fn a_stage_output_gets_only_its_own_scores() {
        let gt = frame(3.0);
        let (depth, normals) = baseline_prediction(&gt, None).unwrap();
        let normal_row = evaluate_output("n", &gt, StageOutput::Normals(&normals));
        assert_eq!(normal_row.normals.unwrap().mean_deg, 0.0);
        assert!(normal_row.depth.is_none() && normal_row.depth_normals.is_none());
        // The ground truth's own depth: no depth error, and its normals are the plane's
        // (x + y tilt of 0.01 m per pixel), not the frame's flat ground-truth normals.
        let depth_row = evaluate_output("d", &gt, StageOutput::Depth(&gt.depth));
        assert!(depth_row.depth.unwrap().rmse < 1e-6);
        assert!(depth_row.depth_normals.unwrap().mean_deg > 1.0);
        let named = aggregate_named(&[normal_row, evaluate_output("f", &gt, StageOutput::Depth(&depth))]);
        let keys: Vec<&str> = named.iter().map(|(k, _)| *k).collect();
        // No normal_detail_*: the frame's ground-truth normals are flat, without relief to score.
        assert_eq!(
            keys,
            [
                "depth_rmse",
                "depth_abs_rel",
                "depth_rmse_raw",
                "depth_rmse_shift",
                "normal_mean_deg",
                "normal_median_deg",
                "within_11_25",
                "within_22_5",
                "within_30",
                "depth_normal_mean_deg"
            ]
        );
        let only_normals = aggregate_named(&[evaluate_output("n", &gt, StageOutput::Normals(&normals))]);
        assert_eq!(only_normals.len(), 5);
        assert_eq!(only_normals[0], ("normal_mean_deg", 0.0));
    }

    #[test]
    fn a_photos_prediction_is_read_at_the_photos_resolution() {
        // `infer` writes a photo's maps twice: NAME_depth.npy of its 256 crop, and
        // NAME_depth_full.npy at the photo's size, which its ground truth has.
        let dir = tempfile::tempdir().unwrap();
        let write = |file: &str, value: f32, channels: usize| {
            let path = dir.path().join(file);
            if channels == 1 {
                npy::write(&path, &Array2::from_elem((2, 3), value)).unwrap();
            } else {
                npy::write(&path, &Array3::from_elem((2, 3, channels), value)).unwrap();
            }
        };
        write("a_depth.npy", 1.0, 1);
        write("a_normal.npy", 0.1, 3);
        let crop = read_prediction(dir.path(), "a", (2, 3)).unwrap();
        assert_eq!((crop.depth[(1, 2)], crop.normals[(1, 2, 0)], crop.camera), (1.0, 0.1, None));
        // The photo's camera as `infer` writes it: seen from the crop's pixels as written, from
        // the photo's own pixels without the crop's placing.
        let camera = Camera::photo_crop(500.0, [1.5, 1.0], [0.25, 0.25], 1.5, 3);
        hdnet_data::layout::write_camera_json(&dir.path().join("a_camera.json"), &camera).unwrap();
        assert_eq!(read_prediction(dir.path(), "a", (2, 3)).unwrap().camera, Some(camera));
        write("a_depth_full.npy", 2.0, 1);
        write("a_normal_full.npy", 0.2, 3);
        let full = read_prediction(dir.path(), "a", (2, 3)).unwrap();
        assert_eq!((full.depth[(1, 2)], full.normals[(1, 2, 0)]), (2.0, 0.2));
        assert_eq!(full.camera, Some(Camera { origin: [0.0, 0.0], scaling: 1.0, ..camera }));
        std::fs::write(dir.path().join("a_camera.json"), r#"{"fx": -1}"#).unwrap();
        let err = read_prediction(dir.path(), "a", (2, 3)).err().unwrap().to_string();
        assert!(err.contains("a_camera.json") && err.contains("not a camera"), "{err}");
    }

    #[test]
    fn the_depths_normals_are_seen_through_the_camera_given() {
        // A plane whose depth grows by 1 cm a column, against true normals facing the camera:
        // through a camera whose pixels span 1 cm at 4 m it is tilted 45 degrees about the
        // vertical; through one of twice the focal length (pixels of 5 mm) atan(2) = 63.4.
        let mut gt = frame(4.0);
        let (h, w) = gt.person.mask.dim();
        let camera = Camera::for_crop(&vec![4.0; h * w], &vec![1.0; h * w], 0.01, w);
        let depth = Array2::from_shape_fn((h, w), |(_, c)| 4.0 + 0.01 * c as f32);
        gt.depth = depth.clone();
        let normals = gt.normals.clone();
        let tilt = |camera: &Camera| evaluate("a", &gt, &depth, &normals, camera).depth_normals.unwrap().mean_deg;
        assert!((tilt(&camera) - 45.0).abs() < 0.5, "{}", tilt(&camera));
        let steeper = Camera { fx: camera.fx * 2.0, fy: camera.fy * 2.0, ..camera };
        assert!((tilt(&steeper) - 2.0f64.atan().to_degrees()).abs() < 0.5, "{}", tilt(&steeper));
    }

    #[test]
    fn reports_hold_every_image_and_the_mean() {
        let gt = frame(3.0);
        let (depth, normals) = baseline_prediction(&gt, None).unwrap();
        let rows = vec![evaluate("a", &gt, &depth, &normals, &gt.camera)];
        let dir = tempfile::tempdir().unwrap();
        write_reports(dir.path(), &rows).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("eval.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.starts_with("image,depth_rmse,"));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("eval.json")).unwrap()).unwrap();
        assert_eq!(json["aggregate"]["images"], 1);
        assert_eq!(json["aggregate"]["normal_mean_deg"], 0.0);
        assert!(table(&rows).lines().nth(2).unwrap().trim_start().starts_with("mean"));
    }
}
