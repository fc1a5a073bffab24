//! A shard's view of its journal's availability (`docs/operations.md`, "Journal
//! unavailable"): when the journal refuses appends (a segment could not be reserved, a write
//! or a sync failed; the journal retries by itself), the shard rejects new commands with
//! [`RejectReason::JournalUnavailable`], sets `veloz_journal_available` to 0 and says why in
//! the log (target `veloz::journal`: the journal's message, which names the file and the OS
//! error, and the free space of the filesystem); when the journal takes appends again it
//! says so and the gauge returns to 1.
//!
//! Contract: [`JournalState::refused`] is called for each command the journal refused,
//! [`JournalState::observe`] with the journal's answer to "unavailable?" from time to time
//! (the shard's timer check); each transition is logged once, whichever noticed it.

use std::path::PathBuf;

use veloz_core::{Command, Event, RejectReason, Seq};

use super::mesh::{Delivery, Inbound};
use super::metrics::ShardMetrics;

/// Since when, and why, the journal is unavailable.
#[derive(Debug)]
struct Down {
    since_ns: u64,
    rejected: u64,
}

/// A shard's journal availability and its transitions.
#[derive(Debug)]
pub struct JournalState {
    shard: usize,
    /// The shard's journal directory (for the free space in the log line).
    dir: PathBuf,
    down: Option<Down>,
}

impl JournalState {
    pub fn new(shard: usize, dir: PathBuf) -> JournalState {
        JournalState {
            shard,
            dir,
            down: None,
        }
    }

    /// Whether the journal is unavailable (as last seen).
    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// The journal refused a command: enter the state (once) and count the reject. Returns
    /// the reject to deliver to the command's session.
    pub fn refused(
        &mut self,
        inbound: &Inbound,
        why: &str,
        now_ns: u64,
        metrics: &mut ShardMetrics,
    ) -> Delivery {
        self.enter(why, now_ns, metrics);
        if let Some(d) = &mut self.down {
            d.rejected += 1;
        }
        metrics.counters.reject(RejectReason::JournalUnavailable);
        reject(inbound)
    }

    /// What the journal says now (`Some(why)`: unavailable); logs a transition.
    pub fn observe(
        &mut self,
        why: Option<String>,
        now_ns: u64,
        next_seq: Seq,
        metrics: &mut ShardMetrics,
    ) {
        match (why, self.down.take()) {
            (Some(why), down) => {
                self.down = down;
                self.enter(&why, now_ns, metrics);
            }
            (None, Some(down)) => {
                metrics.counters.journal_unavailable = 0;
                let secs = now_ns.saturating_sub(down.since_ns) as f64 / 1e9;
                let rejected = down.rejected;
                tracing::info!(
                    target: "veloz::journal",
                    shard = self.shard,
                    unavailable_s = secs,
                    rejected,
                    sequence = next_seq,
                    "journal available again after {secs:.1} s ({rejected} commands rejected meanwhile); appends continue at sequence {next_seq}"
                );
            }
            (None, None) => {}
        }
    }

    fn enter(&mut self, why: &str, now_ns: u64, metrics: &mut ShardMetrics) {
        if self.down.is_some() {
            return;
        }
        self.down = Some(Down {
            since_ns: now_ns,
            rejected: 0,
        });
        metrics.counters.journal_unavailable = 1;
        metrics.counters.journal_unavailable_episodes += 1;
        let dir = self.dir.display();
        let space = match veloz_journal::fs_space(&self.dir) {
            Ok((free, total)) => format!("{free} bytes free of {total} on the filesystem of {dir}"),
            Err(e) => format!("free space of {dir} unknown: {e}"),
        };
        tracing::error!(
            target: "veloz::journal",
            shard = self.shard,
            why,
            space = %space,
            "journal unavailable: {why}; {space}; new commands are rejected (journal_unavailable) until it recovers (retried every {} ms)",
            veloz_journal::writer::RETRY_EVERY.as_millis()
        );
    }
}

/// The reject of a command the journal refused: nothing changed, no sequence number.
fn reject(inbound: &Inbound) -> Delivery {
    let cmd = &inbound.cmd;
    let order_id = match cmd {
        Command::Cancel(c) => c.order_id,
        Command::Replace(r) => r.order_id,
        _ => 0,
    };
    Delivery::immediate(
        inbound.from,
        Event::Rejected {
            account: cmd.account(),
            client_order_id: cmd.client_order_id(),
            symbol: cmd.symbol().unwrap_or(0),
            order_id,
            reason: RejectReason::JournalUnavailable,
        },
    )
}
