//! The shard's side of what is not the order path: sessions logging on and ending (report
//! stream subscriptions on every shard, cancel-on-disconnect), members' queries (routed in
//! order with their commands, answered from the engine), and the operator's requests from
//! the control thread. The shard loop calls these; they only hand things on to the
//! components (gateway, dispatcher, sequencer) in the order the invariants of
//! [`super`] need.

use veloz_core::{AccountId, AdminCommand, CancelReason, Command, Engine, MassCancel};
use veloz_journal::Storage;

use crate::admin::{AssetBalance, ShardReply};
use crate::gateway::StreamChange;
use crate::io::Stream;
use crate::mesh::{AdminMsg, ControlMsg, Inbound, QueryMsg, SessionRef, ShardMsg, Subscription};
use crate::queries;

use super::Shard;

impl<S: Storage, T: Stream> Shard<S, T> {
    /// Tell every shard's dispatcher (this one directly, the others over their rings, in
    /// order before anything the session sends later) which sessions logged on or ended.
    pub(super) fn tell_stream_changes(&mut self) {
        // A session's last commands (stalled on a full ring when it went) go out before
        // its end: a cancel-on-disconnect must see them.
        self.adopt_orphans();
        let changes: Vec<StreamChange> = self.gateway.take_changes().collect();
        for change in changes {
            match change {
                StreamChange::Subscribe {
                    session,
                    account,
                    resume_after,
                } => {
                    for shard in 0..self.shared.shards() {
                        let sub = Subscription {
                            session,
                            account,
                            resume_after: resume_after
                                .as_ref()
                                .map(|v| v.get(shard).copied().unwrap_or(0)),
                        };
                        if shard == self.index {
                            self.subscribe(sub);
                        } else {
                            self.dispatcher.send(
                                shard,
                                ShardMsg::Subscribe(sub),
                                &mut self.metrics,
                            );
                        }
                    }
                }
                StreamChange::Unsubscribe {
                    session,
                    account,
                    cancel,
                } => {
                    if cancel {
                        tracing::info!(target: "veloz::gateway", shard = self.index, account, session = session.id(), "account {account}'s last cancel-on-disconnect session {} ended: its resting orders are cancelled", session.id());
                    }
                    for shard in 0..self.shared.shards() {
                        if shard == self.index {
                            self.dispatcher.unsubscribe(session, account);
                            if cancel {
                                self.sequencer.push(cancel_on_disconnect(account));
                            }
                            continue;
                        }
                        let msg = ShardMsg::Unsubscribe { session, account };
                        self.dispatcher.send(shard, msg, &mut self.metrics);
                        if cancel {
                            // No `Done` comes back for it (no session): not in flight; the
                            // ring itself keeps shutdown waiting until it is taken.
                            let msg = ShardMsg::Command(cancel_on_disconnect(account));
                            self.dispatcher.send(shard, msg, &mut self.metrics);
                        }
                    }
                }
            }
        }
    }

    /// Subscribe a session to its account's stream on this shard (resending first what
    /// it asked for).
    pub(super) fn subscribe(&mut self, sub: Subscription) {
        let gateway = &mut self.gateway;
        let resumed =
            self.dispatcher
                .subscribe(sub, self.sequencer.engine(), &mut self.metrics, |d, m| {
                    gateway.deliver(d, m)
                });
        if let Some(r) = resumed {
            self.gateway.resumed(&r);
        }
    }

    /// Hand each query the gateway read to the shard that answers it: this shard's
    /// sequencer (in order with the commands) or the owner's ring (in flight until its
    /// `Done`, stalling its session when the ring is full, like a command).
    pub(super) fn route_queries(&mut self) {
        let queries: Vec<(QueryMsg, usize)> = self.gateway.take_queries().collect();
        for (query, target) in queries {
            if target == self.index {
                self.sequencer.push_query(query);
                continue;
            }
            self.add_in_flight(1);
            if let Err(msg) = self.dispatcher.try_send(target, ShardMsg::Query(query)) {
                self.metrics.counters.ring_full += 1;
                if let Err((dest, msg)) = self.gateway.stall(query.from, target, msg) {
                    self.dispatcher.send(dest, msg, &mut self.metrics);
                }
            }
        }
    }

    /// Answer a query from the engine as it stands after every command before it; the
    /// answers wait behind those commands' reports.
    pub(super) fn answer_query(&mut self, query: QueryMsg) {
        let mut answers = Vec::new();
        queries::answer(
            self.sequencer.engine(),
            self.index,
            self.shared.shards(),
            &query,
            &mut answers,
        );
        let now = self.clock.now_ns();
        self.dispatcher
            .hold_answers(self.sequencer.last_seq(), now, query.from, answers);
    }

    /// Operator requests from the control thread: commands go to the sequencer (journaled,
    /// answered when applied), the rest is answered at once.
    pub(super) fn serve_admin(&mut self) {
        while let Ok(msg) = self.admin.pop() {
            let shard = self.index as u16;
            let (request_id, reply) = match msg {
                AdminMsg::Act { request_id, action } => {
                    self.sequencer.push(Inbound {
                        from: SessionRef::NONE,
                        ingress: 0,
                        cmd: Command::Admin(AdminCommand { action, request_id }),
                    });
                    continue;
                }
                AdminMsg::Sessions { request_id } => (
                    request_id,
                    ShardReply::Sessions(self.gateway.sessions_info()),
                ),
                AdminMsg::Balances {
                    request_id,
                    account,
                } => (
                    request_id,
                    ShardReply::Balances {
                        shard,
                        balances: balances(self.sequencer.engine(), account),
                    },
                ),
                AdminMsg::Disconnect {
                    request_id,
                    session,
                } => (
                    request_id,
                    ShardReply::Disconnected {
                        shard,
                        found: self.gateway.disconnect(session),
                    },
                ),
            };
            let _ = self.control.push(ControlMsg::Admin {
                request_id,
                shard,
                reply,
            });
        }
    }
}

/// `account`'s balance of every asset of the engine's money rules (zero where it has none),
/// ascending by asset id; empty without money.
fn balances(engine: &Engine, account: AccountId) -> Vec<AssetBalance> {
    let Some(risk) = engine.risk() else {
        return Vec::new();
    };
    let held = engine.balances(account);
    let mut assets: Vec<_> = risk.assets.iter().collect();
    assets.sort_by_key(|a| a.id);
    assets
        .into_iter()
        .map(|a| {
            let b = (held.iter())
                .find(|(id, _)| *id == a.id)
                .map(|(_, b)| *b)
                .unwrap_or_default();
            AssetBalance {
                asset: a.name.clone(),
                id: a.id,
                available: b.available,
                held: b.held,
            }
        })
        .collect()
}

/// The engine's own mass cancel of `account`'s orders on a shard when its last session
/// with cancel-on-disconnect on went away (client order id 0, no session: a journaled mass
/// cancel like any other, its reports wait in the account's stream). The session's shard
/// decides, from the engine-wide count of such sessions ([`Shared::session_ended`]), and sends it to
/// every shard: all of them cancel, or none.
fn cancel_on_disconnect(account: AccountId) -> Inbound {
    Inbound {
        from: SessionRef::NONE,
        ingress: 0,
        cmd: Command::MassCancel(MassCancel {
            account,
            client_order_id: 0,
            symbol: None,
            reason: CancelReason::CancelOnDisconnect,
        }),
    }
}
