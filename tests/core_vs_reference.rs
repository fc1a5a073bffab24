//! The fast engine against its naive twin over seeded random command streams: every event
//! and the state hash must agree after every command, and the fast engine's invariants must
//! hold throughout.
//!
//! Streams are dense on purpose: few accounts (self-trade prevention fires), few client ids
//! (duplicates), a narrow price range (crosses, multi-level sweeps), some off-tick, off-lot
//! and out-of-band values (rejects), cancels and replaces of live, dead and foreign orders,
//! and rare operator commands (halts, kill switches) that are mostly undone again. Funded
//! runs add money (`risk()`): deposits and withdrawals, fees, holds and limits, with the
//! money invariants checked after every command (`check_money`).
//! Seeds are fixed, so a failure reproduces exactly; proptest shrinks it to a short stream.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use veloz_core::*;

#[path = "core_vs_reference/money.rs"]
mod money;
use money::{check_money, engines, money, ts};

const SYMBOLS: [SymbolId; 2] = [3, 9];

fn instruments() -> Vec<Instrument> {
    SYMBOLS
        .iter()
        .map(|&id| Instrument {
            id,
            symbol: format!("S{id}"),
            price_scale: 2,
            tick_size: 5,
            lot_size: 10,
            min_qty: 10,
            max_qty: 500,
            price_band_bps: 500, // 5 % around the reference (1_000 or the last trade)
            reference_price: 1_000,
            market_protection_ticks: 3,
        })
        .collect()
}

/// An abstract operation; order ids are resolved against the ids seen so far.
#[derive(Clone, Debug)]
enum Op {
    New {
        account: AccountId,
        symbol: usize,
        coid: u64,
        side: Side,
        market: bool,
        tif: u8,
        post_only: bool,
        stp: u8,
        price: Price,
        qty: Qty,
    },
    Cancel {
        account: AccountId,
        own: bool,
        symbol: usize,
        pick: usize,
    },
    Replace {
        account: AccountId,
        own: bool,
        symbol: usize,
        pick: usize,
        price: Price,
        qty: Qty,
    },
    MassCancel {
        account: AccountId,
        symbol: Option<usize>,
        /// The engine's cancel-on-disconnect instead of the account's request.
        disconnect: bool,
    },
    /// Cancel or replace (when `replace` holds its price and quantity) naming the order by
    /// the client order id it was entered with.
    ByClientId {
        account: AccountId,
        symbol: usize,
        coid: u64,
        replace: Option<(Price, Qty)>,
    },
    /// An operator's command: `action` 0 halt, 1 resume (`target` indexes `SYMBOLS`; 2 is
    /// a symbol the engines do not have), 2 disable, 3 enable (`target` is the account; 5
    /// never trades).
    Admin { action: u8, target: u32 },
    /// A deposit or withdrawal (`risk()`'s assets, or 8, which no engine knows).
    Money {
        withdraw: bool,
        account: AccountId,
        asset: AssetId,
        amount: u64,
    },
}

fn price() -> impl Strategy<Value = Price> {
    prop_oneof![
        20 => (-8i64..=8).prop_map(|t| 1_000 + 5 * t),
        1 => 960i64..1_040, // mostly off-tick
        1 => Just(0i64),
        1 => (1_060i64..1_200).prop_map(|p| p - p % 5), // outside the band
    ]
}

fn qty() -> impl Strategy<Value = Qty> {
    prop_oneof![
        20 => (1u64..=12).prop_map(|l| 10 * l),
        1 => 0u64..600,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let account = 1u32..=4;
    prop_oneof![
        30 => (
            account.clone(),
            0usize..2,
            0u64..12,
            any::<bool>(),
            prop::bool::weighted(0.1),
            prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
            prop::bool::weighted(0.1),
            0u8..4,
            price(),
            qty(),
        )
            .prop_map(|(account, symbol, coid, buy, market, tif, post_only, stp, price, qty)| Op::New {
                account,
                symbol,
                coid,
                side: if buy { Side::Buy } else { Side::Sell },
                market,
                tif,
                post_only,
                stp,
                price,
                qty,
            }),
        6 => (account.clone(), prop::bool::weighted(0.9), 0usize..2, any::<usize>())
            .prop_map(|(account, own, symbol, pick)| Op::Cancel { account, own, symbol, pick }),
        20 => (account.clone(), prop::bool::weighted(0.9), 0usize..2, any::<usize>(), price(), qty()).prop_map(
            |(account, own, symbol, pick, price, qty)| Op::Replace {
                account,
                own,
                symbol,
                pick,
                price,
                qty,
            }
        ),
        1 => (account.clone(), prop::option::of(0usize..2), prop::bool::weighted(0.3))
            .prop_map(|(account, symbol, disconnect)| Op::MassCancel { account, symbol, disconnect }),
        6 => (account, 0usize..2, 0u64..12, prop::option::of((price(), qty())))
            .prop_map(|(account, symbol, coid, replace)| Op::ByClientId { account, symbol, coid, replace }),
        // Rare, and undone far more often than done, so an instrument is halted or an account
        // disabled only a small part of the time and the rest of the mix stays exercised.
        2 => prop_oneof![
            1 => (0u32..=2).prop_map(|target| Op::Admin { action: 0, target }),
            40 => (0u32..=2).prop_map(|target| Op::Admin { action: 1, target }),
            3 => (1u32..=5).prop_map(|target| Op::Admin { action: 2, target }),
            120 => (1u32..=5).prop_map(|target| Op::Admin { action: 3, target }),
        ],
    ]
}

/// The operations of a funded run: [`op`]'s, and money.
fn funded_op() -> impl Strategy<Value = Op> {
    prop_oneof![25 => op(), 3 => money()]
}

/// Orders accepted so far, newest last, with their owner and symbol index.
type Known = Vec<(OrderId, AccountId, usize)>;

fn to_command(op: &Op, known: &Known) -> Command {
    // Mostly one of the 24 newest orders (likely still resting), sometimes any older one,
    // sometimes an id that never existed. `own` sends it as the owner, in the right symbol.
    let pick = |p: usize, account: AccountId, own: bool, symbol: usize| {
        if known.is_empty() || p.is_multiple_of(16) {
            return (999_999, account, symbol);
        }
        let n = known.len();
        let i = if p.is_multiple_of(4) {
            p % n
        } else {
            n - 1 - p % n.min(24)
        };
        let (id, owner, sym) = known[i];
        if own {
            (id, owner, sym)
        } else {
            (id, account, symbol)
        }
    };
    match *op {
        Op::New {
            account,
            symbol,
            coid,
            side,
            market,
            tif,
            post_only,
            stp,
            price,
            qty,
        } => Command::New(NewOrder {
            account,
            symbol: SYMBOLS[symbol],
            client_order_id: coid,
            side,
            kind: if market {
                OrderKind::Market
            } else {
                OrderKind::Limit
            },
            tif: TimeInForce::from_u8(tif).expect("0..3"),
            post_only,
            stp: SelfTradePrevention::from_u8(stp).expect("0..4"),
            // Half the market fill-or-kill orders carry a budget (`price * qty`, near what
            // the book asks, so some fit and some are killed); other market orders have none.
            price: match (market, tif) {
                (true, 2) if coid % 2 == 0 => price.max(0) * qty as i64,
                (true, _) => 0,
                (false, _) => price,
            },
            qty,
        }),
        Op::Cancel {
            account,
            own,
            symbol,
            pick: p,
        } => {
            let (order_id, account, symbol) = pick(p, account, own, symbol);
            Command::Cancel(CancelOrder {
                account,
                symbol: SYMBOLS[symbol],
                client_order_id: 1_000,
                order_id,
            })
        }
        Op::Replace {
            account,
            own,
            symbol,
            pick: p,
            price,
            qty,
        } => {
            let (order_id, account, symbol) = pick(p, account, own, symbol);
            Command::Replace(ReplaceOrder {
                account,
                symbol: SYMBOLS[symbol],
                client_order_id: 2_000,
                order_id,
                price,
                qty,
            })
        }
        Op::MassCancel {
            account,
            symbol,
            disconnect,
        } => Command::MassCancel(MassCancel {
            account,
            client_order_id: if disconnect { 0 } else { 3_000 },
            symbol: symbol.map(|s| SYMBOLS[s]),
            reason: if disconnect {
                veloz_core::CancelReason::CancelOnDisconnect
            } else {
                veloz_core::CancelReason::MassCancel
            },
        }),
        Op::ByClientId {
            account,
            symbol,
            coid,
            replace: None,
        } => Command::Cancel(CancelOrder {
            account,
            symbol: SYMBOLS[symbol],
            client_order_id: 4_000,
            order_id: veloz_core::OrderRef::ClientId(coid).raw(),
        }),
        Op::ByClientId {
            account,
            symbol,
            coid,
            replace: Some((price, qty)),
        } => Command::Replace(ReplaceOrder {
            account,
            symbol: SYMBOLS[symbol],
            client_order_id: 5_000,
            order_id: veloz_core::OrderRef::ClientId(coid).raw(),
            price,
            qty,
        }),
        Op::Admin { action, target } => {
            let symbol = SYMBOLS.get(target as usize).copied().unwrap_or(77);
            let action = match action {
                0 => AdminAction::HaltInstrument(symbol),
                1 => AdminAction::ResumeInstrument(symbol),
                2 => AdminAction::DisableAccount(target),
                _ => AdminAction::EnableAccount(target),
            };
            Command::Admin(AdminCommand {
                action,
                request_id: 6_000,
            })
        }
        Op::Money {
            withdraw,
            account,
            asset,
            amount,
        } => {
            let action = if withdraw {
                AdminAction::Withdraw {
                    account,
                    asset,
                    amount,
                }
            } else {
                AdminAction::Deposit {
                    account,
                    asset,
                    amount,
                }
            };
            Command::Admin(AdminCommand {
                action,
                request_id: 7_000,
            })
        }
    }
}

/// What a stream exercised: event kinds and reasons, by name.
type Coverage = std::collections::BTreeMap<String, u64>;

/// Budget orders: how many were killed and how many traded.
fn tally_budget(cov: &mut Coverage, cmd: &Command, events: &[Event]) {
    if let Command::New(o) = cmd {
        if o.kind == OrderKind::Market && o.tif == TimeInForce::Fok && o.price > 0 {
            let killed = events.iter().any(|e| {
                matches!(
                    e,
                    Event::Cancelled {
                        reason: CancelReason::FillOrKill,
                        ..
                    }
                )
            });
            let traded = events.iter().any(|e| matches!(e, Event::Trade { .. }));
            if killed || traded {
                *cov.entry(format!(
                    "budget:{}",
                    if killed { "killed" } else { "filled" }
                ))
                .or_default() += 1;
            }
        }
    }
}

fn tally(cov: &mut Coverage, e: &Event) {
    let key = match e {
        Event::Accepted { .. } => "accepted".to_string(),
        Event::Trade { .. } => "trade".to_string(),
        // 4_000 and 5_000: a cancel or replace that named its order by client order id.
        Event::Cancelled {
            client_order_id: 4_000,
            ..
        } => "cancel:by_client_id".to_string(),
        Event::Cancelled { reason, .. } => format!("cancel:{}", reason.name()),
        Event::Replaced {
            client_order_id: 5_000,
            ..
        } => "replaced:by_client_id".to_string(),
        Event::Replaced { kept_priority, .. } => format!("replaced:kept={kept_priority}"),
        Event::MassCancelled { .. } => "mass_cancelled".to_string(),
        Event::Rejected { reason, .. } => format!("reject:{}", reason.name()),
        Event::Admin {
            outcome, action, ..
        } if action.money_moved().is_some() => format!("{}:{}", action.name(), outcome.name()),
        Event::Admin { outcome, .. } => format!("admin:{}", outcome.name()),
    };
    *cov.entry(key).or_default() += 1;
}

/// Run `ops` through both engines; Err names the first command where they differ.
fn run_both(ops: &[Op], funded: bool) -> Result<(), TestCaseError> {
    run_both_counting(ops, &mut Coverage::new(), funded)
}

fn run_both_counting(ops: &[Op], cov: &mut Coverage, funded: bool) -> Result<(), TestCaseError> {
    let (mut fast, mut naive) = engines(funded);
    let (mut ef, mut en) = (Vec::new(), Vec::new());
    let mut known = Known::new();
    let mut moved = std::collections::BTreeMap::<AssetId, u64>::new();
    for (i, op) in ops.iter().enumerate() {
        let cmd = to_command(op, &known);
        let seq = i as u64 + 1;
        ef.clear();
        en.clear();
        fast.apply(seq, ts(seq, funded), &cmd, &mut ef);
        naive.apply(seq, ts(seq, funded), &cmd, &mut en);
        prop_assert_eq!(&ef, &en, "events differ at command {} {:?}", i, cmd);
        prop_assert_eq!(
            fast.state_hash(),
            naive.state_hash(),
            "state differs after command {} {:?}",
            i,
            cmd
        );
        if let Err(e) = fast.validate() {
            return Err(TestCaseError::fail(format!(
                "after command {i} {cmd:?}: {e}"
            )));
        }
        for e in &ef {
            if let Event::Admin {
                action,
                applied: true,
                ..
            } = e
            {
                match *action {
                    AdminAction::Deposit { asset, amount, .. } => {
                        *moved.entry(asset).or_default() += amount
                    }
                    AdminAction::Withdraw { asset, amount, .. } => {
                        *moved.entry(asset).or_default() -= amount
                    }
                    _ => {}
                }
            }
        }
        if funded {
            check_money(&fast, &naive, &moved)?;
        }
        tally_budget(cov, &cmd, &ef);
        for e in &ef {
            tally(cov, e);
            if let Event::Accepted {
                order_id,
                account,
                symbol,
                ..
            } = e
            {
                let index = SYMBOLS.iter().position(|s| s == symbol).expect("known");
                known.push((*order_id, *account, index));
            }
        }
    }
    Ok(())
}

#[test]
fn fast_engine_matches_reference_on_random_streams() {
    let config = Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = *b"veloz-core-vs-reference-seed-001";
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    runner
        .run(&prop::collection::vec(op(), 1..400), |ops| {
            run_both(&ops, false)
        })
        .unwrap();
}

/// The same with money: balances, holds, fees and limits on every command, with the
/// invariants of [`check_money`] after each.
#[test]
fn funded_engine_matches_reference_on_random_streams() {
    let config = Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = *b"veloz-core-money-vs-reference-04";
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    runner
        .run(&prop::collection::vec(op(), 1..400), |ops| {
            run_both(&ops, true)
        })
        .unwrap();
}

/// A long funded stream must exercise every money path, or the comparison proves little.
#[test]
fn funded_engine_matches_reference_on_a_long_stream() {
    let ops = long_stream(funded_op(), *b"veloz-core-money-long-stream-005", 60_000);
    let mut cov = Coverage::new();
    run_both_counting(&ops, &mut cov, true).unwrap();
    println!("{cov:#?}");
    for key in [
        "trade",
        "reject:insufficient_funds",
        "reject:order_qty_limit",
        "reject:order_notional_limit",
        "reject:open_orders_limit",
        "reject:notional_rate_limit",
        "deposit:applied",
        "deposit:invalid_amount",
        "deposit:unknown_asset",
        "withdraw:applied",
        "withdraw:insufficient_funds",
        "replaced:kept=false",
        "cancel:fill_or_kill",
        "cancel:immediate_or_cancel",
        "cancel:self_trade",
        "cancel:account_disabled",
    ] {
        assert!(
            cov.get(key).copied().unwrap_or(0) >= 20,
            "stream exercised {key} too rarely: {cov:#?}"
        );
    }
}

/// `n` operations drawn from `strategy` with the runner seeded by `seed`.
fn long_stream(strategy: impl Strategy<Value = Op>, seed: [u8; 32], n: usize) -> Vec<Op> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("value").current())
        .collect()
}

/// A long single stream (exchange-core compares its two books over 100k seeded commands).
#[test]
fn fast_engine_matches_reference_on_a_long_stream() {
    let ops = long_stream(op(), *b"veloz-core-long-stream-seed-0002", 100_000);
    let mut cov = Coverage::new();
    run_both_counting(&ops, &mut cov, false).unwrap();
    println!("{cov:#?}");
    // The stream must exercise every path the engines share, or the comparison proves little.
    for key in [
        "accepted",
        "trade",
        "mass_cancelled",
        "replaced:kept=true",
        "replaced:kept=false",
        "cancel:requested",
        "cancel:immediate_or_cancel",
        "cancel:fill_or_kill",
        "cancel:self_trade",
        "cancel:mass_cancel",
        "cancel:protection_band",
        "cancel:no_liquidity",
        "budget:killed",
        "budget:filled",
        "cancel:cancel_on_disconnect",
        "cancel:by_client_id",
        "replaced:by_client_id",
        "reject:price_off_tick",
        "reject:qty_off_lot",
        "reject:qty_below_min",
        "reject:qty_above_max",
        "reject:price_outside_band",
        "reject:unknown_order",
        "reject:not_order_owner",
        "reject:duplicate_client_order_id",
        "reject:post_only_would_cross",
        "reject:invalid_price",
        "reject:invalid_order_type",
        "reject:no_change",
        "cancel:account_disabled",
        "reject:instrument_halted",
        "reject:account_disabled",
        "admin:applied",
        "admin:already_in_state",
        "admin:unknown_symbol",
    ] {
        assert!(
            cov.get(key).copied().unwrap_or(0) >= 20,
            "stream exercised {key} too rarely: {cov:#?}"
        );
    }
}

/// The comparison can fail: a deliberately different stream on one side must be caught.
#[test]
fn comparison_detects_a_divergence() {
    let inst = instruments();
    let mut a = Engine::new(1, &inst);
    let mut b = ReferenceEngine::new(1, &inst);
    let buy = NewOrder::limit(1, 3, 1, Side::Buy, 1_000, 10);
    let mut out = Vec::new();
    a.apply(1, 1, &Command::New(buy), &mut out);
    b.apply(1, 1, &Command::New(NewOrder { qty: 20, ..buy }), &mut out);
    assert_ne!(a.state_hash(), b.state_hash());
}

/// A snapshot is the state: an engine after a random stream, written and read back, has the
/// same state hash, and it and the original give identical events (and hashes, and the naive
/// twin's) for a further random stream.
fn run_snapshot_split(ops: &[Op], split: usize, funded: bool) -> Result<(), TestCaseError> {
    let (mut fast, mut naive) = engines(funded);
    let mut ev = Vec::new();
    let mut known = Known::new();
    let split = split.min(ops.len());
    let record = |events: &[Event], known: &mut Known| {
        for e in events {
            if let Event::Accepted {
                order_id,
                account,
                symbol,
                ..
            } = e
            {
                let index = SYMBOLS.iter().position(|s| s == symbol).expect("known");
                known.push((*order_id, *account, index));
            }
        }
    };
    for (i, op) in ops[..split].iter().enumerate() {
        let cmd = to_command(op, &known);
        let seq = i as u64 + 1;
        ev.clear();
        fast.apply(seq, ts(seq, funded), &cmd, &mut ev);
        naive.apply(seq, ts(seq, funded), &cmd, &mut Vec::new());
        record(&ev, &mut known);
    }
    let mut bytes = Vec::new();
    fast.write_snapshot(&mut bytes);
    let mut loaded = match Engine::read_snapshot(&bytes) {
        Ok(e) => e,
        Err(e) => return Err(TestCaseError::fail(format!("read_snapshot: {e}"))),
    };
    prop_assert_eq!(loaded.state_hash(), fast.state_hash());
    let (mut ea, mut eb, mut en) = (Vec::new(), Vec::new(), Vec::new());
    for (i, op) in ops[split..].iter().enumerate() {
        let cmd = to_command(op, &known);
        let seq = (split + i) as u64 + 1;
        ea.clear();
        eb.clear();
        en.clear();
        fast.apply(seq, ts(seq, funded), &cmd, &mut ea);
        loaded.apply(seq, ts(seq, funded), &cmd, &mut eb);
        naive.apply(seq, ts(seq, funded), &cmd, &mut en);
        prop_assert_eq!(
            &ea,
            &eb,
            "events differ after the snapshot at command {}",
            i
        );
        prop_assert_eq!(
            &eb,
            &en,
            "loaded engine differs from the twin at command {}",
            i
        );
        prop_assert_eq!(loaded.state_hash(), fast.state_hash());
        record(&ea, &mut known);
    }
    if let Err(e) = loaded.validate() {
        return Err(TestCaseError::fail(format!("loaded engine: {e}")));
    }
    Ok(())
}

#[test]
fn snapshot_round_trip_continues_identically() {
    let config = Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = *b"veloz-core-snapshot-split-seed-3";
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    runner
        .run(
            &(prop::collection::vec(op(), 1..400), 0usize..400),
            |(ops, split)| run_snapshot_split(&ops, split, false),
        )
        .unwrap();
}

/// The same for an engine with money: the snapshot carries its rules and every balance.
#[test]
fn funded_snapshot_round_trip_continues_identically() {
    let config = Config {
        cases: 100,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = *b"veloz-core-money-snapshot-seed-6";
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    runner
        .run(
            &(prop::collection::vec(funded_op(), 1..400), 0usize..400),
            |(ops, split)| run_snapshot_split(&ops, split, true),
        )
        .unwrap();
}
