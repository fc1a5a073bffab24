//! Matching-core benchmark: exchange-core's workload through Veloz's [`Engine`] and, side by
//! side in the same run, the same command stream through `matchcore` 0.4.
//!
//! Workloads (fixed seed [`SEED`], see `src/workload.rs`): the single-symbol one (1,000
//! resting orders, 2,000 accounts) and the many-symbol one (100 Pareto-weighted symbols).
//! Each is generated once, untimed; its prefill is applied untimed before every measured
//! pass, into a fresh engine.
//!
//! Mapping to matchcore: one `OrderBook` per symbol, each with its own sequence numbers from 0
//! (matchcore requires consecutive ones per book); New GTC/IOC limit -> `Submit` of a
//! `LimitOrder` with the same time in force; Cancel -> `Cancel`; Replace (every replace in
//! these workloads keeps the open quantity and changes the price) -> `Amend` with a price
//! patch. Order ids: matchcore's come from the outcome of each submit and are mapped from
//! Veloz's `Accepted` ids while the stream is translated (both engines run in lockstep
//! once, untimed), and the trade counts of both are compared.
//!
//! Output: criterion's time per pass (throughput in commands/s), then a table printed by
//! this file: median and best ops/s over [`REPEATS`] full passes (`std::time::Instant`
//! around the loop; the best pass is the one the shared host disturbed least), per-command
//! latency percentiles (minstant around each command, into an HDR histogram; the timer's
//! own cost is stated), and the Veloz/matchcore ratio.
//!
//! Money (issue 17): a third row, `veloz+risk`, runs the same stream through an engine built
//! [`Engine::with_risk`]: every instrument funded (its own base asset against one quote
//! asset, maker 1 bps, taker 2 bps), every account given deposits of the assets it trades
//! in the stream, too large to run short, and limits set on every account high enough never
//! to fire, so each order pays for its limit checks, its hold, and each fill for its
//! settlement. An untimed lockstep pass checks
//! that the funded engine gives exactly the unfunded one's events.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) criterion runs each benchmark
//! once and the streams are small, so the whole binary takes a few seconds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;

use veloz_core::workload::{
    generate, synthetic_instruments, timestamp_of, Workload, WorkloadConfig,
};
use veloz_core::{
    AdminAction, AdminCommand, Asset, Command, Engine, Event, Funding, Limits, OrderId, Risk, Side,
    TimeInForce,
};

const SEED: u64 = 1;
/// Full passes per engine for the median and best throughput.
const REPEATS: usize = 9;

struct Sizes {
    single: usize,
    many: usize,
    symbols: usize,
    repeats: usize,
}

fn sizes(bench_mode: bool) -> Sizes {
    if bench_mode {
        Sizes {
            single: 3_000_000,
            many: 3_000_000,
            symbols: 100,
            repeats: REPEATS,
        }
    } else {
        Sizes {
            single: 20_000,
            many: 20_000,
            symbols: 10,
            repeats: 1,
        }
    }
}

/// A workload translated for matchcore: `(book index, command)` pairs.
struct McStream {
    symbols: Vec<String>,
    prefill: Vec<(usize, matchcore::Command)>,
    commands: Vec<(usize, matchcore::Command)>,
    /// Trades in `commands`, as matchcore reports them / as Veloz does.
    mc_trades: u64,
    veloz_trades: u64,
    mc_rejects: u64,
}

impl McStream {
    fn prefilled_books(&self) -> Vec<matchcore::OrderBook> {
        let mut books: Vec<matchcore::OrderBook> = self
            .symbols
            .iter()
            .map(|s| matchcore::OrderBook::new(s))
            .collect();
        for (b, cmd) in &self.prefill {
            black_box(books[*b].execute(cmd));
        }
        books
    }
}

fn mc_side(side: Side) -> matchcore::Side {
    match side {
        Side::Buy => matchcore::Side::Buy,
        Side::Sell => matchcore::Side::Sell,
    }
}

/// Run the stream through Veloz and matchcore in lockstep (untimed) to translate it.
fn translate(w: &Workload) -> McStream {
    use matchcore::{
        AmendCmd, AmendPatch, CancelCmd, CommandKind, CommandMeta, CommandOutcome, CommandReport,
        LimitOrder, LimitOrderPatch, OrderFlags, OrderKind, Price, Quantity, QuantityPolicy,
        SequenceNumber, SubmitCmd, Timestamp,
    };
    let mut engine = w.engine();
    let mut out = Vec::new();
    let symbols: Vec<String> = w.instruments.iter().map(|i| i.symbol.clone()).collect();
    let book_of: FxHashMap<u32, usize> = w
        .instruments
        .iter()
        .enumerate()
        .map(|(b, i)| (i.id, b))
        .collect();
    let mut books: Vec<matchcore::OrderBook> = symbols
        .iter()
        .map(|s| matchcore::OrderBook::new(s))
        .collect();
    let mut next_seq = vec![0u64; books.len()];
    let mut ids: FxHashMap<OrderId, matchcore::OrderId> = FxHashMap::default();
    let mut s = McStream {
        symbols,
        prefill: Vec::with_capacity(w.prefill.len()),
        commands: Vec::with_capacity(w.commands.len()),
        mc_trades: 0,
        veloz_trades: 0,
        mc_rejects: 0,
    };
    let n_prefill = w.prefill.len();
    for (i, cmd) in w.prefill.iter().chain(&w.commands).enumerate() {
        let seq = Workload::seq_of(i);
        out.clear();
        engine.apply(seq, timestamp_of(seq), cmd, &mut out);
        let b = book_of[&cmd.symbol().expect("workloads name a symbol")];
        let kind = match cmd {
            Command::New(o) => {
                let tif = match o.tif {
                    TimeInForce::Gtc => matchcore::TimeInForce::Gtc,
                    TimeInForce::Ioc => matchcore::TimeInForce::Ioc,
                    TimeInForce::Fok => matchcore::TimeInForce::Fok,
                };
                CommandKind::Submit(SubmitCmd {
                    order: matchcore::NewOrder::Limit(LimitOrder::new(
                        Price(o.price as u64),
                        QuantityPolicy::Standard {
                            quantity: Quantity(o.qty),
                        },
                        OrderFlags::new(mc_side(o.side), o.post_only, tif),
                    )),
                })
            }
            Command::Cancel(c) => CommandKind::Cancel(CancelCmd {
                order_id: ids[&c.order_id],
                order_kind: OrderKind::Limit,
            }),
            Command::Replace(r) => CommandKind::Amend(AmendCmd {
                order_id: ids[&r.order_id],
                patch: AmendPatch::Limit(LimitOrderPatch::new().with_price(Price(r.price as u64))),
            }),
            Command::MassCancel(_) | Command::Admin(_) => {
                panic!("the workloads have no mass cancels or operator commands")
            }
        };
        let mc = matchcore::Command {
            meta: CommandMeta {
                sequence_number: SequenceNumber(next_seq[b]),
                timestamp: Timestamp(timestamp_of(seq)),
            },
            kind,
        };
        next_seq[b] += 1;
        let outcome = books[b].execute(&mc);
        let mut mc_trades = 0;
        match &outcome {
            CommandOutcome::Applied(CommandReport::Submit(e) | CommandReport::Amend(e)) => {
                if let Command::New(_) = cmd {
                    let veloz_id = out.iter().find_map(|e| match e {
                        Event::Accepted { order_id, .. } => Some(*order_id),
                        _ => None,
                    });
                    ids.insert(veloz_id.expect("accepted"), e.target_order().order_id());
                }
                for o in std::iter::once(e.target_order()).chain(e.triggered_orders()) {
                    mc_trades += o.match_result().map_or(0, |m| m.trades().len() as u64);
                }
            }
            CommandOutcome::Applied(CommandReport::Cancel) => {}
            CommandOutcome::Rejected(_) => s.mc_rejects += 1,
        }
        if i >= n_prefill {
            s.mc_trades += mc_trades;
            s.veloz_trades += out
                .iter()
                .filter(|e| matches!(e, Event::Trade { .. }))
                .count() as u64;
            s.commands.push((b, mc));
        } else {
            s.prefill.push((b, mc));
        }
    }
    s
}

fn veloz_pass(w: &Workload, mut engine: Engine) -> Engine {
    let mut out = Vec::with_capacity(256);
    let first = w.first_command_seq();
    for (i, cmd) in w.commands.iter().enumerate() {
        let seq = first + i as u64;
        out.clear();
        engine.apply(seq, timestamp_of(seq), cmd, &mut out);
    }
    black_box(&out);
    engine
}

/// The quote asset of the funded engine; each instrument's base asset is its own id.
const QUOTE: u32 = u32::MAX;

/// A funded engine for `w` (module docs) with the prefill applied.
fn funded_prefilled(w: &Workload) -> Engine {
    let mut assets = vec![Asset {
        id: QUOTE,
        name: "QUOTE".into(),
        scale: 0,
    }];
    let mut funding = Vec::new();
    for i in &w.instruments {
        assets.push(Asset {
            id: i.id,
            name: format!("B{}", i.id),
            scale: 0,
        });
        let f = Funding {
            base: i.id,
            quote: QUOTE,
            base_unit: 1,
            quote_unit: 1,
            maker_fee_bps: 1,
            taker_fee_bps: 2,
        };
        funding.push((i.id, f));
    }
    let high = Limits {
        max_order_qty: 1 << 40,
        max_order_notional: 1 << 62,
        max_open_orders: 1 << 30,
        max_notional_per_sec: u64::MAX,
    };
    let rules = Risk {
        assets,
        fee_account: 0,
        funding,
        limits: high,
        account_limits: Vec::new(),
    };
    let mut engine = Engine::with_risk(0, &w.instruments, rules).expect("valid rules");
    let amount = u64::MAX / (w.config.accounts as u64 + 1);
    let mut out = Vec::new();
    // Each account gets the quote and the base of every instrument it trades in the stream,
    // as a venue's members hold the assets they trade, not every listed one.
    let mut holdings = std::collections::BTreeSet::new();
    for cmd in w.prefill.iter().chain(&w.commands) {
        if let Command::New(o) = cmd {
            holdings.insert((o.account, QUOTE));
            holdings.insert((o.account, o.symbol));
        }
    }
    for (account, asset) in holdings {
        let action = AdminAction::Deposit {
            account,
            asset,
            amount,
        };
        let cmd = Command::Admin(AdminCommand {
            action,
            request_id: 0,
        });
        engine.apply(0, 0, &cmd, &mut out);
    }
    for (i, cmd) in w.prefill.iter().enumerate() {
        let seq = Workload::seq_of(i);
        out.clear();
        engine.apply(seq, timestamp_of(seq), cmd, &mut out);
    }
    engine
}

/// The funded engine gives exactly the unfunded one's events for every command of `w`.
fn check_funded(w: &Workload) {
    let (mut plain, mut funded) = (w.prefilled_engine(), funded_prefilled(w));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let first = w.first_command_seq();
    for (i, cmd) in w.commands.iter().enumerate() {
        let seq = first + i as u64;
        a.clear();
        b.clear();
        plain.apply(seq, timestamp_of(seq), cmd, &mut a);
        funded.apply(seq, timestamp_of(seq), cmd, &mut b);
        assert_eq!(a, b, "the funded engine differs at command {i}: {cmd:?}");
    }
    funded.validate().expect("funded engine invariants");
}

fn mc_pass(s: &McStream, mut books: Vec<matchcore::OrderBook>) -> Vec<matchcore::OrderBook> {
    for (b, cmd) in &s.commands {
        black_box(books[*b].execute(cmd));
    }
    books
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn veloz_latency(w: &Workload, funded: bool) -> Histogram<u64> {
    let mut h = histogram();
    let mut engine = if funded {
        funded_prefilled(w)
    } else {
        w.prefilled_engine()
    };
    let mut out = Vec::with_capacity(256);
    let first = w.first_command_seq();
    for (i, cmd) in w.commands.iter().enumerate() {
        let seq = first + i as u64;
        out.clear();
        let t0 = minstant::Instant::now();
        engine.apply(seq, timestamp_of(seq), cmd, &mut out);
        let t1 = minstant::Instant::now();
        h.saturating_record(t1.duration_since(t0).as_nanos() as u64);
    }
    h
}

fn mc_latency(s: &McStream) -> Histogram<u64> {
    let mut h = histogram();
    let mut books = s.prefilled_books();
    for (b, cmd) in &s.commands {
        let t0 = minstant::Instant::now();
        black_box(books[*b].execute(cmd));
        let t1 = minstant::Instant::now();
        h.saturating_record(t1.duration_since(t0).as_nanos() as u64);
    }
    h
}

fn timer_overhead() -> u64 {
    let mut h = histogram();
    for _ in 0..1_000_000 {
        let t0 = minstant::Instant::now();
        let t1 = minstant::Instant::now();
        h.saturating_record(t1.duration_since(t0).as_nanos() as u64);
    }
    h.value_at_quantile(0.5)
}

/// `(median, best)` of the pass rates.
fn median_best(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[v.len() - 1])
}

struct Case {
    name: &'static str,
    workload: Workload,
    mc: McStream,
}

struct Row {
    ops: f64,
    best: f64,
    hist: Histogram<u64>,
}

fn measure(case: &Case, repeats: usize) -> (Row, Row, Row) {
    let n = case.workload.commands.len() as f64;
    let mut v = Vec::new();
    let mut r = Vec::new();
    let mut m = Vec::new();
    for _ in 0..repeats {
        let engine = case.workload.prefilled_engine();
        let t = Instant::now();
        let engine = veloz_pass(&case.workload, engine);
        v.push(n / t.elapsed().as_secs_f64());
        assert_eq!(engine.state_hash(), case.workload.stats.state_hash);
        let engine = funded_prefilled(&case.workload);
        let t = Instant::now();
        black_box(veloz_pass(&case.workload, engine));
        r.push(n / t.elapsed().as_secs_f64());
        let books = case.mc.prefilled_books();
        let t = Instant::now();
        let books = mc_pass(&case.mc, books);
        m.push(n / t.elapsed().as_secs_f64());
        black_box(books);
    }
    let (ops, best) = median_best(v);
    let (risk_ops, risk_best) = median_best(r);
    let (mc_ops, mc_best) = median_best(m);
    (
        Row {
            ops,
            best,
            hist: veloz_latency(&case.workload, false),
        },
        Row {
            ops: risk_ops,
            best: risk_best,
            hist: veloz_latency(&case.workload, true),
        },
        Row {
            ops: mc_ops,
            best: mc_best,
            hist: mc_latency(&case.mc),
        },
    )
}

fn print_row(engine: &str, r: &Row) {
    let h = &r.hist;
    println!(
        "  {engine:<10} {:>6.2} M/s (best {:>6.2})   p50 {:>4}  p99 {:>5}  p99.9 {:>5}  p99.99 {:>6}  max {:>8}",
        r.ops / 1e6,
        r.best / 1e6,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.value_at_quantile(0.9999),
        h.max()
    );
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let sz = sizes(bench_mode);
    let t = Instant::now();
    let cases: Vec<Case> = [
        (
            "single_symbol",
            WorkloadConfig::single_symbol(SEED, sz.single),
            synthetic_instruments(1),
        ),
        (
            "many_symbols",
            WorkloadConfig::many_symbols(SEED, sz.many, sz.symbols),
            synthetic_instruments(sz.symbols),
        ),
    ]
    .into_iter()
    .map(|(name, config, instruments)| {
        let workload = generate(&config, &instruments);
        let mc = translate(&workload);
        Case { name, workload, mc }
    })
    .collect();
    eprintln!(
        "generated and translated the workloads in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    for case in &cases {
        let mut g = c.benchmark_group(format!("matching/{}", case.name));
        g.throughput(Throughput::Elements(case.workload.commands.len() as u64));
        g.bench_function("veloz", |b| {
            b.iter_batched(
                || case.workload.prefilled_engine(),
                |engine| veloz_pass(&case.workload, engine),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("veloz_risk", |b| {
            b.iter_batched(
                || funded_prefilled(&case.workload),
                |engine| veloz_pass(&case.workload, engine),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("matchcore", |b| {
            b.iter_batched(
                || case.mc.prefilled_books(),
                |books| mc_pass(&case.mc, books),
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
    c.final_summary();

    let overhead = timer_overhead();
    println!(
        "\nmatching core, seed {SEED}: median and best of {} passes for ops/s; ns/command from minstant \
         around each command (timer cost p50 {overhead} ns, included)",
        sz.repeats
    );
    for case in &cases {
        let s = &case.workload.stats;
        let n = case.workload.commands.len();
        println!(
            "{} ({} symbols, {} commands, {} resting, {:.1} % trade; trades veloz {} matchcore {}, matchcore rejects {})",
            case.name,
            case.workload.instruments.len(),
            n,
            s.resting_at_end,
            s.trade_ratio() * 100.0,
            case.mc.veloz_trades,
            case.mc.mc_trades,
            case.mc.mc_rejects
        );
        check_funded(&case.workload);
        let (v, r, m) = measure(case, sz.repeats);
        print_row("veloz", &v);
        print_row("veloz+risk", &r);
        print_row("matchcore", &m);
        println!(
            "  ratio veloz/matchcore {:.2}x (best passes {:.2}x); risk on/off {:.2}x (best {:.2}x)",
            v.ops / m.ops,
            v.best / m.best,
            r.ops / v.ops,
            r.best / v.best
        );
    }
}
