//! Veloz: a thread-per-core, shared-nothing trading engine.
//!
//! The crate keeps pure modules apart from runtime modules (see `../shared/ARCHITECTURE.md`
//! and `docs/`):
//!
//! | module | what | purity |
//! |---|---|---|
//! | [`core`] | instruments, order books, matching, state hash, the naive reference twin | pure, deterministic, no unsafe |
//! | [`config`] | typed TOML configuration | pure, no unsafe |
//! | [`journal`] | per-shard append-only journal: format, backends, writer, reader, recovery | unsafe only in the mmap backend |
//! | [`wire`] | FlatBuffers protocol: generated code and the one module that converts it | pure, no unsafe outside generated code |
//! | [`workload`] | seeded command streams (exchange-core's workload, one symbol or many) for benches, the demo and load | pure, deterministic, no unsafe |
//! | [`report`] | latency reports: HdrHistogram interval logs, percentile tables (text, JSON), comparisons, plots | pure except file IO, no unsafe |
//! | [`load`] | the load generator: pinned busy-polling client threads, open/closed loop, echo baseline, latency report | runtime edge, no unsafe |
//! | [`audit`] | offline replay, verification, journal dump and trade tape of a data directory | read-only |
//! | [`demo`] | `make run`: engine + load + clean stop + verified replay + reports | runtime edge |
//! | [`cli`] | the `veloz` subcommands | runtime edge |

pub mod audit;
pub mod cli;
pub mod client;
pub mod config;
pub mod core;
pub mod demo;
pub mod journal;
pub mod load;
pub mod report;
pub mod runtime;
pub mod wire;
pub mod workload;
