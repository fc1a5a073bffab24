//! Start-up checks that turn obscure runtime failures into clear errors: cores that do not
//! exist, a locked-memory limit glommio cannot live with, io_uring switched off.
//!
//! Cores are enumerated once, from the main thread, out of
//! `/sys/devices/system/cpu/online`: `core_affinity::get_core_ids()` only lists the cores the
//! calling thread may run on, so from an already pinned thread it would see one
//! (PLATFORM.md pitfall 5).

use std::path::Path;

/// Locked memory below which glommio cannot create an executor (PLATFORM.md pitfall 6).
pub const MEMLOCK_FLOOR: u64 = 512 * 1024;
/// Locked memory each executor wants to register its IO buffers (glommio registers its
/// 10 MiB buffer with each of its 3 rings, and Linux charges every registration); below
/// `shards` times this it silently skips registration (tuning/check.sh says the same).
pub const MEMLOCK_WANTED_PER_SHARD: u64 = 32 << 20;

/// Start-up failures, each with the fix.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("engine.cores names core {core}, which is not online (online cores: {online}); list online cores in engine.cores or leave it empty to use them all")]
    NoSuchCore { core: usize, online: String },
    #[error("engine.control_core = {core} is not online (online cores: {online})")]
    NoSuchControlCore { core: usize, online: String },
    #[error("cannot read the online cores from {path}: {detail}")]
    CpuList { path: String, detail: String },
    #[error("RLIMIT_MEMLOCK is {soft} bytes: glommio needs at least {floor} bytes of locked memory to create an executor (16 MiB to register its buffers). Raise it: `ulimit -l unlimited` as root, `LimitMEMLOCK=infinity` in the systemd unit, or a memlock line in /etc/security/limits.d/ (tuning/apply.sh writes one)")]
    MemlockTooLow { soft: u64, floor: u64 },
    #[error("io_uring is disabled on this host (/proc/sys/kernel/io_uring_disabled = {value}); glommio needs it: `sysctl kernel.io_uring_disabled=0`")]
    IoUringDisabled { value: String },
}

/// Parse a kernel CPU list such as `0-3,8,10-11`.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cores = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().ok()?),
        }
    }
    Some(cores)
}

/// The online cores, from sysfs.
pub fn online_cores() -> Result<Vec<usize>, PreflightError> {
    let path = "/sys/devices/system/cpu/online";
    let text = std::fs::read_to_string(path).map_err(|e| PreflightError::CpuList {
        path: path.into(),
        detail: e.to_string(),
    })?;
    parse_cpu_list(&text).ok_or_else(|| PreflightError::CpuList {
        path: path.into(),
        detail: format!("unexpected content {text:?}"),
    })
}

/// The online cores not in `used`, or every online core when none is left (small hosts):
/// where helper threads, the echo baseline or a load generator go.
pub fn spare_cores(online: &[usize], used: &[usize]) -> Vec<usize> {
    let rest: Vec<usize> = online
        .iter()
        .copied()
        .filter(|c| !used.contains(c))
        .collect();
    if rest.is_empty() {
        online.to_vec()
    } else {
        rest
    }
}

/// The shard cores and the control core for this config, checked against the online cores.
pub fn plan_cores(
    configured: &[usize],
    control: Option<usize>,
    online: &[usize],
) -> Result<(Vec<usize>, usize), PreflightError> {
    let shown = || {
        online
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let shards = if configured.is_empty() {
        online.to_vec()
    } else {
        for &core in configured {
            if !online.contains(&core) {
                return Err(PreflightError::NoSuchCore {
                    core,
                    online: shown(),
                });
            }
        }
        configured.to_vec()
    };
    let control = match control {
        Some(core) if !online.contains(&core) => {
            return Err(PreflightError::NoSuchControlCore {
                core,
                online: shown(),
            })
        }
        Some(core) => core,
        // A core no shard spins on, if there is one (its 1 ms polls would otherwise preempt
        // a shard); else share the last shard's.
        None => online
            .iter()
            .copied()
            .find(|c| !shards.contains(c))
            .unwrap_or_else(|| *shards.last().expect("at least one online core")),
    };
    Ok((shards, control))
}

const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_ADMIN: u32 = 21;

/// `true` if this process has capability `cap` in its effective set (root has all).
fn has_capability(cap: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << cap) != 0)
}

/// Check locked memory for `shards` executors. Ok carries a warning when buffers will not
/// be registered.
pub fn check_memlock(shards: usize) -> Result<Option<String>, PreflightError> {
    if has_capability(CAP_IPC_LOCK) {
        return Ok(None);
    }
    let (soft, _hard) = rlimit::getrlimit(rlimit::Resource::MEMLOCK).unwrap_or((0, 0));
    if soft < MEMLOCK_FLOOR {
        return Err(PreflightError::MemlockTooLow {
            soft,
            floor: MEMLOCK_FLOOR,
        });
    }
    let wanted = MEMLOCK_WANTED_PER_SHARD * shards as u64;
    if soft < wanted {
        return Ok(Some(format!(
            "RLIMIT_MEMLOCK is {soft} bytes: glommio will not register its IO buffers ({shards} shards want {wanted}); raise it with tuning/apply.sh or LimitMEMLOCK"
        )));
    }
    Ok(None)
}

/// Check that io_uring is not switched off by sysctl. Ok carries a warning when it is
/// limited to a group this process may not be in.
pub fn check_io_uring(proc_root: &Path) -> Result<Option<String>, PreflightError> {
    let path = proc_root.join("sys/kernel/io_uring_disabled");
    match std::fs::read_to_string(&path).map(|v| v.trim().to_string()) {
        // 0: enabled; 1: only for root and kernel.io_uring_group; 2: disabled.
        Ok(v) if v == "2" => Err(PreflightError::IoUringDisabled { value: v }),
        Ok(v) if v == "1" && !has_capability(CAP_SYS_ADMIN) => Ok(Some(
            "kernel.io_uring_disabled = 1: io_uring works only for root and members of kernel.io_uring_group; if executors fail to start, add this user to that group or set it to 0".to_string(),
        )),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_cores_fall_back_to_all() {
        assert_eq!(spare_cores(&[0, 1, 2], &[1]), vec![0, 2]);
        assert_eq!(spare_cores(&[0, 1], &[0, 1]), vec![0, 1]);
        assert_eq!(spare_cores(&[0], &[0]), vec![0]);
    }

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn core_plan_uses_online_cores_and_names_bad_ones() {
        assert_eq!(plan_cores(&[], None, &[0, 1]).unwrap(), (vec![0, 1], 1));
        assert_eq!(plan_cores(&[1], Some(0), &[0, 1]).unwrap(), (vec![1], 0));
        // A spare core takes the control thread; without one it shares the last shard's.
        assert_eq!(plan_cores(&[0], None, &[0, 1, 2]).unwrap(), (vec![0], 1));
        assert_eq!(plan_cores(&[1, 0], None, &[0, 1]).unwrap(), (vec![1, 0], 0));
        let err = plan_cores(&[0, 5], None, &[0, 1]).unwrap_err().to_string();
        assert!(
            err.starts_with("engine.cores names core 5, which is not online (online cores: 0,1)"),
            "{err}"
        );
        let err = plan_cores(&[], Some(9), &[0, 1]).unwrap_err().to_string();
        assert_eq!(
            err,
            "engine.control_core = 9 is not online (online cores: 0,1)"
        );
    }

    #[test]
    fn io_uring_switch_is_read_from_proc() {
        let dir = std::env::temp_dir().join(format!("veloz-preflight-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sys/kernel")).unwrap();
        std::fs::write(dir.join("sys/kernel/io_uring_disabled"), "2\n").unwrap();
        let err = check_io_uring(&dir).unwrap_err().to_string();
        assert!(err.contains("io_uring_disabled = 2"), "{err}");
        std::fs::write(dir.join("sys/kernel/io_uring_disabled"), "0\n").unwrap();
        assert_eq!(check_io_uring(&dir).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
        // The real host passes (CI and development machines run glommio).
        check_io_uring(Path::new("/proc")).unwrap();
        assert!(check_memlock(2).is_ok());
    }
}
