//! Every order type, instruction and reject reason of the matching core, run through the fast
//! engine AND the naive reference; each test asserts the exact events, and both engines must
//! agree on events and state hash after every command.

use veloz_core::*;

const S: SymbolId = 7;
const A: AccountId = 1;
const B: AccountId = 2;

fn instrument() -> Instrument {
    Instrument {
        id: S,
        symbol: "TEST".into(),
        price_scale: 2,
        tick_size: 5,
        lot_size: 10,
        min_qty: 10,
        max_qty: 10_000,
        price_band_bps: 1_000, // 10 %
        reference_price: 1_000,
        market_protection_ticks: 4, // 20 price units
    }
}

/// Best price and quantity of one side.
type Top = Option<(Price, Qty)>;

/// Both engines side by side; every step checks they agree.
struct Twin {
    fast: Engine,
    naive: ReferenceEngine,
    seq: Seq,
}

impl Twin {
    fn new() -> Twin {
        Twin {
            fast: Engine::new(0, &[instrument()]),
            naive: ReferenceEngine::new(0, &[instrument()]),
            seq: 0,
        }
    }

    fn apply(&mut self, cmd: Command) -> Vec<Event> {
        self.seq += 1;
        let ts = 1_000 + self.seq;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.fast.apply(self.seq, ts, &cmd, &mut a);
        self.naive.apply(self.seq, ts, &cmd, &mut b);
        assert_eq!(a, b, "engines disagree on events for {cmd:?}");
        assert_eq!(
            self.fast.state_hash(),
            self.naive.state_hash(),
            "engines disagree on state after {cmd:?}"
        );
        self.fast.validate().expect("invariants hold");
        a
    }

    fn order(&mut self, o: NewOrder) -> Vec<Event> {
        self.apply(Command::New(o))
    }

    /// A resting GTC limit order; returns its order id.
    fn rest(
        &mut self,
        account: AccountId,
        coid: u64,
        side: Side,
        price: Price,
        qty: Qty,
    ) -> OrderId {
        let ev = self.order(limit(account, coid, side, price, qty));
        match ev.as_slice() {
            [Event::Accepted { order_id, .. }] => *order_id,
            other => panic!("expected a resting order, got {other:?}"),
        }
    }

    fn bbo(&self) -> (Top, Top) {
        let f = |s| self.fast.best(S, s).map(|l| (l.price, l.qty));
        (f(Side::Buy), f(Side::Sell))
    }
}

fn limit(account: AccountId, coid: u64, side: Side, price: Price, qty: Qty) -> NewOrder {
    NewOrder::limit(account, S, coid, side, price, qty)
}

fn market(account: AccountId, coid: u64, side: Side, qty: Qty) -> NewOrder {
    NewOrder {
        kind: OrderKind::Market,
        tif: TimeInForce::Ioc,
        price: 0,
        ..limit(account, coid, side, 0, qty)
    }
}

fn rejected(ev: &[Event]) -> RejectReason {
    match ev {
        [Event::Rejected { reason, .. }] => *reason,
        other => panic!("expected one reject, got {other:?}"),
    }
}

fn trades(ev: &[Event]) -> Vec<(Price, Qty, OrderId, Qty)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Trade {
                price, qty, maker, ..
            } => Some((*price, *qty, maker.order_id, maker.leaves_qty)),
            _ => None,
        })
        .collect()
}

fn cancels(ev: &[Event]) -> Vec<(OrderId, Qty, CancelReason)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Cancelled {
                order_id,
                qty,
                reason,
                ..
            } => Some((*order_id, *qty, *reason)),
            _ => None,
        })
        .collect()
}

fn accepted_id(ev: &[Event]) -> OrderId {
    match ev.first() {
        Some(Event::Accepted { order_id, .. }) => *order_id,
        other => panic!("expected Accepted first, got {other:?}"),
    }
}

#[test]
fn gtc_rests_then_trades_in_price_time_priority() {
    let mut t = Twin::new();
    let a1 = t.rest(A, 1, Side::Sell, 1_010, 30);
    let a2 = t.rest(A, 2, Side::Sell, 1_005, 20);
    let a3 = t.rest(B, 3, Side::Sell, 1_005, 20);
    assert_eq!(t.bbo(), (None, Some((1_005, 40))));
    // A buy for 50 up to 1_010: 1_005 level first (a2 then a3, time priority), then a1.
    let ev = t.order(limit(B, 10, Side::Buy, 1_010, 50));
    let buy = accepted_id(&ev);
    assert_eq!(
        trades(&ev),
        [(1_005, 20, a2, 0), (1_005, 20, a3, 0), (1_010, 10, a1, 20)]
    );
    // Taker leaves count down; both sides are in each trade.
    match ev.last() {
        Some(Event::Trade {
            taker, aggressor, ..
        }) => {
            assert_eq!(
                (taker.order_id, taker.leaves_qty, *aggressor),
                (buy, 0, Side::Buy)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.bbo(), (None, Some((1_010, 20))));
    // Trade ids count up from 1 in the shard.
    let ids: Vec<TradeId> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Trade { trade_id, .. } => Some(*trade_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [1, 2, 3]);
}

#[test]
fn gtc_rest_of_a_partial_fill_rests_at_its_limit() {
    let mut t = Twin::new();
    t.rest(A, 1, Side::Sell, 1_000, 10);
    let ev = t.order(limit(B, 2, Side::Buy, 1_005, 30));
    assert_eq!(trades(&ev).len(), 1);
    assert_eq!(t.bbo(), (Some((1_005, 20)), None));
}

#[test]
fn ioc_cancels_its_rest() {
    let mut t = Twin::new();
    let s = t.rest(A, 1, Side::Sell, 1_000, 10);
    let ev = t.order(NewOrder {
        tif: TimeInForce::Ioc,
        ..limit(B, 2, Side::Buy, 1_000, 30)
    });
    let id = accepted_id(&ev);
    assert_eq!(trades(&ev), [(1_000, 10, s, 0)]);
    assert_eq!(cancels(&ev), [(id, 20, CancelReason::ImmediateOrCancel)]);
    assert_eq!(t.bbo(), (None, None));
}

#[test]
fn fok_trades_all_or_nothing() {
    let mut t = Twin::new();
    t.rest(A, 1, Side::Sell, 1_000, 10);
    t.rest(A, 2, Side::Sell, 1_005, 10);
    let fok = |coid, qty| NewOrder {
        tif: TimeInForce::Fok,
        ..limit(B, coid, Side::Buy, 1_005, qty)
    };
    let ev = t.order(fok(3, 30));
    let id = accepted_id(&ev);
    assert!(trades(&ev).is_empty());
    assert_eq!(cancels(&ev), [(id, 30, CancelReason::FillOrKill)]);
    assert_eq!(t.bbo(), (None, Some((1_000, 10))));
    let ev = t.order(fok(4, 20));
    assert_eq!(trades(&ev).len(), 2);
    assert!(cancels(&ev).is_empty());
    assert_eq!(t.bbo(), (None, None));
}

#[test]
fn market_order_trades_within_its_protection_band() {
    let mut t = Twin::new();
    let s1 = t.rest(A, 1, Side::Sell, 1_000, 10);
    let s2 = t.rest(A, 2, Side::Sell, 1_020, 10); // best + 4 ticks: inside the band
    t.rest(A, 3, Side::Sell, 1_025, 10); // outside
    let ev = t.order(market(B, 4, Side::Buy, 50));
    let id = accepted_id(&ev);
    assert_eq!(trades(&ev), [(1_000, 10, s1, 0), (1_020, 10, s2, 0)]);
    assert_eq!(cancels(&ev), [(id, 30, CancelReason::ProtectionBand)]);
    assert_eq!(t.bbo(), (None, Some((1_025, 10))));
    // Exhausting the book: the rest is an IOC cancel.
    let ev = t.order(market(B, 5, Side::Buy, 20));
    let id = accepted_id(&ev);
    assert_eq!(cancels(&ev), [(id, 10, CancelReason::ImmediateOrCancel)]);
    // Nothing on the other side at all.
    let ev = t.order(market(B, 6, Side::Buy, 20));
    let id = accepted_id(&ev);
    assert_eq!(cancels(&ev), [(id, 20, CancelReason::NoLiquidity)]);
}

#[test]
fn market_fok_respects_the_band() {
    let mut t = Twin::new();
    t.rest(A, 1, Side::Buy, 1_000, 10);
    t.rest(A, 2, Side::Buy, 975, 10); // 5 ticks below best: outside the band
    let ev = t.order(NewOrder {
        tif: TimeInForce::Fok,
        ..market(B, 3, Side::Sell, 20)
    });
    let id = accepted_id(&ev);
    assert_eq!(cancels(&ev), [(id, 20, CancelReason::FillOrKill)]);
}

#[test]
fn post_only_rests_or_is_rejected() {
    let mut t = Twin::new();
    t.rest(A, 1, Side::Sell, 1_000, 10);
    let po = |coid, price| NewOrder {
        post_only: true,
        ..limit(B, coid, Side::Buy, price, 10)
    };
    assert_eq!(
        rejected(&t.order(po(2, 1_000))),
        RejectReason::PostOnlyWouldCross
    );
    let ev = t.order(po(3, 995));
    assert!(matches!(ev.as_slice(), [Event::Accepted { .. }]));
    // A replace of a post-only order that would cross is rejected, the order unchanged.
    let id = accepted_id(&ev);
    let ev = t.apply(Command::Replace(ReplaceOrder {
        account: B,
        symbol: S,
        client_order_id: 4,
        order_id: id,
        price: 1_000,
        qty: 10,
    }));
    assert_eq!(rejected(&ev), RejectReason::PostOnlyWouldCross);
    assert_eq!(t.bbo(), (Some((995, 10)), Some((1_000, 10))));
}

#[test]
fn inconsistent_order_types_are_rejected() {
    let mut t = Twin::new();
    let gtc_market = NewOrder {
        tif: TimeInForce::Gtc,
        ..market(A, 1, Side::Buy, 10)
    };
    assert_eq!(
        rejected(&t.order(gtc_market)),
        RejectReason::InvalidOrderType
    );
    let po_market = NewOrder {
        post_only: true,
        ..market(A, 2, Side::Buy, 10)
    };
    assert_eq!(
        rejected(&t.order(po_market)),
        RejectReason::InvalidOrderType
    );
    let po_ioc = NewOrder {
        post_only: true,
        tif: TimeInForce::Ioc,
        ..limit(A, 3, Side::Buy, 1_000, 10)
    };
    assert_eq!(rejected(&t.order(po_ioc)), RejectReason::InvalidOrderType);
}

#[test]
fn every_validation_reject_reason() {
    let mut t = Twin::new();
    let unknown = NewOrder {
        symbol: 99,
        ..limit(A, 1, Side::Buy, 1_000, 10)
    };
    assert_eq!(rejected(&t.order(unknown)), RejectReason::UnknownSymbol);
    assert_eq!(
        rejected(&t.order(limit(A, 1, Side::Buy, 1_002, 10))),
        RejectReason::PriceOffTick
    );
    assert_eq!(
        rejected(&t.order(limit(A, 1, Side::Buy, 0, 10))),
        RejectReason::InvalidPrice
    );
    assert_eq!(
        rejected(&t.order(limit(A, 1, Side::Buy, -5, 10))),
        RejectReason::InvalidPrice
    );
    assert_eq!(
        rejected(&t.order(limit(A, 1, Side::Buy, 1_000, 15))),
        RejectReason::QtyOffLot
    );
    assert_eq!(
        rejected(&t.order(limit(A, 1, Side::Buy, 1_000, 0))),
        RejectReason::QtyBelowMin
    );
    assert_eq!(
        rejected(&t.order(limit(A, 1, Side::Buy, 1_000, 10_010))),
        RejectReason::QtyAboveMax
    );
    // Band: 10 % around the configured reference 1_000 before any trade.
    assert_eq!(
        rejected(&t.order(limit(A, 1, Side::Buy, 1_105, 10))),
        RejectReason::PriceOutsideBand
    );
    t.rest(A, 1, Side::Buy, 1_100, 10);
    assert_eq!(
        rejected(&t.order(limit(A, 1, Side::Buy, 1_000, 10))),
        RejectReason::DuplicateClientOrderId
    );
    // The same client id of another account is fine.
    t.rest(B, 1, Side::Buy, 1_000, 10);
    // After a trade at 1_100, the band follows the last trade price.
    t.order(limit(B, 2, Side::Sell, 1_100, 10));
    assert_eq!(t.fast.last_trade_price(S), Some(1_100));
    t.rest(B, 3, Side::Sell, 1_210, 10);
    assert_eq!(
        rejected(&t.order(limit(B, 4, Side::Sell, 1_215, 10))),
        RejectReason::PriceOutsideBand
    );
    // A client id is free again once its order has left the book.
    t.rest(A, 1, Side::Buy, 1_050, 10);
}

#[test]
fn cancel_and_its_rejects() {
    let mut t = Twin::new();
    let id = t.rest(A, 1, Side::Buy, 1_000, 20);
    let cancel = |account, coid, order_id| {
        Command::Cancel(CancelOrder {
            account,
            symbol: S,
            client_order_id: coid,
            order_id,
        })
    };
    assert_eq!(
        rejected(&t.apply(cancel(B, 9, id))),
        RejectReason::NotOrderOwner
    );
    assert_eq!(
        rejected(&t.apply(cancel(A, 9, id + 1))),
        RejectReason::UnknownOrder
    );
    let wrong_symbol = Command::Cancel(CancelOrder {
        account: A,
        symbol: 99,
        client_order_id: 9,
        order_id: id,
    });
    assert_eq!(
        rejected(&t.apply(wrong_symbol)),
        RejectReason::UnknownSymbol
    );
    let ev = t.apply(cancel(A, 9, id));
    assert_eq!(
        ev,
        [Event::Cancelled {
            order_id: id,
            account: A,
            client_order_id: 9,
            symbol: S,
            side: Side::Buy,
            qty: 20,
            reason: CancelReason::Requested
        }]
    );
    assert_eq!(
        rejected(&t.apply(cancel(A, 10, id))),
        RejectReason::UnknownOrder
    );
    assert_eq!(t.bbo(), (None, None));
}

fn replace(account: AccountId, order_id: OrderId, price: Price, qty: Qty) -> Command {
    Command::Replace(ReplaceOrder {
        account,
        symbol: S,
        client_order_id: 77,
        order_id,
        price,
        qty,
    })
}

#[test]
fn replace_down_keeps_priority_up_or_move_loses_it() {
    let mut t = Twin::new();
    let first = t.rest(A, 1, Side::Buy, 1_000, 30);
    let second = t.rest(B, 2, Side::Buy, 1_000, 30);
    // Quantity down at the same price: stays first.
    let ev = t.apply(replace(A, first, 1_000, 20));
    assert!(matches!(
        ev.as_slice(),
        [Event::Replaced {
            kept_priority: true,
            qty: 20,
            ..
        }]
    ));
    assert_eq!(t.fast.queue(S, Side::Buy, 1_000), [first, second]);
    // Quantity up: to the back.
    let ev = t.apply(replace(A, first, 1_000, 40));
    assert!(matches!(
        ev.as_slice(),
        [Event::Replaced {
            kept_priority: false,
            ..
        }]
    ));
    assert_eq!(t.fast.queue(S, Side::Buy, 1_000), [second, first]);
    // Price move and back: to the back of the new level.
    t.apply(replace(B, second, 995, 30));
    t.apply(replace(B, second, 1_000, 30));
    assert_eq!(t.fast.queue(S, Side::Buy, 1_000), [first, second]);
    assert_eq!(t.bbo(), (Some((1_000, 70)), None));
}

#[test]
fn replace_that_crosses_trades() {
    let mut t = Twin::new();
    let ask = t.rest(A, 1, Side::Sell, 1_010, 10);
    let bid = t.rest(B, 2, Side::Buy, 1_000, 30);
    let ev = t.apply(replace(B, bid, 1_010, 30));
    assert!(matches!(
        ev[0],
        Event::Replaced {
            kept_priority: false,
            ..
        }
    ));
    assert_eq!(trades(&ev), [(1_010, 10, ask, 0)]);
    match ev[1] {
        Event::Trade { taker, .. } => assert_eq!((taker.order_id, taker.leaves_qty), (bid, 20)),
        ref e => panic!("{e:?}"),
    }
    assert_eq!(t.bbo(), (Some((1_010, 20)), None));
    assert_eq!(t.fast.order_leaves(bid), Some(20));
}

#[test]
fn replace_rejects() {
    let mut t = Twin::new();
    let id = t.rest(A, 1, Side::Buy, 1_000, 30);
    assert_eq!(
        rejected(&t.apply(replace(B, id, 1_000, 20))),
        RejectReason::NotOrderOwner
    );
    assert_eq!(
        rejected(&t.apply(replace(A, 12345, 1_000, 20))),
        RejectReason::UnknownOrder
    );
    assert_eq!(
        rejected(&t.apply(replace(A, id, 1_000, 30))),
        RejectReason::NoChange
    );
    assert_eq!(
        rejected(&t.apply(replace(A, id, 1_001, 30))),
        RejectReason::PriceOffTick
    );
    assert_eq!(
        rejected(&t.apply(replace(A, id, 1_000, 25))),
        RejectReason::QtyOffLot
    );
    assert_eq!(
        rejected(&t.apply(replace(A, id, 1_000, 0))),
        RejectReason::QtyBelowMin
    );
    assert_eq!(
        rejected(&t.apply(replace(A, id, 2_000, 30))),
        RejectReason::PriceOutsideBand
    );
    assert_eq!(t.bbo(), (Some((1_000, 30)), None));
}

#[test]
fn mass_cancel_by_account_and_symbol() {
    let other = Instrument {
        id: 8,
        symbol: "OTHER".into(),
        ..instrument()
    };
    let mut fast = Engine::new(3, &[instrument(), other.clone()]);
    let mut naive = ReferenceEngine::new(3, &[instrument(), other]);
    let mut seq = 0;
    let mut run = |cmd: Command| {
        seq += 1;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        fast.apply(seq, 0, &cmd, &mut a);
        naive.apply(seq, 0, &cmd, &mut b);
        assert_eq!(a, b);
        assert_eq!(fast.state_hash(), naive.state_hash());
        a
    };
    for (i, (account, symbol, side, price)) in [
        (A, S, Side::Buy, 1_000),
        (B, S, Side::Buy, 1_000),
        (A, S, Side::Sell, 1_050),
        (A, 8, Side::Buy, 990),
    ]
    .into_iter()
    .enumerate()
    {
        run(Command::New(NewOrder {
            symbol,
            ..limit(account, i as u64, side, price, 10)
        }));
    }
    let ev = run(Command::MassCancel(MassCancel {
        account: A,
        client_order_id: 50,
        symbol: Some(S),
        reason: veloz_core::CancelReason::MassCancel,
    }));
    // Order ids carry the shard in the top bits.
    let shard = 3u64 << 48;
    assert_eq!(
        cancels(&ev),
        [
            (shard | 1, 10, CancelReason::MassCancel),
            (shard | 3, 10, CancelReason::MassCancel)
        ]
    );
    assert!(matches!(
        ev.last(),
        Some(Event::MassCancelled { count: 2, .. })
    ));
    let ev = run(Command::MassCancel(MassCancel {
        account: A,
        client_order_id: 51,
        symbol: None,
        reason: veloz_core::CancelReason::MassCancel,
    }));
    assert_eq!(cancels(&ev), [(shard | 4, 10, CancelReason::MassCancel)]);
    let ev = run(Command::MassCancel(MassCancel {
        account: A,
        client_order_id: 52,
        symbol: Some(99),
        reason: veloz_core::CancelReason::MassCancel,
    }));
    assert_eq!(rejected(&ev), RejectReason::UnknownSymbol);
    assert_eq!(fast.resting_orders(), 1);
}

fn stp(mode: SelfTradePrevention, coid: u64, qty: Qty) -> NewOrder {
    NewOrder {
        stp: mode,
        ..limit(A, coid, Side::Buy, 1_010, qty)
    }
}

#[test]
fn self_trade_prevention_cancel_resting() {
    let mut t = Twin::new();
    let own = t.rest(A, 1, Side::Sell, 1_000, 10);
    let other = t.rest(B, 2, Side::Sell, 1_005, 10);
    let ev = t.order(stp(SelfTradePrevention::CancelResting, 3, 20));
    assert_eq!(cancels(&ev), [(own, 10, CancelReason::SelfTrade)]);
    assert_eq!(trades(&ev), [(1_005, 10, other, 0)]);
    assert_eq!(t.bbo(), (Some((1_010, 10)), None));
}

#[test]
fn self_trade_prevention_cancel_incoming() {
    let mut t = Twin::new();
    let other = t.rest(B, 1, Side::Sell, 1_000, 10);
    let own = t.rest(A, 2, Side::Sell, 1_005, 10);
    let ev = t.order(stp(SelfTradePrevention::CancelIncoming, 3, 30));
    let id = accepted_id(&ev);
    assert_eq!(trades(&ev), [(1_000, 10, other, 0)]);
    assert_eq!(cancels(&ev), [(id, 20, CancelReason::SelfTrade)]);
    assert_eq!(t.fast.order_leaves(own), Some(10));
}

#[test]
fn self_trade_prevention_cancel_both_and_allow() {
    let mut t = Twin::new();
    let own = t.rest(A, 1, Side::Sell, 1_000, 10);
    let ev = t.order(stp(SelfTradePrevention::CancelBoth, 2, 30));
    let id = accepted_id(&ev);
    assert_eq!(
        cancels(&ev),
        [
            (own, 10, CancelReason::SelfTrade),
            (id, 30, CancelReason::SelfTrade)
        ]
    );
    assert_eq!(t.bbo(), (None, None));
    let own = t.rest(A, 3, Side::Sell, 1_000, 10);
    let ev = t.order(stp(SelfTradePrevention::Allow, 4, 10));
    assert_eq!(trades(&ev), [(1_000, 10, own, 0)]);
}

#[test]
fn self_trade_prevention_on_a_replace_that_crosses() {
    let mut t = Twin::new();
    t.rest(A, 1, Side::Sell, 1_010, 10);
    let bid = t.order(NewOrder {
        stp: SelfTradePrevention::CancelIncoming,
        ..limit(A, 2, Side::Buy, 1_000, 10)
    });
    let bid = accepted_id(&bid);
    let ev = t.apply(replace(A, bid, 1_010, 10));
    assert_eq!(cancels(&ev), [(bid, 10, CancelReason::SelfTrade)]);
    assert_eq!(t.fast.order_leaves(bid), None);
    assert_eq!(t.bbo(), (None, Some((1_010, 10))));
}

#[test]
fn state_hash_depends_on_state_not_history_of_allocation() {
    let mut a = Twin::new();
    let mut b = Twin::new();
    a.rest(A, 1, Side::Buy, 1_000, 10);
    b.rest(A, 1, Side::Buy, 1_000, 10);
    assert_eq!(a.fast.state_hash(), b.fast.state_hash());
    b.rest(A, 2, Side::Buy, 995, 10);
    assert_ne!(a.fast.state_hash(), b.fast.state_hash());
}

fn admin(request_id: u64, action: AdminAction) -> Command {
    Command::Admin(AdminCommand { action, request_id })
}

/// Operator controls come right after "instrument known": a halted instrument or a disabled
/// account is refused before any price or quantity check; cancels are never refused for them.
#[test]
fn halt_and_kill_switch_come_first_in_validation() {
    let mut t = Twin::new();
    let resting = t.rest(A, 1, Side::Buy, 1_000, 10);
    let off_lot = limit(B, 2, Side::Sell, 1_003, 17); // off lot and off tick
    assert_eq!(rejected(&t.order(off_lot)), RejectReason::QtyOffLot);
    t.apply(admin(1, AdminAction::HaltInstrument(S)));
    assert_eq!(rejected(&t.order(off_lot)), RejectReason::InstrumentHalted);
    assert_eq!(
        rejected(&t.apply(replace(A, resting, 1_001, 7))),
        RejectReason::InstrumentHalted
    );
    t.apply(admin(2, AdminAction::ResumeInstrument(S)));
    let ev = t.apply(admin(3, AdminAction::DisableAccount(A)));
    assert_eq!(cancels(&ev), [(resting, 10, CancelReason::AccountDisabled)]);
    assert!(matches!(
        ev.last(),
        Some(Event::Admin {
            request_id: 3,
            applied: true,
            outcome: AdminOutcome::Applied,
            ..
        })
    ));
    assert_eq!(
        rejected(&t.order(limit(A, 4, Side::Buy, 1_003, 7))),
        RejectReason::AccountDisabled
    );
    assert_eq!(
        rejected(&t.apply(replace(A, resting, 1_000, 5))),
        RejectReason::AccountDisabled
    );
    // B is unaffected; A's cancel is answered, not refused for the switch.
    t.rest(B, 5, Side::Sell, 1_010, 10);
    let cancel = Command::Cancel(CancelOrder {
        account: A,
        symbol: S,
        client_order_id: 6,
        order_id: resting,
    });
    assert_eq!(rejected(&t.apply(cancel)), RejectReason::UnknownOrder);
    t.apply(admin(4, AdminAction::EnableAccount(A)));
    t.rest(A, 7, Side::Buy, 1_000, 10);
}
