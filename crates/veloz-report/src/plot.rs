//! The classic HdrHistogram percentile-distribution chart, as SVG (written by hand) or PNG
//! (that SVG rasterized with resvg).
//!
//! # The chart
//! - x axis: percentile on HdrHistogram's scale `log10(1 / (1 - p))`, ticks at 0%, 90%,
//!   99%, 99.9%, 99.99% and 99.999% (one decade each), so the tail gets as much room as the
//!   body. Points beyond 99.999% (and the max, p = 100%) are drawn at the right edge, so
//!   every curve ends at its max.
//! - y axis ([`LatencyAxis`]): **log10** when the plotted latencies (the positive ones)
//!   span more than two decades ([`LOG_AXIS_RATIO`]), from the power of ten below the
//!   smallest to the power of ten above the largest, ticks at each decade (and at 2 and 5
//!   of each when there are at most three decades), each labelled with its unit (`500 ns`,
//!   `10 µs`, `2 ms`); a value of 0 sits on the bottom. Otherwise **linear** from 0 to a
//!   round value above the largest max, in µs, or ms (s) when the max reaches 100,000 µs
//!   (ms), the unit in the axis title. A linear axis over a wide range would squash
//!   everything below the tail onto the floor; a log axis over a narrow one would hide
//!   differences that matter.
//! - One `<polyline class="series">` per [`Series`] (one per metric and source: the caller
//!   decides, see [`series`](crate::series)), through the points of the histogram's
//!   quantile iteration with 5 ticks per half distance (what HdrHistogram's
//!   `outputPercentileDistribution` prints), and a legend entry per series. The y tick
//!   group carries `data-scale="log"` or `"linear"`.
//!
//! The SVG text depends only on the inputs (coordinates with two decimals, no clock, no
//! randomness): the same histograms give the same bytes. PNG text needs a system font (any
//! TrueType/OpenType face, e.g. Debian's `fonts-dejavu-core`); without one [`render_png`]
//! refuses with [`PlotError::NoFonts`] rather than drawing a chart without labels.
//!
//! # Why hand-written SVG rather than `plotters`
//! Weighed for this chart (measured on the 2-core machine, clean builds of plotters 0.3.7
//! alone):
//! - `plotters` with only its SVG backend is small (3 crates, ~6 s) and its output is
//!   deterministic, but it would still need this module's two custom parts: the
//!   `1 / (1 - p)` percentile axis (a custom coordinate or a relabelled linear one) and the
//!   log-or-linear choice with unit-carrying labels. Its SVG has no classes to find the
//!   curves and axes by, which the tests here use.
//! - PNG through `plotters` means its bitmap backend with default features: ~40 more crates
//!   (`image`, `font-kit`, `freetype-sys` compiling C, `fontconfig` at run time, `chrono`),
//!   about 80 s wall (30 s CPU) on two cores, and a second text renderer beside resvg, which
//!   the PNG already uses (one SVG, rasterized: SVG and PNG always show the same chart).
//!
//!   Build times are clean `cargo build`s of a scratch crate depending only on
//!   `plotters = "0.3.7"` (SVG backend only: `default-features = false, features =
//!   ["svg_backend"]`; then default features), 2026-11-30, on the 2-vCPU machine of
//!   docs/BENCHMARKS.md, with other builds running.
//! - The chart is one kind (a few polylines, grid, ticks, legend): about 300 lines here,
//!   with every pixel decision testable as text.
//!
//! So the SVG stays hand-written and the PNG stays resvg's rendering of it.

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

/// Latency axes spanning more than this ratio (two decades) are drawn on a log scale.
pub const LOG_AXIS_RATIO: f64 = 100.0;

/// The latency axis of a chart: how a latency (µs) maps to a height, and its ticks.
#[derive(Debug, Clone, PartialEq)]
pub enum LatencyAxis {
    /// From 0 to `max` in `unit`s (`per_unit` µs each), a tick every `step` units.
    Linear {
        unit: &'static str,
        per_unit: f64,
        step: f64,
        max: f64,
    },
    /// From `lo` to `hi` µs (both powers of 10), log10 scale; ticks at `ticks` (µs).
    Log { lo: f64, hi: f64, ticks: Vec<f64> },
}

impl LatencyAxis {
    /// The axis for curves whose latencies (µs) are `values`: log when the positive values
    /// span more than [`LOG_AXIS_RATIO`], else linear from 0.
    pub fn for_values(values: impl IntoIterator<Item = f64>) -> LatencyAxis {
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for v in values {
            if v > 0.0 {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if hi > 0.0 && hi / lo > LOG_AXIS_RATIO {
            let lo = 10f64.powf(lo.log10().floor());
            let hi = 10f64.powf(hi.log10().ceil());
            let decades = (hi / lo).log10().round() as i32;
            // Few decades: 1, 2 and 5 of each; many: the decades alone.
            let steps: &[f64] = if decades <= 3 {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0]
            };
            let mut ticks = Vec::new();
            for d in 0..=decades {
                let base = lo * 10f64.powi(d);
                for m in steps {
                    if m * base <= hi * (1.0 + 1e-9) {
                        ticks.push(m * base);
                    }
                }
            }
            return LatencyAxis::Log { lo, hi, ticks };
        }
        let max = if hi > 0.0 { hi } else { 1.0 };
        // Show ms or s when the values are that large.
        let (unit, per_unit) = if max >= 1e8 {
            ("s", 1e6)
        } else if max >= 1e5 {
            ("ms", 1e3)
        } else {
            ("µs", 1.0)
        };
        let step = nice_step(max / per_unit, 6.0);
        LatencyAxis::Linear {
            unit,
            per_unit,
            step,
            max: (max / per_unit / step).ceil() * step,
        }
    }

    /// Where `us` lies on the axis: 0.0 at the bottom, 1.0 at the top (values below a log
    /// axis' bottom, zero included, sit on the bottom).
    pub fn fraction(&self, us: f64) -> f64 {
        match self {
            LatencyAxis::Linear { per_unit, max, .. } => us / per_unit / max,
            LatencyAxis::Log { lo, hi, .. } => (us.max(*lo) / lo).log10() / (hi / lo).log10(),
        }
    }

    /// The ticks: (µs, label).
    pub fn ticks(&self) -> Vec<(f64, String)> {
        match self {
            LatencyAxis::Linear {
                per_unit,
                step,
                max,
                ..
            } => {
                let n = (max / step).round() as u32;
                (0..=n)
                    .map(|i| {
                        let v = f64::from(i) * step;
                        (v * per_unit, tick_label(v))
                    })
                    .collect()
            }
            LatencyAxis::Log { ticks, .. } => {
                ticks.iter().map(|&us| (us, duration_label(us))).collect()
            }
        }
    }

    /// `log` or `linear`.
    pub fn scale(&self) -> &'static str {
        match self {
            LatencyAxis::Linear { .. } => "linear",
            LatencyAxis::Log { .. } => "log",
        }
    }

    /// The axis title.
    pub fn title(&self) -> String {
        match self {
            LatencyAxis::Linear { unit, .. } => format!("Latency ({unit})"),
            LatencyAxis::Log { .. } => "Latency (log scale)".to_owned(),
        }
    }
}

/// A latency in µs with its unit: `500 ns`, `2 µs`, `10 ms`, `1.5 s`.
pub fn duration_label(us: f64) -> String {
    if us < 1.0 {
        format!("{} ns", tick_label(us * 1e3))
    } else if us < 1e3 {
        format!("{} µs", tick_label(us))
    } else if us < 1e6 {
        format!("{} ms", tick_label(us / 1e3))
    } else {
        format!("{} s", tick_label(us / 1e6))
    }
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
    let axis = LatencyAxis::for_values(curves.iter().flatten().map(|p| p.1));
    let px = |x: f64| LEFT + x / f64::from(DECADES) * pw;
    let py = |us: f64| TOP + ph - axis.fraction(us) * ph;
    let yticks = axis.ticks();

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
    for &(v, _) in &yticks {
        let y = py(v);
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
    let _ = writeln!(
        s,
        r#"<g class="y-ticks" data-scale="{}" text-anchor="end">"#,
        axis.scale()
    );
    for (v, label) in &yticks {
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}">{label}</text>"#,
            LEFT - 8.0,
            py(*v) + 4.0,
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
        r#"<text x="24" y="{:.2}" text-anchor="middle" transform="rotate(-90 24 {:.2})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        axis.title()
    );

    // Curves.
    for (i, points) in curves.iter().enumerate() {
        let mut pts = String::new();
        for (k, &(x, y)) in points.iter().enumerate() {
            if k > 0 {
                pts.push(' ');
            }
            let _ = write!(pts, "{:.2},{:.2}", px(x), py(y));
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
    fn narrow_ranges_get_a_linear_axis_from_zero() {
        let axis = LatencyAxis::for_values([0.0, 12.0, 95.0]);
        assert_eq!(axis.scale(), "linear");
        assert_eq!(axis.title(), "Latency (µs)");
        let ticks = axis.ticks();
        assert_eq!(ticks.first().map(|t| t.1.as_str()), Some("0"));
        assert_eq!(ticks.last().map(|t| t.1.as_str()), Some("100"));
        assert_eq!(axis.fraction(50.0), 0.5);
        // Exactly two decades is still linear; in ms when the max is that large.
        let ms = LatencyAxis::for_values([2_000.0, 200_000.0]);
        assert_eq!(
            (ms.scale(), ms.title().as_str()),
            ("linear", "Latency (ms)")
        );
    }

    #[test]
    fn ranges_over_two_decades_get_a_log_axis_with_unit_labels() {
        // 0.8 µs .. 3.5 ms: from 100 ns to 10 ms, four decades, decade ticks only.
        let axis = LatencyAxis::for_values([0.0, 0.8, 40.0, 3_500.0]);
        assert_eq!(axis.scale(), "log");
        let labels: Vec<String> = axis.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(
            labels,
            ["100 ns", "1 µs", "10 µs", "100 µs", "1 ms", "10 ms"]
        );
        assert_eq!(axis.fraction(0.1), 0.0);
        assert_eq!(axis.fraction(0.0), 0.0);
        assert!((axis.fraction(10.0) - 0.4).abs() < 1e-12);
        assert!((axis.fraction(10_000.0) - 1.0).abs() < 1e-12);
        // Three decades or fewer: 1, 2 and 5 of each.
        let axis = LatencyAxis::for_values([1.5, 150.0 + 1.0]);
        let labels: Vec<String> = axis.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(
            labels,
            [
                "1 µs", "2 µs", "5 µs", "10 µs", "20 µs", "50 µs", "100 µs", "200 µs", "500 µs",
                "1 ms"
            ]
        );
    }

    #[test]
    fn duration_labels_carry_their_unit() {
        assert_eq!(duration_label(0.5), "500 ns");
        assert_eq!(duration_label(2.0), "2 µs");
        assert_eq!(duration_label(10_000.0), "10 ms");
        assert_eq!(duration_label(1_500_000.0), "1.5 s");
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
