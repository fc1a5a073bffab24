//! Order queries and orders named by client order id, over real loopback TCP against a
//! real `veloz serve`: a client pipelines a new order and its cancel or replace without
//! waiting for the Accepted; asks for an order's state by engine id or by its own id; and
//! pages through its open orders on every shard. Another account's orders stay invisible.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use veloz_core::{CancelReason, Command, OrderRef, RejectReason, ReplaceOrder, Side};
use veloz_load::client::{Client, Received};
use veloz_wire::{ExecType, ExecutionReport, OpenOrdersEnd, OrderStatus, Query};

const T: Duration = Duration::from_secs(10);

fn report(c: &mut Client) -> ExecutionReport<'static> {
    c.next_report(T).unwrap()
}

/// The next message that is an answer to a query.
enum Answer {
    Status(OrderStatus),
    End(OpenOrdersEnd),
}

fn answer(c: &mut Client) -> Answer {
    loop {
        match c.recv_within(T, "an answer to a query").unwrap() {
            Received::OrderStatus(s) => return Answer::Status(s),
            Received::OpenOrdersEnd(e) => return Answer::End(e),
            Received::Trade(_) => continue,
            other => panic!("expected an answer, got {other:?}"),
        }
    }
}

fn status(c: &mut Client, request_id: u64, symbol: u32, by: OrderRef) -> OrderStatus {
    c.query(&Query::Status {
        request_id,
        symbol,
        by,
    })
    .unwrap();
    match answer(c) {
        Answer::Status(s) => s,
        Answer::End(e) => panic!("{e:?}"),
    }
}

fn cancel_by_client_id(symbol: u32, coid: u64, orig: u64) -> Command {
    Command::Cancel(veloz_core::CancelOrder {
        account: 0,
        symbol,
        client_order_id: coid,
        order_id: veloz_core::OrderRef::ClientId(orig).raw(),
    })
}

#[test]
fn new_and_cancel_or_replace_by_client_id_pipeline_without_waiting() {
    let _serial = serial();
    let dir = TempDir::new("queries-pipeline");
    let engine = EngineProcess::start(&test_config(dir.path(), "group", ""));
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let px = 1_890_000;
    // 200 pairs sent back to back, nothing read in between.
    for i in 0..200u64 {
        alice
            .send(&limit(
                1,
                10_000 + i,
                Side::Buy,
                px - 100 * (i as i64 % 50),
                3,
            ))
            .unwrap();
        if i % 2 == 0 {
            alice
                .send(&cancel_by_client_id(1, 20_000 + i, 10_000 + i))
                .unwrap();
        } else {
            alice
                .send(&Command::Replace(ReplaceOrder {
                    account: 0,
                    symbol: 1,
                    client_order_id: 20_000 + i,
                    order_id: veloz_core::OrderRef::ClientId(10_000 + i).raw(),
                    price: px - 100 * (i as i64 % 50),
                    qty: 1,
                }))
                .unwrap();
        }
    }
    for i in 0..200u64 {
        let a = report(&mut alice);
        assert_eq!(
            (a.exec_type, a.client_order_id),
            (ExecType::Accepted, 10_000 + i),
            "{a:?}"
        );
        let b = report(&mut alice);
        let want = if i % 2 == 0 {
            ExecType::Cancelled
        } else {
            ExecType::Replaced
        };
        assert_eq!(
            (b.exec_type, b.client_order_id, b.order_id),
            (want, 20_000 + i, a.order_id),
            "the second request named the first by its client id: {b:?}"
        );
        if i % 2 == 0 {
            assert_eq!((b.cancel_reason, b.qty), (Some(CancelReason::Requested), 3));
        } else {
            assert_eq!((b.qty, b.kept_priority), (1, true));
        }
    }
    // A client id that names nothing (already cancelled) is UnknownOrder; a request naming
    // no order at all is malformed.
    alice.send(&cancel_by_client_id(1, 30_000, 10_000)).unwrap();
    let r = report(&mut alice);
    assert_eq!(
        (r.exec_type, r.reject_reason, r.order_id),
        (ExecType::Rejected, Some(RejectReason::UnknownOrder), 0)
    );
    alice.send(&cancel_by_client_id(1, 30_001, 0)).unwrap();
    let r = report(&mut alice);
    assert_eq!(
        (
            r.exec_type,
            r.reject_reason,
            r.client_order_id,
            r.stream_seq
        ),
        (
            ExecType::Rejected,
            Some(RejectReason::MalformedMessage),
            30_001,
            0
        )
    );
    alice.logout().unwrap();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

#[test]
fn order_status_by_engine_or_client_id_only_for_the_owner() {
    let _serial = serial();
    let dir = TempDir::new("queries-status");
    let engine = EngineProcess::start(&test_config(dir.path(), "group", ""));
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    // Pipelined: the status request goes right behind the order, and sees it.
    alice.send(&limit(2, 77, Side::Sell, 2_300_000, 9)).unwrap();
    alice
        .query(&Query::Status {
            request_id: 1,
            symbol: 2,
            by: OrderRef::ClientId(77),
        })
        .unwrap();
    let acc = report(&mut alice);
    let Answer::Status(s) = answer(&mut alice) else {
        panic!("no OrderStatus")
    };
    assert_eq!(
        (
            s.client_order_id,
            s.reject_reason,
            s.order_id,
            s.orig_client_order_id,
            s.symbol,
            s.side,
            s.price,
            s.leaves_qty
        ),
        (1, None, acc.order_id, 77, 2, Some(Side::Sell), 2_300_000, 9)
    );
    assert_eq!(s.entered_ns, acc.timestamp_ns);
    assert_eq!(
        status(&mut alice, 2, 2, OrderRef::Id(acc.order_id)),
        s_with(s, 2)
    );
    // Bob: not his order by id; his own client id 77 names nothing of his.
    let b = status(&mut bob, 3, 2, OrderRef::Id(acc.order_id));
    assert_eq!(
        (b.reject_reason, b.leaves_qty, b.side),
        (Some(RejectReason::NotOrderOwner), 0, None)
    );
    let b = status(&mut bob, 4, 2, OrderRef::ClientId(77));
    assert_eq!(b.reject_reason, Some(RejectReason::UnknownOrder));
    // Unknown instrument: answered by the gateway.
    let u = status(&mut alice, 5, 999, OrderRef::ClientId(77));
    assert_eq!(u.reject_reason, Some(RejectReason::UnknownSymbol));
    // After a partial fill the leaves show; after the fill, the order is gone.
    bob.send(&limit(2, 5, Side::Buy, 2_300_000, 4)).unwrap();
    assert_eq!(report(&mut bob).exec_type, ExecType::Accepted);
    assert_eq!(report(&mut bob).exec_type, ExecType::Filled);
    assert_eq!(report(&mut alice).exec_type, ExecType::PartiallyFilled);
    assert_eq!(
        status(&mut alice, 6, 2, OrderRef::ClientId(77)).leaves_qty,
        5
    );
    bob.send(&limit(2, 6, Side::Buy, 2_300_000, 5)).unwrap();
    assert_eq!(report(&mut alice).exec_type, ExecType::Filled);
    let gone = status(&mut alice, 7, 2, OrderRef::Id(acc.order_id));
    assert_eq!(gone.reject_reason, Some(RejectReason::UnknownOrder));
    alice.logout().unwrap();
    bob.logout().unwrap();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

fn s_with(s: OrderStatus, request_id: u64) -> OrderStatus {
    OrderStatus {
        client_order_id: request_id,
        ..s
    }
}

/// Page through `who`'s open orders (in `symbol`, or all) with pages of `max`.
fn all_pages(c: &mut Client, symbol: Option<u32>, max: u32) -> (Vec<OrderStatus>, usize) {
    let mut after = 0;
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let request_id = 900 + pages as u64;
        c.query(&Query::OpenOrders {
            request_id,
            symbol,
            after,
            max,
        })
        .unwrap();
        pages += 1;
        let mut page = Vec::new();
        let end = loop {
            match answer(c) {
                Answer::Status(s) => {
                    assert_eq!(s.client_order_id, request_id);
                    page.push(s);
                }
                Answer::End(e) => break e,
            }
        };
        assert_eq!((end.client_order_id, end.reject_reason), (request_id, None));
        assert_eq!(end.count as usize, page.len());
        assert!(page.len() <= max as usize);
        assert!(
            page.windows(2).all(|w| w[0].order_id < w[1].order_id)
                && page.iter().all(|s| s.order_id > after),
            "a page is ascending and after its cursor"
        );
        all.extend(page);
        if end.next_after_order_id == 0 {
            return (all, pages);
        }
        after = end.next_after_order_id;
        assert!(pages < 100, "paging does not end");
    }
}

#[test]
fn open_orders_page_through_every_shard() {
    let _serial = serial();
    let dir = TempDir::new("queries-open");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    let config = veloz_config::Config::default();
    let mut open = BTreeSet::new();
    for (i, inst) in config.instruments().iter().enumerate() {
        for k in 0..3u64 {
            let coid = 100 * i as u64 + k;
            let price = inst.reference_price - (5 + k as i64) * inst.tick_size;
            alice
                .send(&limit(inst.id, coid, Side::Buy, price, 1))
                .unwrap();
            open.insert(report(&mut alice).order_id);
            // Bob's orders are never listed for alice.
            bob.send(&limit(inst.id, coid, Side::Buy, price, 1))
                .unwrap();
            report(&mut bob);
        }
    }
    // One filled and one cancelled order drop out of the list.
    let first = &config.instruments()[0];
    let victim = *open.iter().next().unwrap();
    alice
        .send(&common::cancel(first.id, 5_000, victim))
        .unwrap();
    assert_eq!(report(&mut alice).exec_type, ExecType::Cancelled);
    open.remove(&victim);

    let (listed, pages) = all_pages(&mut alice, None, 2);
    let ids: BTreeSet<u64> = listed.iter().map(|s| s.order_id).collect();
    assert_eq!(ids.len(), listed.len(), "an order is listed once");
    assert_eq!(ids, open, "exactly alice's open orders");
    assert!(pages >= open.len() / 2, "pages of at most 2: {pages}");
    // One symbol only.
    let (only, _) = all_pages(&mut alice, Some(first.id), 1000);
    assert_eq!(only.len(), 2);
    assert!(only
        .iter()
        .all(|s| s.symbol == first.id && s.leaves_qty == 1));
    alice.logout().unwrap();
    bob.logout().unwrap();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}
