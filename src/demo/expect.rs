//! What `veloz demo` expects of each figure, and when it calls the host busy: the one table
//! the verdicts are judged against.
//!
//! `docs/BENCHMARKS.md`, section "Expected ranges for `veloz demo` (issue 14)", states the
//! same numbers with the runs they come from; a test below renders this table as Markdown
//! and fails when the section says anything else, so the two cannot drift.
//!
//! A range is "seen in quiet runs" (`lo`) to "still OK" (`hi`): a figure above `hi` is SLOW,
//! one below `lo` is fine (faster than measured). Ranges are for a release build; a debug
//! build is judged against them too, and named as the cause when it misses them.

use std::fmt::Write as _;

/// Where the load generator runs relative to the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The load generator busy-polls a core a shard busy-polls too (the default layout: a
    /// shard on every online core).
    Shared,
    /// The load generator has cores no shard uses (`veloz demo --cores` leaving one free).
    Dedicated,
}

/// What a figure is measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A ratio to the echo floor of the same run.
    Ratio,
    /// Microseconds.
    Micros,
}

impl Unit {
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Ratio => "x",
            Unit::Micros => "us",
        }
    }
}

/// The figures the demo judges, in the order it prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// Client round trip p50 of the main phase over the echo floor's p50, same run.
    ClientP50,
    /// Client round trip p99 of the main phase over the echo floor's p99, same run.
    ClientP99,
    /// The engine's `ingress_to_ack` p50 over the main phase's measured window.
    EngineP50,
    /// The engine's `ingress_to_ack` p99 over the main phase's measured window.
    EngineP99,
    /// The engine's `commit_wait` p50 over the group phase's measured window.
    CommitWaitP50,
    /// The engine's `commit_wait` p99 over the group phase's measured window.
    CommitWaitP99,
    /// Offline replay of every journal of both phases against the live engine's state.
    Replay,
}

impl Figure {
    pub const ALL: [Figure; 7] = [
        Figure::ClientP50,
        Figure::ClientP99,
        Figure::EngineP50,
        Figure::EngineP99,
        Figure::CommitWaitP50,
        Figure::CommitWaitP99,
        Figure::Replay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Figure::ClientP50 => "client round trip p50 / echo floor p50",
            Figure::ClientP99 => "client round trip p99 / echo floor p99",
            Figure::EngineP50 => "engine ingress_to_ack p50",
            Figure::EngineP99 => "engine ingress_to_ack p99",
            Figure::CommitWaitP50 => "group commit_wait p50",
            Figure::CommitWaitP99 => "group commit_wait p99",
            Figure::Replay => "replay verification",
        }
    }
}

/// `lo` seen in quiet runs, `hi` the most that is still OK.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub lo: f64,
    pub hi: f64,
}

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expected {
    pub figure: Figure,
    pub unit: Unit,
    pub shared: Range,
    pub dedicated: Range,
}

const fn row(figure: Figure, unit: Unit, shared: (f64, f64), dedicated: (f64, f64)) -> Expected {
    Expected {
        figure,
        unit,
        shared: Range {
            lo: shared.0,
            hi: shared.1,
        },
        dedicated: Range {
            lo: dedicated.0,
            hi: dedicated.1,
        },
    }
}

/// The expected ranges, release build, at the demo's default rate (20,000 orders/s over 4
/// connections). Measured on the 2-core machine of docs/BENCHMARKS.md; see its section.
pub const RANGES: [Expected; 6] = [
    row(Figure::ClientP50, Unit::Ratio, (25.0, 150.0), (0.5, 4.0)),
    row(Figure::ClientP99, Unit::Ratio, (1.0, 10.0), (0.4, 5.0)),
    row(Figure::EngineP50, Unit::Micros, (40.0, 300.0), (2.0, 30.0)),
    row(
        Figure::EngineP99,
        Unit::Micros,
        (2000.0, 8000.0),
        (80.0, 2000.0),
    ),
    row(
        Figure::CommitWaitP50,
        Unit::Micros,
        (1500.0, 5000.0),
        (400.0, 1500.0),
    ),
    row(
        Figure::CommitWaitP99,
        Unit::Micros,
        (25000.0, 120000.0),
        (5000.0, 25000.0),
    ),
];

/// The expected range and unit of `figure` in `layout`; `None` for [`Figure::Replay`],
/// which either verifies or fails.
pub fn expected(figure: Figure, layout: Layout) -> Option<(Range, Unit)> {
    RANGES.iter().find(|e| e.figure == figure).map(|e| {
        let range = match layout {
            Layout::Shared => e.shared,
            Layout::Dedicated => e.dedicated,
        };
        (range, e.unit)
    })
}

/// When the host counts as busy: any reading above its threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Busy {
    /// 1-minute load average per online core.
    pub load_per_core: f64,
    /// CPU steal, percent, before the engine starts or while the main phase runs.
    pub steal_pct: f64,
    /// Mean runnable threads per online core (the reader not counted).
    pub runnable_per_core: f64,
}

pub const BUSY: Busy = Busy {
    load_per_core: 1.0,
    steal_pct: 3.0,
    runnable_per_core: 0.5,
};

/// The two tables as `docs/BENCHMARKS.md` states them.
pub fn markdown_tables() -> String {
    let mut out = String::new();
    out.push_str("| figure | unit | shared cores (default layout) | dedicated load core |\n");
    out.push_str("|---|---|---:|---:|\n");
    for e in &RANGES {
        let _ = writeln!(
            out,
            "| {} | {} | {}-{} | {}-{} |",
            e.figure.name(),
            e.unit.symbol(),
            e.shared.lo,
            e.shared.hi,
            e.dedicated.lo,
            e.dedicated.hi
        );
    }
    out.push('\n');
    out.push_str("| host reading | busy above |\n");
    out.push_str("|---|---:|\n");
    let _ = writeln!(
        out,
        "| load average (1 min) per online core | {} |",
        BUSY.load_per_core
    );
    let _ = writeln!(out, "| CPU steal, % | {} |", BUSY.steal_pct);
    let _ = writeln!(
        out,
        "| runnable threads per online core | {} |",
        BUSY.runnable_per_core
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADING: &str = "## Expected ranges for `veloz demo` (issue 14)";

    fn section(doc: &str) -> Result<&str, String> {
        let start = doc
            .find(HEADING)
            .ok_or_else(|| format!("no section {HEADING:?}"))?;
        let body = &doc[start + HEADING.len()..];
        Ok(match body.find("\n## ") {
            Some(end) => &body[..end],
            None => body,
        })
    }

    /// The section states both tables as rendered, and no other row for a figure or a host
    /// reading (other tables, such as the runs measured, may follow).
    fn check(doc: &str) -> Result<(), String> {
        let section = section(doc)?;
        let rendered = markdown_tables();
        if !section.contains(&rendered) {
            return Err(format!("the section's tables should read:\n{rendered}"));
        }
        let first_cell = |l: &str| l.split('|').nth(1).map(|c| c.trim().to_string());
        let code: Vec<&str> = rendered.lines().filter(|l| l.starts_with('|')).collect();
        let named: Vec<String> = code
            .iter()
            .filter_map(|l| first_cell(l))
            .filter(|c| !c.starts_with("---"))
            .collect();
        for line in section.lines().filter(|l| l.starts_with('|')) {
            if first_cell(line).is_some_and(|c| named.contains(&c)) && !code.contains(&line) {
                return Err(format!("the section also states {line:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn benchmarks_md_states_the_same_ranges_as_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/BENCHMARKS.md");
        let doc = std::fs::read_to_string(path).unwrap();
        if let Err(e) = check(&doc) {
            panic!("docs/BENCHMARKS.md and src/demo/expect.rs disagree: {e}");
        }
    }

    #[test]
    fn the_section_check_sees_a_changed_or_second_number() {
        let good = format!(
            "# x\n\n{HEADING}\n\ntext\n\n{}\n| run | 1 |\n\n## next\n| CPU steal, % | 9 |\n",
            markdown_tables()
        );
        assert_eq!(check(&good), Ok(()), "a row after the section is not in it");
        let changed = good.replacen("| 3 |", "| 4 |", 1);
        assert_ne!(good, changed);
        assert!(check(&changed).is_err());
        let second = good.replacen(
            "| run | 1 |",
            "| group commit_wait p99 | us | 1-2 | 3-4 |",
            1,
        );
        let err = check(&second).unwrap_err();
        assert!(err.contains("also states"), "{err}");
        assert!(check("# no section\n").is_err());
    }

    #[test]
    fn every_ranged_figure_has_one_row_and_sane_bounds() {
        for figure in Figure::ALL {
            let rows = RANGES.iter().filter(|e| e.figure == figure).count();
            let want = usize::from(figure != Figure::Replay);
            assert_eq!(rows, want, "{figure:?}");
        }
        for e in &RANGES {
            for r in [e.shared, e.dedicated] {
                assert!(0.0 < r.lo && r.lo < r.hi, "{:?}: {r:?}", e.figure);
            }
        }
        assert_eq!(expected(Figure::Replay, Layout::Shared), None);
        let (shared, _) = expected(Figure::ClientP50, Layout::Shared).unwrap();
        let (dedicated, unit) = expected(Figure::ClientP50, Layout::Dedicated).unwrap();
        assert_eq!((shared, unit), (RANGES[0].shared, Unit::Ratio));
        assert_eq!(dedicated, RANGES[0].dedicated);
    }
}
