//! The matching core alone on the restart workload (docs/BENCHMARKS.md, "Restart time"):
//! what recovery's apply loop costs without the journal. One shard's engine over the
//! embedded instruments, `RESTING` resting orders, then `TAIL` commands of the same stream
//! `restart_data` writes (a new resting order and the cancel of the oldest, in turn),
//! applied one by one (`BATCH` 0) or in batches of `BATCH` each warmed first
//! (`Engine::warm`, as recovery's `replay::Batched` does), with `RETAIN` reports kept per
//! account (recovery keeps `gateway.resend_window`, 10,000 by default). Prints the rate.
//!
//! ```text
//! cargo run --release -p veloz-engine --example restart_core -- RESTING TAIL BATCH [RETAIN]
//! cargo run --release -p veloz-engine --example restart_core -- 1000000 10000000 8 10000
//! ```

use std::time::Instant;

use veloz_config::routing::Routing;
use veloz_config::Config;

#[path = "common/stream.rs"]
mod stream;
use stream::RestartStream;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if !(4..=5).contains(&args.len()) {
        return Err("usage: restart_core RESTING TAIL BATCH [RETAIN]".into());
    }
    let resting: u64 = args[1].parse()?;
    let tail: u64 = args[2].parse()?;
    let batch: usize = args[3].parse()?;
    let retain: usize = args.get(4).map_or(Ok(10_000), |v| v.parse())?;
    let mut config = Config::default();
    config.engine.cores = vec![0];
    let routing = Routing::from_config(&config, 1)?;
    let mut engine = config.shard_engine(&routing, 0);
    engine.set_report_retention(retain);
    let mut stream = RestartStream::new(engine.instruments().cloned().collect());
    let mut events = Vec::new();
    let mut seq = 0;
    let mut apply = |engine: &mut veloz_core::Engine, cmd: &veloz_core::Command| {
        seq += 1;
        events.clear();
        engine.apply(seq, seq * 1_000, cmd, &mut events);
    };
    for _ in 0..resting {
        apply(&mut engine, &stream.resting());
    }
    // The tail as the journal would hand it over, built before the clock starts.
    let cmds: Vec<_> = (0..tail).map(|_| stream.tail()).collect();
    let began = Instant::now();
    if batch == 0 {
        for cmd in &cmds {
            apply(&mut engine, cmd);
        }
    } else {
        for chunk in cmds.chunks(batch) {
            engine.warm(chunk);
            for cmd in chunk {
                apply(&mut engine, cmd);
            }
        }
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{tail} commands in {secs:.2} s: {:.2}M commands/s (batch {batch}, retention {retain}), {} resting orders",
        tail as f64 / secs / 1e6,
        engine.resting_orders()
    );
    Ok(())
}
