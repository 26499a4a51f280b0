//! `hdnet infer`: the original inference on a folder in the test-data layout, writing the
//! original outputs plus npy arrays and a coloured PLY mesh.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use hdnet_formats::images::{TestSample, list_samples};
use hdnet_formats::{FileError, mesh, npy, text, visual};
use hdnet_geometry::Camera;
use hdnet_model::{Hdnet, Prediction};
use indicatif::ProgressBar;
use ndarray::{Array2, Axis};

/// The original networks take 256x256 crops.
const IMAGE_SIZE: (usize, usize) = (256, 256);

#[derive(clap::Args)]
pub struct Args {
    /// Folder with NAME_img.png, NAME_mask.png and NAME_dp.png files.
    dir: PathBuf,
    /// hdnet .safetensors weights, or a folder with the original TF1 checkpoints.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output folder (default: DIR/infer_out, as the original).
    #[arg(long)]
    out: Option<PathBuf>,
    /// cpu, or vulkan / cuda when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Images per forward pass (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Replace outputs that already exist (otherwise such an image is reported and skipped).
    #[arg(long)]
    overwrite: bool,
}

/// Every file written for sample NAME.
fn output_names(name: &str) -> Vec<String> {
    let mut names = vec![format!("{name}.txt")];
    names.extend((1..=3).map(|k| format!("{name}_normal_{k}.txt")));
    names.extend(["_mesh.obj", "_results.png", "_depth.npy", "_normal.npy", ".ply"].map(|s| format!("{name}{s}")));
    names
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(weights) = &args.weights else {
        bail!("no --weights given: pass an hdnet .safetensors file or the folder of the original TF1 checkpoints");
    };
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let names = list_samples(&args.dir)?;
    if names.is_empty() {
        bail!("{}: no NAME_img.png files found", args.dir.display());
    }
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("infer_out"));
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create the output folder", out.display()))?;
    let hdnet = Hdnet::load(weights, &super::device(&args.device)?)?;

    let bar = super::data::progress(names.len());
    let mut failed = 0;
    for chunk in names.chunks(args.batch) {
        let mut samples = Vec::new();
        for name in chunk {
            match load_checked(&args.dir, &out, name, args.overwrite) {
                Ok(sample) => samples.push(sample),
                Err(e) => {
                    report(&bar, format!("skipped {name}: {e}"));
                    failed += 1;
                    bar.inc(1);
                }
            }
        }
        if samples.is_empty() {
            continue;
        }
        let predictions = hdnet.predict(&samples.iter().collect::<Vec<_>>());
        for (sample, prediction) in samples.iter().zip(&predictions) {
            bar.set_message(sample.name.clone());
            match write_outputs(&out, sample, prediction) {
                Ok(warnings) => warnings.iter().for_each(|w| report(&bar, format!("warning: {}: {w}", sample.name))),
                Err(e) => {
                    report(&bar, format!("failed {}: {e}", sample.name));
                    failed += 1;
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_with_message("done");
    println!("{} of {} images written to {}", names.len() - failed, names.len(), out.display());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Prints above the progress bar (also when the bar is hidden, e.g. output not a terminal).
fn report(bar: &ProgressBar, message: String) {
    bar.suspend(|| eprintln!("{message}"));
}

fn load_checked(dir: &Path, out: &Path, name: &str, overwrite: bool) -> Result<TestSample, FileError> {
    if !overwrite {
        if let Some(existing) = output_names(name).iter().map(|f| out.join(f)).find(|p| p.exists()) {
            return Err(FileError::new(existing, "already exists (pass --overwrite to replace it)"));
        }
    }
    TestSample::load(dir, name, IMAGE_SIZE)
}

/// Writes every output of one image; returns warnings for outputs that could not be made.
fn write_outputs(out: &Path, sample: &TestSample, p: &Prediction) -> Result<Vec<String>, FileError> {
    let name = &sample.name;
    let mask = &sample.mask;
    let depth = &p.depth * mask;
    if let Some(bad) = depth.iter().find(|v| !v.is_finite()) {
        return Err(FileError::new(out.join(name), format!("the network produced a non-finite depth ({bad})")));
    }
    text::write_matrix(out.join(format!("{name}.txt")), &depth)?;
    for k in 0..3 {
        let component = p.normals.index_axis(Axis(2), k).to_owned() * mask;
        text::write_matrix(out.join(format!("{name}_normal_{}.txt", k + 1)), &component)?;
    }
    mesh::write_depth2mesh_obj(out.join(format!("{name}_mesh.obj")), &depth, mask)?;
    let (h, w) = depth.dim();
    npy::write(out.join(format!("{name}_depth.npy")), &[h, w], depth.as_slice().expect("standard layout"))?;
    npy::write(out.join(format!("{name}_normal.npy")), &[h, w, 3], p.normals.as_slice().expect("standard layout"))?;
    write_colored_ply(&out.join(format!("{name}.ply")), sample, &depth)?;
    let mut warnings = Vec::new();
    match visual::results_panel(&sample.image, &p.depth, &p.normals, mask) {
        Some(panel) => visual::save_png(out.join(format!("{name}_results.png")), &panel)?,
        None => warnings.push("no positive depth on the mask: _results.png not written".to_string()),
    }
    Ok(warnings)
}

/// The depth2mesh faces over camera-space points (metres, original camera), coloured by the input.
fn write_colored_ply(path: &Path, sample: &TestSample, depth: &Array2<f32>) -> Result<(), FileError> {
    let camera = Camera::original();
    let (points, colors): (Vec<[f32; 3]>, Vec<[u8; 3]>) = depth
        .indexed_iter()
        .map(|((r, c), &d)| {
            let color = [0, 1, 2].map(|k| sample.image[(r, c, k)] as u8);
            (camera.backproject(r as f32, c as f32, d), color)
        })
        .unzip();
    mesh::write_ply(path, &points, &colors, &mesh::depth2mesh_faces(depth, &sample.mask))
}
