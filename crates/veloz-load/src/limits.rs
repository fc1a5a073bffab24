//! The file descriptor limit: a run holds one socket per connection (two with `--baseline`:
//! the echo server's side is in this process too), plus an epoll set per load thread and
//! the subscribers. [`raise_fd_limit`] lifts the soft `RLIMIT_NOFILE` to the hard one (a
//! shell's default soft limit, often 1,024, is too low for `--connections 1000
//! --baseline`) and fails, naming both limits, when even the hard one is too low.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use super::LoadError;

/// Descriptors kept free beside the sockets: the binary, its logs, epoll sets, the
/// interval logs, the echo server's listener.
pub const FD_SPARE: u64 = 64;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit and check `needed` descriptors fit.
/// Returns the soft limit now in force.
pub fn raise_fd_limit(needed: u64) -> Result<u64, LoadError> {
    let fail = |detail: String| LoadError::FdLimit { needed, detail };
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| fail(format!("getrlimit: {e}")))?;
    let soft = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                return Err(fail(format!(
                    "cannot raise the soft limit {soft} to the hard limit {hard}: {e}"
                )))
            }
        }
    } else {
        soft
    };
    if needed > soft {
        return Err(fail(format!(
            "the limit is {soft} (hard limit {hard}); raise it (ulimit -Hn, or LimitNOFILE= of the unit) or use fewer connections"
        )));
    }
    Ok(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(raise_fd_limit(16).unwrap(), hard);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, hard);
        if hard < u64::MAX {
            let e = raise_fd_limit(hard + 1).unwrap_err().to_string();
            assert!(e.contains(&format!("hard limit {hard}")), "{e}");
        }
    }
}
