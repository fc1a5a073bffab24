//! Where the demo's threads run, and how it states its configuration and the host it found.

use std::path::Path;

use anyhow::Context;
use veloz_config::preflight;

use super::verdict::Setup;
use super::{expect, host, DemoOptions, WARMUP};

/// Where the load generator and the echo floor run, and what the engine will pick.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    pub online: Vec<usize>,
    pub setup: Setup,
    pub floor_cores: Vec<usize>,
}

impl Plan {
    pub fn new(options: &DemoOptions) -> anyhow::Result<Plan> {
        let online = preflight::online_cores()?;
        let (shard_cores, control_core) = preflight::plan_cores(&options.cores, None, &online)?;
        // veloz load's default: the last online core.
        let load_cores = vec![*online.last().context("no online core")?];
        let floor_cores = preflight::spare_cores(&online, &load_cores);
        Ok(Plan {
            online,
            setup: Setup {
                debug_build: cfg!(debug_assertions),
                shard_cores,
                control_core,
                load_cores,
            },
            floor_cores,
        })
    }

    /// "shard 1's core 1" for a shard core, "core 3" for another.
    fn core_name(&self, core: usize) -> String {
        match self.setup.shard_cores.iter().position(|&c| c == core) {
            Some(shard) => format!("shard {shard}'s core {core}"),
            None => format!("core {core}"),
        }
    }

    pub fn print(&self, options: &DemoOptions, dir: &Path) {
        let s = &self.setup;
        let list = |cores: &[usize]| {
            cores
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        println!("veloz demo: configuration");
        println!(
            "config: build            {}",
            if s.debug_build {
                "debug (unoptimized: figures will miss the release ranges; `make run` builds release)"
            } else {
                "release"
            }
        );
        println!(
            "config: durability       main phase \"none\" (journal in the page cache: survives a crash of the process, not of the host); group phase \"group\" (the default an operator runs: reports wait for fdatasync){}",
            if options.group_duration.is_zero() { ", skipped" } else { "" }
        );
        println!(
            "config: shards           {} on cores {}{}",
            s.shard_cores.len(),
            list(&s.shard_cores),
            if options.cores.is_empty() {
                " (one per online core, the embedded default)"
            } else {
                " (--cores)"
            }
        );
        println!(
            "config: control thread   core {}{}",
            s.control_core,
            if s.control_shares_a_shard_core() {
                format!(" (shares {})", self.core_name(s.control_core))
            } else {
                " (its own core)".to_string()
            }
        );
        let load: Vec<String> = s.load_cores.iter().map(|&c| self.core_name(c)).collect();
        println!(
            "config: load generator   {}{}; echo floor on core {}",
            load.join(", "),
            match s.layout() {
                expect::Layout::Shared =>
                    " (shared with a shard: every figure includes that contention)",
                expect::Layout::Dedicated => " (no shard there)",
            },
            list(&self.floor_cores)
        );
        println!(
            "config: rate             {} orders/s open loop over {} connections; main phase {:?}{}, group phase {:?}, each after {WARMUP:?} of warm-up",
            options.rate,
            options.connections,
            options.duration,
            if options.baseline { " then the echo floor as long" } else { "" },
            options.group_duration
        );
        println!("config: directory        {}", dir.display());
    }
}

pub(super) fn print_host(host: &host::Host, plan: &Plan) {
    let busy = |yes: bool| if yes { "BUSY" } else { "quiet" };
    let cores = host.online_cores.max(1) as f64;
    println!(
        "host: load average       {:.2} {:.2} {:.2} (1, 5, 15 min) on {} online cores: {}",
        host.load.one,
        host.load.five,
        host.load.fifteen,
        host.online_cores,
        busy(host.load.one > expect::BUSY.load_per_core * cores)
    );
    match host.steal_pct {
        Some(steal) => println!(
            "host: CPU steal          {steal:.1} % over {:?}: {}",
            host.window,
            busy(steal > expect::BUSY.steal_pct)
        ),
        None => println!("host: CPU steal          unknown (no CPU time passed)"),
    }
    println!(
        "host: runnable threads   {:.1} (mean of procs_running over {:?}, this reader not counted): {}",
        host.runnable,
        host.window,
        busy(host.runnable > expect::BUSY.runnable_per_core * cores)
    );
    let s = &plan.setup;
    let busy_threads = s.shard_cores.len() + s.load_cores.len();
    let shared = s.shared_load_cores();
    println!(
        "host: core sharing       {} shards and {} load thread busy-poll {} of {} cores{}{}",
        s.shard_cores.len(),
        s.load_cores.len(),
        {
            let mut used: Vec<usize> = s.shard_cores.iter().chain(&s.load_cores).copied().collect();
            used.sort_unstable();
            used.dedup();
            used.len()
        },
        plan.online.len(),
        if shared.is_empty() {
            String::new()
        } else {
            format!(
                "; they have to share: {} busy threads on {}",
                busy_threads,
                shared
                    .iter()
                    .map(|&c| plan.core_name(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        if s.control_shares_a_shard_core() {
            format!(
                "; control wakes every 1 ms on {}",
                plan.core_name(s.control_core)
            )
        } else {
            String::new()
        }
    );
}
