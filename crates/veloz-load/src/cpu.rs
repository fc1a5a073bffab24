//! The engine's CPU time, read from `/proc` (`--engine-pid`): what a run cost the engine,
//! per 1,000 orders.
//!
//! A [`CpuSample`] holds, at one instant, the user plus system time of the whole process
//! (`/proc/PID/stat`, which keeps the time of threads that have ended) and of its shard
//! threads (every `/proc/PID/task/TID/stat` whose thread name starts with
//! [`SHARD_THREAD_PREFIX`]). Two samples, at the start and the end of the measured window,
//! give the CPU the engine spent in it.
//!
//! Resolution: `/proc` counts clock ticks (`sysconf(_SC_CLK_TCK)`, 100 a second on Linux):
//! 10 ms per sample, so a window of seconds is read to a fraction of a per cent. A shard
//! busy-polls (`engine.spin_us`), so under steady load it costs a whole core whatever the
//! rate: the figure per 1,000 orders falls as the rate rises, and compares sessions counts at
//! one rate, not rates.

use std::path::Path;

use super::LoadError;

/// Shard threads are named `veloz-shard-N`.
pub const SHARD_THREAD_PREFIX: &str = "veloz-shard";

/// CPU time of a process and of its shard threads at one instant, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSample {
    pub process_ticks: u64,
    pub shard_ticks: u64,
    /// Shard threads found.
    pub shard_threads: usize,
}

/// A `stat` line's thread name and user plus system time, in ticks. The name sits in
/// parentheses and may hold spaces or parentheses itself, so the fields are counted from
/// the last `)`: state is the first after it, `utime` the 12th and `stime` the 13th (fields
/// 14 and 15 of proc(5)).
pub fn parse_stat(line: &str) -> Option<(&str, u64)> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let name = line.get(open + 1..close)?;
    let mut fields = line.get(close + 1..)?.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

/// Clock ticks per second of `/proc` times.
pub fn ticks_per_s() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

fn read_stat(path: &Path, pid: u32) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|e| LoadError::EngineCpu {
        pid,
        detail: format!("cannot read {}: {e}", path.display()),
    })
}

/// Sample process `pid` now.
pub fn sample(pid: u32) -> Result<CpuSample, LoadError> {
    let root = Path::new("/proc").join(pid.to_string());
    let stat = root.join("stat");
    let text = read_stat(&stat, pid)?;
    let (_, process_ticks) = parse_stat(&text).ok_or_else(|| LoadError::EngineCpu {
        pid,
        detail: format!("unreadable {}", stat.display()),
    })?;
    let mut out = CpuSample {
        process_ticks,
        ..CpuSample::default()
    };
    let tasks = std::fs::read_dir(root.join("task")).map_err(|e| LoadError::EngineCpu {
        pid,
        detail: format!("cannot list /proc/{pid}/task: {e}"),
    })?;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it is skipped.
        let Ok(text) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((name, ticks)) = parse_stat(&text) {
            if name.starts_with(SHARD_THREAD_PREFIX) {
                out.shard_ticks += ticks;
                out.shard_threads += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (veloz (x) 1) R 1 2 3 4 5 6 7 8 9 10 170 30 0 0 20 0 3 0 99 0 0";
        assert_eq!(parse_stat(line), Some(("veloz (x) 1", 200)));
        assert_eq!(parse_stat("4242 (short) R 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_sampled_and_its_time_grows() {
        let pid = std::process::id();
        let before = sample(pid).unwrap();
        // Spin until a tick is counted (a few ms on an idle host; longer on a busy one).
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after.process_ticks == before.process_ticks && spin.elapsed().as_secs() < 10 {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            after = sample(pid).unwrap();
        }
        assert!(
            after.process_ticks > before.process_ticks,
            "{before:?} {after:?}"
        );
        // The test harness names no thread veloz-shard-*.
        assert_eq!(after.shard_threads, 0);
        let name = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        assert!(parse_stat(&name).is_some());
        assert!(ticks_per_s() > 0);
        let e = sample(u32::MAX).unwrap_err().to_string();
        assert!(e.contains(&u32::MAX.to_string()), "{e}");
    }
}
