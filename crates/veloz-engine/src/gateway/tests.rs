use std::os::unix::net::UnixStream;

use veloz_core::{CancelReason, Part, RejectReason, Side};
use veloz_wire::{ExecType, LogoutReason, StreamResumed};

use super::*;
use crate::mesh::Resumed;
use crate::testkit::{self, delivery, limit, reports, Client, Got};

struct Fixture {
    gateway: Gateway<UnixStream>,
    metrics: ShardMetrics,
    clock: Clock,
    shards: u16,
}

fn fixture(shards: usize, config: veloz_config::Config) -> Fixture {
    let shared = testkit::shared(shards, config);
    let clock = Clock::new(shared.epoch);
    Fixture {
        gateway: Gateway::new(0, shared, clock),
        metrics: ShardMetrics::new(0, 0),
        clock,
        shards: shards as u16,
    }
}

impl Fixture {
    fn connect(&mut self) -> (Client, SessionRef) {
        let (client, server) = Client::pair();
        let me = self
            .gateway
            .open(server, testkit::peer(), &mut self.metrics)
            .expect("a free slot");
        (client, me)
    }

    /// One read pass: the commands it produced.
    fn read(&mut self) -> Vec<Routed> {
        let mut out = Vec::new();
        loop {
            match self.gateway.read(&mut self.metrics) {
                ReadStep::Command(r) => out.push(r),
                ReadStep::End { .. } => return out,
            }
        }
    }

    fn flush(&mut self) {
        self.gateway.flush(&mut self.metrics);
    }

    /// Read, flush, and return what `client` got.
    fn exchange(&mut self, client: &mut Client) -> (Vec<Routed>, Vec<Got>) {
        let routed = self.read();
        self.flush();
        (routed, client.received())
    }

    /// A session of account 1 (alice), logged on and subscribed.
    fn logged_on(&mut self) -> (Client, SessionRef) {
        let (mut client, me) = self.connect();
        client.logon(1, "demo-alice");
        let (_, got) = self.exchange(&mut client);
        assert_eq!(
            got,
            [Got::LogonAck {
                session_id: me.id(),
                streams: self.shards,
            }]
        );
        let changes = self.changes();
        assert!(
            matches!(&changes[..], [StreamChange::Subscribe { session, account: 1,
                resume_after: None, .. }] if *session == me),
            "{changes:?}"
        );
        (client, me)
    }

    fn changes(&mut self) -> Vec<StreamChange> {
        self.gateway.take_changes().collect()
    }

    /// Whether the only change since the last call is session `me` (of account 1) ending.
    fn unsubscribed(&mut self, me: SessionRef) -> bool {
        let changes = self.changes();
        matches!(&changes[..], [StreamChange::Unsubscribe { session, account: 1, cancel: false }] if *session == me)
    }
}

#[test]
fn frames_split_across_reads_are_put_back_together() {
    let mut f = fixture(2, testkit::config());
    let (mut client, me) = f.connect();
    let logon = client.enc.logon(1, "demo-alice").to_vec();
    client.send(&logon[..3]);
    assert_eq!(f.exchange(&mut client).1, []);
    client.send(&logon[3..]);
    assert_eq!(
        f.exchange(&mut client).1,
        [Got::LogonAck {
            session_id: me.id(),
            streams: 2
        }]
    );
    assert_eq!(f.changes().len(), 1, "subscribed once whole");
    assert_eq!(
        f.gateway.session(me).map(|s| s.state()),
        Some(State::Active {
            account: 1,
            stp: SelfTradePrevention::Allow
        })
    );

    // An order for AMZN (id 2: shard 1 of 2) in three pieces, then two whole orders at once.
    let order = client
        .enc
        .command(&limit(1, 2, 7, Side::Buy, 2_200_000, 4))
        .to_vec();
    client.send(&order[..1]);
    assert!(f.read().is_empty());
    client.send(&order[1..order.len() - 1]);
    assert!(f.read().is_empty());
    let before = f.clock.now_ns();
    client.send(&order[order.len() - 1..]);
    let routed = f.read();
    assert_eq!(routed.len(), 1);
    let r = &routed[0];
    assert_eq!((r.inbound.from, r.targets.clone()), (me, 1..2));
    assert!(r.inbound.ingress >= before, "stamped when read");
    assert_eq!(r.inbound.cmd.client_order_id(), 7);
    assert_eq!(r.inbound.cmd.account(), 1, "the session's account");

    let mut two = client
        .enc
        .command(&limit(9, 1, 8, Side::Buy, 1_900_000, 1))
        .to_vec();
    two.extend_from_slice(client.enc.command(&limit(9, 3, 9, Side::Buy, 4_200_000, 1)));
    client.send(&two);
    let routed = f.read();
    let ids: Vec<_> = routed
        .iter()
        .map(|r| (r.inbound.cmd.client_order_id(), r.targets.clone()))
        .collect();
    assert_eq!(ids, [(8, 0..1), (9, 0..1)]);
    assert_eq!(
        f.metrics.counters.bytes_in as usize,
        logon.len() + order.len() + two.len()
    );
}

#[test]
fn a_client_that_does_not_read_is_cut_off_as_a_slow_consumer() {
    let mut config = testkit::config();
    config.gateway.outbound_limit_bytes = 64 * 1024;
    let mut f = fixture(1, config);
    let (mut client, me) = f.logged_on();
    let trade = testkit::trade(1, (1, 2, 20, 0), (2, 1, 10, 0));
    let report = delivery(me, trade, Part::Taker, 0, 1);
    let mut delivered = 0;
    while f.gateway.session(me).is_some_and(|s| !s.is_closing()) {
        f.gateway.deliver(&report, &mut f.metrics);
        f.flush();
        delivered += 1;
        assert!(delivered < 1_000_000, "never cut off");
    }
    assert_eq!(f.metrics.counters.slow_consumers, 1);
    f.flush();
    assert!(f.gateway.session(me).is_none(), "dropped");
    assert_eq!(f.metrics.counters.sessions_open, 0);
    // Later reports for it are dropped (they stay in the account's stream).
    let out = f.metrics.counters.bytes_out;
    f.gateway.deliver(&report, &mut f.metrics);
    f.flush();
    assert_eq!(f.metrics.counters.bytes_out, out);
    // The client sees what was written before the cut, then the end of the stream.
    let bytes = client.read_to_end();
    assert!(bytes > 0, "{bytes} bytes of {delivered} reports");
}

#[test]
fn a_session_that_does_not_log_on_in_time_is_logged_out() {
    let mut config = testkit::config();
    config.gateway.logon_timeout_ms = 50;
    let mut f = fixture(1, config);
    let (mut client, me) = f.connect();
    let now = f.clock.now_ns();
    f.gateway.check_timers(now, &mut f.metrics);
    assert_eq!(f.exchange(&mut client).1, []);

    f.gateway.check_timers(now + 51_000_000, &mut f.metrics);
    f.flush();
    assert_eq!(
        client.received(),
        [Got::Logout {
            reason: LogoutReason::ProtocolViolation,
            text: "no logon in time".into()
        }]
    );
    assert!(
        f.gateway.session(me).is_none(),
        "dropped once the Logout is out"
    );
    assert!(client.eof || client.received().is_empty());
}

#[test]
fn an_idle_session_gets_heartbeats_then_is_logged_out() {
    let mut config = testkit::config();
    config.gateway.heartbeat_ms = 100;
    config.gateway.idle_timeout_ms = 1_000;
    let mut f = fixture(1, config);
    let (mut client, me) = f.logged_on();
    let now = f.clock.now_ns();
    f.gateway.check_timers(now + 50_000_000, &mut f.metrics);
    f.flush();
    assert_eq!(client.received(), []);
    f.gateway.check_timers(now + 150_000_000, &mut f.metrics);
    f.flush();
    assert_eq!(client.received(), [Got::Heartbeat]);
    // The heartbeat counts as sending: none again until another interval passed.
    f.gateway.check_timers(now + 200_000_000, &mut f.metrics);
    f.flush();
    assert_eq!(client.received(), []);

    f.gateway.check_timers(now + 1_100_000_000, &mut f.metrics);
    f.flush();
    assert_eq!(
        client.received(),
        [Got::Logout {
            reason: LogoutReason::HeartbeatTimeout,
            text: "no message in time".into()
        }]
    );
    assert!(f.gateway.session(me).is_none());
}

#[test]
fn bad_frames_are_rejected_then_end_the_session() {
    let mut config = testkit::config();
    config.gateway.max_bad_messages = 3;
    let mut f = fixture(1, config);
    let (mut client, me) = f.logged_on();
    // A well-framed body that is not a FlatBuffers Message.
    let garbage = [4u8, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
    for _ in 0..3 {
        client.send(&garbage);
    }
    let (routed, got) = f.exchange(&mut client);
    assert!(routed.is_empty());
    assert_eq!(
        got,
        vec![
            Got::Report {
                exec: ExecType::Rejected,
                client_order_id: 0,
                order_id: 0,
                symbol: Some(0),
                leaves_qty: 0,
                reject: Some(RejectReason::MalformedMessage),
                mass_cancel_count: 0,
                stream: 0,
                stream_seq: 0,
            };
            3
        ]
    );
    assert_eq!(f.metrics.counters.rejects.iter().sum::<u64>(), 3);
    client.send(&garbage);
    let (_, got) = f.exchange(&mut client);
    assert!(
        matches!(
            &got[..],
            [
                Got::Report {
                    reject: Some(RejectReason::MalformedMessage),
                    ..
                },
                Got::Logout {
                    reason: LogoutReason::ProtocolViolation,
                    ..
                }
            ]
        ),
        "the last bad frame is answered, then the session ends: {got:?}"
    );
    assert_eq!(f.metrics.counters.rejects.iter().sum::<u64>(), 4);
    assert!(f.gateway.session(me).is_none());
}

/// A length prefix above `gateway.max_frame_bytes` is answered with `FrameTooLarge` (and
/// counted) before the Logout: the frame boundaries are lost, so the session ends.
#[test]
fn an_oversized_frame_is_rejected_as_too_large_then_ends_the_session() {
    let config = testkit::config();
    let max = config.gateway.max_frame_bytes;
    let mut f = fixture(1, config);
    let (mut client, me) = f.logged_on();
    client.send(&(max + 1).to_le_bytes());
    let (routed, got) = f.exchange(&mut client);
    assert!(routed.is_empty());
    assert!(
        matches!(
            &got[..],
            [
                Got::Report {
                    exec: ExecType::Rejected,
                    reject: Some(RejectReason::FrameTooLarge),
                    ..
                },
                Got::Logout {
                    reason: LogoutReason::ProtocolViolation,
                    ..
                }
            ]
        ),
        "{got:?}"
    );
    let too_large = RejectReason::ALL
        .iter()
        .position(|r| *r == RejectReason::FrameTooLarge)
        .unwrap();
    assert_eq!(f.metrics.counters.rejects[too_large], 1);
    assert_eq!(f.metrics.counters.rejects.iter().sum::<u64>(), 1);
    assert!(f.gateway.session(me).is_none());
}

#[test]
fn orders_before_logon_and_unknown_symbols_are_rejected_in_the_gateway() {
    let mut f = fixture(1, testkit::config());
    let (mut client, _) = f.connect();
    client.order(&limit(1, 1, 5, Side::Buy, 1_900_000, 1));
    let (routed, got) = f.exchange(&mut client);
    assert!(routed.is_empty());
    assert_eq!(reports(&got), [(ExecType::Rejected, 5)]);
    client.logon(1, "demo-alice");
    client.order(&limit(1, 99, 6, Side::Buy, 1_900_000, 1));
    let (routed, got) = f.exchange(&mut client);
    assert!(routed.is_empty());
    assert!(matches!(got[0], Got::LogonAck { .. }));
    assert!(matches!(
        got[1],
        Got::Report {
            client_order_id: 6,
            reject: Some(RejectReason::UnknownSymbol),
            ..
        }
    ));
}

#[test]
fn a_stalled_session_is_not_read_until_its_command_is_sent() {
    let mut f = fixture(2, testkit::config());
    let (mut client, me) = f.logged_on();
    for cid in 1..=3 {
        client.order(&limit(1, 2, cid, Side::Buy, 2_200_000, 1));
    }
    let first = match f.gateway.read(&mut f.metrics) {
        ReadStep::Command(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(first.inbound.cmd.client_order_id(), 1);
    f.gateway
        .stall(me, 1, ShardMsg::Command(first.inbound))
        .expect("the session holds it");
    assert!(matches!(
        f.gateway.read(&mut f.metrics),
        ReadStep::End { .. }
    ));
    assert!(f.read().is_empty(), "nothing more is decoded while stalled");
    assert!(!f.gateway.is_idle());

    // The ring refuses, then takes it.
    assert_eq!(f.gateway.resend_stalled(|_, _| false), 0);
    let mut sent = Vec::new();
    assert_eq!(
        f.gateway.resend_stalled(|dest, msg| {
            sent.push((dest, msg));
            true
        }),
        1
    );
    assert!(matches!(sent[..], [(1, ShardMsg::Command(Inbound { from, .. }))] if from == me));
    let ids: Vec<_> = f
        .read()
        .iter()
        .map(|r| r.inbound.cmd.client_order_id())
        .collect();
    assert_eq!(ids, [2, 3]);
    assert!(f.gateway.is_idle());
}

#[test]
fn the_stalled_command_of_a_session_that_goes_away_is_handed_back() {
    let mut f = fixture(2, testkit::config());
    let (mut client, me) = f.logged_on();
    client.order(&limit(1, 2, 1, Side::Buy, 2_200_000, 1));
    let routed = f.read();
    let msg = ShardMsg::Command(routed[0].inbound);
    f.gateway.stall(me, 1, msg).expect("held");
    assert!(f.gateway.stall(me, 1, msg).is_err(), "one per session");
    drop(client);
    f.gateway.close_all(&mut f.metrics);
    let orphans: Vec<_> = f.gateway.take_orphans().collect();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].0, 1);
    assert!(f.gateway.is_idle());
}

#[test]
fn a_mass_cancel_over_all_symbols_is_answered_by_every_shard_in_its_stream() {
    let mut f = fixture(3, testkit::config());
    let (mut client, me) = f.logged_on();
    client.order(&veloz_core::Command::MassCancel(veloz_core::MassCancel {
        account: 1,
        client_order_id: 40,
        symbol: None,
        reason: CancelReason::MassCancel,
    }));
    assert_eq!(f.read()[0].targets, 0..3, "every shard");
    // Each shard's MassCancelled is written as it comes, with its own count and stream.
    for (shard, count) in [(0, 2), (2, 0), (1, 5)] {
        let event = Event::MassCancelled {
            account: 1,
            client_order_id: 40,
            symbol: None,
            count,
        };
        f.gateway
            .deliver(&delivery(me, event, Part::All, shard, 7), &mut f.metrics);
        f.flush();
        let got = client.received();
        assert!(
            matches!(&got[..], [Got::Report { exec: ExecType::MassCancelled, client_order_id: 40,
                mass_cancel_count, stream, stream_seq: 7, .. }]
                if *mass_cancel_count == count && *stream == shard),
            "{got:?}"
        );
    }
}

#[test]
fn a_logon_subscribes_with_its_resend_request_and_the_end_unsubscribes() {
    let mut f = fixture(2, testkit::config());
    // A connection that never logs on, or whose logon is refused, changes nothing.
    let (anonymous, _) = f.connect();
    drop(anonymous);
    let (mut intruder, _) = f.connect();
    intruder.logon(1, "wrong");
    f.exchange(&mut intruder);
    f.flush();
    assert!(f.changes().is_empty());

    let (mut client, me) = f.connect();
    client.logon_resuming(1, "demo-alice", &[3, 7]);
    let (_, got) = f.exchange(&mut client);
    assert!(matches!(got[..], [Got::LogonAck { streams: 2, .. }]));
    let changes = f.changes();
    assert!(
        matches!(&changes[..], [StreamChange::Subscribe { session, account: 1,
            resume_after: Some(after), .. }] if *session == me && after[..] == [3, 7]),
        "{changes:?}"
    );
    assert!(f.changes().is_empty(), "taken once");

    // The client goes away: the session is dropped and unsubscribed.
    drop(client);
    f.read();
    assert!(f.gateway.session(me).is_none());
    assert!(f.unsubscribed(me));

    // So is one that ends through `Closing` (here its Logout; also a slow consumer, a
    // heartbeat timeout, a protocol violation, shutdown).
    let (mut client, me) = f.logged_on();
    client.logout();
    f.exchange(&mut client);
    f.flush();
    assert!(f.gateway.session(me).is_none());
    assert!(f.unsubscribed(me));
}

#[test]
fn a_report_is_written_as_its_part_with_its_stream_position() {
    let mut f = fixture(2, testkit::config());
    let (mut client, me) = f.logged_on();
    let trade = testkit::trade(3, (1, 2, 20, 2), (2, 1, 10, 0));
    f.gateway
        .deliver(&delivery(me, trade, Part::Taker, 1, 9), &mut f.metrics);
    f.gateway
        .deliver(&delivery(me, trade, Part::Maker, 0, 4), &mut f.metrics);
    let info = StreamResumed {
        stream: 1,
        after: 5,
        last: 9,
        resent: 4,
        first_retained: 1,
    };
    f.gateway.resumed(&Resumed { to: me, info });
    f.flush();
    let got = client.received();
    let kinds = [(ExecType::Filled, 10), (ExecType::PartiallyFilled, 20)];
    assert_eq!(reports(&got), kinds);
    assert_eq!(testkit::positions(&got), [(1, 9), (0, 4)]);
    assert_eq!(got.last(), Some(&Got::Resumed(info)));

    // For a session that has gone, reports and Resumed are dropped silently.
    let gone = SessionRef {
        generation: me.generation + 1,
        ..me
    };
    let out = f.metrics.counters.bytes_out;
    f.gateway
        .deliver(&delivery(gone, trade, Part::Taker, 1, 10), &mut f.metrics);
    f.gateway.resumed(&Resumed { to: gone, info });
    f.flush();
    assert_eq!(f.metrics.counters.bytes_out, out);
    assert_eq!(client.received(), []);
}

/// Cancel-on-disconnect acts when the account's last session (engine-wide) that asked for
/// it ends (the Logon's choice, else the account's default: off); a session without it (a
/// drop copy, a monitor) neither triggers the cancel nor holds it up.
#[test]
fn the_last_cancel_on_disconnect_session_of_an_account_cancels_whoever_remains() {
    let mut f = fixture(2, testkit::config());
    let logon = |f: &mut Fixture, cancel_on_disconnect| {
        let (mut client, me) = f.connect();
        client.logon_cancelling(1, "demo-alice", cancel_on_disconnect);
        f.exchange(&mut client);
        assert_eq!(f.changes().len(), 1, "subscribed");
        (client, me)
    };
    let ended = |f: &mut Fixture, client: Client, me| {
        drop(client);
        f.read();
        match &f.changes()[..] {
            [StreamChange::Unsubscribe {
                session, cancel, ..
            }] if *session == me => *cancel,
            other => panic!("{other:?}"),
        }
    };
    let (a, a_ref) = logon(&mut f, Some(true));
    let (b, b_ref) = logon(&mut f, Some(true));
    let (monitor, monitor_ref) = logon(&mut f, None);
    assert!(
        !ended(&mut f, a, a_ref),
        "another session that asked remains"
    );
    assert!(
        ended(&mut f, b, b_ref),
        "the last one that asked, though a session without it remains"
    );
    assert!(!ended(&mut f, monitor, monitor_ref), "it did not ask");
    let (c, c_ref) = logon(&mut f, Some(false));
    assert!(!ended(&mut f, c, c_ref), "the only one, but it did not ask");
    let (d, d_ref) = logon(&mut f, Some(true));
    assert!(ended(&mut f, d, d_ref), "the last one asked");
}

#[test]
fn a_stopping_engine_answers_orders_and_queries_engine_shutting_down_and_refuses_logons() {
    let mut f = fixture(1, testkit::config());
    let (mut alice, _) = f.logged_on();
    let (mut late, _) = f.connect();
    f.gateway.refuse_new_work();
    alice.order(&limit(1, 1, 7, Side::Buy, 1_900_000, 1));
    let mut enc = veloz_wire::FrameEncoder::new();
    let query = enc
        .query(&veloz_wire::Query::Status {
            request_id: 8,
            symbol: 1,
            by: veloz_core::OrderRef::ClientId(7),
        })
        .to_vec();
    alice.send(&query);
    let (routed, got) = f.exchange(&mut alice);
    assert!(routed.is_empty(), "nothing new reaches a shard");
    assert!(f.gateway.take_queries().next().is_none());
    assert!(
        matches!(
            got[..],
            [
                Got::Report {
                    client_order_id: 7,
                    reject: Some(RejectReason::EngineShuttingDown),
                    stream_seq: 0,
                    ..
                },
                Got::OrderStatus(s),
            ] if s.client_order_id == 8 && s.reject_reason == Some(RejectReason::EngineShuttingDown)
        ),
        "{got:?}"
    );
    late.logon(2, "demo-bob");
    let (_, got) = f.exchange(&mut late);
    assert!(
        matches!(
            &got[..],
            [Got::Logout {
                reason: LogoutReason::EngineShutdown,
                ..
            }]
        ),
        "{got:?}"
    );
    assert!(
        f.changes().is_empty(),
        "a refused logon subscribes to nothing"
    );
}

#[test]
fn a_balance_request_goes_to_every_shard_and_is_answered_once_summed() {
    use crate::mesh::{Answer, AnswerKind};
    use veloz_config::risk::AssetConfig;
    use veloz_wire::{Query, ShardBalance};
    let mut config = testkit::config();
    config.assets = vec![
        AssetConfig {
            id: 2,
            name: "BTC".into(),
            scale: 8,
        },
        AssetConfig {
            id: 1,
            name: "USD".into(),
            scale: 2,
        },
    ];
    let mut f = fixture(3, config);
    let (mut alice, me) = f.logged_on();
    let mut enc = veloz_wire::FrameEncoder::new();
    let ask = |enc: &mut veloz_wire::FrameEncoder, request_id, by_shard| {
        enc.query(&Query::Balances {
            request_id,
            by_shard,
        })
        .to_vec()
    };
    alice.send(&ask(&mut enc, 5, true));
    f.exchange(&mut alice);
    let queries: Vec<_> = f.gateway.take_queries().collect();
    let targets: Vec<usize> = queries.iter().map(|(_, t)| *t).collect();
    assert_eq!(targets, [0, 1, 2], "every shard");
    assert!(queries.iter().all(|(q, _)| q.account == 1 && q.from == me));
    let slice = |shard, asset, available, held| ShardBalance {
        shard,
        asset,
        available,
        held,
    };
    let answer = |f: &mut Fixture, kind| f.gateway.answer(&Answer { to: me, kind });
    for (shard, asset, available, held) in [(2, 1, 300, 0), (0, 1, 1_000, 25), (0, 2, 7, 0)] {
        let slice = slice(shard, asset, available, held);
        answer(
            &mut f,
            AnswerKind::Balance {
                request_id: 5,
                slice,
            },
        );
        if shard == 2 {
            answer(
                &mut f,
                AnswerKind::BalanceEnd {
                    request_id: 5,
                    shard,
                },
            );
        }
    }
    answer(
        &mut f,
        AnswerKind::BalanceEnd {
            request_id: 5,
            shard: 0,
        },
    );
    f.flush();
    assert!(alice.received().is_empty(), "shard 1 has not answered");
    answer(
        &mut f,
        AnswerKind::BalanceEnd {
            request_id: 5,
            shard: 1,
        },
    );
    f.flush();
    let got = alice.received();
    assert_eq!(
        got,
        [Got::Balance {
            request_id: 5,
            account: 1,
            reject: None,
            balances: vec![(1, "USD".into(), 1_300, 25), (2, "BTC".into(), 7, 0)],
            slices: vec![
                slice(0, 1, 1_000, 25),
                slice(0, 2, 7, 0),
                slice(2, 1, 300, 0)
            ],
        }]
    );

    // Past the bound of requests in flight: refused at once.
    for i in 0..=super::balances::MAX_PENDING as u64 {
        alice.send(&ask(&mut enc, 100 + i, false));
    }
    let (_, got) = f.exchange(&mut alice);
    let refused = 100 + super::balances::MAX_PENDING as u64;
    assert!(
        matches!(&got[..], [Got::Balance { request_id, reject: Some(RejectReason::Throttled),
            balances, .. }] if *request_id == refused && balances.is_empty()),
        "{got:?}"
    );
}

#[test]
fn a_balance_request_before_logon_is_refused() {
    let mut f = fixture(1, testkit::config());
    let (mut anon, _) = f.connect();
    let frame = veloz_wire::FrameEncoder::new()
        .query(&veloz_wire::Query::Balances {
            request_id: 3,
            by_shard: false,
        })
        .to_vec();
    anon.send(&frame);
    let (_, got) = f.exchange(&mut anon);
    assert!(f.gateway.take_queries().next().is_none());
    assert!(
        matches!(
            &got[..],
            [Got::Balance {
                request_id: 3,
                account: 0,
                reject: Some(RejectReason::NotLoggedOn),
                ..
            }]
        ),
        "{got:?}"
    );
}
