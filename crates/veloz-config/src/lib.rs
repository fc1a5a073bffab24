//! Typed configuration, read from TOML.
//!
//! One serde struct per subsystem, each `#[serde(default, deny_unknown_fields)]`, every field
//! documented. [`Config::default()`] is the embedded `config/default.toml`, so the engine runs
//! with no file at all; a test pins those defaults. [`Config::validate`] checks what serde
//! cannot (unique ids, positive tick and lot sizes, ...) and names the instrument and value at
//! fault.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin;
pub mod feed;
pub mod fix;
pub mod gateway;
pub mod instrument;
pub mod preflight;
pub mod replication;
pub mod retention;
pub mod risk;
pub mod routing;
pub mod snapshot;
pub mod symbol;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use veloz_core::Instrument;
use veloz_journal::{JournalConfig, JournalConfigError};

pub use accounts::{AccountConfig, StpConfig};
pub use admin::AdminConfig;
pub use feed::FeedConfig;
pub use fix::FixConfig;
pub use gateway::{GatewayConfig, NetworkPath};
pub use instrument::InstrumentConfig;
pub use replication::ReplicationConfig;
pub use retention::RetentionConfig;
pub use risk::{AccountLimitsConfig, AssetConfig, RiskConfig};
pub use snapshot::SnapshotConfig;
pub use symbol::{symbol_char, SYMBOL_MAX_LEN};

/// The embedded default configuration.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Errors loading or validating a configuration; each names the file, instrument or value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config {origin}: {source}")]
    Parse {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("config has no instruments: at least one [[instruments]] entry is needed")]
    NoInstruments,
    #[error("instrument id {id} is used twice (symbols {first} and {second})")]
    DuplicateInstrumentId {
        id: u32,
        first: String,
        second: String,
    },
    #[error("instrument symbol {symbol:?} is used twice")]
    DuplicateSymbol { symbol: String },
    #[error("invalid [admin]: {why}")]
    InvalidAdmin { why: String },
    #[error("replication.{field} is invalid: {why}")]
    InvalidReplication { field: &'static str, why: String },
    #[error("fix.{field} is invalid: {why}")]
    InvalidFix { field: &'static str, why: String },
    #[error("feed.{field} = {value} is invalid: {why}")]
    InvalidFeed {
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("account id {id} is used twice")]
    DuplicateAccount { id: u32 },
    #[error(
        "account {id} ({name}): token_sha256 must be 64 hex digits (the SHA-256 of the token)"
    )]
    BadTokenHash { id: u32, name: String },
    #[error("metrics.interval_ms = {value} is invalid: must be 10..=60000")]
    InvalidMetrics { value: u64 },
    #[error("log.{field} = {value} is invalid: {why}")]
    InvalidLog {
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("engine.ring_slots = {ring_slots} and engine.batch_max = {batch_max}: need ring_slots >= 2 and batch_max >= 1")]
    InvalidEngine { ring_slots: usize, batch_max: usize },
    #[error("engine.cores lists core {core} twice")]
    DuplicateCore { core: usize },
    #[error("gateway.{field} = {value} is invalid: {why}")]
    InvalidGateway {
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error(transparent)]
    Journal(#[from] JournalConfigError),
    #[error(
        "instrument {id}: symbol {symbol:?} {why}: a symbol is 1 to {SYMBOL_MAX_LEN} characters \
         out of A-Z 0-9 . _ / -"
    )]
    InvalidSymbol {
        id: u32,
        symbol: String,
        /// What is wrong: the offending character and its position, or the length.
        why: String,
    },
    #[error("instrument {symbol}: {field} = {value} is invalid: {why}")]
    InvalidInstrument {
        symbol: String,
        field: &'static str,
        value: i128,
        why: &'static str,
    },
    /// Money (`[[assets]]`, funding fields, `[risk]`; `risk`): what is wrong, naming it.
    #[error("{0}")]
    InvalidMoney(String),
}

/// The whole configuration.
///
/// Sections left out of a file take their serde defaults (empty for `instruments`, which
/// [`Config::validate`] then refuses); [`Config::default()`] is the embedded file instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Shards, cores, data directory, idle policy.
    #[serde(default)]
    pub engine: EngineConfig,
    /// Client connections.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Per-shard journals: segment size, durability.
    #[serde(default)]
    pub journal: JournalConfig,
    /// Snapshots of each shard's state: how often, how many kept.
    #[serde(default)]
    pub snapshot: SnapshotConfig,
    /// Journal segments before the oldest kept snapshot: archived (zstd), deleted or kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Metrics socket, snapshot interval, latency reports.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Log filter, format, queue and summaries of repeated events.
    #[serde(default)]
    pub log: LogConfig,
    /// The operator interface (halt, kill switch, sessions) on the metrics socket.
    #[serde(default)]
    pub admin: AdminConfig,
    /// The public market-data feeds (binary, WebSocket, book page).
    #[serde(default)]
    pub feed: FeedConfig,
    /// FIX 4.4 order entry (docs/fix.md).
    #[serde(default)]
    pub fix: FixConfig,
    /// Replication to NATS JetStream and the primary/standby lease
    /// (`journal.durability = "replicated"`, docs/replication.md).
    #[serde(default)]
    pub replication: ReplicationConfig,
    /// Money (docs/operations.md, "Money"): on iff there is at least one asset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<AssetConfig>,
    /// The fee account and pre-trade limits; only with `assets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskConfig>,
    /// The tradable instruments.
    #[serde(default)]
    pub instruments: Vec<InstrumentConfig>,
    /// Accounts allowed to log on.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
}

/// `[engine]`: where the shards run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// One shard per listed core, in this order (shard 0 on the first). Empty: every online
    /// core, read once at start from `/sys/devices/system/cpu/online`.
    pub cores: Vec<usize>,
    /// Core of the control thread. Absent: the first online core no shard uses, else the
    /// last shard core (shared on small hosts).
    pub control_core: Option<usize>,
    /// Journals, routing map and shutdown marker live here (`--data` overrides it).
    pub data_dir: PathBuf,
    /// After its last piece of work a shard keeps busy-polling for this long (microseconds)
    /// before it starts to park, so a busy engine never sleeps.
    pub spin_us: u64,
    /// Longest single park of an idle shard (microseconds): the worst extra latency the
    /// first message after an idle spell can see. Parks grow from 10 us to this.
    pub park_max_us: u64,
    /// Most commands a shard drains from its inputs per engine batch.
    pub batch_max: usize,
    /// Slots of each shard-to-shard SPSC ring (fixed-size messages of ~150 bytes). A full
    /// ring pauses the sessions feeding it (backpressure, never loss). At least 2.
    pub ring_slots: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cores: Vec::new(),
            control_core: None,
            data_dir: PathBuf::from("veloz-data"),
            spin_us: 2_000,
            park_max_us: 1_000,
            batch_max: 256,
            ring_slots: 16_384,
        }
    }
}

/// `[metrics]`: what the control thread serves and writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the plain-text metrics socket (Prometheus exposition format; `curl
    /// http://ADDR/metrics` or a raw `nc`). Port 0 picks a free port (printed at start).
    pub listen: String,
    /// Shards send the control thread a snapshot of their histograms and counters this
    /// often (milliseconds); interval logs get one line per shard and interval.
    pub interval_ms: u64,
    /// Where HdrHistogram interval logs and the shutdown latency report are written.
    /// Absent: `DATA/reports`.
    pub reports_dir: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:7701".to_string(),
            interval_ms: 1_000,
            reports_dir: None,
        }
    }
}

/// `[log]`: what the engine logs and how (see docs/operations.md).
///
/// Log events are formatted on the thread that logs them and handed to a bounded queue that
/// one writer thread drains to stderr; when the queue is full an event is dropped and
/// counted (`veloz_log_dropped_total`), so a blocked stderr never stalls a shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Which events are written: a `RUST_LOG`-style filter, a level (`error`, `warn`,
    /// `info`, `debug`, `trace`) optionally followed by per-target levels, e.g.
    /// `"info,veloz::gateway=debug"`. Targets: `veloz::gateway`, `veloz::sequencer`,
    /// `veloz::journal`, `veloz::control`, `veloz::engine`, `veloz::load`. A non-empty
    /// `RUST_LOG` environment variable replaces it.
    pub filter: String,
    /// `text`: one readable line per event (`veloz: shard 0: recovered ...`); `json`: one
    /// JSON object per line with the level, target, timestamp, thread and every field.
    /// `veloz serve --log-format` overrides it.
    pub format: LogFormat,
    /// Lines the queue to the writer thread holds; past that, events are dropped (and
    /// counted) rather than waited for.
    pub queue_lines: usize,
    /// Repeated events of one kind (refused logons, bad frames, slow consumers) are logged
    /// in full once, then summarised once per this interval (milliseconds) while they go on.
    pub summary_interval_ms: u64,
}

/// `log.format`: how each event is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".to_string(),
            format: LogFormat::Text,
            queue_lines: 4_096,
            summary_interval_ms: 10_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::from_toml_str(DEFAULT_TOML, "<embedded default>")
            .expect("the embedded default config is valid (pinned by a test)")
    }
}

impl Config {
    /// Parse and validate TOML text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            source: Box::new(e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// `path` if given, else the embedded default.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load(p),
            None => Ok(Config::default()),
        }
    }

    /// The configuration as TOML text.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Check what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.instruments.is_empty() {
            return Err(ConfigError::NoInstruments);
        }
        self.admin
            .check()
            .map_err(|why| ConfigError::InvalidAdmin { why })?;
        self.feed
            .check()
            .map_err(|(field, value, why)| ConfigError::InvalidFeed { field, value, why })?;
        (self.fix.check()).map_err(|(field, why)| ConfigError::InvalidFix { field, why })?;
        (self.replication.check())
            .map_err(|(field, why)| ConfigError::InvalidReplication { field, why })?;
        let mut symbols = BTreeSet::new();
        for (i, inst) in self.instruments.iter().enumerate() {
            if let Some(prev) = self.instruments[..i].iter().find(|p| p.id == inst.id) {
                return Err(ConfigError::DuplicateInstrumentId {
                    id: inst.id,
                    first: prev.symbol.clone(),
                    second: inst.symbol.clone(),
                });
            }
            if !symbols.insert(inst.symbol.as_str()) {
                return Err(ConfigError::DuplicateSymbol {
                    symbol: inst.symbol.clone(),
                });
            }
            inst.validate()?;
        }
        for (i, a) in self.accounts.iter().enumerate() {
            if self.accounts[..i].iter().any(|p| p.id == a.id) {
                return Err(ConfigError::DuplicateAccount { id: a.id });
            }
            if a.order_rate_per_s.unwrap_or(self.gateway.order_rate_per_s) > 0
                && a.order_burst.unwrap_or(self.gateway.order_burst) == 0
            {
                return Err(ConfigError::InvalidGateway {
                    field: "order_burst",
                    value: 0,
                    why: "must be at least 1 when order_rate_per_s is set (in [[accounts]])",
                });
            }
            if a.token_sha256.len() != 64 || !a.token_sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(ConfigError::BadTokenHash {
                    id: a.id,
                    name: a.name.clone(),
                });
            }
        }
        if self.engine.ring_slots < 2 || self.engine.batch_max == 0 {
            return Err(ConfigError::InvalidEngine {
                ring_slots: self.engine.ring_slots,
                batch_max: self.engine.batch_max,
            });
        }
        for (i, c) in self.engine.cores.iter().enumerate() {
            if self.engine.cores[..i].contains(c) {
                return Err(ConfigError::DuplicateCore { core: *c });
            }
        }
        self.journal.validate()?;
        if !(10..=60_000).contains(&self.metrics.interval_ms) {
            return Err(ConfigError::InvalidMetrics {
                value: self.metrics.interval_ms,
            });
        }
        let log_rules: [(&'static str, u64, bool, &'static str); 2] = [
            (
                "queue_lines",
                self.log.queue_lines as u64,
                (16..=1 << 20).contains(&self.log.queue_lines),
                "must be 16..=1048576",
            ),
            (
                "summary_interval_ms",
                self.log.summary_interval_ms,
                (100..=3_600_000).contains(&self.log.summary_interval_ms),
                "must be 100..=3600000",
            ),
        ];
        if let Some((field, value, _, why)) = log_rules.into_iter().find(|r| !r.2) {
            return Err(ConfigError::InvalidLog { field, value, why });
        }
        self.gateway.check()?;
        self.check_money()
    }

    /// The instruments in the matching core's form, in ascending id order.
    pub fn instruments(&self) -> Vec<Instrument> {
        let mut v: Vec<Instrument> = self
            .instruments
            .iter()
            .map(InstrumentConfig::to_instrument)
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }
}

impl Config {
    /// The account with this id.
    pub fn account(&self, id: u32) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the embedded defaults: a change here is a change operators will notice.
    #[test]
    fn defaults_are_pinned() {
        let c = Config::default();
        let ids: Vec<(u32, &str)> = c
            .instruments
            .iter()
            .map(|i| (i.id, i.symbol.as_str()))
            .collect();
        assert_eq!(ids, [(1, "AAPL"), (2, "AMZN"), (3, "MSFT"), (4, "NVDA")]);
        let aapl = &c.instruments[0];
        assert_eq!(aapl.price_scale, 4);
        assert_eq!(aapl.tick_size, 100);
        assert_eq!(aapl.lot_size, 1);
        assert_eq!(aapl.min_qty, 1);
        assert_eq!(aapl.max_qty, 1_000_000);
        assert_eq!(aapl.price_band_bps, 1_000);
        assert_eq!(aapl.reference_price, 1_900_000);
        assert_eq!(aapl.market_protection_ticks, 100);
        assert_eq!(aapl.shard, None);
        assert_eq!(c.engine, EngineConfig::default());
        assert_eq!(c.journal, JournalConfig::default());
        assert_eq!(c.snapshot, SnapshotConfig::default());
        assert_eq!(c.retention, RetentionConfig::default());
        assert_eq!(c.metrics, MetricsConfig::default());
        assert_eq!(c.log, LogConfig::default());
        assert_eq!(
            (
                c.log.filter.as_str(),
                c.log.format,
                c.log.queue_lines,
                c.log.summary_interval_ms
            ),
            ("info", LogFormat::Text, 4_096, 10_000)
        );
        assert_eq!(
            (
                c.metrics.listen.as_str(),
                c.metrics.interval_ms,
                c.metrics.reports_dir.clone()
            ),
            ("127.0.0.1:7701", 1_000, None)
        );
        assert_eq!(c.engine.cores, Vec::<usize>::new());
        assert_eq!(c.engine.control_core, None);
        assert_eq!(c.engine.data_dir, PathBuf::from("veloz-data"));
        assert_eq!(
            (
                c.engine.spin_us,
                c.engine.park_max_us,
                c.engine.batch_max,
                c.engine.ring_slots
            ),
            (2_000, 1_000, 256, 16_384)
        );
        let g = &c.gateway;
        assert_eq!(g.listen, "127.0.0.1:7700");
        assert_eq!(
            (
                g.max_frame_bytes,
                g.logon_timeout_ms,
                g.heartbeat_ms,
                g.idle_timeout_ms
            ),
            (4_096, 5_000, 1_000, 10_000)
        );
        assert_eq!((g.outbound_limit_bytes, g.max_bad_messages), (4 << 20, 10));
        assert_eq!(
            *g,
            GatewayConfig {
                listen: g.listen.clone(),
                ..GatewayConfig::default()
            }
        );
        assert_eq!((g.order_rate_per_s, g.order_burst), (0, 1_000));
        assert_eq!(
            (
                g.logon_failures_before_backoff,
                g.address_logon_failures_before_backoff,
                g.logon_backoff_initial_ms,
                g.logon_backoff_max_ms,
                g.logon_failure_window_ms,
                g.max_pending_logons_per_ip
            ),
            (5, 20, 100, 30_000, 60_000, 8)
        );
        assert!(c
            .accounts
            .iter()
            .all(|a| a.order_rate_per_s.is_none() && a.order_burst.is_none()));
        let names: Vec<(u32, &str, StpConfig)> = c
            .accounts
            .iter()
            .map(|a| (a.id, a.name.as_str(), a.stp))
            .collect();
        assert_eq!(
            names,
            [
                (1, "alice", StpConfig::Allow),
                (2, "bob", StpConfig::CancelResting)
            ]
        );
    }

    #[test]
    fn account_debug_output_hides_the_token_hash() {
        let c = Config::default();
        let shown = format!("{:?}", c.accounts[0]);
        assert!(!shown.contains(&c.accounts[0].token_sha256), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn account_and_gateway_errors_name_the_value() {
        let base = "[[instruments]]\nid = 1\nsymbol = \"X\"\n";
        let err = Config::from_toml_str(
            &format!("{base}[[accounts]]\nid = 4\nname = \"n\"\ntoken_sha256 = \"abc\"\n"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "account 4 (n): token_sha256 must be 64 hex digits (the SHA-256 of the token)"
        );
        let err = Config::from_toml_str(&format!("[gateway]\nmax_frame_bytes = 8\n{base}"), "t")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "gateway.max_frame_bytes = 8 is invalid: must be 64..=1048576"
        );
        let err = Config::from_toml_str(&format!("[engine]\ncores = [0, 1, 0]\n{base}"), "t")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "engine.cores lists core 0 twice");
    }

    #[test]
    fn throttles_read_per_account_overrides_and_check_bursts() {
        let base = "[[instruments]]\nid = 1\nsymbol = \"X\"\n";
        let hash = "a".repeat(64);
        let c = Config::from_toml_str(
            &format!(
                "[gateway]\norder_rate_per_s = 100\n{base}[[accounts]]\nid = 4\nname = \"n\"\n\
                 token_sha256 = \"{hash}\"\norder_rate_per_s = 5\norder_burst = 2\n"
            ),
            "t",
        )
        .unwrap();
        assert_eq!(
            (c.gateway.order_rate_per_s, c.gateway.order_burst),
            (100, 1_000)
        );
        assert_eq!(
            (c.accounts[0].order_rate_per_s, c.accounts[0].order_burst),
            (Some(5), Some(2))
        );
        let err = Config::from_toml_str(
            &format!("[gateway]\norder_rate_per_s = 100\norder_burst = 0\n{base}"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "gateway.order_burst = 0 is invalid: must be at least 1 when order_rate_per_s is set"
        );
        let err = Config::from_toml_str(
            &format!("[gateway]\nlogon_backoff_max_ms = 120000\n{base}"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("logon_failure_window_ms"), "{err}");
    }

    #[test]
    fn log_section_reads_and_checks_its_values() {
        let base = "[[instruments]]\nid = 1\nsymbol = \"X\"\n";
        let c = Config::from_toml_str(
            &format!("[log]\nfilter = \"warn,veloz::gateway=debug\"\nformat = \"json\"\n{base}"),
            "t",
        )
        .unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.filter, "warn,veloz::gateway=debug");
        assert_eq!(c.log.queue_lines, LogConfig::default().queue_lines);
        let err = Config::from_toml_str(&format!("[log]\nqueue_lines = 0\n{base}"), "t")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "log.queue_lines = 0 is invalid: must be 16..=1048576");
        let err = Config::from_toml_str(&format!("[log]\nlevel = \"info\"\n{base}"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `level`"), "{err}");
    }

    #[test]
    fn round_trips_through_toml() {
        let c = Config::default();
        let again = Config::from_toml_str(&c.to_toml_string(), "round trip").unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let err = Config::from_toml_str(
            "[[instruments]]\nid = 1\nsymbol = \"X\"\ntick = 5\n",
            "test.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("unknown field `tick`"), "{err}");
    }

    #[test]
    fn invalid_values_name_instrument_and_value() {
        let err = Config::from_toml_str(
            "[[instruments]]\nid = 1\nsymbol = \"X\"\ntick_size = 0\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "instrument X: tick_size = 0 is invalid: must be > 0");
        let err = Config::from_toml_str(
            "[[instruments]]\nid = 1\nsymbol = \"X\"\n[[instruments]]\nid = 1\nsymbol = \"Y\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "instrument id 1 is used twice (symbols X and Y)");
        let err = Config::from_toml_str(
            "[[instruments]]\nid = 1\nsymbol = \"X\"\nlot_size = 10\nmin_qty = 5\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("min_qty = 5"), "{err}");
        assert!(matches!(
            Config::from_toml_str("instruments = []", "t"),
            Err(ConfigError::NoInstruments)
        ));
    }
}
