//! What every FIX session of the engine shares: the `[fix]` settings, the instruments as
//! FIX writes them, the CompIDs logged on now (engine-wide: a CompID is logged on once) and
//! the counters of the metrics endpoint.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rustc_hash::FxHashMap;
use veloz_config::Config;
use veloz_core::SymbolId;

use super::NS;

/// An instrument as FIX sees it: its symbol and how its prices are written.
#[derive(Clone, Debug)]
pub(crate) struct Instrument {
    pub id: SymbolId,
    pub symbol: String,
    pub price_scale: u8,
    pub tick_size: i64,
}

/// What every FIX session of the engine shares: the `[fix]` settings, the instruments, the
/// store directory and the CompIDs logged on now.
#[derive(Debug)]
pub(crate) struct FixShared {
    pub comp_id: String,
    pub max_message: usize,
    /// After this many malformed or garbled messages a session is logged out
    /// (`gateway.max_bad_messages`, as for binary sessions).
    pub max_bad: u32,
    pub heartbeat_s: (u64, u64),
    pub max_skew_ns: u64,
    pub store_dir: PathBuf,
    pub streams: usize,
    pub instruments: Vec<Instrument>,
    by_symbol: FxHashMap<String, usize>,
    by_id: FxHashMap<SymbolId, usize>,
    /// Client CompIDs logged on now, engine-wide.
    pub(super) logged_on: Mutex<BTreeSet<String>>,
    /// Counters for the metrics endpoint (`veloz_fix_*`), bumped at session events only.
    pub stats: FixStats,
}

/// What the FIX sessions did, engine-wide (docs/operations.md section 9).
#[derive(Debug, Default)]
pub struct FixStats {
    pub(super) logons: AtomicU64,
    pub(super) session_rejects: AtomicU64,
    pub(super) resends_served: AtomicU64,
    pub(super) resent_messages: AtomicU64,
    pub(super) resend_requests_sent: AtomicU64,
}

impl FixStats {
    pub(super) fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl FixShared {
    /// The `veloz_fix_*` series, Prometheus text.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let s = &self.stats;
        let logged_on = self.logged_on.lock().expect("fix lock").len() as u64;
        let series: [(&str, &str, &str, u64); 6] = [
            (
                "veloz_fix_sessions",
                "FIX sessions logged on",
                "gauge",
                logged_on,
            ),
            (
                "veloz_fix_logons_total",
                "FIX logons accepted",
                "counter",
                s.logons.load(Ordering::Relaxed),
            ),
            (
                "veloz_fix_session_rejects_total",
                "FIX session-level Rejects (3) sent: garbled or malformed messages",
                "counter",
                s.session_rejects.load(Ordering::Relaxed),
            ),
            (
                "veloz_fix_resends_served_total",
                "FIX ResendRequests (2) answered",
                "counter",
                s.resends_served.load(Ordering::Relaxed),
            ),
            (
                "veloz_fix_resent_messages_total",
                "FIX messages sent again with PossDupFlag=Y",
                "counter",
                s.resent_messages.load(Ordering::Relaxed),
            ),
            (
                "veloz_fix_resend_requests_sent_total",
                "FIX ResendRequests (2) sent for gaps in what clients sent",
                "counter",
                s.resend_requests_sent.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, kind, value) in series {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}

impl FixShared {
    pub fn new(config: &Config, data_dir: &std::path::Path, streams: usize) -> FixShared {
        let instruments: Vec<Instrument> = config
            .instruments
            .iter()
            .map(|i| Instrument {
                id: i.id,
                symbol: i.symbol.clone(),
                price_scale: i.price_scale,
                tick_size: i.tick_size,
            })
            .collect();
        let f = &config.fix;
        FixShared {
            comp_id: f.comp_id.clone(),
            max_message: f.max_message_bytes,
            max_bad: config.gateway.max_bad_messages,
            heartbeat_s: (f.min_heartbeat_s, f.max_heartbeat_s),
            max_skew_ns: f.max_clock_skew_s * NS,
            store_dir: data_dir.join("fix"),
            streams,
            by_symbol: instruments
                .iter()
                .enumerate()
                .map(|(n, i)| (i.symbol.clone(), n))
                .collect(),
            by_id: instruments
                .iter()
                .enumerate()
                .map(|(n, i)| (i.id, n))
                .collect(),
            instruments,
            logged_on: Mutex::new(BTreeSet::new()),
            stats: FixStats::default(),
        }
    }

    pub fn by_symbol(&self, symbol: &str) -> Option<&Instrument> {
        self.by_symbol.get(symbol).map(|&n| &self.instruments[n])
    }

    pub fn by_id(&self, id: SymbolId) -> Option<&Instrument> {
        self.by_id.get(&id).map(|&n| &self.instruments[n])
    }
}
