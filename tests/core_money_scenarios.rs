//! Money scenarios in the style of exchange-core's `basic.feature` and `risk.feature`, with
//! our own numbers: deposits, a resting sell, a crossing buy, its settlement with fees,
//! cancels, moves, insufficient funds at the exact boundary, market and IOC orders, budget
//! orders (exchange-core's FOK_BUDGET), kill switch, withdrawals and every pre-trade limit.
//!
//! Every step runs on the fast engine and its naive twin; after each, the events and state
//! hashes must agree, the fast engine's invariants hold, and the scenario's balances are
//! checked to the unit.
//!
//! The numbers: BTC/USD (id 1) trades asset BTC (1) against USD (2); one quantity unit is 100
//! BTC units, one price unit times one quantity unit is 10 USD units; maker fee 10 bps,
//! taker fee 20 bps, paid in USD to account 900. A buy at limit `L` holds
//! `unit(L) = 10 L + ceil(10 L * 20 / 10_000)` USD per quantity unit.

use veloz_core::*;

const BTCUSD: SymbolId = 1;
/// An instrument with no funding: orders meet the limits and move no money.
const PLAIN: SymbolId = 2;
const BTC: AssetId = 1;
const USD: AssetId = 2;
const FEES: AccountId = 900;
const ALICE: AccountId = 1;
const BOB: AccountId = 2;
const CAROL: AccountId = 3;

fn rules(limits: Limits) -> Risk {
    Risk {
        assets: vec![
            Asset {
                id: BTC,
                name: "BTC".into(),
                scale: 8,
            },
            Asset {
                id: USD,
                name: "USD".into(),
                scale: 2,
            },
        ],
        fee_account: FEES,
        funding: vec![(
            BTCUSD,
            Funding {
                base: BTC,
                quote: USD,
                base_unit: 100,
                quote_unit: 10,
                maker_fee_bps: 10,
                taker_fee_bps: 20,
            },
        )],
        limits: Limits::default(),
        account_limits: vec![(CAROL, limits)],
    }
}

/// Both engines, stepped together.
struct Venue {
    fast: Engine,
    twin: ReferenceEngine,
    seq: u64,
    ts: u64,
}

impl Venue {
    fn new() -> Venue {
        Venue::with_limits(Limits::default())
    }

    /// Carol's limits are `limits`; everyone else has none.
    fn with_limits(limits: Limits) -> Venue {
        let mut btc = Instrument::simple(BTCUSD, "BTC/USD");
        btc.market_protection_ticks = 5;
        let instruments = [btc, Instrument::simple(PLAIN, "PLAIN")];
        Venue {
            fast: Engine::with_risk(0, &instruments, rules(limits)).expect("rules"),
            twin: ReferenceEngine::with_risk(0, &instruments, rules(limits)).expect("rules"),
            seq: 0,
            ts: 1_000_000_000,
        }
    }

    fn apply(&mut self, cmd: Command) -> Vec<Event> {
        self.seq += 1;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.fast.apply(self.seq, self.ts, &cmd, &mut a);
        self.twin.apply(self.seq, self.ts, &cmd, &mut b);
        assert_eq!(a, b, "the twin disagrees on {cmd:?}");
        assert_eq!(self.fast.state_hash(), self.twin.state_hash(), "{cmd:?}");
        self.fast.validate().expect("invariants");
        a
    }

    fn admin(&mut self, action: AdminAction) -> AdminOutcome {
        let ev = self.apply(Command::Admin(AdminCommand {
            action,
            request_id: self.seq + 1,
        }));
        match ev.last() {
            Some(Event::Admin { outcome, .. }) => *outcome,
            other => panic!("no admin outcome: {other:?}"),
        }
    }

    fn deposit(&mut self, account: AccountId, asset: AssetId, amount: u64) {
        let outcome = self.admin(AdminAction::Deposit {
            account,
            asset,
            amount,
        });
        assert_eq!(outcome, AdminOutcome::Applied);
    }

    fn order(&mut self, o: NewOrder) -> Vec<Event> {
        self.apply(Command::New(o))
    }

    fn limit(
        &mut self,
        account: AccountId,
        coid: u64,
        side: Side,
        price: Price,
        qty: Qty,
    ) -> Vec<Event> {
        self.order(NewOrder::limit(account, BTCUSD, coid, side, price, qty))
    }

    /// `(available, held)` of `asset` for `account` (0, 0 when it has no entry).
    fn bal(&self, account: AccountId, asset: AssetId) -> (u64, u64) {
        let b = self.fast.balances(account);
        assert_eq!(b, self.twin.balances(account), "account {account}");
        b.iter()
            .find(|(a, _)| *a == asset)
            .map_or((0, 0), |(_, b)| (b.available, b.held))
    }
}

fn order_id(events: &[Event]) -> OrderId {
    match events.first() {
        Some(Event::Accepted { order_id, .. }) => *order_id,
        other => panic!("not accepted: {other:?}"),
    }
}

fn rejected(events: &[Event]) -> Option<RejectReason> {
    match events {
        [Event::Rejected { reason, .. }] => Some(*reason),
        _ => None,
    }
}

/// USD held per quantity unit by a buy at `limit` (module docs).
fn unit(limit: Price) -> u64 {
    let n = 10 * limit as u64;
    n + (n * 20).div_ceil(10_000)
}

#[test]
fn a_fill_settles_both_accounts_and_pays_both_fees() {
    let mut v = Venue::new();
    v.deposit(BOB, BTC, 10_000);
    v.deposit(ALICE, USD, 1_000_000);
    let sell = v.limit(BOB, 1, Side::Sell, 1_000, 50);
    assert_eq!(v.bal(BOB, BTC), (5_000, 5_000));
    let buy = v.limit(ALICE, 1, Side::Buy, 1_010, 30);
    assert!(matches!(
        buy[1],
        Event::Trade {
            price: 1_000,
            qty: 30,
            ..
        }
    ));
    // Notional 1_000 * 30 * 10 = 300_000; taker fee 600, maker fee 300.
    assert_eq!(v.bal(ALICE, USD), (1_000_000 - 300_000 - 600, 0));
    assert_eq!(v.bal(ALICE, BTC), (3_000, 0));
    assert_eq!(v.bal(BOB, BTC), (5_000, 2_000));
    assert_eq!(v.bal(BOB, USD), (300_000 - 300, 0));
    assert_eq!(v.bal(FEES, USD), (900, 0));
    assert_eq!(v.fast.supply(), vec![(BTC, 10_000), (USD, 1_000_000)]);
    let _ = order_id(&sell);
}

#[test]
fn a_resting_buy_holds_at_its_limit_and_a_better_fill_gives_the_difference_back() {
    let mut v = Venue::new();
    v.deposit(ALICE, USD, 1_000_000);
    v.deposit(BOB, BTC, 10_000);
    v.limit(ALICE, 1, Side::Buy, 1_000, 40);
    assert_eq!(unit(1_000), 10_020);
    assert_eq!(v.bal(ALICE, USD), (1_000_000 - 400_800, 400_800));
    // Bob sells 10 into it: Alice is the maker (fee 10 bps of 100_000 = 100).
    v.limit(BOB, 1, Side::Sell, 990, 10);
    assert_eq!(
        v.bal(ALICE, USD),
        (1_000_000 - 400_800 + 100_200 - 100_100, 300_600)
    );
    assert_eq!(v.bal(ALICE, BTC), (1_000, 0));
    // Bob is the taker: 100_000 less 200.
    assert_eq!(v.bal(BOB, USD), (99_800, 0));
    assert_eq!(v.bal(FEES, USD), (300, 0));
}

#[test]
fn a_cancel_releases_exactly_what_the_order_held() {
    let mut v = Venue::new();
    v.deposit(ALICE, USD, 500_000);
    let id = order_id(&v.limit(ALICE, 7, Side::Buy, 990, 10));
    assert_eq!(
        v.bal(ALICE, USD),
        (500_000 - 10 * unit(990), 10 * unit(990))
    );
    v.apply(Command::Cancel(CancelOrder {
        account: ALICE,
        symbol: BTCUSD,
        client_order_id: 8,
        order_id: id,
    }));
    assert_eq!(v.bal(ALICE, USD), (500_000, 0));
}

#[test]
fn insufficient_funds_is_refused_at_the_exact_boundary() {
    let mut v = Venue::new();
    let need = 20 * unit(1_005);
    v.deposit(ALICE, USD, need - 1);
    let ev = v.limit(ALICE, 1, Side::Buy, 1_005, 20);
    assert_eq!(rejected(&ev), Some(RejectReason::InsufficientFunds));
    assert_eq!(v.bal(ALICE, USD), (need - 1, 0), "a reject changes nothing");
    v.deposit(ALICE, USD, 1);
    order_id(&v.limit(ALICE, 1, Side::Buy, 1_005, 20));
    assert_eq!(v.bal(ALICE, USD), (0, need));
    // A sell needs the base: none deposited.
    let ev = v.limit(ALICE, 2, Side::Sell, 2_000, 1);
    assert_eq!(rejected(&ev), Some(RejectReason::InsufficientFunds));
    // An account never seen is refused too, and gets no entry.
    let ev = v.limit(77, 1, Side::Buy, 1_000, 1);
    assert_eq!(rejected(&ev), Some(RejectReason::InsufficientFunds));
    assert!(!v.fast.funded_accounts().contains(&77));
}

#[test]
fn a_move_moves_the_hold_and_is_refused_unchanged_when_short() {
    let mut v = Venue::new();
    v.deposit(ALICE, USD, 10 * unit(1_000) + 10 * unit(1_010) - 1);
    let id = order_id(&v.limit(ALICE, 1, Side::Buy, 1_000, 10));
    let replace = |price, qty| {
        Command::Replace(ReplaceOrder {
            account: ALICE,
            symbol: BTCUSD,
            client_order_id: 2,
            order_id: id,
            price,
            qty,
        })
    };
    // Up to 1_010 x 20 needs 20 * unit(1_010) with 10 * unit(1_000) already held: one short.
    let ev = v.apply(replace(1_010, 20));
    assert_eq!(rejected(&ev), Some(RejectReason::InsufficientFunds));
    assert_eq!(v.fast.order_leaves(id), Some(10));
    let before = v.bal(ALICE, USD);
    // Up to 1_010 x 10 fits; the hold follows.
    v.apply(replace(1_010, 10));
    assert_eq!(v.bal(ALICE, USD).1, 10 * unit(1_010));
    assert_eq!(
        v.bal(ALICE, USD).0 + v.bal(ALICE, USD).1,
        before.0 + before.1
    );
    // Down in size keeps priority and gives back the difference.
    v.apply(replace(1_010, 4));
    assert_eq!(v.bal(ALICE, USD).1, 4 * unit(1_010));
}

#[test]
fn a_sell_move_changes_only_the_base_hold() {
    let mut v = Venue::new();
    v.deposit(BOB, BTC, 3_000);
    let id = order_id(&v.limit(BOB, 1, Side::Sell, 1_100, 10));
    assert_eq!(v.bal(BOB, BTC), (2_000, 1_000));
    let ev = v.apply(Command::Replace(ReplaceOrder {
        account: BOB,
        symbol: BTCUSD,
        client_order_id: 2,
        order_id: id,
        price: 1_200,
        qty: 31,
    }));
    assert_eq!(rejected(&ev), Some(RejectReason::InsufficientFunds));
    v.apply(Command::Replace(ReplaceOrder {
        account: BOB,
        symbol: BTCUSD,
        client_order_id: 3,
        order_id: id,
        price: 1_200,
        qty: 30,
    }));
    assert_eq!(v.bal(BOB, BTC), (0, 3_000));
}

#[test]
fn market_and_ioc_buys_hold_at_their_worst_price_and_release_the_rest() {
    let mut v = Venue::new();
    v.deposit(BOB, BTC, 10_000);
    v.deposit(ALICE, USD, 1_000_000);
    v.limit(BOB, 1, Side::Sell, 1_000, 5);
    v.limit(BOB, 2, Side::Sell, 1_003, 5);
    // A market buy of 20 holds at 1_000 + 5 ticks; needs 20 * unit(1_005).
    let ev = v.order(NewOrder {
        kind: OrderKind::Market,
        tif: TimeInForce::Ioc,
        price: 0,
        ..NewOrder::limit(ALICE, BTCUSD, 3, Side::Buy, 0, 20)
    });
    assert!(matches!(
        ev.last(),
        Some(Event::Cancelled {
            qty: 10,
            reason: CancelReason::ImmediateOrCancel,
            ..
        })
    ));
    // Paid: 5 @ 1_000 and 5 @ 1_003, taker 20 bps each, rounded up.
    let paid = 50_000 + 100 + 50_150 + 101;
    assert_eq!(v.bal(ALICE, USD), (1_000_000 - paid, 0));
    assert_eq!(v.bal(ALICE, BTC), (1_000, 0));
    // A market buy whose worst-price hold is short is refused before it trades.
    v.limit(BOB, 3, Side::Sell, 1_000, 5);
    let mut poor = Venue::new();
    poor.deposit(BOB, BTC, 500);
    poor.limit(BOB, 1, Side::Sell, 1_000, 5);
    poor.deposit(ALICE, USD, 5 * unit(1_005) - 1);
    let ev = poor.order(NewOrder {
        kind: OrderKind::Market,
        tif: TimeInForce::Ioc,
        price: 0,
        ..NewOrder::limit(ALICE, BTCUSD, 3, Side::Buy, 0, 5)
    });
    assert_eq!(rejected(&ev), Some(RejectReason::InsufficientFunds));
    // An IOC limit releases what did not trade.
    v.order(NewOrder {
        tif: TimeInForce::Ioc,
        ..NewOrder::limit(ALICE, BTCUSD, 4, Side::Buy, 1_001, 8)
    });
    assert_eq!(v.bal(ALICE, USD), (1_000_000 - paid - 50_000 - 100, 0));
}

#[test]
fn a_killed_fill_or_kill_moves_no_money() {
    let mut v = Venue::new();
    v.deposit(BOB, BTC, 10_000);
    v.deposit(ALICE, USD, 1_000_000);
    v.limit(BOB, 1, Side::Sell, 1_000, 5);
    let ev = v.order(NewOrder {
        tif: TimeInForce::Fok,
        ..NewOrder::limit(ALICE, BTCUSD, 2, Side::Buy, 1_000, 6)
    });
    assert!(matches!(
        ev.last(),
        Some(Event::Cancelled {
            reason: CancelReason::FillOrKill,
            ..
        })
    ));
    assert_eq!(v.bal(ALICE, USD), (1_000_000, 0));
    assert_eq!(v.bal(BOB, BTC), (9_500, 500));
}

#[test]
fn held_funds_cannot_be_withdrawn_and_the_kill_switch_releases_them() {
    let mut v = Venue::new();
    v.deposit(ALICE, USD, 100_200);
    v.limit(ALICE, 1, Side::Buy, 1_000, 10);
    assert_eq!(v.bal(ALICE, USD), (0, 100_200));
    let withdraw = |amount| AdminAction::Withdraw {
        account: ALICE,
        asset: USD,
        amount,
    };
    assert_eq!(v.admin(withdraw(1)), AdminOutcome::InsufficientFunds);
    assert_eq!(
        v.admin(AdminAction::DisableAccount(ALICE)),
        AdminOutcome::Applied
    );
    assert_eq!(v.bal(ALICE, USD), (100_200, 0));
    assert_eq!(v.admin(withdraw(100_200)), AdminOutcome::Applied);
    assert_eq!(v.bal(ALICE, USD), (0, 0));
    assert_eq!(v.fast.supply(), vec![(BTC, 0), (USD, 0)]);
    // Zero, unknown assets, and a deposit past 2^64 - 1 in total are refused.
    let deposit = |asset, amount| AdminAction::Deposit {
        account: BOB,
        asset,
        amount,
    };
    assert_eq!(v.admin(deposit(USD, 0)), AdminOutcome::InvalidAmount);
    assert_eq!(v.admin(deposit(99, 5)), AdminOutcome::UnknownAsset);
    assert_eq!(v.admin(deposit(USD, u64::MAX)), AdminOutcome::Applied);
    assert_eq!(v.admin(deposit(USD, 1)), AdminOutcome::InvalidAmount);
}

#[test]
fn a_self_trade_pays_both_fees_to_the_fee_account() {
    let mut v = Venue::new();
    v.deposit(ALICE, USD, 1_000_000);
    v.deposit(ALICE, BTC, 1_000);
    v.limit(ALICE, 1, Side::Sell, 1_000, 10);
    v.limit(ALICE, 2, Side::Buy, 1_000, 10);
    // 100_000 notional: maker 100, taker 200.
    assert_eq!(v.bal(ALICE, USD), (1_000_000 - 300, 0));
    assert_eq!(v.bal(ALICE, BTC), (1_000, 0));
    assert_eq!(v.bal(FEES, USD), (300, 0));
}

#[test]
fn each_limit_refuses_with_its_own_reason() {
    let mut v = Venue::with_limits(Limits {
        max_order_qty: 50,
        max_order_notional: 400_000,
        max_open_orders: 2,
        max_notional_per_sec: 700_000,
    });
    v.deposit(CAROL, USD, 10_000_000);
    let buy = |coid, price, qty| NewOrder::limit(CAROL, BTCUSD, coid, Side::Buy, price, qty);
    assert_eq!(
        rejected(&v.order(buy(1, 1_000, 51))),
        Some(RejectReason::OrderQtyLimit)
    );
    // 1_000 * 41 * 10 = 410_000 > 400_000.
    assert_eq!(
        rejected(&v.order(buy(2, 1_000, 41))),
        Some(RejectReason::OrderNotionalLimit)
    );
    order_id(&v.order(buy(3, 1_000, 40)));
    order_id(&v.order(buy(4, 1_000, 30)));
    assert_eq!(
        rejected(&v.order(buy(5, 1_000, 1))),
        Some(RejectReason::OpenOrdersLimit)
    );
    // 700_000 of new orders this second already: the next second starts afresh.
    v.apply(Command::MassCancel(MassCancel::requested(CAROL, 6, None)));
    assert_eq!(
        rejected(&v.order(buy(7, 1_000, 1))),
        Some(RejectReason::NotionalRateLimit)
    );
    v.ts += 1_000_000_000;
    order_id(&v.order(buy(8, 1_000, 1)));
    // Others have no limits, and the unfunded instrument moves no money.
    v.deposit(ALICE, USD, 10_000_000);
    order_id(&v.limit(ALICE, 1, Side::Buy, 1_000, 100));
    order_id(&v.order(NewOrder::limit(BOB, PLAIN, 1, Side::Buy, 5, 1_000)));
    assert_eq!(v.bal(BOB, USD), (0, 0));
    // Limits apply on the unfunded instrument too (notional = price * qty).
    let plain = NewOrder::limit(CAROL, PLAIN, 9, Side::Sell, 400_001, 1);
    v.apply(Command::MassCancel(MassCancel::requested(CAROL, 10, None)));
    assert_eq!(
        rejected(&v.order(plain)),
        Some(RejectReason::OrderNotionalLimit)
    );
}

#[test]
fn a_replace_meets_the_qty_and_notional_limits() {
    let mut v = Venue::with_limits(Limits {
        max_order_qty: 50,
        max_order_notional: 400_000,
        ..Limits::default()
    });
    v.deposit(CAROL, USD, 10_000_000);
    let id = order_id(&v.order(NewOrder::limit(CAROL, BTCUSD, 1, Side::Buy, 1_000, 10)));
    let replace = |price, qty| {
        Command::Replace(ReplaceOrder {
            account: CAROL,
            symbol: BTCUSD,
            client_order_id: 2,
            order_id: id,
            price,
            qty,
        })
    };
    assert_eq!(
        rejected(&v.apply(replace(1_000, 51))),
        Some(RejectReason::OrderQtyLimit)
    );
    assert_eq!(
        rejected(&v.apply(replace(1_001, 40))),
        Some(RejectReason::OrderNotionalLimit)
    );
    assert!(rejected(&v.apply(replace(1_000, 40))).is_none());
}

#[test]
fn an_amount_that_does_not_fit_64_bits_is_refused_by_name() {
    let mut v = Venue::new();
    v.deposit(ALICE, USD, u64::MAX);
    let ev = v.limit(ALICE, 1, Side::Buy, i64::MAX / 4, 1_000);
    assert_eq!(rejected(&ev), Some(RejectReason::AmountTooLarge));
}

#[test]
fn an_engine_without_rules_keeps_no_balances() {
    let mut e = Engine::new(0, &[Instrument::simple(BTCUSD, "BTC/USD")]);
    let mut out = Vec::new();
    e.apply(
        1,
        1,
        &Command::Admin(AdminCommand {
            action: AdminAction::Deposit {
                account: ALICE,
                asset: USD,
                amount: 5,
            },
            request_id: 1,
        }),
        &mut out,
    );
    assert!(matches!(
        out[0],
        Event::Admin {
            outcome: AdminOutcome::UnknownAsset,
            applied: false,
            ..
        }
    ));
    e.apply(
        2,
        2,
        &Command::New(NewOrder::limit(ALICE, BTCUSD, 1, Side::Buy, 10, 10)),
        &mut out,
    );
    assert!(matches!(out[1], Event::Accepted { .. }));
    assert!(e.balances(ALICE).is_empty());
    assert!(e.risk().is_none());
}

/// A market fill-or-kill order with a positive price: the price is a budget for the whole
/// quantity (`sum of price * qty` over its fills), the most a buy spends, the least a sell
/// takes in.
fn budget_order(account: AccountId, coid: u64, side: Side, budget: Price, qty: Qty) -> NewOrder {
    NewOrder {
        kind: OrderKind::Market,
        tif: TimeInForce::Fok,
        price: budget,
        ..NewOrder::limit(account, BTCUSD, coid, side, 0, qty)
    }
}

#[test]
fn a_budget_buy_fills_within_its_budget_and_is_killed_over_it() {
    let mut v = Venue::new();
    v.deposit(BOB, BTC, 10_000);
    v.deposit(ALICE, USD, 1_000_000);
    v.limit(BOB, 1, Side::Sell, 1_000, 5);
    v.limit(BOB, 2, Side::Sell, 1_002, 5);
    // 10 cost 5 * 1_000 + 5 * 1_002 = 10_010 (price units times quantity units).
    let ev = v.order(budget_order(ALICE, 3, Side::Buy, 10_009, 10));
    assert!(matches!(
        ev.last(),
        Some(Event::Cancelled {
            qty: 10,
            reason: CancelReason::FillOrKill,
            ..
        })
    ));
    assert_eq!(
        v.bal(ALICE, USD),
        (1_000_000, 0),
        "a killed budget order moves nothing"
    );
    let ev = v.order(budget_order(ALICE, 4, Side::Buy, 10_010, 10));
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Trade { .. }))
            .count(),
        2
    );
    // Paid 100_100 notional plus taker fees 100 and ceil(50_100 * 20 / 10_000) = 101.
    assert_eq!(v.bal(ALICE, USD), (1_000_000 - 100_100 - 100 - 101, 0));
    assert_eq!(v.bal(ALICE, BTC), (1_000, 0));
}

#[test]
fn a_budget_sell_needs_at_least_its_budget() {
    let mut v = Venue::new();
    v.deposit(BOB, USD, 10_000_000);
    v.deposit(ALICE, BTC, 1_000);
    v.limit(BOB, 1, Side::Buy, 1_000, 4);
    v.limit(BOB, 2, Side::Buy, 998, 6);
    // 10 would take in 4 * 1_000 + 6 * 998 = 9_988.
    let ev = v.order(budget_order(ALICE, 3, Side::Sell, 9_989, 10));
    assert!(matches!(
        ev.last(),
        Some(Event::Cancelled {
            reason: CancelReason::FillOrKill,
            ..
        })
    ));
    assert_eq!(v.bal(ALICE, BTC), (1_000, 0));
    v.order(budget_order(ALICE, 4, Side::Sell, 9_988, 10));
    assert_eq!(v.bal(ALICE, BTC), (0, 0));
    // Proceeds 99_880 less the taker fee ceil(40_000 * 20 / 10_000) + ceil(59_880 * 20 / 10_000).
    assert_eq!(v.bal(ALICE, USD), (99_880 - 80 - 120, 0));
}
