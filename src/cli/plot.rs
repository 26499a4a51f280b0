//! `hdnet plot LOG...`: convergence curves of training logs (train_log.jsonl) to a PNG.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use hdnet_train::curves;
use hdnet_train::run_log::{Reading, Series, read_series};

#[derive(clap::Args)]
pub struct Args {
    /// train_log.jsonl files written by `hdnet train`; with several, each curve is named after
    /// its run's folder.
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// The horizontal axis: the step, the wall-clock "seconds" of each process, or the run's
    /// "cpu_seconds" (runs sharing a machine compare by it).
    #[arg(long, value_enum, default_value = "step")]
    x: Axis,
    /// Draw only these keys (comma separated, e.g. `normal_mean_deg,total`).
    #[arg(long, value_delimiter = ',')]
    keys: Vec<String>,
    /// The PNG to write (default: next to the first log, convergence.png).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Axis {
    Step,
    Seconds,
    CpuSeconds,
}

impl Axis {
    fn key(self) -> &'static str {
        match self {
            Axis::Step => "step",
            Axis::Seconds => "seconds",
            Axis::CpuSeconds => "cpu_seconds",
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reading = Reading { x: args.x.key(), keys: &args.keys, name_runs: args.logs.len() > 1 };
    let (mut losses, mut held_out) = (Series::new(), Series::new());
    for log in &args.logs {
        read_series(log, reading, &mut losses, &mut held_out)?;
    }
    if losses.is_empty() && held_out.is_empty() {
        bail!("{}: no loss values with a \"{}\"", args.logs[0].display(), args.x.key());
    }
    let out = args.out.clone().unwrap_or_else(|| args.logs[0].with_file_name("convergence.png"));
    if out.exists() && !args.overwrite {
        bail!("{}: already exists (pass --overwrite to replace it)", out.display());
    }
    let logs: Vec<String> = args.logs.iter().map(|l| l.display().to_string()).collect();
    let caption = format!("hdnet training: {}", logs.join(", "));
    let chart = curves::draw(&caption, args.x.key(), &losses, &held_out).map_err(anyhow::Error::msg)?;
    hdnet_formats::visual::save_png(&out, &chart)?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
