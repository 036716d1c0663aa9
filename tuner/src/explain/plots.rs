//! The report's plots, as inline SVG strings (plotters, no fonts or files needed).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::ExplainError;

/// A series of (x, y) points with a name.
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Drawn as a step line (a configuration) instead of a line.
    pub steps: bool,
}

/// Markers on a time plot: (x, y, whether the DS2 fallback decided).
pub type Marks = Vec<(f64, f64, bool)>;

const PALETTE: [RGBColor; 15] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
];

/// A colour per index.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn err(plot: &'static str) -> impl Fn(String) -> ExplainError {
    move |reason| ExplainError::Plot { plot, reason }
}

fn bounds(series: &[Series], hline: Option<f64>) -> (f64, f64, f64, f64) {
    let mut b = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64, f64::NEG_INFINITY);
    for s in series {
        for &(x, y) in &s.points {
            b.0 = b.0.min(x);
            b.1 = b.1.max(x);
            b.2 = b.2.min(y);
            b.3 = b.3.max(y);
        }
    }
    if let Some(h) = hline {
        b.3 = b.3.max(h);
    }
    if !b.0.is_finite() {
        return (0.0, 1.0, 0.0, 1.0);
    }
    let top = if b.3 > b.2 { b.3 * 1.08 } else { b.2 + 1.0 };
    (b.0, b.1.max(b.0 + 1e-9), b.2, top)
}

/// A time plot: lines (or steps), an optional horizontal reference line (an SLO) and markers
/// (decisions; fallbacks drawn as red crosses).
pub fn time_plot(
    title: &'static str,
    y_desc: &str,
    series: &[Series],
    hline: Option<(f64, &str)>,
    marks: &Marks,
) -> Result<String, ExplainError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 300)).into_drawing_area();
        draw_time(&root, title, y_desc, series, hline, marks).map_err(err(title))?;
        root.present().map_err(|e| err(title)(e.to_string()))?;
    }
    Ok(svg)
}

fn draw_time(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    y_desc: &str,
    series: &[Series],
    hline: Option<(f64, &str)>,
    marks: &Marks,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (x0, x1, y0, y1) = bounds(series, hline.map(|h| h.0));
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in series.iter().enumerate() {
        let c = colour(i);
        let points: Vec<(f64, f64)> = if s.steps {
            let mut p = Vec::with_capacity(s.points.len() * 2);
            for w in s.points.windows(2) {
                p.push(w[0]);
                p.push((w[1].0, w[0].1));
            }
            p.extend(s.points.last());
            p
        } else {
            s.points.clone()
        };
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    if let Some((h, name)) = hline {
        chart
            .draw_series(LineSeries::new(
                vec![(x0, h), (x1, h)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label(name.to_owned())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
    }
    chart
        .draw_series(
            marks
                .iter()
                .filter(|m| !m.2)
                .map(|&(x, y, _)| Circle::new((x, y), 4, BLACK.stroke_width(1))),
        )
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(
            marks
                .iter()
                .filter(|m| m.2)
                .map(|&(x, y, _)| Cross::new((x, y), 5, RED.stroke_width(2))),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())
}

/// Horizontal bars: per label, one bar per measure (normalised so each measure's largest is 1).
pub fn bars(
    title: &'static str,
    labels: &[String],
    measures: &[(&str, Vec<f64>)],
) -> Result<String, ExplainError> {
    let mut svg = String::new();
    let height = 60 + labels.len() as u32 * 22;
    {
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        draw_bars(&root, title, labels, measures).map_err(err(title))?;
        root.present().map_err(|e| err(title)(e.to_string()))?;
    }
    Ok(svg)
}

fn draw_bars(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    labels: &[String],
    measures: &[(&str, Vec<f64>)],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = labels.len().max(1);
    // Label i sits at the integer y = n − 1 − i (top to bottom), its bars within ±0.4.
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(300)
        .build_cartesian_2d(0.0f64..1.05, -0.5f64..n as f64 - 0.5)
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = labels.to_vec();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n + 1)
        .y_label_formatter(&|y| {
            let i = n as f64 - 1.0 - y;
            if i >= -1e-6 && (i - i.round()).abs() < 1e-6 {
                names.get(i.round() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("importance (largest = 1)")
        .draw()
        .map_err(|e| e.to_string())?;
    let k = measures.len().max(1) as f64;
    for (m, (name, values)) in measures.iter().enumerate() {
        let top = values.iter().copied().fold(0.0f64, f64::max).max(1e-12);
        let c = colour(m);
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let centre = n as f64 - 1.0 - i as f64;
                let y1 = centre + 0.4 - 0.8 * m as f64 / k;
                let y0 = y1 - 0.8 / k;
                Rectangle::new([(0.0, y0), (v / top, y1)], c.filled())
            }))
            .map_err(|e| e.to_string())?
            .label(name.to_string())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())
}

/// A scatter plot of points coloured by class, with a legend of the names of the classes that
/// have points.
pub fn scatter(
    title: &'static str,
    axes: (&str, &str),
    points: &[(f64, f64, usize)],
    classes: &[String],
) -> Result<String, ExplainError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        draw_scatter(&root, title, axes, points, classes).map_err(err(title))?;
        root.present().map_err(|e| err(title)(e.to_string()))?;
    }
    Ok(svg)
}

fn draw_scatter(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    axes: (&str, &str),
    points: &[(f64, f64, usize)],
    classes: &[String],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (mut x0, mut x1, mut y0, mut y1) = (-1.0f64, 1.0f64, -1.0f64, 1.0f64);
    for &(x, y, _) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(x0 * 1.05..x1 * 1.05, y0 * 1.05..y1 * 1.05)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(axes.0)
        .y_desc(axes.1)
        .draw()
        .map_err(|e| e.to_string())?;
    for (c, name) in classes.iter().enumerate() {
        // A class no point has stays out of the legend (most moves never occur on a run).
        if !points.iter().any(|p| p.2 == c) {
            continue;
        }
        let colour = colour(c);
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2 == c)
                    .map(|&(x, y, _)| Circle::new((x, y), 3, colour.filled())),
            )
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| Circle::new((x + 6, y), 4, colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}
