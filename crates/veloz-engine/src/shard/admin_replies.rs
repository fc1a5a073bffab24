//! The shard's answers to operator commands, held until the command is durable.
//!
//! An operator command (halt, kill switch, deposit, withdrawal) is sequenced, journaled and
//! applied like any other; its answer goes back to the control thread, which answers the
//! operator's HTTP request. That answer is an acknowledgement: "deposit applied" must not
//! reach the operator before the deposit's journal record is durable, or a power loss could
//! take back money the operator was told is there. So the shard holds each answer with the
//! command's sequence and sends it when the durable watermark passes it, in sequence order,
//! as the dispatcher does with members' reports.
//!
//! Invariants: answers leave in sequence order and only once `seq <= durable`; at a stop
//! with the journal unavailable the held ones are answered `Refused` (applied in memory, not
//! durable: the operator must look again after a restart), never dropped silently.

use std::collections::VecDeque;

use rtrb::Producer;
use veloz_core::{Event, Seq};

use crate::admin::ShardReply;
use crate::mesh::ControlMsg;
use crate::sequencer::Sequenced;

/// Answers waiting for their command to become durable.
#[derive(Debug, Default)]
pub(super) struct AdminReplies {
    held: VecDeque<(Seq, u64, ShardReply)>,
}

impl AdminReplies {
    /// If `sequenced` was an operator command (it ends with its [`Event::Admin`]), hold its
    /// answer until its sequence is durable.
    pub(super) fn hold(&mut self, sequenced: &Sequenced<'_>, shard: u16) {
        if let Some(&Event::Admin {
            request_id,
            outcome,
            ..
        }) = sequenced.events.last()
        {
            let cancelled = (sequenced.events.iter())
                .filter(|e| matches!(e, Event::Cancelled { .. }))
                .count() as u32;
            let reply = ShardReply::Acted {
                shard,
                outcome,
                cancelled,
            };
            self.held.push_back((sequenced.seq, request_id, reply));
        }
    }

    /// Send the answers of every command up to `durable`; returns how many.
    pub(super) fn release(
        &mut self,
        durable: Seq,
        shard: u16,
        control: &mut Producer<ControlMsg>,
    ) -> usize {
        let mut sent = 0;
        while self.held.front().is_some_and(|(seq, _, _)| *seq <= durable) {
            let (_, request_id, reply) = self.held.pop_front().expect("checked");
            let _ = control.push(ControlMsg::Admin {
                request_id,
                shard,
                reply,
            });
            sent += 1;
        }
        sent
    }

    /// The journal is down at a stop: answer what is held `Refused` with `why`.
    pub(super) fn abandon(&mut self, why: &str, shard: u16, control: &mut Producer<ControlMsg>) {
        for (seq, request_id, _) in self.held.drain(..) {
            let reply = ShardReply::Refused {
                shard,
                why: format!(
                    "applied at sequence {seq} but not durable: the journal is unavailable \
                     ({why}); check again after a restart"
                ),
            };
            let _ = control.push(ControlMsg::Admin {
                request_id,
                shard,
                reply,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::SessionRef;
    use veloz_core::{AdminAction, AdminOutcome};

    fn admin_event(request_id: u64) -> Event {
        Event::Admin {
            request_id,
            action: AdminAction::Deposit {
                account: 1,
                asset: 2,
                amount: 3,
            },
            applied: true,
            outcome: AdminOutcome::Applied,
        }
    }

    fn sequenced(seq: Seq, events: &[Event]) -> Sequenced<'_> {
        Sequenced {
            origin: SessionRef::NONE,
            ingress: 0,
            seq,
            ts: 0,
            appended_ns: 0,
            events,
            assigned: &[],
        }
    }

    #[test]
    fn an_answer_leaves_only_once_its_command_is_durable() {
        let (mut control, mut rx) = rtrb::RingBuffer::new(8);
        let mut r = AdminReplies::default();
        r.hold(&sequenced(5, &[admin_event(50)]), 0);
        r.hold(&sequenced(6, &[]), 0); // not an operator command: nothing held
        r.hold(&sequenced(7, &[admin_event(70)]), 0);
        assert_eq!(r.release(4, 0, &mut control), 0);
        assert!(rx.pop().is_err(), "nothing before seq 5 is durable");
        assert_eq!(r.release(6, 0, &mut control), 1);
        assert!(matches!(
            rx.pop(),
            Ok(ControlMsg::Admin {
                request_id: 50,
                reply: ShardReply::Acted {
                    outcome: AdminOutcome::Applied,
                    ..
                },
                ..
            })
        ));
        assert!(rx.pop().is_err());
        r.hold(&sequenced(9, &[admin_event(90)]), 0);
        // The journal goes down at a stop: what is held is refused, naming why.
        r.abandon("disk full", 0, &mut control);
        for want in [70, 90] {
            match rx.pop() {
                Ok(ControlMsg::Admin {
                    request_id,
                    reply: ShardReply::Refused { why, .. },
                    ..
                }) => {
                    assert_eq!(request_id, want);
                    assert!(
                        why.contains("not durable") && why.contains("disk full"),
                        "{why}"
                    );
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        assert_eq!(r.release(100, 0, &mut control), 0);
    }
}
