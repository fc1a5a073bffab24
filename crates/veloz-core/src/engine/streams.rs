//! Per-account execution-report streams of one engine (= one shard).
//!
//! Every execution report the matching core produces belongs to its account's outbound
//! stream and gets the next number of that stream: 1 for the account's first report, then
//! gap-free. Which reports an event gives, in this order (the order of
//! `veloz_wire::execution_reports`):
//! - [`Event::Trade`]: the maker's report ([`Part::Maker`], to `maker.account`), then the
//!   taker's ([`Part::Taker`], to `taker.account`); when both sides are the same account its
//!   stream advances by 2, maker first;
//! - [`Event::Admin`]: none (it answers the operator, not a member; the `Cancelled` events of
//!   a disabled account's orders before it are reports to that account like any other);
//! - every other event: one report ([`Part::All`]) to the event's `account`.
//!
//! Invariants:
//! - The streams are a pure function of the commands applied: [`Engine::apply`] records the
//!   events it just produced, in event order, and nothing else touches them (no clock, no
//!   randomness, no hash-map iteration on the event path; the maps are only probed by
//!   account). Journal replay, the snapshot shadow engine and recovery rebuild them by
//!   calling [`Engine::apply`] on the same commands.
//! - [`Engine::stream_assigned`] holds the reports of the last [`Engine::apply`] call only,
//!   in report order, with the index of their event among that call's events.
//! - [`Engine::stream_last`] of an account equals the number of reports ever assigned to it
//!   (counted from the engine's start, or carried by the snapshot it was loaded from).
//! - A retained window holds at most `retain` entries and its stream numbers are
//!   consecutive, ending at [`Engine::stream_last`]; so [`Engine::stream_retained_after`]
//!   indexes it directly.
//!
//! The counters are part of the engine's state in that they follow from the same command
//! sequence as the books, and the snapshot carries them (`snapshot`: the stream section,
//! flag bit 0 of the body header). They are deliberately NOT in [`Engine::state_hash`], so
//! checkpoints recorded before streams existed keep verifying. The retained windows are not
//! in a snapshot: a loaded engine retains nothing until new reports come (a consumer that
//! needs older reports replays the journal).
//!
//! Cost per report: one hash probe of the counters (plus one of the windows when
//! retention is on), one push onto `assigned`; no allocation once the vectors, maps and
//! windows have grown (a window starts small and doubles up to the retention).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::Engine;
use crate::types::*;

/// A window starts this small and doubles as it fills (up to the retention): memory
/// follows the reports an account really has, not accounts times retention.
const WINDOW_START: usize = 64;

/// One report assigned to an account's stream by the last [`Engine::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assigned {
    pub account: AccountId,
    pub part: Part,
    /// Index of the event among the events that apply call appended (0 = its first).
    pub event_index: u32,
    /// The report's number in the account's stream (from 1, gap-free).
    pub stream_seq: u64,
}

/// A retained report: its event and where it was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamReport {
    /// The report's number in its account's stream.
    pub stream_seq: u64,
    /// The shard sequence number of the command that produced it.
    pub seq: Seq,
    /// The timestamp of that command.
    pub ts: Timestamp,
    pub part: Part,
    pub event: Event,
}

/// Account ids below this count in a table indexed by id (one load per report); larger ones
/// in a hash map. Venues number their members densely from 1.
const DIRECT_ACCOUNTS: AccountId = 1 << 16;

/// Last stream number per account: a table for ids below [`DIRECT_ACCOUNTS`] (0 = no report
/// yet), a map for the rest. Only probed on the event path; [`Counters::sorted`] walks it
/// for a snapshot.
#[derive(Debug, Default)]
pub(super) struct Counters {
    direct: Vec<u64>,
    /// Accounts in `direct` with a counter.
    direct_len: usize,
    pub(super) far: FxHashMap<AccountId, u64>,
}

impl Counters {
    /// The account's next number (1 for its first report).
    #[inline]
    fn bump(&mut self, account: AccountId) -> u64 {
        if account < DIRECT_ACCOUNTS {
            let i = account as usize;
            if i >= self.direct.len() {
                self.direct.resize((i + 1).next_power_of_two(), 0);
            }
            let c = &mut self.direct[i];
            self.direct_len += (*c == 0) as usize;
            *c += 1;
            *c
        } else {
            let c = self.far.entry(account).or_insert(0);
            *c += 1;
            *c
        }
    }

    /// The account's last number (0: none).
    #[inline]
    pub(super) fn get(&self, account: AccountId) -> u64 {
        if account < DIRECT_ACCOUNTS {
            self.direct.get(account as usize).copied().unwrap_or(0)
        } else {
            self.far.get(&account).copied().unwrap_or(0)
        }
    }

    /// Accounts with a counter.
    pub(super) fn len(&self) -> usize {
        self.direct_len + self.far.len()
    }

    /// Set `account`'s counter (a snapshot being loaded; `last` > 0).
    pub(super) fn set(&mut self, account: AccountId, last: u64) {
        if account < DIRECT_ACCOUNTS {
            let i = account as usize;
            if i >= self.direct.len() {
                self.direct.resize((i + 1).next_power_of_two(), 0);
            }
            self.direct_len += (self.direct[i] == 0) as usize;
            self.direct[i] = last;
        } else {
            self.far.insert(account, last);
        }
    }

    /// Every counter, ascending by account.
    fn sorted(&self) -> Vec<(AccountId, u64)> {
        let mut all: Vec<(AccountId, u64)> = self
            .direct
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(a, &c)| (a as AccountId, c))
            .collect();
        let mut far: Vec<(AccountId, u64)> = self.far.iter().map(|(&a, &c)| (a, c)).collect();
        far.sort_unstable_by_key(|&(a, _)| a);
        all.extend(far);
        all
    }
}

/// The report streams of one engine (see the module docs).
#[derive(Debug, Default)]
pub(super) struct ReportStreams {
    /// Last stream number assigned, per account (point lookups only; iterated only to write
    /// a snapshot, and then sorted).
    pub(super) counters: Counters,
    /// The reports of the last apply, in report order.
    assigned: Vec<Assigned>,
    /// Window length per account; 0 = keep nothing, only count.
    retain: usize,
    /// The last `retain` reports per account, oldest first (point lookups only).
    windows: FxHashMap<AccountId, VecDeque<StreamReport>>,
}

impl ReportStreams {
    /// Assign the reports of `events` (the events of one apply call, of command `seq` at
    /// `ts`) to their streams; replaces `assigned`.
    pub(super) fn record(&mut self, seq: Seq, ts: Timestamp, events: &[Event]) {
        self.assigned.clear();
        for (i, event) in events.iter().enumerate() {
            let i = i as u32;
            match *event {
                Event::Trade { maker, taker, .. } => {
                    self.push(seq, ts, i, event, maker.account, Part::Maker);
                    self.push(seq, ts, i, event, taker.account, Part::Taker);
                }
                Event::Accepted { account, .. }
                | Event::Cancelled { account, .. }
                | Event::Replaced { account, .. }
                | Event::MassCancelled { account, .. }
                | Event::Rejected { account, .. } => {
                    self.push(seq, ts, i, event, account, Part::All)
                }
                // The operator's, not a member's: no stream, no number.
                Event::Admin { .. } => {}
            }
        }
    }

    #[inline]
    fn push(
        &mut self,
        seq: Seq,
        ts: Timestamp,
        event_index: u32,
        event: &Event,
        account: AccountId,
        part: Part,
    ) {
        let stream_seq = self.counters.bump(account);
        self.assigned.push(Assigned {
            account,
            part,
            event_index,
            stream_seq,
        });
        let retain = self.retain;
        if retain > 0 {
            let window = self
                .windows
                .entry(account)
                .or_insert_with(|| VecDeque::with_capacity(retain.min(WINDOW_START)));
            if window.len() >= retain {
                window.pop_front();
            }
            window.push_back(StreamReport {
                stream_seq,
                seq,
                ts,
                part,
                event: *event,
            });
        }
    }

    /// The invariants of the module docs ([`Engine::validate`]); `Err` names the account.
    /// Walks the maps (off the event path; the first violation found may be any).
    pub(super) fn check(&self) -> Result<(), String> {
        if let Some((account, _)) = self.counters.far.iter().find(|(_, &n)| n == 0) {
            return Err(format!("report stream of account {account} has counter 0"));
        }
        for (&account, w) in &self.windows {
            let last = self.counters.get(account);
            if w.len() > self.retain {
                return Err(format!(
                    "report window of account {account} holds {} > retention {}",
                    w.len(),
                    self.retain
                ));
            }
            // Entry k must be numbered last - (len - 1 - k).
            let first = (last + 1).checked_sub(w.len() as u64).filter(|&f| f >= 1);
            let numbered = |f: u64| w.iter().zip(f..).all(|(r, n)| r.stream_seq == n);
            if !first.is_some_and(numbered) {
                return Err(format!(
                    "report window of account {account} ({} entries) is not numbered consecutively up to {last}",
                    w.len()
                ));
            }
        }
        Ok(())
    }

    /// The counters ascending by account (for the snapshot).
    pub(super) fn counters_sorted(&self) -> Vec<(AccountId, u64)> {
        self.counters.sorted()
    }
}

impl Engine {
    /// Keep the last `per_account` reports of each account ([`Engine::stream_retained_after`]);
    /// 0 (the default) keeps nothing and only counts. Shrinking drops the oldest entries of
    /// every window at once; 0 frees them. Not state: a snapshot does not carry the windows.
    pub fn set_report_retention(&mut self, per_account: usize) {
        let s = &mut self.streams;
        s.retain = per_account;
        if per_account == 0 {
            s.windows = FxHashMap::default();
            return;
        }
        // Off the event path; the order of the walk does not matter.
        for window in s.windows.values_mut() {
            let extra = window.len().saturating_sub(per_account);
            window.drain(..extra);
        }
    }

    /// The window length set by [`Engine::set_report_retention`].
    pub fn report_retention(&self) -> usize {
        self.streams.retain
    }

    /// The reports the last [`Engine::apply`] assigned, in report order (maker before taker
    /// for a trade).
    pub fn stream_assigned(&self) -> &[Assigned] {
        &self.streams.assigned
    }

    /// The last stream number assigned to `account` (0 when none).
    pub fn stream_last(&self, account: AccountId) -> u64 {
        self.streams.counters.get(account)
    }

    /// The oldest stream number still retained for `account` (`None` when nothing is).
    pub fn stream_first_retained(&self, account: AccountId) -> Option<u64> {
        self.streams
            .windows
            .get(&account)
            .and_then(|w| w.front())
            .map(|r| r.stream_seq)
    }

    /// The retained reports of `account` with a stream number above `after`, ascending: from
    /// the window's first when `after` is below it, none when `after` is at or beyond the
    /// last. The window's numbers are consecutive, so this indexes it (no scan).
    pub fn stream_retained_after(
        &self,
        account: AccountId,
        after: u64,
    ) -> impl Iterator<Item = &StreamReport> {
        self.streams
            .windows
            .get(&account)
            .map(|w| {
                let first = w.front().map_or(1, |r| r.stream_seq);
                // Entry k has number first + k; skip those with number <= after.
                let skip = after.saturating_sub(first - 1);
                let skip = usize::try_from(skip).unwrap_or(usize::MAX).min(w.len());
                w.range(skip..)
            })
            .into_iter()
            .flatten()
    }

    /// Number of accounts that have been assigned at least one report.
    pub fn stream_accounts(&self) -> usize {
        self.streams.counters.len()
    }
}

#[cfg(test)]
mod tests;
