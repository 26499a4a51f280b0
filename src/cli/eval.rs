//! `hdnet eval`: accuracy of depth and normal predictions against a labelled folder, or, for a
//! folder of real photos (`--photos`), the joints' front-to-back agreement with MediaPipe's 3D
//! keypoints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use hdnet_data::layout::{
    LabelledFrame, dirs, frame_names, frame_png, frames_without_color, missing_color, read_labelled,
};
use hdnet_eval::evaluation::{
    Baseline, SavedPrediction, baseline_prediction, evaluate, mean_depth, read_prediction, table, write_reports,
};
use hdnet_formats::FileError;
use hdnet_geometry::Integration;
use ndarray::Array2;

use super::batch::Batch;

#[derive(clap::Args)]
pub struct Args {
    /// Labelled folder with the ground truth (color_WO_bg/, mask/, densepose/, depth/, normal/).
    #[arg(long, required_unless_present = "photos")]
    gt: Option<PathBuf>,
    /// Real photos of people (PNG, JPEG or WebP) instead: each photo's predicted depth must order the
    /// body's visible joints front-to-back as MediaPipe's 3D pose model does (pairs over 8 cm
    /// apart); writes eval_photos.json.
    #[arg(long, conflicts_with_all = ["gt", "pred", "mean_of"])]
    photos: Option<PathBuf>,
    /// Folder of predictions named like the ground truth: NAME_depth.npy or NAME.txt, and
    /// NAME_normal.npy or NAME_normal_{1,2,3}.txt (what `hdnet infer` writes; for photos its
    /// NAME_depth_full.npy and NAME_normal_full.npy, at the photo's resolution, come first, and
    /// the depth's normals are seen through its NAME_camera.json).
    #[arg(long, conflicts_with_all = ["weights", "baseline"])]
    pred: Option<PathBuf>,
    /// Predict with these weights (default, without --pred or --baseline: the bundled model).
    #[arg(long, conflicts_with = "baseline")]
    weights: Option<PathBuf>,
    /// Score a baseline instead: normals facing the camera everywhere, and depth flat (`flat`)
    /// or the per-pixel mean of the ground-truth depth maps of --mean-of (`mean-depth`).
    #[arg(long, value_enum)]
    baseline: Option<BaselineArg>,
    /// Labelled folder whose ground-truth depth maps `mean-depth` averages: the training set for
    /// the usual baseline; default --gt itself, a baseline that knows the test set and so
    /// flatters itself.
    #[arg(long, requires = "baseline")]
    mean_of: Option<PathBuf>,
    /// Where eval.json and eval.csv go (default: --pred, or --gt/eval when predicting).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    refine: super::RefineArgs,
    #[command(flatten)]
    flip: super::FlipArgs,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Replace an existing eval.json / eval.csv.
    #[arg(long)]
    overwrite: bool,
}

/// One photo's joint-order agreement.
#[derive(serde::Serialize)]
struct PhotoRow {
    photo: String,
    pairs: usize,
    agreement: Option<f32>,
    /// The pairs the prediction orders the other way (or ties), to see where it errs.
    disagreeing: Vec<hdnet_eval::joints::JointPair>,
}

fn eval_photos(args: &Args, dir: &Path) -> anyhow::Result<ExitCode> {
    use hdnet_eval::joints::Agreement;
    let photos = hdnet_formats::images::list_photos(dir)?;
    if photos.is_empty() {
        bail!("{}: no PNG, JPEG or WebP photos found", dir.display());
    }
    let out = args.out.clone().unwrap_or_else(|| dir.join("eval_photos"));
    if out.join("eval_photos.json").exists() && !args.overwrite {
        bail!("{}: already exists (pass --overwrite to replace it)", out.join("eval_photos.json").display());
    }
    let model = match args.baseline {
        Some(BaselineArg::Flat) => None,
        Some(BaselineArg::MeanDepth) => bail!("--photos scores --baseline flat only (photos have no mean depth)"),
        None => Some(super::load_model(args.weights.as_deref(), &args.device, args.flip)?),
    };
    let refine = model.as_ref().map(|m| args.refine.integration(m)).transpose()?.flatten();
    let segmenter = hdnet_segment::person::Segmenter::new(&super::device(&args.device)?);
    let (mut rows, mut total) = (Vec::new(), Agreement::default());
    let mut batch = Batch::new(photos.len());
    for photo in &photos {
        let scored = hdnet_infer::photo::photo_joint_pairs(photo, &segmenter, model.as_ref(), refine);
        let name = photo.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        match scored {
            Ok(pairs) => {
                let a = Agreement::of(&pairs);
                let share = a.share().map_or("-".into(), |s| format!("{:.1}%", 100.0 * s));
                batch.row(format!("{name:<32} {:>4} pairs  {share}", a.pairs));
                total = total + a;
                let disagreeing = pairs.into_iter().filter(|p| p.score() < 1.0).collect();
                rows.push(PhotoRow { photo: name, pairs: a.pairs, agreement: a.share(), disagreeing });
            }
            Err(e) => batch.fail(format!("skipped {name}: {e}")),
        }
        batch.advance(1);
    }
    let status = batch.finish();
    let overall = total.share();
    println!(
        "joints ordered as the 3D pose model orders them: {} of {} pairs over {} photos",
        overall.map_or("-".into(), |s| format!("{:.1}%", 100.0 * s)),
        total.pairs,
        rows.len()
    );
    std::fs::create_dir_all(&out).map_err(|e| FileError::new(&out, e))?;
    let report = serde_json::json!({ "agreement": overall, "pairs": total.pairs, "photos": rows });
    hdnet_formats::write_atomic(&out.join("eval_photos.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(status)
}

/// Where the scored depth and normals come from.
enum Predictions<'a> {
    /// A baseline, with the mean depth map for `mean-depth`.
    Baseline(Option<Array2<f32>>),
    Folder(&'a Path),
    Model {
        net: Box<hdnet_model::Hdnet>,
        refine: Option<Integration>,
    },
}

impl Predictions<'_> {
    /// The prediction for frame `name` of the labelled folder `gt_root`, whose ground truth is `gt`.
    fn for_frame(&self, gt_root: &Path, name: &str, gt: &LabelledFrame) -> Result<SavedPrediction, FileError> {
        match self {
            Predictions::Baseline(mean) => {
                let (depth, normals) = baseline_prediction(gt, mean.as_ref())
                    .map_err(|e| FileError::new(frame_png(gt_root, dirs::MASK, name), e))?;
                Ok(SavedPrediction { depth, normals, camera: None })
            }
            Predictions::Model { net, refine } => {
                let (h, w) = gt.person.mask.dim();
                hdnet_model::pipeline::check_network_size(h, w)
                    .map_err(|e| FileError::new(frame_png(gt_root, dirs::COLOR, name), e))?;
                let p = net.predict(&[&gt.person]).remove(0);
                let depth = p.refined_depth(&gt.person.mask, &gt.camera, *refine) * &gt.person.mask;
                Ok(SavedPrediction { depth, normals: p.normals, camera: None })
            }
            Predictions::Folder(dir) => read_prediction(dir, name, gt.person.mask.dim()),
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BaselineArg {
    Flat,
    MeanDepth,
}

impl From<BaselineArg> for Baseline {
    fn from(b: BaselineArg) -> Self {
        match b {
            BaselineArg::Flat => Baseline::Flat,
            BaselineArg::MeanDepth => Baseline::MeanDepth,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let predicting_here = args.pred.is_none() && args.baseline.is_none();
    for (given, flags) in
        [(args.refine.given(), "--refine, --no-refine and --relief"), (args.flip.given(), "--flip and --no-flip")]
    {
        if given && !predicting_here {
            bail!("{flags} apply to the predictions made here, not to --pred or --baseline");
        }
    }
    let gt_root = match (&args.gt, &args.photos) {
        (_, Some(photos)) => return eval_photos(&args, photos),
        (Some(gt), None) => gt.clone(),
        (None, None) => bail!("--gt or --photos is needed"),
    };
    let baseline = args.baseline.map(Baseline::from);
    let names = frame_names(&gt_root)?;
    if names.is_empty() {
        bail!("{}: no ground-truth frames (color_WO_bg/*.png)", gt_root.display());
    }
    let out = args.out.clone().unwrap_or_else(|| {
        args.pred.clone().unwrap_or_else(|| {
            gt_root.join(match baseline {
                Some(Baseline::Flat) => "eval_flat",
                Some(Baseline::MeanDepth) => "eval_mean_depth",
                None => "eval",
            })
        })
    });
    for f in ["eval.json", "eval.csv"] {
        if out.join(f).exists() && !args.overwrite {
            bail!("{}: already exists (pass --overwrite to replace it)", out.join(f).display());
        }
    }
    let predictions = match (&args.pred, baseline, &args.mean_of) {
        (_, Some(Baseline::MeanDepth), mean_of) => {
            Predictions::Baseline(Some(mean_depth(mean_of.as_ref().unwrap_or(&gt_root))?))
        }
        (_, _, Some(_)) => bail!("--mean-of is for --baseline mean-depth only"),
        (_, Some(_), None) => Predictions::Baseline(None),
        (Some(dir), None, None) => Predictions::Folder(dir),
        (None, None, None) => {
            let net = Box::new(super::load_model(args.weights.as_deref(), &args.device, args.flip)?);
            let refine = args.refine.integration(&net)?;
            Predictions::Model { net, refine }
        }
    };
    let mut batch = Batch::new(names.len());
    let mut rows = Vec::new();
    for orphan in frames_without_color(&gt_root) {
        batch.fail(format!("skipped: {}", missing_color(&orphan)));
    }
    for name in &names {
        let result = read_labelled(&gt_root, name).and_then(|gt| {
            let p = predictions.for_frame(&gt_root, name, &gt)?;
            Ok(evaluate(name, &gt, &p.depth, &p.normals, p.camera.as_ref().unwrap_or(&gt.camera)))
        });
        match result {
            Ok(row) => rows.push(row),
            Err(e) => batch.fail(format!("skipped {name}: {e}")),
        }
        batch.advance(1);
    }
    let skipped = batch.failed();
    let status = batch.finish();
    print!("{}", table(&rows));
    write_reports(&out, &rows)?;
    println!("{} images evaluated, {skipped} skipped; wrote {}", rows.len(), out.join("eval.json").display());
    Ok(status)
}
