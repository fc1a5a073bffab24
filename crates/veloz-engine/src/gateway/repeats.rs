//! Summaries of repeated events: a flood of refused logons, bad frames or slow consumers
//! makes a handful of log lines, not one per event.
//!
//! Per kind of event, a burst opens with its first event, which the caller logs in full
//! ([`Repeats::note`] returns true). Later events of the burst are counted per source
//! address (up to [`SOURCES`] addresses, the rest together) and [`Repeats::due`] hands
//! out one summary per address once per interval. A burst ends after an interval without
//! events; the next event opens a new one (logged in full again).
//!
//! Pure bookkeeping: no clock (the caller passes `now`), no IO, no allocation.

use std::net::IpAddr;

/// Source addresses counted one by one per kind; events from others are counted together.
pub const SOURCES: usize = 8;

/// A kind of repeated event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// A logon with an unknown account or a wrong token.
    RefusedLogon,
    /// A frame that does not decode or breaks the protocol.
    BadFrame,
    /// A session disconnected because it did not read its reports.
    SlowConsumer,
}

impl Repeat {
    /// Every kind, in index order.
    pub const ALL: [Repeat; 3] = [Repeat::RefusedLogon, Repeat::BadFrame, Repeat::SlowConsumer];

    /// The name in the `kind` field of a summary.
    pub fn name(self) -> &'static str {
        match self {
            Repeat::RefusedLogon => "refused_logon",
            Repeat::BadFrame => "bad_frame",
            Repeat::SlowConsumer => "slow_consumer",
        }
    }

    /// Words for `n` events of this kind, e.g. "refused logons".
    pub fn words(self, n: u64) -> &'static str {
        match (self, n == 1) {
            (Repeat::RefusedLogon, true) => "refused logon",
            (Repeat::RefusedLogon, false) => "refused logons",
            (Repeat::BadFrame, true) => "bad frame",
            (Repeat::BadFrame, false) => "bad frames",
            (Repeat::SlowConsumer, true) => "slow consumer",
            (Repeat::SlowConsumer, false) => "slow consumers",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One summary: `count` events of `kind` from `source` (`None`: other addresses) that were
/// not logged one by one, over the last `elapsed_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub kind: Repeat,
    pub source: Option<IpAddr>,
    pub count: u64,
    pub elapsed_ns: u64,
}

/// The open burst of one kind.
#[derive(Clone, Copy, Debug, Default)]
struct Burst {
    /// Start of the current interval; `None` when no burst is open.
    since: Option<u64>,
    /// Events not logged one by one, per source address.
    sources: [Option<(IpAddr, u64)>; SOURCES],
    /// The same for every other address.
    others: u64,
}

/// Bursts of each [`Repeat`] kind (see the module docs).
#[derive(Clone, Debug)]
pub struct Repeats {
    interval_ns: u64,
    bursts: [Burst; Repeat::ALL.len()],
}

impl Repeats {
    /// Summaries every `interval_ns`.
    pub fn new(interval_ns: u64) -> Repeats {
        Repeats {
            interval_ns: interval_ns.max(1),
            bursts: [Burst::default(); Repeat::ALL.len()],
        }
    }

    /// One event of `kind` from `source` at `now`. True when it opens a burst: log it in
    /// full; otherwise it is counted for the next summary.
    pub fn note(&mut self, kind: Repeat, source: IpAddr, now: u64) -> bool {
        let burst = &mut self.bursts[kind.index()];
        if burst.since.is_none() {
            burst.since = Some(now);
            return true;
        }
        let mut free = None;
        for (i, entry) in burst.sources.iter_mut().enumerate() {
            match entry {
                Some((ip, n)) if *ip == source => {
                    *n += 1;
                    return false;
                }
                None if free.is_none() => free = Some(i),
                _ => {}
            }
        }
        match free {
            Some(i) => burst.sources[i] = Some((source, 1)),
            None => burst.others += 1,
        }
        false
    }

    /// Hand each summary that is due at `now` to `emit` (every open burst's when `force`,
    /// at shutdown). Bursts with nothing to report close.
    pub fn due(&mut self, now: u64, force: bool, mut emit: impl FnMut(Summary)) {
        for kind in Repeat::ALL {
            let burst = &mut self.bursts[kind.index()];
            let Some(since) = burst.since else { continue };
            let elapsed_ns = now.saturating_sub(since);
            if !force && elapsed_ns < self.interval_ns {
                continue;
            }
            let mut any = false;
            for entry in burst.sources.iter_mut() {
                if let Some((ip, count)) = entry.take() {
                    any = true;
                    emit(Summary {
                        kind,
                        source: Some(ip),
                        count,
                        elapsed_ns,
                    });
                }
            }
            if burst.others > 0 {
                any = true;
                emit(Summary {
                    kind,
                    source: None,
                    count: burst.others,
                    elapsed_ns,
                });
                burst.others = 0;
            }
            // A burst still going on stays open (its next events are counted, not logged).
            burst.since = if any && !force { Some(now) } else { None };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_burst_logs_its_first_event_then_one_summary_per_interval_and_source() {
        let mut r = Repeats::new(10 * S);
        assert!(r.note(Repeat::RefusedLogon, ip(1), 0));
        for t in 1..=1_204 {
            assert!(!r.note(Repeat::RefusedLogon, ip(1), t));
        }
        assert!(!r.note(Repeat::RefusedLogon, ip(2), 5));
        // Another kind has its own burst.
        assert!(r.note(Repeat::BadFrame, ip(1), 5));
        let mut out = Vec::new();
        r.due(9 * S, false, |s| out.push(s));
        assert!(out.is_empty(), "not due yet: {out:?}");
        r.due(10 * S, false, |s| out.push(s));
        assert_eq!(
            out,
            [
                Summary {
                    kind: Repeat::RefusedLogon,
                    source: Some(ip(1)),
                    count: 1_204,
                    elapsed_ns: 10 * S
                },
                Summary {
                    kind: Repeat::RefusedLogon,
                    source: Some(ip(2)),
                    count: 1,
                    elapsed_ns: 10 * S
                },
            ]
        );
        // The flood goes on: counted, not logged in full again.
        assert!(!r.note(Repeat::RefusedLogon, ip(1), 11 * S));
        out.clear();
        r.due(20 * S, false, |s| out.push(s));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].count, out[0].elapsed_ns), (1, 10 * S));
        // A quiet interval closes the burst; the next event is logged in full.
        r.due(30 * S, false, |_| panic!("nothing to summarise"));
        assert!(r.note(Repeat::RefusedLogon, ip(1), 31 * S));
    }

    #[test]
    fn sources_beyond_the_table_are_counted_together() {
        let mut r = Repeats::new(S);
        assert!(r.note(Repeat::BadFrame, ip(0), 0));
        for last in 1..=(SOURCES as u8 + 3) {
            r.note(Repeat::BadFrame, ip(last), 1);
        }
        let mut out = Vec::new();
        r.due(2, true, |s| out.push(s));
        assert_eq!(out.len(), SOURCES + 1);
        assert_eq!(out[SOURCES].source, None);
        assert_eq!(out[SOURCES].count, 3);
        // Forced (shutdown): every burst closes.
        assert!(r.note(Repeat::BadFrame, ip(1), 3));
    }
}
