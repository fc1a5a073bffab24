//! Which shard owns which instrument: a pure function of the configuration, recorded in the
//! data directory at first start and checked at every later start.
//!
//! Rule: an instrument with `shard = N` in the config goes to shard N; every other one goes
//! to `(its position among the instruments sorted by id) % shard count`. The map is written
//! to `DATA/routing.json`; a later start whose config would move a recorded instrument to
//! another shard (or changes the shard count) is refused with an error naming the instrument,
//! because that instrument's journal lives in its old shard's directory. Instruments new to
//! the config are added to the record. Re-sharding is an explicit tool, never an accident.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Config;
use veloz_core::SymbolId;

/// File name of the recorded map inside the data directory.
pub const ROUTING_FILE: &str = "routing.json";

/// Routing errors; each names the instrument, shard or file.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("instrument {symbol} (id {id}) is pinned to shard {shard}, but only {shards} shards are configured (shards 0..{shards})")]
    NoSuchShard {
        symbol: String,
        id: SymbolId,
        shard: usize,
        shards: usize,
    },
    #[error("{path}: the data directory was written by {recorded} shards, the config now has {configured}; re-sharding is not automatic: start with the original cores, or move the data directory aside")]
    ShardCountChanged {
        path: String,
        recorded: usize,
        configured: usize,
    },
    #[error("{path}: instrument {symbol} (id {id}) is recorded on shard {recorded} but the config would route it to shard {configured}; pin it with `shard = {recorded}` in its [[instruments]] entry, or re-shard explicitly")]
    Moved {
        path: String,
        symbol: String,
        id: SymbolId,
        recorded: usize,
        configured: usize,
    },
    #[error("cannot read or write the routing record {path}: {detail}")]
    Io { path: String, detail: String },
}

/// Instrument id -> shard, plus the shard count it was made for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    pub shards: usize,
    /// Instrument id -> (symbol, shard), ascending by id.
    pub instruments: BTreeMap<SymbolId, (String, usize)>,
}

impl Routing {
    /// Route the config's instruments over `shards` shards.
    pub fn from_config(config: &Config, shards: usize) -> Result<Routing, RoutingError> {
        assert!(shards > 0, "at least one shard");
        let mut sorted: Vec<_> = config.instruments.iter().collect();
        sorted.sort_by_key(|i| i.id);
        let mut instruments = BTreeMap::new();
        for (pos, inst) in sorted.into_iter().enumerate() {
            let shard = inst.shard.unwrap_or(pos % shards);
            if shard >= shards {
                return Err(RoutingError::NoSuchShard {
                    symbol: inst.symbol.clone(),
                    id: inst.id,
                    shard,
                    shards,
                });
            }
            instruments.insert(inst.id, (inst.symbol.clone(), shard));
        }
        Ok(Routing {
            shards,
            instruments,
        })
    }

    /// The shard owning `symbol`.
    pub fn shard_of(&self, symbol: SymbolId) -> Option<usize> {
        self.instruments.get(&symbol).map(|(_, s)| *s)
    }

    /// Instrument ids owned by `shard`, ascending.
    pub fn symbols_of(&self, shard: usize) -> Vec<SymbolId> {
        self.instruments
            .iter()
            .filter(|(_, (_, s))| *s == shard)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Compare with the record in `data_dir` (refusing moves), then write the merged record.
    pub fn check_and_record(&self, data_dir: &Path) -> Result<(), RoutingError> {
        let path = data_dir.join(ROUTING_FILE);
        let shown = path.display().to_string();
        let io = |e: &dyn std::fmt::Display| RoutingError::Io {
            path: shown.clone(),
            detail: e.to_string(),
        };
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| io(&e))?;
            let recorded: Routing = serde_json::from_str(&text).map_err(|e| io(&e))?;
            if recorded.shards != self.shards {
                return Err(RoutingError::ShardCountChanged {
                    path: shown,
                    recorded: recorded.shards,
                    configured: self.shards,
                });
            }
            for (id, (symbol, was)) in &recorded.instruments {
                if let Some(now) = self.shard_of(*id) {
                    if now != *was {
                        return Err(RoutingError::Moved {
                            path: shown,
                            symbol: symbol.clone(),
                            id: *id,
                            recorded: *was,
                            configured: now,
                        });
                    }
                }
            }
            // Keep instruments that left the config: their journals still exist.
            let mut merged = recorded;
            for (id, entry) in &self.instruments {
                merged.instruments.insert(*id, entry.clone());
            }
            return write_atomically(&path, &merged).map_err(|e| io(&e));
        }
        std::fs::create_dir_all(data_dir).map_err(|e| io(&e))?;
        write_atomically(&path, self).map_err(|e| io(&e))
    }
}

fn write_atomically(path: &Path, routing: &Routing) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(routing).expect("routing serialises");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let mut text = String::new();
        for (id, sym) in [(5, "E"), (1, "A"), (3, "C"), (2, "B")] {
            text.push_str(&format!("[[instruments]]\nid = {id}\nsymbol = \"{sym}\"\n"));
            if sym == "C" {
                text.push_str(extra);
            }
        }
        Config::from_toml_str(&text, "test").unwrap()
    }

    #[test]
    fn round_robin_by_sorted_id_with_pins() {
        let r = Routing::from_config(&config(""), 2).unwrap();
        assert_eq!(r.symbols_of(0), [1, 3]);
        assert_eq!(r.symbols_of(1), [2, 5]);
        let r = Routing::from_config(&config("shard = 1\n"), 2).unwrap();
        assert_eq!(r.shard_of(3), Some(1));
        let err = Routing::from_config(&config("shard = 2\n"), 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "instrument C (id 3) is pinned to shard 2, but only 2 shards are configured (shards 0..2)"
        );
        // One shard owns everything.
        assert_eq!(
            Routing::from_config(&config(""), 1).unwrap().symbols_of(0),
            [1, 2, 3, 5]
        );
    }

    #[test]
    fn a_restart_that_would_move_an_instrument_is_refused() {
        let dir = std::env::temp_dir().join(format!("veloz-routing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Routing::from_config(&config(""), 2).unwrap();
        first.check_and_record(&dir).unwrap();
        // Same config: fine, and idempotent.
        first.check_and_record(&dir).unwrap();
        let moved = Routing::from_config(&config("shard = 1\n"), 2).unwrap();
        let err = moved.check_and_record(&dir).unwrap_err().to_string();
        assert!(
            err.ends_with("instrument C (id 3) is recorded on shard 0 but the config would route it to shard 1; pin it with `shard = 0` in its [[instruments]] entry, or re-shard explicitly"),
            "{err}"
        );
        let err = Routing::from_config(&config(""), 3)
            .unwrap()
            .check_and_record(&dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("written by 2 shards, the config now has 3"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
