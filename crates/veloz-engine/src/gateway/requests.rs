//! The gateway's side of what is not order entry: sessions logging on and ending (handed
//! to the shard as [`StreamChange`]s for the report-stream subscriptions), members' queries
//! (queued for the shards that answer them, or answered here; balance answers are summed
//! over the shards in the session, `balances`), answers and resend
//! notices written to sessions, and the operator's list of sessions and disconnects.

use veloz_core::{AccountId, RejectReason};
use veloz_wire::{BalanceReport, LogoutReason, OpenOrdersEnd, OrderStatus, Query};

use crate::io::Stream;
use crate::mesh::{Answer, AnswerKind, QueryMsg, Resumed, SessionRef};
use crate::metrics::ShardMetrics;
use crate::queries;

use super::{Gateway, State};

/// A logged-on session started or ended (see [`Gateway::take_changes`]).
#[derive(Debug)]
pub enum StreamChange {
    Subscribe {
        session: SessionRef,
        account: AccountId,
        /// The Logon's resend request, per stream.
        resume_after: Option<Vec<u64>>,
    },
    Unsubscribe {
        session: SessionRef,
        account: AccountId,
        /// It asked for cancel-on-disconnect and was the account's last such session
        /// anywhere (sessions without it do not count): cancel the account's resting
        /// orders on every shard.
        cancel: bool,
    },
}

impl<T: Stream> Gateway<T> {
    /// A query of session `slot`: queued for the shard that owns its orders (the shard
    /// takes it with [`Gateway::take_queries`], in order with the session's commands), or
    /// answered here when it needs no shard (not logged on, an unknown symbol, a cursor
    /// past the last shard).
    pub(super) fn route_query(
        &mut self,
        slot: usize,
        from: SessionRef,
        query: Query,
        metrics: &mut ShardMetrics,
    ) {
        let Some(session) = self.sessions[slot].1.as_mut() else {
            return;
        };
        let State::Active { account, .. } = session.state() else {
            session.bad_message();
            let kind = refused(query, RejectReason::NotLoggedOn);
            metrics.counters.reject(RejectReason::NotLoggedOn);
            self.answer(&Answer { to: from, kind });
            return;
        };
        if self.stopping {
            let kind = refused(query, RejectReason::EngineShuttingDown);
            metrics.counters.reject(RejectReason::EngineShuttingDown);
            self.answer(&Answer { to: from, kind });
            return;
        }
        let shards = self.shared.shards();
        if let Query::Balances {
            request_id,
            by_shard,
        } = query
        {
            // Gathered in the session until every shard has answered (`balances`).
            if !session.balances_mut().start(request_id, by_shard, shards) {
                let reason = RejectReason::Throttled;
                metrics.counters.reject(reason);
                let kind = AnswerKind::BalanceRefused { request_id, reason };
                self.answer(&Answer { to: from, kind });
                return;
            }
        }
        let routing = &self.shared.routing;
        match queries::targets(&query, |s| routing.shard_of(s), shards) {
            Ok(targets) => {
                for target in targets {
                    let msg = QueryMsg {
                        from,
                        account,
                        query,
                    };
                    self.queries.push((msg, target));
                }
            }
            Err(kind) => self.answer(&Answer { to: from, kind }),
        }
    }

    /// Queries read since the last call, each with the shard that answers it, in order.
    pub fn take_queries(&mut self) -> std::vec::Drain<'_, (QueryMsg, usize)> {
        self.queries.drain(..)
    }

    /// Write an answer to a query to its session.
    pub fn answer(&mut self, a: &Answer) {
        let limit = self.settings.outbound_limit;
        let now = self.clock.now_ns();
        let Some((generation, Some(session))) = self.sessions.get_mut(a.to.slot as usize) else {
            return;
        };
        if *generation != a.to.generation || session.is_closing() {
            return;
        }
        let balance;
        let kind = match a.kind {
            AnswerKind::Balance { slice, .. } => {
                session.balances_mut().slice(slice);
                return;
            }
            AnswerKind::BalanceEnd { shard, .. } => {
                let Some(done) = session.balances_mut().end(shard) else {
                    return;
                };
                let account = session.account().unwrap_or(0);
                balance = done.report(account, &self.assets);
                Reply::Balance(&balance)
            }
            AnswerKind::BalanceRefused { request_id, reason } => {
                balance = BalanceReport {
                    request_id,
                    account: session.account().unwrap_or(0),
                    reject_reason: Some(reason),
                    balances: Vec::new(),
                    slices: Vec::new(),
                };
                Reply::Balance(&balance)
            }
            AnswerKind::Status(ref s) => Reply::Status(s),
            AnswerKind::End(ref e) => Reply::End(e),
        };
        if let Some((fix, out)) = session.fix_mut() {
            match kind {
                Reply::Status(s) => fix.status_answer(s, now, crate::feed::unix_now_ns(), out),
                Reply::Balance(b) => fix.balance_answer(b, now, crate::feed::unix_now_ns(), out),
                // FIX has no open-orders pages.
                Reply::End(_) => {}
            }
            return;
        }
        let frame = match kind {
            Reply::Status(s) => self.encoder.order_status(s),
            Reply::End(e) => self.encoder.open_orders_end(e),
            Reply::Balance(b) => self.encoder.balance_report(b),
        };
        // Over the outbound limit shows (and disconnects) at the next report's delivery.
        let _ = session.buffer(frame, limit, now);
    }

    /// Tell session `r.to` that a resend is complete on one stream.
    pub fn resumed(&mut self, r: &Resumed) {
        let limit = self.settings.outbound_limit;
        let now = self.clock.now_ns();
        let Some((generation, Some(session))) = self.sessions.get_mut(r.to.slot as usize) else {
            return;
        };
        if *generation != r.to.generation || session.is_closing() {
            return;
        }
        if let Some((fix, _)) = session.fix_mut() {
            let info = &r.info;
            // The stream's end when the resend was served: the CompID resumes after it.
            fix.stream_resumed(info.stream, info.last);
            if info.first_retained > info.after + 1 {
                tracing::warn!(target: "veloz::fix", session = session.me().id(), stream = info.stream, after = info.after, first_retained = info.first_retained, "FIX session {}: reports {}..{} of stream {} are beyond the resend window and were not resent", session.me().id(), info.after + 1, info.first_retained, info.stream);
            }
            return;
        }
        let frame = self.encoder.stream_resumed(&r.info);
        // A resend that overflows the buffer shows at the next report's delivery.
        let _ = session.buffer(frame, limit, now);
    }

    /// Sessions that logged on or ended since the last call, in order: the shard tells
    /// every shard's dispatcher (a logon before any command of the session).
    pub fn take_changes(&mut self) -> std::vec::Drain<'_, StreamChange> {
        self.changes.drain(..)
    }

    /// Every session of this shard, for the operator (`GET /admin/sessions`).
    pub fn sessions_info(&self) -> Vec<crate::admin::SessionInfo> {
        let now = self.clock.now_ns();
        self.sessions
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .map(|s| crate::admin::SessionInfo {
                session: s.me().id(),
                shard: self.shard as u16,
                account: s.logged_on().map(|(a, _)| a),
                peer: s.peer(),
                state: match s.state() {
                    State::AwaitingLogon => "awaiting_logon",
                    State::Active { .. } => "active",
                    State::Closing => "closing",
                },
                age_ms: now.saturating_sub(s.connected_at()) / 1_000_000,
                protocol: if s.is_fix() { "fix" } else { "binary" },
                comp_id: s.fix_comp_id().map(str::to_string),
            })
            .collect()
    }

    /// Log out the session with id `id` for the operator; `false` when it is not here.
    pub fn disconnect(&mut self, id: u64) -> bool {
        let encoder = &mut self.encoder;
        for (_, entry) in self.sessions.iter_mut() {
            if let Some(s) = entry.as_mut().filter(|s| s.me().id() == id) {
                tracing::warn!(target: "veloz::gateway", shard = self.shard, session = id, peer = %s.peer(), "session {id} ({}) disconnected by the operator", s.peer());
                s.logout(
                    encoder,
                    LogoutReason::OperatorDisconnect,
                    "disconnected by the operator",
                );
                return true;
            }
        }
        false
    }
}

/// What an answer writes to its session.
enum Reply<'a> {
    Status(&'a OrderStatus),
    End(&'a OpenOrdersEnd),
    Balance(&'a BalanceReport<'a>),
}

/// The answer refusing `query` for `reason` (nothing was looked at).
fn refused(query: Query, reason: RejectReason) -> AnswerKind {
    match query {
        Query::Balances { request_id, .. } => AnswerKind::BalanceRefused { request_id, reason },
        Query::Status {
            request_id, symbol, ..
        } => AnswerKind::Status(OrderStatus::refused(request_id, symbol, 0, reason)),
        Query::OpenOrders { request_id, .. } => AnswerKind::End(OpenOrdersEnd {
            client_order_id: request_id,
            count: 0,
            next_after_order_id: 0,
            reject_reason: Some(reason),
        }),
    }
}
