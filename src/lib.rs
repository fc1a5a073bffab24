//! The `veloz` binary's library: the command line, the demo and the offline audit.
//!
//! Everything else lives in the workspace's member crates (see `docs/ARCHITECTURE.md`):
//!
//! | crate | what |
//! |---|---|
//! | `veloz_core` | instruments, order books, matching, state hash, the naive twin, workloads |
//! | `veloz_wire` | FlatBuffers protocol: generated code, the one converting module, the skimmer |
//! | `veloz_journal` | the per-shard journal: format, backends, writer, reader, recovery, replay |
//! | `veloz_config` | typed configuration, symbol routing, host preflight |
//! | `veloz_report` | latency reports: interval logs, percentile tables, plots |
//! | `veloz_engine` | the runtime: shards, rings, gateway, control, metrics |
//! | `veloz_load` | the load generator and the blocking client |
//!
//! Here: [`cli`] (the `veloz` subcommands), [`demo`] (`make run`), [`audit`] (offline
//! replay, verification, journal dump and trade tape of a data directory) and [`logging`]
//! (the process's `tracing` subscriber: filter, text or JSON lines, a non-blocking writer).
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod demo;
pub mod logging;
