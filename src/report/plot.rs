//! Charts for places SVG cannot go or that chart.rs does not draw: the
//! completion curve as a PNG for the weekly email (plotters; no text, since
//! mail clients do not render SVG and the numbers travel beside the picture),
//! and the department bars of the HTML report.

use super::model::{Group, WeekPoint};
use plotters::prelude::*;

/// The PNG's size in pixels; the email's `<img>` states it.
pub const CHART_WIDTH: u32 = 600;
pub const CHART_HEIGHT: u32 = 240;
const BLUE: RGBColor = RGBColor(0x1f, 0x4e, 0x79);
const GREY: RGBColor = RGBColor(0x8a, 0x8a, 0x8a);

/// The completion curve (blue) against the target (grey, dashed look via points).
fn draw_curve<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    weekly: &[WeekPoint],
    labels: bool,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let top = weekly
        .iter()
        .map(|w| w.completed.max(w.target))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let weeks = weekly.len().max(2) as f64 - 1.0;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(12);
    if labels {
        builder.x_label_area_size(32).y_label_area_size(44);
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..weeks, 0f64..top)
        .map_err(|e| e.to_string())?;
    if labels {
        chart
            .configure_mesh()
            .x_desc("week")
            .y_desc("people")
            .x_label_formatter(&|x| format!("{}", *x as i64 + 1))
            .y_label_formatter(&|y| format!("{}", *y as i64))
            .draw()
            .map_err(|e| e.to_string())?;
    } else {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_labels(0)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    let series = |f: fn(&WeekPoint) -> u64| {
        weekly
            .iter()
            .enumerate()
            .map(move |(i, w)| (i as f64, f(w) as f64))
            .collect::<Vec<_>>()
    };
    chart
        .draw_series(LineSeries::new(series(|w| w.target), GREY.stroke_width(2)))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            series(|w| w.completed),
            BLUE.stroke_width(3),
        ))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// The completion curve as a PNG, for email.
pub fn completion_png(weekly: &[WeekPoint]) -> Vec<u8> {
    let (w, h) = (CHART_WIDTH, CHART_HEIGHT);
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        if let Err(e) = draw_curve(root, weekly, false) {
            tracing::warn!(error = %e, "cannot draw the completion chart");
        }
    }
    let mut png = Vec::new();
    let encoder = plotters_png(&mut png, w, h);
    if let Err(e) = encoder(&pixels) {
        tracing::warn!(error = %e, "cannot encode the chart");
    }
    png
}

fn plotters_png(
    out: &mut Vec<u8>,
    w: u32,
    h: u32,
) -> impl FnOnce(&[u8]) -> Result<(), String> + '_ {
    move |pixels| {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(out)
            .write_image(pixels, w, h, image::ColorType::Rgb8)
            .map_err(|e| e.to_string())
    }
}

/// Completion rate by department as horizontal bars (suppressed groups omitted).
pub fn departments_svg(groups: &[Group]) -> String {
    let shown: Vec<&Group> = groups.iter().filter(|g| !g.suppressed).collect();
    let row = 26;
    let height = (shown.len() as u32 * row + 20).max(60);
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"{height}\" role=\"img\" aria-label=\"Completion rate by department\" font-family=\"sans-serif\" font-size=\"13\">");
    for (i, g) in shown.iter().enumerate() {
        let y = 10 + i as u32 * row;
        let rate = g.completion_rate.unwrap_or(0.0);
        let bar = (rate * 360.0).round() as u32;
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"200\" y=\"{y}\" width=\"360\" height=\"18\" fill=\"#e6e6e6\"/><rect x=\"200\" y=\"{y}\" width=\"{bar}\" height=\"18\" fill=\"#1f4e79\"/><text x=\"570\" y=\"{}\">{:.0}%</text>",
            y + 14,
            escape(&truncate(&g.group, 26)),
            y + 14,
            rate * 100.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

/// Escapes text for HTML and SVG.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
