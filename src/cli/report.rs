//! `veloz report FILE... [--tag TAG] [--json] [--compare] [--plot OUT.svg|OUT.png]`:
//! summarise HdrHistogram interval logs (see [`veloz_report`]).
//!
//! - Without `--compare`, all FILEs are one run (one log per shard, say): intervals are
//!   merged per tag and printed as one percentile table, a column per tag.
//! - With `--compare`, exactly two FILEs: run A and run B side by side with B/A ratios.
//! - `--json` prints the same as JSON ([`Report`] or [`CompareReport`]).
//! - `--plot` also writes the percentile-distribution chart, a curve per tag and run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use veloz_report::summary::tag_label;
use veloz_report::{
    compare, merge_by_tag, read_log_file, render_comparison, render_report, write_plot,
    CompareReport, LogFile, Merged, Report, Series, Summary,
};

/// Arguments of `veloz report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// HdrHistogram interval logs (values in nanoseconds). Several files without --compare
    /// are one run and are merged.
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
    print!("{}", out.text);
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
            merge_by_tag(std::slice::from_ref(&fa), tag)?,
            merge_by_tag(std::slice::from_ref(&fb), tag)?,
        );
        let report = |f: &LogFile, m: &[Merged]| Report {
            files: vec![f.path.display().to_string()],
            summaries: m
                .iter()
                .map(|m| Summary::from_merged(&f.path.display().to_string(), m))
                .collect(),
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
    let merged = merge_by_tag(&files, tag)?;
    let source = files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let report = Report {
        files: files.iter().map(|f| f.path.display().to_string()).collect(),
        summaries: merged
            .iter()
            .map(|m| Summary::from_merged(&source, m))
            .collect(),
    };
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        render_report(&report)
    };
    let curves = merged
        .into_iter()
        .map(|m| {
            let label = tag_label(m.tag.as_deref()).to_owned();
            (label, m)
        })
        .collect();
    Ok(Rendered { text, curves })
}
