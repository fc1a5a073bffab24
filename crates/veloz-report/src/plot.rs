//! The classic HdrHistogram percentile-distribution chart, as SVG (written by hand) or PNG
//! (that SVG rasterized with resvg).
//!
//! # The chart
//! - x axis: percentile on the scale `log10(1 / (1 - p))`, ticks at 0%, 90%, 99%, 99.9%,
//!   99.99% and 99.999% (one decade each). Points beyond 99.999% (and the max, p = 100%)
//!   are drawn at the right edge, so every curve ends at its max.
//! - y axis: latency, linear from 0 to a round value above the largest max, in microseconds;
//!   in milliseconds (or seconds) when the max reaches 100,000 µs (or 100,000 ms), so tick
//!   labels stay short.
//! - One `<polyline class="series">` per series, through the points of the histogram's
//!   quantile iteration with 5 ticks per half distance (what HdrHistogram's
//!   `outputPercentileDistribution` prints), and a legend entry per series.
//!
//! The SVG text depends only on the inputs (coordinates with two decimals): the same
//! histograms give the same bytes. PNG text needs a system font (any TrueType/OpenType
//! face, e.g. Debian's `fonts-dejavu-core`); without one [`render_png`] refuses with
//! [`PlotError::NoFonts`] rather than drawing a chart without labels.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use resvg::{tiny_skia, usvg};

/// Width of the chart in pixels.
pub const WIDTH: u32 = 960;
/// Height of the chart in pixels.
pub const HEIGHT: u32 = 600;
/// Decades of `1 / (1 - p)` shown: 5 is up to 99.999%.
pub const DECADES: u32 = 5;
/// Quantile iteration ticks per half distance (as HdrHistogram's percentile output).
const TICKS_PER_HALF_DISTANCE: u32 = 5;

const LEFT: f64 = 90.0;
const RIGHT: f64 = 45.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 70.0;
const FONT: &str = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// Errors of drawing or writing a chart; each names the file when one is involved.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The output's extension is neither `.svg` nor `.png`.
    #[error("{}: the plot must be .svg or .png", path.display())]
    UnknownFormat { path: PathBuf },
    /// Writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No system font to draw the PNG's text with.
    #[error(
        "no system fonts found to draw the PNG's labels (install fonts-dejavu-core, or write .svg)"
    )]
    NoFonts,
    /// The SVG did not parse (a bug: the SVG is generated here).
    #[error("the chart's SVG does not parse: {0}")]
    Svg(#[from] usvg::Error),
    /// PNG rasterizing or encoding failed.
    #[error("cannot encode the PNG: {0}")]
    Png(String),
}

/// One curve of the chart.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Legend text.
    pub label: &'a str,
    /// Values in nanoseconds.
    pub histogram: &'a Histogram<u64>,
}

/// The points of a histogram's percentile distribution: (x = `log10(1 / (1 - p))` clamped
/// to [`DECADES`], latency in µs). Consecutive duplicates are dropped.
pub fn distribution_points(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    if histogram.is_empty() {
        return points;
    }
    let cap = f64::from(DECADES);
    for v in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        let q = v.quantile_iterated_to();
        let x = if q >= 1.0 {
            cap
        } else {
            (1.0 / (1.0 - q)).log10().min(cap)
        };
        let y = v.value_iterated_to() as f64 / 1000.0;
        if points.last() != Some(&(x, y)) {
            points.push((x, y));
        }
    }
    points
}

/// A round step for about `target` ticks up to `max` (1, 2, 2.5 or 5 times a power of 10).
fn nice_step(max: f64, target: f64) -> f64 {
    let raw = (max / target).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// A tick value without trailing zeros.
fn tick_label(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// Escape text for XML content and attributes.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The chart as an SVG document.
pub fn render_svg(title: &str, series: &[Series<'_>]) -> String {
    let (w, h) = (f64::from(WIDTH), f64::from(HEIGHT));
    let (pw, ph) = (w - LEFT - RIGHT, h - TOP - BOTTOM);
    let curves: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| distribution_points(s.histogram))
        .collect();
    let ymax_data = curves.iter().flatten().map(|p| p.1).fold(0.0f64, f64::max);
    let ymax_data = if ymax_data > 0.0 { ymax_data } else { 1.0 };
    // Points are in µs; show ms or s when the values are that large.
    let (unit, per_unit) = if ymax_data >= 1e8 {
        ("s", 1e6)
    } else if ymax_data >= 1e5 {
        ("ms", 1e3)
    } else {
        ("µs", 1.0)
    };
    let ymax_data = ymax_data / per_unit;
    let step = nice_step(ymax_data, 6.0);
    let ymax = (ymax_data / step).ceil() * step;
    let px = |x: f64| LEFT + x / f64::from(DECADES) * pw;
    let py = |y: f64| TOP + ph - y / ymax * ph;
    let py_us = |y: f64| py(y / per_unit);

    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}" font-size="13">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.2}" y="32" text-anchor="middle" font-size="17">{}</text>"#,
        w / 2.0,
        xml_escape(title)
    );

    // Grid and ticks.
    let _ = writeln!(s, r##"<g class="grid" stroke="#dddddd" stroke-width="1">"##);
    for d in 0..=DECADES {
        let x = px(f64::from(d));
        let _ = writeln!(
            s,
            r#"<line x1="{x:.2}" y1="{TOP:.2}" x2="{x:.2}" y2="{:.2}"/>"#,
            TOP + ph
        );
    }
    let ticks = (ymax / step).round() as u32;
    for i in 0..=ticks {
        let y = py(f64::from(i) * step);
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}"/>"#,
            LEFT + pw
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r#"<g class="x-ticks" text-anchor="middle">"#);
    for d in 0..=DECADES {
        let label = match d {
            0 => "0%".to_owned(),
            _ => {
                let p = 100.0 - 100.0 / 10f64.powi(d as i32);
                format!("{}%", tick_label(p))
            }
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}">{label}</text>"#,
            px(f64::from(d)),
            TOP + ph + 20.0
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r#"<g class="y-ticks" text-anchor="end">"#);
    for i in 0..=ticks {
        let v = f64::from(i) * step;
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}">{}</text>"#,
            LEFT - 8.0,
            py(v) + 4.0,
            tick_label(v)
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT:.2}" y="{TOP:.2}" width="{pw:.2}" height="{ph:.2}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.2}" y="{:.2}" text-anchor="middle">Percentile</text>"#,
        LEFT + pw / 2.0,
        h - 22.0
    );
    let _ = writeln!(
        s,
        r#"<text x="24" y="{:.2}" text-anchor="middle" transform="rotate(-90 24 {:.2})">Latency ({unit})</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );

    // Curves.
    for (i, points) in curves.iter().enumerate() {
        let mut pts = String::new();
        for (k, &(x, y)) in points.iter().enumerate() {
            if k > 0 {
                pts.push(' ');
            }
            let _ = write!(pts, "{:.2},{:.2}", px(x), py_us(y));
        }
        let _ = writeln!(
            s,
            r#"<polyline class="series" fill="none" stroke="{}" stroke-width="2" points="{pts}"/>"#,
            COLORS[i % COLORS.len()]
        );
    }

    // Legend, top left inside the plot area.
    if !series.is_empty() {
        let longest = series
            .iter()
            .map(|s| s.label.chars().count())
            .max()
            .unwrap_or(0);
        let lw = 44.0 + 7.5 * longest as f64;
        let lh = 10.0 + 20.0 * series.len() as f64;
        let (lx, ly) = (LEFT + 12.0, TOP + 12.0);
        let _ = writeln!(s, r#"<g class="legend">"#);
        let _ = writeln!(
            s,
            r##"<rect x="{lx:.2}" y="{ly:.2}" width="{lw:.2}" height="{lh:.2}" fill="white" fill-opacity="0.9" stroke="#999999"/>"##
        );
        for (i, se) in series.iter().enumerate() {
            let y = ly + 20.0 * (i as f64 + 1.0);
            let _ = writeln!(
                s,
                r#"<line x1="{:.2}" y1="{:.2}" x2="{:.2}" y2="{:.2}" stroke="{}" stroke-width="2"/>"#,
                lx + 8.0,
                y - 4.0,
                lx + 32.0,
                y - 4.0,
                COLORS[i % COLORS.len()]
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.2}" y="{y:.2}">{}</text>"#,
                lx + 38.0,
                xml_escape(se.label)
            );
        }
        let _ = writeln!(s, "</g>");
    }
    let _ = writeln!(s, "</svg>");
    s
}

/// Rasterize an SVG (such as [`render_svg`]'s) to PNG bytes, text in a system font.
pub fn render_png(svg: &str) -> Result<Vec<u8>, PlotError> {
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    if db.is_empty() {
        return Err(PlotError::NoFonts);
    }
    // The SVG names common families first; where none is installed, `sans-serif` falls back
    // to an installed sans face (else the first face found).
    let fallback = {
        let families = || db.faces().flat_map(|f| f.families.iter().map(|(n, _)| n));
        families()
            .find(|n| n.contains("Sans") && !n.contains("Mono"))
            .or_else(|| families().next())
            .cloned()
    };
    if let Some(f) = fallback {
        db.set_sans_serif_family(f);
    }
    let tree = usvg::Tree::from_str(svg, &opt)?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| PlotError::Png(format!("empty size {size:?}")))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| PlotError::Png(e.to_string()))
}

/// Write the chart to `path`: SVG or PNG by its extension (`.svg`, `.png`).
pub fn write_plot(path: &Path, title: &str, series: &[Series<'_>]) -> Result<(), PlotError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let svg = render_svg(title, series);
    let bytes = match ext.as_deref() {
        Some("svg") => svg.into_bytes(),
        Some("png") => render_png(&svg)?,
        _ => {
            return Err(PlotError::UnknownFormat {
                path: path.to_path_buf(),
            })
        }
    };
    std::fs::write(path, bytes).map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_round() {
        assert_eq!(nice_step(6.0, 6.0), 1.0);
        assert_eq!(nice_step(100.0, 6.0), 20.0);
        assert_eq!(nice_step(14.0, 6.0), 2.5);
        assert_eq!(nice_step(0.3, 6.0), 0.05);
    }

    #[test]
    fn tick_labels_trim_zeros() {
        assert_eq!(tick_label(99.999), "99.999");
        assert_eq!(tick_label(90.0), "90");
        assert_eq!(tick_label(2.5), "2.5");
    }

    #[test]
    fn points_run_from_p0_to_the_max_at_the_right_edge() {
        let mut h = Histogram::<u64>::new(3).expect("valid");
        for v in 1..=1000u64 {
            h.record(v * 1000).expect("auto-resizing");
        }
        let p = distribution_points(&h);
        assert_eq!(p[0].0, 0.0);
        let last = *p.last().expect("points");
        assert_eq!(last.0, f64::from(DECADES));
        assert_eq!(last.1, h.highest_equivalent(h.max()) as f64 / 1000.0);
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn labels_are_escaped() {
        let h = Histogram::<u64>::new(3).expect("valid");
        let svg = render_svg(
            "a<b",
            &[Series {
                label: "x&y",
                histogram: &h,
            }],
        );
        assert!(svg.contains("a&lt;b") && svg.contains("x&amp;y"));
    }
}
