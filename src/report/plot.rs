//! Charts for places SVG cannot go or that chart.rs does not draw: the
//! completion curve as a PNG for the weekly email (plotters, since mail
//! clients do not render SVG; its axes are labelled in an embedded font, and
//! the numbers travel beside the picture too), and the department bars of
//! the HTML report.

use super::model::{Group, WeekPoint};
use plotters::prelude::*;

/// The PNG's size in pixels; the email's `<img>` states it.
pub const CHART_WIDTH: u32 = 600;
pub const CHART_HEIGHT: u32 = 300;
const BLUE: RGBColor = RGBColor(0x1f, 0x4e, 0x79);
const GREY: RGBColor = RGBColor(0x8a, 0x8a, 0x8a);
/// Axis text: dark enough to read on white (WCAG AA).
const GREY_TEXT: RGBColor = RGBColor(0x4a, 0x55, 0x60);

/// The font the PNG's axis labels are drawn in: embedded, so the chart looks
/// the same on every host, with or without fonts installed.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FONT_NAME: &str = "ambassador-sans";

/// Registers [`FONT`] with plotters once; false if it cannot be read.
fn font_ready() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY
        .get_or_init(|| plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT).is_ok())
}

/// The completion curve (blue) against the target (grey), with labelled
/// axes: the week-ending dates along the bottom, counts of people up the side.
fn draw_curve<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    weekly: &[WeekPoint],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    if !font_ready() {
        return Err("the embedded chart font cannot be read".into());
    }
    let top = weekly
        .iter()
        .map(|w| w.completed.max(w.target))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let weeks = weekly.len().max(2) as f64 - 1.0;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .margin_right(32)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..weeks, 0f64..top)
        .map_err(|e| e.to_string())?;
    let date = |x: &f64| {
        let i = x.round();
        match weekly.get(i as usize) {
            Some(w) if (x - i).abs() < 1e-6 => w.week_ending.format("%-d %b").to_string(),
            _ => String::new(),
        }
    };
    let count = |y: &f64| {
        if y.fract().abs() < 1e-6 {
            format!("{}", *y as i64)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(weekly.len().clamp(2, 8))
        .y_labels(6)
        .x_desc("Week ending")
        .y_desc("People")
        .x_label_formatter(&date)
        .y_label_formatter(&count)
        .label_style((FONT_NAME, 13).into_font().color(&GREY_TEXT))
        .axis_desc_style((FONT_NAME, 14).into_font().color(&GREY_TEXT))
        .draw()
        .map_err(|e| e.to_string())?;
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
        if let Err(e) = draw_curve(root, weekly) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    /// Dark pixels in the band of rows `rows` of the chart, columns `cols`.
    fn ink(png: &[u8], rows: std::ops::Range<u32>, cols: std::ops::Range<u32>) -> usize {
        let img = image::load_from_memory(png).unwrap().to_rgb8();
        rows.flat_map(|y| cols.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 160))
            .count()
    }

    #[test]
    fn the_email_chart_labels_its_axes() {
        let weekly: Vec<WeekPoint> = (0..4)
            .map(|i| WeekPoint {
                week_ending: Utc.with_ymd_and_hms(2027, 1, 4 + 7 * i, 0, 0, 0).unwrap(),
                completed: u64::from(i) * 3,
                target: u64::from(i) * 4,
            })
            .collect();
        let png = completion_png(&weekly);
        // Dates and "Week ending" below the plot; counts and "People" left of it.
        let below = ink(&png, CHART_HEIGHT - 44..CHART_HEIGHT, 60..CHART_WIDTH);
        let left = ink(&png, 0..CHART_HEIGHT - 60, 0..50);
        assert!(below > 100 && left > 50, "below {below}, left {left}");
    }
}
