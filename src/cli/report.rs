//! `veloz report FILE... [--tag TAG] [--json] [--compare] [--plot OUT.svg|OUT.png]`:
//! summarise HdrHistogram interval logs (see [`veloz_report`]).
//!
//! - Without `--compare`, the FILEs' intervals are grouped into series, one tag of one
//!   source ([`veloz_report::series`] has the rule: files are one source when their names
//!   without `.hlog` and their descriptions match). Intervals of a series merge, across
//!   files too; series never do. One source prints one table with a column per tag; several
//!   sources print one table each, after a line that says so.
//! - With `--compare`, exactly two FILEs: A and B side by side with B/A ratios (per tag, or
//!   the single series of each whatever their tags: a load log against its echo baseline).
//! - `--json` prints the same as JSON ([`Report`] or [`CompareReport`]).
//! - `--plot` also writes the percentile-distribution chart, a curve per series.
//! - The tables go to stdout, flushed before the note naming the plot goes to stderr, so
//!   the two never share a line when both streams go to one terminal or file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use veloz_report::summary::tag_label;
use veloz_report::{
    compare, merge_series, read_log_file, render_comparison, render_report, write_plot,
    CompareReport, LogFile, Merged, Report, Series, Summary,
};

/// Arguments of `veloz report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// HdrHistogram interval logs (values in nanoseconds). Without --compare, each tag of
    /// each source (files with the same name and description) is its own series.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Only the intervals with this tag (metric); by default every tag, each on its own.
    #[arg(long)]
    pub tag: Option<String>,
    /// Print JSON instead of the text table.
    #[arg(long)]
    pub json: bool,
    /// Compare two runs: exactly two FILEs, A then B; ratios are B/A.
    #[arg(long)]
    pub compare: bool,
    /// Also write the percentile-distribution chart; SVG or PNG by the extension.
    #[arg(long, value_name = "OUT.svg|OUT.png")]
    pub plot: Option<PathBuf>,
}

/// What `veloz report` prints, and the chart's curves.
struct Rendered {
    text: String,
    curves: Vec<(String, Merged)>,
}

/// `veloz report`.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let out = render(args)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.text.as_bytes())?;
    if !out.text.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    drop(stdout);
    if let Some(path) = &args.plot {
        let series: Vec<Series<'_>> = out
            .curves
            .iter()
            .map(|(label, m)| Series {
                label,
                histogram: &m.histogram,
            })
            .collect();
        write_plot(path, "Latency by percentile distribution", &series)?;
        if !args.json {
            eprintln!("plot written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> anyhow::Result<LogFile> {
    read_log_file(path).with_context(|| format!("reading interval log {}", path.display()))
}

fn render(args: &ReportArgs) -> anyhow::Result<Rendered> {
    let tag = args.tag.as_deref();
    if args.compare {
        let [a, b] = args.files.as_slice() else {
            bail!(
                "--compare takes exactly two files (run A, run B), got {}",
                args.files.len()
            );
        };
        let (fa, fb) = (read(a)?, read(b)?);
        let (ma, mb) = (
            merge_series(std::slice::from_ref(&fa), tag)?,
            merge_series(std::slice::from_ref(&fb), tag)?,
        );
        let report = |f: &LogFile, m: &[Merged]| Report {
            files: vec![f.path.display().to_string()],
            summaries: m.iter().map(Summary::from_merged).collect(),
        };
        let cmp: CompareReport = compare(&report(&fa, &ma), &report(&fb, &mb));
        if cmp.comparisons.is_empty() {
            bail!(
                "{} and {} have no tag in common (A: {}; B: {}); pick one with --tag",
                fa.path.display(),
                fb.path.display(),
                cmp.only_in_a.join(", "),
                cmp.only_in_b.join(", ")
            );
        }
        let text = if args.json {
            format!("{}\n", serde_json::to_string_pretty(&cmp)?)
        } else {
            render_comparison(&cmp)
        };
        let multi = ma.len() > 1 || mb.len() > 1;
        let mut curves = Vec::new();
        for (run, file, merged) in [("A", &fa.path, ma), ("B", &fb.path, mb)] {
            for m in merged {
                let label = if multi {
                    format!(
                        "{run}: {} [{}]",
                        file.display(),
                        tag_label(m.tag.as_deref())
                    )
                } else {
                    format!("{run}: {}", file.display())
                };
                curves.push((label, m));
            }
        }
        return Ok(Rendered { text, curves });
    }
    let files = args
        .files
        .iter()
        .map(|p| read(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = merge_series(&files, tag)?;
    let report = Report {
        files: files.iter().map(|f| f.path.display().to_string()).collect(),
        summaries: merged.iter().map(Summary::from_merged).collect(),
    };
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        render_report(&report)
    };
    // One source: its tags name the curves; several: source and tag.
    let one_source = merged.iter().all(|m| m.source == merged[0].source);
    let curves = merged
        .into_iter()
        .map(|m| {
            let label = match (&m.tag, one_source) {
                (Some(t), true) => t.clone(),
                _ => m.label(),
            };
            (label, m)
        })
        .collect();
    Ok(Rendered { text, curves })
}
