//! `hdnet plot LOG...`: convergence curves of training logs (train_log.jsonl) to a PNG.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// DejaVu Sans (Bitstream Vera licence, assets/fonts/LICENSE-DejaVu.txt), so that plots have text
/// on machines without system fonts.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

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

type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// The training losses (every numeric field but the bookkeeping ones) and the held-out scores
/// (the fields of "heldout") of every log, as (x, value) series; lines without the x field are
/// left out.
fn read_series(args: &Args) -> anyhow::Result<(Series, Series)> {
    let (mut losses, mut held_out) = (Series::new(), Series::new());
    for log in &args.logs {
        let text = std::fs::read_to_string(log).with_context(|| format!("{}: cannot read", log.display()))?;
        let run =
            log.parent().and_then(|d| d.file_name()).map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let name = |key: &str| if args.logs.len() > 1 { format!("{run}: {key}") } else { key.to_string() };
        let wanted = |key: &str| args.keys.is_empty() || args.keys.iter().any(|k| k == key);
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let value: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{}: line {}: not JSON", log.display(), i + 1))?;
            value["step"].as_f64().with_context(|| format!("{}: line {}: no step", log.display(), i + 1))?;
            let Some(x) = value[args.x.key()].as_f64() else { continue };
            for (key, v) in value.as_object().into_iter().flatten() {
                let bookkeeping = ["step", "seconds", "cpu_seconds"].contains(&key.as_str());
                if let (Some(v), false, true) = (v.as_f64(), bookkeeping, wanted(key)) {
                    losses.entry(name(key)).or_default().push((x, v));
                }
            }
            for (key, v) in value["heldout"].as_object().into_iter().flatten().filter(|(k, _)| wanted(k)) {
                if let Some(v) = v.as_f64() {
                    held_out.entry(name(key)).or_default().push((x, v));
                }
            }
        }
    }
    if losses.is_empty() && held_out.is_empty() {
        bail!("{}: no loss values with a \"{}\"", args.logs[0].display(), args.x.key());
    }
    Ok((losses, held_out))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (losses, held_out) = read_series(&args)?;
    let out = args.out.clone().unwrap_or_else(|| args.logs[0].with_file_name("convergence.png"));
    if out.exists() && !args.overwrite {
        bail!("{}: already exists (pass --overwrite to replace it)", out.display());
    }
    register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow::anyhow!("the bundled font cannot be read"))?;
    let w = 1000u32;
    let h = if held_out.is_empty() { 600u32 } else { 1000 };
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        let logs: Vec<String> = args.logs.iter().map(|l| l.display().to_string()).collect();
        let caption = format!("hdnet training: {}", logs.join(", "));
        let x = args.x.key();
        if held_out.is_empty() {
            draw_losses(&root, &caption, x, &losses)?;
        } else {
            let (top, bottom) = root.split_vertically(500);
            draw_losses(&top, &caption, x, &losses)?;
            draw_scores(&bottom, x, &held_out)?;
        }
        root.present().map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    }
    let img = image::RgbImage::from_raw(w, h, pixels).context("plot buffer")?;
    hdnet_formats::visual::save_png(&out, &img)?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The horizontal extent and the smallest positive and the largest value of `series`.
fn bounds(series: &Series) -> (f64, f64, f64) {
    let (x_max, y_min, y_max) =
        series.values().flatten().fold((1.0f64, f64::INFINITY, 0.0f64), |(x, lo, hi), &(s, v)| {
            (x.max(s), if v > 0.0 { lo.min(v) } else { lo }, hi.max(v))
        });
    (x_max, if y_min.is_finite() { y_min } else { 1e-6 }, y_max)
}

/// Losses on a log scale spanning at least a decade (they fall by orders of magnitude).
fn draw_losses(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    caption: &str,
    x_desc: &str,
    series: &Series,
) -> anyhow::Result<()> {
    let (x_max, lo, hi) = bounds(series);
    let y = (lo * 0.8..(hi * 1.2).max(lo * 8.0)).log_scale();
    draw_chart(area, caption, x_desc, "loss (log scale)", series, x_max, y)
}

/// Scores on a linear scale around their values (they move by percents).
fn draw_scores(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    x_desc: &str,
    series: &Series,
) -> anyhow::Result<()> {
    let (x_max, lo, hi) = bounds(series);
    let pad = 0.05 * (hi - lo).max(0.01 * hi.abs()).max(1e-6);
    draw_chart(area, "held-out scores (eval.json's keys)", x_desc, "score", series, x_max, lo - pad..hi + pad)
}

/// One chart of `series` against `x_desc`, on the vertical coordinate `y`.
fn draw_chart<Y>(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    series: &Series,
    x_max: f64,
    y: Y,
) -> anyhow::Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, y)
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).draw().map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    for (k, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let positive = values.iter().copied().filter(|&(_, v)| v > 0.0);
        chart
            .draw_series(LineSeries::new(positive, color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    Ok(())
}
