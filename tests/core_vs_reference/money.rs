//! The money side of the engine-versus-twin comparison (`tests/core_vs_reference.rs`): the
//! rules of the funded runs, their clock, the deposit and withdrawal operations, and the money
//! invariants checked after every command.

use super::*;

/// Assets of the funded runs: S3 trades BASE_A against QUOTE, S9 BASE_B against QUOTE.
pub const QUOTE: AssetId = 2;
pub const BASE_A: AssetId = 1;
pub const BASE_B: AssetId = 3;
/// The account fees are paid to (it never trades).
pub const FEES: AccountId = 6;

/// The money rules of the funded runs: fees on S3 (maker 10 bps, taker 25), none on S9;
/// limits tight enough to fire in a random stream; account 4 has no limits at all.
pub fn risk() -> Risk {
    let asset = |id, name: &str| Asset {
        id,
        name: name.into(),
        scale: 2,
    };
    Risk {
        assets: vec![
            asset(QUOTE, "QUOTE"),
            asset(BASE_A, "A"),
            asset(BASE_B, "B"),
        ],
        fee_account: FEES,
        funding: vec![
            (
                3,
                Funding {
                    base: BASE_A,
                    quote: QUOTE,
                    base_unit: 100,
                    quote_unit: 3,
                    maker_fee_bps: 10,
                    taker_fee_bps: 25,
                },
            ),
            (
                9,
                Funding {
                    base: BASE_B,
                    quote: QUOTE,
                    base_unit: 1,
                    quote_unit: 1,
                    maker_fee_bps: 0,
                    taker_fee_bps: 0,
                },
            ),
        ],
        limits: Limits {
            max_order_qty: 100,
            max_order_notional: 250_000,
            max_open_orders: 4,
            max_notional_per_sec: 400_000,
        },
        account_limits: vec![(4, Limits::default())],
    }
}

/// The two engines of a run: with [`risk`] when `funded`.
pub fn engines(funded: bool) -> (Engine, ReferenceEngine) {
    let inst = instruments();
    if funded {
        (
            Engine::with_risk(1, &inst, risk()).expect("valid rules"),
            ReferenceEngine::with_risk(1, &inst, risk()).expect("valid rules"),
        )
    } else {
        (Engine::new(1, &inst), ReferenceEngine::new(1, &inst))
    }
}

/// The sequencer's clock for command `seq`: funded runs see 50 commands per second, so the
/// per-second notional limit both fires and resets.
pub fn ts(seq: u64, funded: bool) -> Timestamp {
    if funded {
        seq * 20_000_000
    } else {
        10 * seq
    }
}

/// Deposits mostly, of sizes that leave accounts short often enough; withdrawals of what
/// may or may not be there; now and then an amount of 0 or an unknown asset.
pub fn money() -> impl Strategy<Value = Op> {
    let account = 1u32..=5;
    let deposit = |withdraw| {
        move |(account, asset, amount)| Op::Money {
            withdraw,
            account,
            asset,
            amount,
        }
    };
    prop_oneof![
        6 => (account.clone(), Just(QUOTE), 1u64..3_000_000).prop_map(deposit(false)),
        6 => (account.clone(), prop_oneof![Just(BASE_A), Just(BASE_B)], 1u64..60_000)
            .prop_map(deposit(false)),
        4 => (account.clone(), Just(QUOTE), 1u64..4_000_000).prop_map(deposit(true)),
        4 => (account.clone(), prop_oneof![Just(BASE_A), Just(BASE_B)], 1u64..80_000)
            .prop_map(deposit(true)),
        1 => (account.clone(), Just(QUOTE), Just(0u64), any::<bool>()).prop_map(
            |(account, asset, amount, withdraw)| Op::Money { withdraw, account, asset, amount }
        ),
        1 => (account, Just(8u32), 1u64..10, any::<bool>()).prop_map(
            |(account, asset, amount, withdraw)| Op::Money { withdraw, account, asset, amount }
        ),
    ]
}

/// The money invariants after a command of a funded run: both engines report the same
/// balances for every account and the same supply, and each asset's balances sum to what
/// the applied deposits less withdrawals (`moved`, counted by the test from the events)
/// put in.
pub fn check_money(
    fast: &Engine,
    naive: &ReferenceEngine,
    moved: &std::collections::BTreeMap<AssetId, u64>,
) -> Result<(), TestCaseError> {
    let accounts = fast.funded_accounts();
    prop_assert_eq!(&accounts, &naive.funded_accounts());
    let mut sums = std::collections::BTreeMap::<AssetId, u128>::new();
    for &a in &accounts {
        let balances = fast.balances(a);
        prop_assert_eq!(&balances, &naive.balances(a), "balances of account {}", a);
        for (asset, b) in balances {
            *sums.entry(asset).or_default() += b.total();
        }
    }
    for (asset, supply) in fast.supply() {
        let want = moved.get(&asset).copied().unwrap_or(0);
        prop_assert_eq!(supply, want, "supply of asset {}", asset);
        prop_assert_eq!(sums.get(&asset).copied().unwrap_or(0), want as u128);
    }
    prop_assert_eq!(fast.supply(), naive.supply());
    Ok(())
}
