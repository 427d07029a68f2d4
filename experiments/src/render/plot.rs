//! The SVG plots of `tables` and of the energy report, drawn with plotters' SVG backend. Text is
//! laid out by plotters' built-in size estimate (no font files), so the output depends on the
//! data alone.

use anyhow::{Result, anyhow};
use plotters::prelude::*;

const SIZE: (u32, u32) = (760, 460);
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot draw the plot: {e}")
}

/// The legend of every labelled series, framed, at `position`.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// One method's points: `(relative energy, mean accuracy, sd, with masks)`.
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points in increasing energy.
    pub points: Vec<(f64, f64, f64, bool)>,
}

/// Test accuracy (percent, mean with ±1 sd bars) against relative energy, one line per method,
/// the dense model as a dashed line; masked budgets drawn as squares.
pub fn accuracy_vs_energy(series: &[Series], dense: f64, model: &str) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let x_max = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold(0.0, f64::max)
            .max(0.1)
            * 1.1;
        let y_min = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| 100.0 * (p.1 - p.2)))
            .fold(100.0 * dense, f64::min)
            .max(0.0)
            .floor();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("LeNet-5 on MNIST: accuracy vs energy (modelled on {model})"),
                ("sans-serif", 17),
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, y_min..100.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("energy relative to the dense model (exact evaluator)")
            .y_desc("test accuracy (%)")
            .draw()
            .map_err(err)?;
        let dense_style = ShapeStyle::from(&BLACK).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 100.0 * dense), (x_max, 100.0 * dense)],
                6,
                4,
                dense_style,
            ))
            .map_err(err)?
            .label(format!("dense ({:.2}%)", 100.0 * dense))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        for (i, s) in series.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|p| (p.0, 100.0 * p.1)),
                    c.stroke_width(2),
                ))
                .map_err(err)?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(s.points.iter().map(|p| {
                    ErrorBar::new_vertical(
                        p.0,
                        100.0 * (p.1 - p.2),
                        100.0 * p.1,
                        100.0 * (p.1 + p.2),
                        c.stroke_width(1),
                        6,
                    )
                }))
                .map_err(err)?;
            chart
                .draw_series(s.points.iter().filter(|p| p.3).map(|p| {
                    Rectangle::new(
                        [
                            (p.0 - x_max * 0.006, 100.0 * p.1 - (100.0 - y_min) * 0.01),
                            (p.0 + x_max * 0.006, 100.0 * p.1 + (100.0 - y_min) * 0.01),
                        ],
                        c.filled(),
                    )
                }))
                .map_err(err)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One stacked bar: a value per segment.
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// One value per segment, bottom first.
    pub values: Vec<f64>,
}

/// Stacked bars (one per configuration, one segment per layer), values scaled to millions.
pub fn stacked_bars(title: &str, segments: &[String], bars: &[Bar]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let y_max = bars
            .iter()
            .map(|b| b.values.iter().sum::<f64>() / 1e6)
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.15;
        let n = bars.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n as f64, 0.0..y_max)
            .map_err(err)?;
        let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                let centre = (x - x.floor() - 0.5).abs() < 1e-6;
                match (centre, labels.get(i)) {
                    (true, Some(l)) => l.clone(),
                    _ => String::new(),
                }
            })
            .y_desc("energy (10⁶ MAC16 units)")
            .draw()
            .map_err(err)?;
        for (k, name) in segments.iter().enumerate() {
            let c = color(k);
            chart
                .draw_series(bars.iter().enumerate().map(|(i, b)| {
                    let below: f64 = b.values[..k.min(b.values.len())].iter().sum::<f64>() / 1e6;
                    let v = b.values.get(k).copied().unwrap_or(0.0) / 1e6;
                    Rectangle::new(
                        [(i as f64 + 0.2, below), (i as f64 + 0.8, below + v)],
                        c.filled(),
                    )
                }))
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        for (i, b) in bars.iter().enumerate() {
            let total = b.values.iter().sum::<f64>() / 1e6;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{total:.2}"),
                    (i as f64 + 0.44, total + y_max * 0.04),
                    ("sans-serif", 13),
                )))
                .map_err(err)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One line of a line plot.
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// Points in increasing x.
    pub points: Vec<(f64, f64)>,
}

/// Lines on shared axes starting at zero.
pub fn curves(title: &str, x_desc: &str, y_desc: &str, curves: &[Curve]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (x_max, y_max) = curves
            .iter()
            .flat_map(|c| c.points.iter())
            .fold((1.0f64, 1e-9f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max * 1.05)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (i, c) in curves.iter().enumerate() {
            let col = color(i);
            chart
                .draw_series(LineSeries::new(
                    c.points.iter().copied(),
                    col.stroke_width(2),
                ))
                .map_err(err)?
                .label(c.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2))
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One stacked segment of every bar of [`stacked_layers`]: a legend label and a value per bar.
pub struct Segment {
    /// Legend text.
    pub label: String,
    /// One value per bar.
    pub values: Vec<f64>,
}

/// One bar per layer (named under the axis), stacked from `segments` bottom first; `title` and
/// `subtitle` above, the y axis labelled `y_desc` with short tick labels, the legend at the
/// right in stacking order (top segment first).
pub fn stacked_layers(
    title: &str,
    subtitle: &str,
    y_desc: &str,
    layers: &[String],
    segments: &[Segment],
) -> Result<String> {
    let n = layers.len().max(1);
    // Room under the axis for the longest rotated layer name (about 6 px per character).
    let longest = layers.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let label_area = (longest as u32 * 6 + 16).max(40);
    let plot_w = (n as u32 * 36).clamp(360, 1400);
    let legend_w = 150;
    let size = (90 + plot_w + legend_w, 360 + 90 + label_area);
    let y_max = (0..layers.len())
        .map(|i| segments.iter().map(|s| s.values[i]).sum::<f64>())
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root
            .titled(title, ("sans-serif", 16).into_font().style(FontStyle::Bold))
            .map_err(err)?;
        let root = root.titled(subtitle, ("sans-serif", 12)).map_err(err)?;
        let (plot_area, legend) = root.split_horizontally(90 + plot_w);
        let names = layers.to_vec();
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(label_area)
            .y_label_area_size(70)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_style(
                ("sans-serif", 10)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            )
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|y| super::format::short(*y))
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (k, segment) in segments.iter().enumerate() {
            let c = color(k);
            chart
                .draw_series((0..layers.len()).map(|i| {
                    let below: f64 = segments[..k].iter().map(|s| s.values[i]).sum();
                    let top = below + segment.values[i];
                    let mut bar = Rectangle::new(
                        [
                            (SegmentValue::Exact(i), below),
                            (SegmentValue::Exact(i + 1), top),
                        ],
                        c.filled(),
                    );
                    bar.set_margin(0, 0, 6, 6);
                    bar
                }))
                .map_err(err)?;
        }
        for (row, (k, segment)) in segments.iter().enumerate().rev().enumerate() {
            let y = 20 + 20 * row as i32;
            legend
                .draw(&Rectangle::new([(10, y), (24, y + 14)], color(k).filled()))
                .map_err(err)?;
            legend
                .draw(&Text::new(
                    segment.label.clone(),
                    (30, y + 1),
                    ("sans-serif", 12),
                ))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}
