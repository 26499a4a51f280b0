//! Training curves as a chart (`hdnet plot`): the losses on a log scale and, when the logs hold
//! them, the held-out scores below on a linear one.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::run_log::Series;

/// DejaVu Sans (Bitstream Vera licence, assets/fonts/LICENSE-DejaVu.txt), so that charts have
/// text on machines without system fonts.
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

const WIDTH: u32 = 1000;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// The chart of `losses` and `held_out` against the field `x`, captioned `caption`.
pub fn draw(caption: &str, x: &str, losses: &Series, held_out: &Series) -> Result<image::RgbImage, String> {
    register_font("sans-serif", FontStyle::Normal, FONT).map_err(|_| "the bundled font cannot be read")?;
    let height = if held_out.is_empty() { 600 } else { 1000 };
    let mut pixels = vec![255u8; (WIDTH * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, height)).into_drawing_area();
        if held_out.is_empty() {
            draw_losses(&root, caption, x, losses)?;
        } else {
            let (top, bottom) = root.split_vertically(500);
            draw_losses(&top, caption, x, losses)?;
            draw_scores(&bottom, x, held_out)?;
        }
        root.present().map_err(plot_error)?;
    }
    image::RgbImage::from_raw(WIDTH, height, pixels).ok_or_else(|| "the chart's buffer is short".to_string())
}

fn plot_error(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
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
fn draw_losses(area: &Area, caption: &str, x_desc: &str, series: &Series) -> Result<(), String> {
    let (x_max, lo, hi) = bounds(series);
    let y = (lo * 0.8..(hi * 1.2).max(lo * 8.0)).log_scale();
    draw_chart(area, caption, x_desc, "loss (log scale)", series, x_max, y)
}

/// Scores on a linear scale around their values (they move by percents).
fn draw_scores(area: &Area, x_desc: &str, series: &Series) -> Result<(), String> {
    let (x_max, lo, hi) = bounds(series);
    let pad = 0.05 * (hi - lo).max(0.01 * hi.abs()).max(1e-6);
    draw_chart(area, "held-out scores (eval.json's keys)", x_desc, "score", series, x_max, lo - pad..hi + pad)
}

/// One chart of `series` against `x_desc`, on the vertical coordinate `y`.
fn draw_chart<Y>(
    area: &Area,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    series: &Series,
    x_max: f64,
    y: Y,
) -> Result<(), String>
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
        .map_err(plot_error)?;
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).draw().map_err(plot_error)?;
    for (k, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let positive = values.iter().copied().filter(|&(_, v)| v > 0.0);
        chart
            .draw_series(LineSeries::new(positive, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(plot_error)?;
    Ok(())
}
