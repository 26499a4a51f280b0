//! `hdnet convert`: weights from the authors' TF1 checkpoints and/or hdnet files into one hdnet
//! safetensors file holding both networks (what `hdnet infer` takes), each network optionally
//! averaged with others of its architecture.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use hdnet_model::device::Device;
use hdnet_model::weights::{StoreDtype, load_hourglass, save_safetensors};
use hdnet_model::{Hourglass, NetKind};

#[derive(clap::Args)]
pub struct Args {
    /// Source of both networks: a folder of the original checkpoints (e.g. `model/` with
    /// normal_prediction/ and depth_prediction/) or an hdnet .safetensors file.
    #[arg(long, required_unless_present_all = ["normal", "depth"])]
    weights: Option<PathBuf>,
    /// Source of the normal net (overrides --weights), e.g. a training checkpoint's model.safetensors.
    #[arg(long)]
    normal: Option<PathBuf>,
    /// Source of the depth net (overrides --weights).
    #[arg(long)]
    depth: Option<PathBuf>,
    /// Average another normal net of the same architecture in: `T:PATH` stores (1 - T) x the
    /// normal net + T x PATH's, parameter by parameter (a "model soup" of two fine-tunings of
    /// one network; T in [0, 1]).
    #[arg(long, value_parser = parse_mix)]
    mix_normal: Option<Mix>,
    /// Likewise for the depth net.
    #[arg(long, value_parser = parse_mix)]
    mix_depth: Option<Mix>,
    /// Average this normal net of the same architecture in (repeatable): the normal net and
    /// every one given take equal shares, before any --mix-normal. Checkpoints of one run at a
    /// constant learning rate, averaged, beat each of them ("stochastic weight averaging",
    /// Izmailov et al., UAI 2018; MODEL.md).
    #[arg(long)]
    average_normal: Vec<PathBuf>,
    /// Likewise for the depth net.
    #[arg(long)]
    average_depth: Vec<PathBuf>,
    /// The .safetensors file to write.
    #[arg(long)]
    out: PathBuf,
    /// Store float16 weights (half the size).
    #[arg(long)]
    f16: bool,
    /// A note stored with the weights, KEY=VALUE (repeatable), e.g. `person_fill=0.55`: the share
    /// of a photo crop's side the person spans, which `hdnet infer` uses for these weights;
    /// `refine=0.001`: `infer` and `eval` refine these weights' depth by their normals with this
    /// weight unless told otherwise (`--refine`, `--no-refine`).
    #[arg(long = "note", value_parser = parse_note)]
    notes: Vec<(String, String)>,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
}

/// `--mix-*`: the share `t` of the network in `path`.
#[derive(Clone)]
struct Mix {
    t: f32,
    path: PathBuf,
}

fn parse_mix(s: &str) -> Result<Mix, String> {
    let bad = || format!("'{s}' is not T:PATH with T between 0 and 1");
    let (t, path) = s.split_once(':').ok_or_else(bad)?;
    let t: f32 = t.parse().map_err(|_| bad())?;
    if !(0.0..=1.0).contains(&t) || path.is_empty() {
        return Err(bad());
    }
    Ok(Mix { t, path: PathBuf::from(path) })
}

/// `net` (of `kind`) averaged with the networks of `average` (equal shares), then with `mix`'s
/// (its share); both noted.
fn combined(
    mut net: Hourglass,
    kind: NetKind,
    average: &[PathBuf],
    mix: Option<&Mix>,
    device: &Device,
    notes: &mut HashMap<String, String>,
) -> anyhow::Result<Hourglass> {
    // A running mean: the k-th network joins the mean of the k before it with share 1 / (k + 1).
    for (k, path) in average.iter().enumerate() {
        net = interpolated(&net, kind, path, 1.0 / (k + 2) as f32, device)?;
    }
    if !average.is_empty() {
        let paths: Vec<String> = average.iter().map(|p| p.display().to_string()).collect();
        notes.insert(format!("{}_average", kind.name()), paths.join(";"));
    }
    if let Some(Mix { t, path }) = mix {
        net = interpolated(&net, kind, path, *t, device)?;
        notes.insert(format!("{}_mix", kind.name()), format!("{t}:{}", path.display()));
    }
    Ok(net)
}

/// `(1 - t) net + t` the `kind` network of `path`.
fn interpolated(net: &Hourglass, kind: NetKind, path: &Path, t: f32, device: &Device) -> anyhow::Result<Hourglass> {
    let other = load_hourglass(path, kind, device)?;
    net.interpolate(&other, kind, t).with_context(|| {
        format!("{}: its {} has another architecture ({:?})", path.display(), kind.name(), other.config(kind))
    })
}

fn parse_note(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("'{s}' is not KEY=VALUE"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.out.exists() && !args.overwrite {
        bail!("{}: already exists (pass --overwrite to replace it)", args.out.display());
    }
    let device = super::device("cpu")?;
    let source =
        |specific: &Option<PathBuf>| specific.clone().or_else(|| args.weights.clone()).context("no source given");
    let (normal_src, depth_src) = (source(&args.normal)?, source(&args.depth)?);
    let mut notes = HashMap::from([
        ("normal_net_source".to_string(), normal_src.display().to_string()),
        ("depth_net_source".to_string(), depth_src.display().to_string()),
    ]);
    let normal = load_hourglass(&normal_src, NetKind::Normal, &device)?;
    let normal =
        combined(normal, NetKind::Normal, &args.average_normal, args.mix_normal.as_ref(), &device, &mut notes)?;
    let depth = load_hourglass(&depth_src, NetKind::Depth, &device)?;
    let depth = combined(depth, NetKind::Depth, &args.average_depth, args.mix_depth.as_ref(), &device, &mut notes)?;
    notes.extend(args.notes.iter().cloned());
    let dtype = if args.f16 { StoreDtype::F16 } else { StoreDtype::F32 };
    let nets = [(NetKind::Normal, &normal), (NetKind::Depth, &depth)];
    save_safetensors(&args.out, &nets, dtype, notes).context("writing the converted weights")?;
    for (kind, net) in nets {
        let c = net.config(kind);
        println!("{}: {} -> {} channels, widths {:?}", kind.name(), c.in_channels, c.out_channels, c.widths);
    }
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
