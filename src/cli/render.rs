//! `hdnet render MESH.ply|MESH.glb --turntable`: a predicted mesh turning around, as a GIF or PNG frames.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use hdnet_formats::mesh::read_mesh;

#[derive(clap::Args)]
pub struct Args {
    /// A mesh written by `hdnet infer`: NAME.ply or NAME.glb (coloured by its texture, if it
    /// has one).
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
    let mut mesh = read_mesh(&args.mesh)?;
    if args.clay {
        mesh.colors.fill(hdnet_render::CLAY);
    }
    if mesh.faces.is_empty() {
        bail!("{}: the mesh has no triangles", args.mesh.display());
    }
    hdnet_infer::outputs::write_turntable(&out, &mesh, args.frames, args.size)?;
    println!("wrote {} ({} views)", out.display(), args.frames);
    Ok(ExitCode::SUCCESS)
}
