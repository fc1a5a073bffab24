//! Orders over several engines, routed by instrument: the engine map and a client [`Router`]
//! (docs/scale-out.md has the plan this serves).
//!
//! # The engine map
//! A TOML file (`config/engines.example.toml`) with one `[[engines]]` table per engine:
//! - `name`: the engine's name; its JetStream streams (`VELOZ_<name>_<shard>`) and its lease
//!   key are named after it, so it is ASCII letters, digits, `-` and `_` only;
//! - `addresses`: its order-entry `HOST:PORT`s, primary first, then standbys;
//! - `instruments`: the symbols it owns.
//!
//! [`EngineMap::from_toml`] refuses a map where an instrument is owned twice (by two engines,
//! or listed twice by one), an engine has no address, two engines share a name or an
//! address, or a name, address or symbol is malformed; every error names the engine,
//! instrument or address at fault. Unknown keys are refused.
//!
//! # Instrument ids
//! The map names instruments by symbol; the wire protocol names them by id, which each
//! engine's own configuration assigns. The router learns the ids from the LogonAck of its
//! first logon to each engine (it lists every instrument the engine has, id and symbol), so
//! a client needs the map and nothing else. An engine that does not announce every symbol
//! the map gives it is refused ([`RouteError::NotAnnounced`]): the map and that engine's
//! configuration disagree, and no order goes there until they agree. An engine may announce
//! more than the map gives it (an instrument being moved away stays configured, halted, on
//! its old engine); the map alone decides where orders go.
//!
//! # Sessions
//! One [`Client`] per engine, logged on at first use (a send for one of its instruments, or
//! [`Router::client`]) to the engine's first address. The logon is the one
//! [`Client::logon`] sends, written by hand here because the router needs the LogonAck's
//! instrument list, which [`Client::logon`] does not return; so [`Client::streams`] reads 0
//! on the router's clients. Failing over to a standby's address is not done here: a
//! session that fails is the caller's to see (the error names the engine and address).
//!
//! # Invariants
//! - an order for an instrument no engine owns is never sent anywhere
//!   ([`RouteError::Unowned`] names the symbol);
//! - an order is sent only to the engine the map names for its symbol, with that engine's
//!   id for the symbol (whatever id the command carried);
//! - the token is never printed ([`Credential`]'s Debug redacts it; errors name the account).
//!
//! # Limits
//! The router moves no state between engines: an account's positions, limits, resting
//! orders and report streams are per engine, and there is no atomicity across engines
//! (docs/scale-out.md, "What does not work across engines").

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use veloz_core::{AccountId, Command, SymbolId};
use veloz_wire::FrameEncoder;

use crate::client::{Client, ClientError, Received};
use crate::Credential;

/// How long a logon waits for the LogonAck.
pub const LOGON_WAIT: Duration = Duration::from_secs(5);

/// Longest engine name: it is part of JetStream stream names and a KV key.
pub const MAX_NAME_LEN: usize = 64;

/// One engine of the map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineEntry {
    /// The engine's name: its streams (`VELOZ_<name>_<shard>`) and lease key.
    pub name: String,
    /// Order-entry `HOST:PORT`s, primary first, then standbys.
    pub addresses: Vec<String>,
    /// Symbols it owns.
    pub instruments: Vec<String>,
}

impl EngineEntry {
    /// The primary's address (a validated entry has at least one).
    pub fn primary(&self) -> &str {
        &self.addresses[0]
    }

    /// The standbys' addresses, in order.
    pub fn standbys(&self) -> &[String] {
        &self.addresses[1..]
    }

    /// Does it own `symbol`?
    pub fn owns(&self, symbol: &str) -> bool {
        self.instruments.iter().any(|s| s == symbol)
    }
}

/// The file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    #[serde(default)]
    engines: Vec<EngineEntry>,
}

/// A map that fails validation, naming what is at fault.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("engine map {path}: {source}")]
    File {
        path: String,
        #[source]
        source: Box<MapError>,
    },
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error("not an engine map: {0}")]
    Parse(String),
    #[error("no [[engines]] entry")]
    NoEngines,
    #[error("engine name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
    #[error("engine {name} is listed twice")]
    DuplicateEngine { name: String },
    #[error("engine {engine} has no address (addresses = [\"HOST:PORT\", ...], primary first)")]
    NoAddress { engine: String },
    #[error("engine {engine}: address {address:?} is not HOST:PORT with a port from 1 to 65535")]
    BadAddress { engine: String, address: String },
    #[error("address {address} is listed for engine {first} and for engine {second}")]
    SharedAddress {
        address: String,
        first: String,
        second: String,
    },
    #[error("engine {engine}: an instrument symbol is empty or has spaces around it: {symbol:?}")]
    BadSymbol { engine: String, symbol: String },
    #[error("engine {engine} lists instrument {symbol} twice")]
    RepeatedInstrument { engine: String, symbol: String },
    #[error("instrument {symbol} is owned by two engines: {first} and {second}")]
    DuplicateInstrument {
        symbol: String,
        first: String,
        second: String,
    },
}

/// Which engine owns which instruments, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineMap {
    engines: Vec<EngineEntry>,
    /// Symbol -> index in `engines`.
    owners: BTreeMap<String, usize>,
}

impl EngineMap {
    /// Read and validate the map at `path`; errors name the file.
    pub fn load(path: &Path) -> Result<EngineMap, MapError> {
        let file = |source| MapError::File {
            path: path.display().to_string(),
            source: Box::new(source),
        };
        let text = std::fs::read_to_string(path).map_err(|e| file(MapError::Read(e)))?;
        EngineMap::from_toml(&text).map_err(file)
    }

    /// Parse and validate a map.
    pub fn from_toml(text: &str) -> Result<EngineMap, MapError> {
        let parsed: MapFile = toml::from_str(text).map_err(|e| MapError::Parse(e.to_string()))?;
        EngineMap::new(parsed.engines)
    }

    /// Validate `engines` as a map.
    pub fn new(engines: Vec<EngineEntry>) -> Result<EngineMap, MapError> {
        if engines.is_empty() {
            return Err(MapError::NoEngines);
        }
        let mut names: BTreeMap<&str, ()> = BTreeMap::new();
        let mut addresses: BTreeMap<&str, &str> = BTreeMap::new();
        let mut owners: BTreeMap<String, usize> = BTreeMap::new();
        for (index, e) in engines.iter().enumerate() {
            check_name(&e.name)?;
            if names.insert(&e.name, ()).is_some() {
                return Err(MapError::DuplicateEngine {
                    name: e.name.clone(),
                });
            }
            if e.addresses.is_empty() {
                return Err(MapError::NoAddress {
                    engine: e.name.clone(),
                });
            }
            for address in &e.addresses {
                if !is_host_port(address) {
                    return Err(MapError::BadAddress {
                        engine: e.name.clone(),
                        address: address.clone(),
                    });
                }
                if let Some(first) = addresses.insert(address, &e.name) {
                    return Err(MapError::SharedAddress {
                        address: address.clone(),
                        first: first.to_string(),
                        second: e.name.clone(),
                    });
                }
            }
            for symbol in &e.instruments {
                if symbol.is_empty() || symbol.trim() != symbol {
                    return Err(MapError::BadSymbol {
                        engine: e.name.clone(),
                        symbol: symbol.clone(),
                    });
                }
                if let Some(&other) = owners.get(symbol) {
                    return Err(if other == index {
                        MapError::RepeatedInstrument {
                            engine: e.name.clone(),
                            symbol: symbol.clone(),
                        }
                    } else {
                        MapError::DuplicateInstrument {
                            symbol: symbol.clone(),
                            first: engines[other].name.clone(),
                            second: e.name.clone(),
                        }
                    });
                }
                owners.insert(symbol.clone(), index);
            }
        }
        Ok(EngineMap { engines, owners })
    }

    /// The engines, in the file's order.
    pub fn engines(&self) -> &[EngineEntry] {
        &self.engines
    }

    /// The engine named `name`.
    pub fn engine(&self, name: &str) -> Option<&EngineEntry> {
        self.engines.iter().find(|e| e.name == name)
    }

    /// The engine owning `symbol`.
    pub fn engine_of(&self, symbol: &str) -> Option<&EngineEntry> {
        self.owners.get(symbol).map(|&i| &self.engines[i])
    }

    /// Every owned symbol with its engine's name, ascending by symbol.
    pub fn instruments(&self) -> impl Iterator<Item = (&str, &str)> {
        self.owners
            .iter()
            .map(|(s, &i)| (s.as_str(), self.engines[i].name.as_str()))
    }

    /// The map as TOML (what [`EngineMap::from_toml`] reads back).
    pub fn to_toml_string(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            engines: &'a [EngineEntry],
        }
        toml::to_string(&Out {
            engines: &self.engines,
        })
        .expect("an engine map serialises")
    }
}

fn check_name(name: &str) -> Result<(), MapError> {
    let bad = |why| {
        Err(MapError::BadName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad(
            "only ASCII letters, digits, '-' and '_' (it names JetStream streams and a lease key)",
        );
    }
    Ok(())
}

/// `HOST:PORT` (`[v6]:PORT` too) with a port from 1 to 65535; the host is not resolved.
fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && !host.contains(char::is_whitespace)
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// Why an order was not routed or a session not opened, naming the symbol, engine and
/// address (never the token).
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("no engine in the map owns instrument {symbol}: the order was not sent")]
    Unowned { symbol: String },
    #[error("no engine named {name} in the map")]
    NoSuchEngine { name: String },
    #[error("engine {engine} at {address}: logon of account {account} failed: {source}")]
    Logon {
        engine: String,
        address: String,
        account: AccountId,
        #[source]
        source: Box<ClientError>,
    },
    #[error("engine {engine} at {address}: the map gives it instrument {symbol}, but the engine does not announce it (it announces: {announced}); fix the map or the engine's configuration")]
    NotAnnounced {
        engine: String,
        address: String,
        symbol: String,
        announced: String,
    },
    #[error("engine {engine} at {address}: {source}")]
    Send {
        engine: String,
        address: String,
        #[source]
        source: Box<ClientError>,
    },
    #[error("an operator command is not an order: the router sends member orders only")]
    NotAnOrder,
}

/// One engine's session and what its LogonAck said.
#[derive(Debug)]
struct Session {
    client: Client,
    session_id: u64,
    /// Every instrument the engine announced: symbol -> id and back.
    ids: BTreeMap<String, SymbolId>,
    names: BTreeMap<SymbolId, String>,
}

/// One account's sessions to the engines of a map, and the routing of its orders.
#[derive(Debug)]
pub struct Router {
    map: EngineMap,
    credential: Credential,
    /// Index as in `map.engines()`; `None` until first use.
    sessions: Vec<Option<Session>>,
}

impl Router {
    /// A router for `credential`'s orders; no connection is made yet.
    pub fn new(map: EngineMap, credential: Credential) -> Router {
        let sessions = map.engines().iter().map(|_| None).collect();
        Router {
            map,
            credential,
            sessions,
        }
    }

    pub fn map(&self) -> &EngineMap {
        &self.map
    }

    pub fn account(&self) -> AccountId {
        self.credential.account
    }

    /// The engine owning `symbol`, or [`RouteError::Unowned`] naming it (no IO).
    pub fn route(&self, symbol: &str) -> Result<&EngineEntry, RouteError> {
        self.map
            .engine_of(symbol)
            .ok_or_else(|| RouteError::Unowned {
                symbol: symbol.to_string(),
            })
    }

    /// Is a session to engine `name` open?
    pub fn is_connected(&self, name: &str) -> bool {
        self.index(name).is_ok_and(|i| self.sessions[i].is_some())
    }

    /// The session id of the session to engine `name`, once open.
    pub fn session_id(&self, name: &str) -> Option<u64> {
        let i = self.index(name).ok()?;
        self.sessions[i].as_ref().map(|s| s.session_id)
    }

    /// The session to engine `name` (logged on now if it was not), to read its reports.
    pub fn client(&mut self, name: &str) -> Result<&mut Client, RouteError> {
        let i = self.index(name)?;
        Ok(&mut self.session(i)?.client)
    }

    /// The id engine `name` gives `symbol`, once its session is open (any symbol it
    /// announced, owned or not).
    pub fn id_on(&self, name: &str, symbol: &str) -> Option<SymbolId> {
        let i = self.index(name).ok()?;
        self.sessions[i].as_ref()?.ids.get(symbol).copied()
    }

    /// The symbol of `id` on engine `name` (to read its reports), once its session is open.
    pub fn symbol_on(&self, name: &str, id: SymbolId) -> Option<&str> {
        let i = self.index(name).ok()?;
        self.sessions[i]
            .as_ref()?
            .names
            .get(&id)
            .map(String::as_str)
    }

    /// The owning engine's id for `symbol`, opening its session if needed.
    pub fn symbol_id(&mut self, symbol: &str) -> Result<SymbolId, RouteError> {
        let i = self.owner(symbol)?;
        Ok(self.session(i)?.ids[symbol])
    }

    /// Send `command` to the engine owning `symbol`, with that engine's id for it (the
    /// command's own symbol id is replaced; a mass cancel is narrowed to `symbol`). Returns
    /// the engine's name. An unowned symbol is refused before anything is sent.
    pub fn send(&mut self, symbol: &str, command: &Command) -> Result<&str, RouteError> {
        let i = self.owner(symbol)?;
        let id = self.session(i)?.ids[symbol];
        let routed = with_symbol(command, id)?;
        self.send_on(i, &routed)?;
        Ok(&self.map.engines[i].name)
    }

    /// Send an account-wide mass cancel (every instrument) to every engine of the map,
    /// logging on where needed; `client_order_id` is echoed by each. Returns the engines'
    /// names in map order.
    pub fn mass_cancel_everywhere(
        &mut self,
        client_order_id: u64,
    ) -> Result<Vec<String>, RouteError> {
        let command = Command::MassCancel(veloz_core::MassCancel::requested(
            self.credential.account,
            client_order_id,
            None,
        ));
        let mut out = Vec::new();
        for i in 0..self.sessions.len() {
            self.send_on(i, &command)?;
            out.push(self.map.engines[i].name.clone());
        }
        Ok(out)
    }

    /// Send `command` as it is on engine `i`'s session, logging on first where needed.
    fn send_on(&mut self, i: usize, command: &Command) -> Result<(), RouteError> {
        self.session(i)?;
        let engine = &self.map.engines[i];
        let session = self.sessions[i].as_mut().expect("opened above");
        session
            .client
            .send(command)
            .map_err(|source| RouteError::Send {
                engine: engine.name.clone(),
                address: engine.primary().to_string(),
                source: Box::new(source),
            })
    }

    fn index(&self, name: &str) -> Result<usize, RouteError> {
        self.map
            .engines()
            .iter()
            .position(|e| e.name == name)
            .ok_or_else(|| RouteError::NoSuchEngine {
                name: name.to_string(),
            })
    }

    fn owner(&self, symbol: &str) -> Result<usize, RouteError> {
        self.map
            .owners
            .get(symbol)
            .copied()
            .ok_or_else(|| RouteError::Unowned {
                symbol: symbol.to_string(),
            })
    }

    /// The open session of engine `i`, logging on first when there is none.
    fn session(&mut self, i: usize) -> Result<&mut Session, RouteError> {
        if self.sessions[i].is_none() {
            let opened = logon(&self.map.engines()[i], &self.credential)?;
            self.sessions[i] = Some(opened);
        }
        Ok(self.sessions[i].as_mut().expect("opened above"))
    }
}

/// Log on to `engine`'s primary and check it announces every instrument the map gives it.
fn logon(engine: &EngineEntry, credential: &Credential) -> Result<Session, RouteError> {
    let address = engine.primary();
    let failed = |source| RouteError::Logon {
        engine: engine.name.clone(),
        address: address.to_string(),
        account: credential.account,
        source: Box::new(source),
    };
    let mut client = Client::connect(address).map_err(failed)?;
    let frame = FrameEncoder::new()
        .logon(credential.account, credential.token())
        .to_vec();
    client.send_raw(&frame).map_err(failed)?;
    let (session_id, instruments) =
        match client.recv_within(LOGON_WAIT, "LogonAck").map_err(failed)? {
            Received::LogonAck {
                session_id,
                instruments,
                ..
            } => (session_id, instruments),
            Received::Logout { reason, text } => {
                return Err(failed(ClientError::LogonRefused {
                    peer: address.to_string(),
                    reason,
                    text,
                }))
            }
            _ => {
                return Err(failed(ClientError::Timeout {
                    peer: address.to_string(),
                    waited: LOGON_WAIT,
                    what: "LogonAck (something else came first)",
                }))
            }
        };
    let ids: BTreeMap<String, SymbolId> =
        instruments.iter().map(|(id, s)| (s.clone(), *id)).collect();
    if let Some(missing) = engine.instruments.iter().find(|s| !ids.contains_key(*s)) {
        return Err(RouteError::NotAnnounced {
            engine: engine.name.clone(),
            address: address.to_string(),
            symbol: missing.clone(),
            announced: instruments
                .iter()
                .map(|(id, s)| format!("{s} ({id})"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let names = instruments.into_iter().collect();
    Ok(Session {
        client,
        session_id,
        ids,
        names,
    })
}

/// `command` with its instrument set to `id`.
fn with_symbol(command: &Command, id: SymbolId) -> Result<Command, RouteError> {
    let mut c = *command;
    match &mut c {
        Command::New(o) => o.symbol = id,
        Command::Cancel(o) => o.symbol = id,
        Command::Replace(o) => o.symbol = id,
        Command::MassCancel(o) => o.symbol = Some(id),
        Command::Admin(_) => return Err(RouteError::NotAnOrder),
    }
    Ok(c)
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
