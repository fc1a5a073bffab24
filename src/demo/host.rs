//! How busy the host is, read from `/proc` before the demo starts its engine.
//!
//! Three readings, each a question a benchmark's reader would ask:
//! - **load average** (`/proc/loadavg`, 1 minute) against the online cores: more threads
//!   wanted to run than there were cores;
//! - **CPU steal** (`/proc/stat`, the `cpu` line's eighth field) over a short window: the
//!   hypervisor ran someone else on this guest's vCPUs;
//! - **runnable threads** (`/proc/stat`'s `procs_running`, sampled over the same window, the
//!   reading thread itself not counted): what competes with the shards right now.
//!
//! The parsers take the file's text and are pure; [`measure`] is the only function that
//! reads `/proc` or sleeps. What counts as busy is [`super::expect::BUSY`].

use std::time::Duration;

/// `/proc/loadavg`: `0.29 0.89 0.84 3/104 30824`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Parse the text of `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<LoadAvg> {
    let mut fields = text.split_whitespace();
    let mut next = || fields.next()?.parse::<f64>().ok();
    Some(LoadAvg {
        one: next()?,
        five: next()?,
        fifteen: next()?,
    })
}

/// The aggregate `cpu` line of `/proc/stat`, in clock ticks since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user + nice + system + idle + iowait + irq + softirq + steal (guest time is already
    /// inside user and nice).
    pub total: u64,
    pub steal: u64,
}

/// One read of `/proc/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatSample {
    pub cpu: CpuTimes,
    /// Threads running or runnable at the moment of the read, the reader included.
    pub procs_running: u32,
}

/// Parse the text of `/proc/stat` (the `cpu` and `procs_running` lines; kernels before 2.6.11
/// have no steal field, which reads as 0).
pub fn parse_stat(text: &str) -> Option<StatSample> {
    let mut cpu = None;
    let mut procs_running = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let values: Vec<u64> = fields.take(8).map_while(|f| f.parse().ok()).collect();
                if values.len() < 4 {
                    return None;
                }
                cpu = Some(CpuTimes {
                    total: values.iter().sum(),
                    steal: values.get(7).copied().unwrap_or(0),
                });
            }
            Some("procs_running") => procs_running = fields.next()?.parse().ok(),
            _ => {}
        }
    }
    Some(StatSample {
        cpu: cpu?,
        procs_running: procs_running?,
    })
}

/// Steal as a percentage of all CPU time between two reads; `None` when no time passed.
pub fn steal_pct(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let steal = after.steal.checked_sub(before.steal)?;
    (total > 0).then(|| 100.0 * steal as f64 / total as f64)
}

/// Mean runnable threads over the samples, one per sample not counted (the reader).
pub fn runnable(samples: &[StatSample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let sum: f64 = samples
        .iter()
        .map(|s| s.procs_running.saturating_sub(1) as f64)
        .sum();
    Some(sum / samples.len() as f64)
}

/// The host's state as the demo saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub online_cores: usize,
    pub load: LoadAvg,
    /// Steal over [`Host::window`] before the engine started.
    pub steal_pct: Option<f64>,
    /// Steal while the main phase's load ran (the engine's own threads cannot steal).
    pub run_steal_pct: Option<f64>,
    /// Mean runnable threads over [`Host::window`], the reader not counted.
    pub runnable: f64,
    pub window: Duration,
}

impl Host {
    /// The worse of the two steal readings.
    pub fn worst_steal_pct(&self) -> Option<f64> {
        match (self.steal_pct, self.run_steal_pct) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

fn read(path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))
}

/// Read `/proc/stat` now.
pub fn sample_stat() -> anyhow::Result<StatSample> {
    let text = read("/proc/stat")?;
    parse_stat(&text).ok_or_else(|| anyhow::anyhow!("/proc/stat: no cpu or procs_running line"))
}

/// Read the load average, then sample `/proc/stat` `samples` times over `window`.
pub fn measure(online_cores: usize, window: Duration, samples: u32) -> anyhow::Result<Host> {
    let text = read("/proc/loadavg")?;
    let load = parse_loadavg(&text)
        .ok_or_else(|| anyhow::anyhow!("/proc/loadavg: unexpected content {text:?}"))?;
    let samples = samples.max(2);
    let step = window / (samples - 1);
    let mut taken = Vec::with_capacity(samples as usize);
    for i in 0..samples {
        if i > 0 {
            std::thread::sleep(step);
        }
        taken.push(sample_stat()?);
    }
    let first = taken.first().expect("at least two samples").cpu;
    let last = taken.last().expect("at least two samples").cpu;
    Ok(Host {
        online_cores,
        load,
        steal_pct: steal_pct(first, last),
        run_steal_pct: None,
        runnable: runnable(&taken).unwrap_or(0.0),
        window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  10132153 290696 3084719 46828483 16683 0 25195 175628 0 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 58765 0 0
cpu1 1335862 39340 558530 13427413 3391 0 1855 58563 0 0
intr 199292 92 0 0
ctxt 2380135
btime 1700000000
processes 31217
procs_running 3
procs_blocked 0
";

    #[test]
    fn loadavg_reads_the_three_averages() {
        let l = parse_loadavg("5.81 3.21 1.76 2/107 3160\n").unwrap();
        assert_eq!((l.one, l.five, l.fifteen), (5.81, 3.21, 1.76));
        assert_eq!(parse_loadavg("garbage"), None);
        assert_eq!(parse_loadavg("0.1 0.2"), None);
    }

    #[test]
    fn stat_reads_the_cpu_line_and_procs_running() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s.cpu.total,
            10132153 + 290696 + 3084719 + 46828483 + 16683 + 25195 + 175628
        );
        assert_eq!(s.cpu.steal, 175628);
        assert_eq!(s.procs_running, 3);
        assert_eq!(parse_stat("cpu  1 2 3 4\n"), None, "no procs_running");
        let old_kernel = parse_stat("cpu 1 2 3 4\nprocs_running 1\n").unwrap();
        assert_eq!((old_kernel.cpu.total, old_kernel.cpu.steal), (10, 0));
    }

    #[test]
    fn steal_is_a_share_of_the_window() {
        let a = CpuTimes {
            total: 1_000,
            steal: 10,
        };
        let b = CpuTimes {
            total: 1_200,
            steal: 20,
        };
        assert_eq!(steal_pct(a, b), Some(5.0));
        assert_eq!(steal_pct(a, a), None, "no time passed");
        assert_eq!(steal_pct(b, a), None, "counters went backwards");
    }

    #[test]
    fn runnable_leaves_out_the_reader() {
        let at = |n| StatSample {
            cpu: CpuTimes::default(),
            procs_running: n,
        };
        assert_eq!(runnable(&[at(1), at(3), at(2)]), Some(1.0));
        assert_eq!(runnable(&[at(0)]), Some(0.0));
        assert_eq!(runnable(&[]), None);
    }

    #[test]
    fn the_worse_steal_reading_counts() {
        let mut h = Host {
            online_cores: 2,
            load: LoadAvg {
                one: 0.1,
                five: 0.1,
                fifteen: 0.1,
            },
            steal_pct: Some(0.5),
            run_steal_pct: None,
            runnable: 0.0,
            window: Duration::from_secs(1),
        };
        assert_eq!(h.worst_steal_pct(), Some(0.5));
        h.run_steal_pct = Some(7.0);
        assert_eq!(h.worst_steal_pct(), Some(7.0));
        h.steal_pct = None;
        assert_eq!(h.worst_steal_pct(), Some(7.0));
    }
}
