//! The operator interface: HTTP requests under `/admin/` on the metrics socket, checked
//! and turned into messages for the shards; the control thread collects the shards'
//! replies and answers (docs/operations.md, "Operator controls").
//!
//! | request | what |
//! |---|---|
//! | `POST /admin/halt?symbol=S` | halt an instrument (id or symbol): new orders and replaces rejected `InstrumentHalted`, cancels allowed |
//! | `POST /admin/resume?symbol=S` | resume it |
//! | `POST /admin/disable?account=A` | kill switch: cancel the account's resting orders, refuse its new orders and replaces (`AccountDisabled`) until enabled |
//! | `POST /admin/enable?account=A` | lift the kill switch |
//! | `GET /admin/sessions` | every session: id, shard, account, peer, state, age |
//! | `POST /admin/disconnect?session=ID` | log one session out (`OperatorDisconnect`) |
//!
//! Invariants: every request carries `Authorization: Bearer TOKEN`, compared in constant
//! time with `[admin] token_sha256` (no hash configured: 403, nothing can be changed); the
//! token is never logged. Halt, resume, disable and enable are commands journaled by the
//! shards that own what they name (replay reproduces them, and they are in the state
//! hash); the answer comes once every such shard has applied and journaled it (not waiting
//! for the sync). Listing and disconnecting change nothing journaled.

use std::net::SocketAddr;

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use veloz_config::Config;
use veloz_core::{AccountId, AdminAction, AdminOutcome, SymbolId};

use super::metrics_server::response;

/// A checked admin request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// A journaled operator command.
    Act(AdminAction),
    Sessions,
    /// Log out the session with this id (as in its LogonAck).
    Disconnect(u64),
}

/// What one shard says about a session (`GET /admin/sessions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub session: u64,
    pub shard: u16,
    /// `None` before logon.
    pub account: Option<AccountId>,
    pub peer: SocketAddr,
    /// `awaiting_logon`, `active` or `closing`.
    pub state: &'static str,
    /// Milliseconds since it connected.
    pub age_ms: u64,
    /// `binary` or `fix`.
    pub protocol: &'static str,
    /// A FIX session's SenderCompID, once its Logon named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comp_id: Option<String>,
}

/// One shard's reply to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardReply {
    Acted {
        shard: u16,
        outcome: AdminOutcome,
        /// Orders the command cancelled (a kill switch).
        cancelled: u32,
    },
    Sessions(Vec<SessionInfo>),
    Disconnected {
        shard: u16,
        found: bool,
    },
    /// The shard could not take the command (its journal is unavailable): nothing changed.
    Refused {
        shard: u16,
        why: String,
    },
}

/// Check an HTTP request under `/admin/`: method, path, token, parameters. `Err` is the
/// whole response to send (401, 403, 404, 405, 400).
pub fn parse(request: &[u8], config: &Config) -> Result<Request, Vec<u8>> {
    let text = String::from_utf8_lossy(request);
    let mut lines = text.lines();
    let line = lines.next().unwrap_or("");
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Some(want) = config.admin.token_hash() else {
        return Err(plain(
            "403 Forbidden",
            "the admin interface is off: set [admin] token_sha256 (docs/operations.md)\n",
        ));
    };
    let presented = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("authorization")
            .then(|| value.trim().strip_prefix("Bearer ").map(str::trim))?
    });
    let ok = presented.is_some_and(|token| {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        hash.ct_eq(&want).into()
    });
    if !ok {
        return Err(plain(
            "401 Unauthorized",
            "missing or wrong operator token (Authorization: Bearer TOKEN)\n",
        ));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    let need_post = |r: Request| {
        if method == "POST" {
            Ok(r)
        } else {
            Err(plain(
                "405 Method Not Allowed",
                &format!("{path} needs POST\n"),
            ))
        }
    };
    match path {
        "/admin/halt" => need_post(Request::Act(AdminAction::HaltInstrument(symbol(
            param("symbol"),
            config,
        )?))),
        "/admin/resume" => need_post(Request::Act(AdminAction::ResumeInstrument(symbol(
            param("symbol"),
            config,
        )?))),
        "/admin/disable" => need_post(Request::Act(AdminAction::DisableAccount(account(
            param("account"),
            config,
        )?))),
        "/admin/enable" => need_post(Request::Act(AdminAction::EnableAccount(account(
            param("account"),
            config,
        )?))),
        "/admin/disconnect" => {
            let id = param("session")
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| plain("400 Bad Request", "need ?session=ID (a session id)\n"))?;
            need_post(Request::Disconnect(id))
        }
        "/admin/sessions" if method == "GET" => Ok(Request::Sessions),
        "/admin/sessions" => Err(plain(
            "405 Method Not Allowed",
            "/admin/sessions needs GET\n",
        )),
        other => Err(plain(
            "404 Not Found",
            &format!(
                "no admin request {other:?}: halt, resume, disable, enable, sessions, disconnect\n"
            ),
        )),
    }
}

/// An instrument by id or symbol.
fn symbol(value: Option<&str>, config: &Config) -> Result<SymbolId, Vec<u8>> {
    let v = value.ok_or_else(|| plain("400 Bad Request", "need ?symbol=ID or SYMBOL\n"))?;
    config
        .instruments
        .iter()
        .find(|i| i.symbol == v || i.id.to_string() == v)
        .map(|i| i.id)
        .ok_or_else(|| plain("404 Not Found", &format!("unknown instrument {v:?}\n")))
}

/// A configured account by id.
fn account(value: Option<&str>, config: &Config) -> Result<AccountId, Vec<u8>> {
    let v = value.ok_or_else(|| plain("400 Bad Request", "need ?account=ID\n"))?;
    v.parse::<AccountId>()
        .ok()
        .filter(|id| config.accounts.iter().any(|a| a.id == *id))
        .ok_or_else(|| plain("404 Not Found", &format!("unknown account {v:?}\n")))
}

/// The shards a request goes to.
pub fn shards_for(
    request: &Request,
    shard_of: impl Fn(SymbolId) -> Option<usize>,
    n: usize,
) -> Vec<usize> {
    match *request {
        Request::Act(AdminAction::HaltInstrument(s) | AdminAction::ResumeInstrument(s)) => {
            shard_of(s).into_iter().collect()
        }
        Request::Act(_) | Request::Sessions => (0..n).collect(),
        Request::Disconnect(id) => {
            let shard = (id >> 48) as usize;
            if shard < n {
                vec![shard]
            } else {
                Vec::new()
            }
        }
    }
}

/// The answer once every shard has replied.
pub fn answer(request: &Request, replies: &[ShardReply]) -> Vec<u8> {
    match request {
        Request::Act(_)
            if replies
                .iter()
                .any(|r| matches!(r, ShardReply::Refused { .. })) =>
        {
            let why: Vec<String> = replies
                .iter()
                .filter_map(|r| match r {
                    ShardReply::Refused { shard, why } => Some(format!("shard {shard}: {why}")),
                    _ => None,
                })
                .collect();
            plain(
                "503 Service Unavailable",
                &format!("not applied everywhere: {}\n", why.join("; ")),
            )
        }
        Request::Act(action) => {
            let shards: Vec<_> = replies
                .iter()
                .filter_map(|r| match r {
                    ShardReply::Acted {
                        shard,
                        outcome,
                        cancelled,
                    } => Some(serde_json::json!({
                        "shard": shard,
                        "outcome": outcome.name(),
                        "cancelled": cancelled,
                    })),
                    _ => None,
                })
                .collect();
            json(
                "200 OK",
                &serde_json::json!({
                    "action": action.name(),
                    "symbol": action.symbol(),
                    "account": action.account(),
                    "shards": shards,
                }),
            )
        }
        Request::Sessions => {
            let mut all: Vec<&SessionInfo> = replies
                .iter()
                .filter_map(|r| match r {
                    ShardReply::Sessions(s) => Some(s.iter()),
                    _ => None,
                })
                .flatten()
                .collect();
            all.sort_by_key(|s| s.session);
            json("200 OK", &serde_json::json!({ "sessions": all }))
        }
        Request::Disconnect(id) => {
            if replies
                .iter()
                .any(|r| matches!(r, ShardReply::Disconnected { found: true, .. }))
            {
                json("200 OK", &serde_json::json!({ "disconnected": id }))
            } else {
                plain("404 Not Found", &format!("no session {id}\n"))
            }
        }
    }
}

/// A shard did not answer in time.
pub fn timed_out(shard: usize) -> Vec<u8> {
    plain(
        "504 Gateway Timeout",
        &format!(
            "shard {shard} did not answer within 5 s (is its journal unavailable? see the log)\n"
        ),
    )
}

fn plain(status: &str, body: &str) -> Vec<u8> {
    response(status, "text/plain; charset=utf-8", body)
}

fn json(status: &str, value: &serde_json::Value) -> Vec<u8> {
    response(status, "application/json", &format!("{value}\n"))
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
