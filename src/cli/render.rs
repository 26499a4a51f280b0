//! `hdnet render MESH.ply --turntable`: a predicted mesh turning around, as a GIF or PNG frames.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use hdnet_formats::mesh::{ColoredMesh, read_ply};
use hdnet_formats::{FileError, visual};

#[derive(clap::Args)]
pub struct Args {
    /// A mesh written by `hdnet infer` (NAME.ply: camera-space metres, coloured).
    mesh: PathBuf,
    /// Render the mesh turning a full circle about its vertical axis.
    #[arg(long, required = true)]
    turntable: bool,
    /// Output: a .gif, or a folder for numbered PNG frames (default: next to the mesh, .gif).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Views in the circle.
    #[arg(long, default_value_t = 36)]
    frames: usize,
    /// Side of each square view (pixels).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Plain grey instead of the photo's colours: the shape alone (folds, face, limbs).
    #[arg(long)]
    clay: bool,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
}

/// A turntable of an hour at 10 frames/s; views of 16 megapixels: generous bounds that keep a
/// mistyped number from allocating gigabytes or running for minutes.
const MAX_FRAMES: usize = 3600;
const MAX_SIZE: usize = 4096;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(1..=MAX_FRAMES).contains(&args.frames) || !(1..=MAX_SIZE).contains(&args.size) {
        bail!("--frames must be 1..={MAX_FRAMES} and --size 1..={MAX_SIZE}");
    }
    let out = args.out.clone().unwrap_or_else(|| args.mesh.with_extension("gif"));
    if out.exists() && !args.overwrite {
        bail!("{}: already exists (pass --overwrite to replace it)", out.display());
    }
    let mut mesh = read_ply(&args.mesh)?;
    if args.clay {
        mesh.colors.fill(hdnet_render::CLAY);
    }
    if mesh.faces.is_empty() {
        bail!("{}: the mesh has no triangles", args.mesh.display());
    }
    write_turntable(&out, &mesh, args.frames, args.size)?;
    println!("wrote {} ({} views)", out.display(), args.frames);
    Ok(ExitCode::SUCCESS)
}

/// Renders the turntable to `out`: a GIF when it ends in .gif, else numbered PNGs in that folder.
pub fn write_turntable(out: &Path, mesh: &ColoredMesh, frames: usize, size: usize) -> Result<(), FileError> {
    let views = hdnet_render::turntable(&mesh.points, &mesh.colors, &mesh.faces, frames, size);
    if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("gif")) {
        // 36 views at 80 ms: one turn in about 3 s.
        return visual::save_gif(out, &views, 80);
    }
    std::fs::create_dir_all(out).map_err(|e| FileError::new(out, e))?;
    for (i, view) in views.iter().enumerate() {
        visual::save_png(out.join(format!("{i:03}.png")), &visual::side_by_side(std::slice::from_ref(view)))?;
    }
    Ok(())
}
