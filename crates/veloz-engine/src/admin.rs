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
//! | `POST /admin/deposit?account=A&asset=X&amount=N[&shard=N\|&symbol=S]` | credit `N` smallest units of asset `X` (name or id) to the account's available balance on ONE shard |
//! | `POST /admin/withdraw?account=A&asset=X&amount=N[&shard=N\|&symbol=S]` | debit it; refused (`insufficient_funds`) when less is available there |
//! | `GET /admin/balances?account=A` | the account's balances on every shard, and their total per asset |
//!
//! Money (docs/operations.md, "Money"; only with `[[assets]]`, else 409): balances are
//! per-shard slices, so a deposit or withdrawal goes to exactly one shard, named by
//! `shard=N` or by `symbol=S` (the shard that trades S); with one shard neither is needed,
//! with more one is required (400). Its answer is JSON naming the shard and the outcome,
//! with the status following it: 200 `applied`, 409 `insufficient_funds`, 404
//! `unknown_asset`, 400 `invalid_amount`. The account is a configured `[[accounts]]` id or
//! `[risk] fee_account` (which usually never logs on); an amount is a positive integer
//! count of the asset's smallest units.
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
use veloz_core::risk::AssetId;
use veloz_core::{AccountId, AdminAction, AdminOutcome, SymbolId};

use super::metrics_server::response;

/// A checked admin request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// A journaled operator command for the shards it concerns (halt, resume, disable,
    /// enable).
    Act(AdminAction),
    /// A deposit or withdrawal: journaled by exactly one shard.
    Money {
        action: AdminAction,
        to: MoneyShard,
    },
    Sessions,
    /// An account's balances on every shard.
    Balances(AccountId),
    /// Log out the session with this id (as in its LogonAck).
    Disconnect(u64),
}

/// The one shard a deposit or withdrawal goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoneyShard {
    /// `shard=N`.
    Shard(usize),
    /// `symbol=S`: the shard that trades S.
    Symbol(SymbolId),
    /// Neither: only valid on a one-shard engine.
    Only,
}

/// One asset of an account on one shard (`GET /admin/balances`), in smallest units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetBalance {
    pub asset: String,
    pub id: AssetId,
    pub available: u64,
    pub held: u64,
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
    /// An account's balances of every configured asset on this shard, ascending by id.
    Balances {
        shard: u16,
        balances: Vec<AssetBalance>,
    },
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
        "/admin/deposit" | "/admin/withdraw" => {
            let (account, asset, amount, to) = money_params(&param, config)?;
            let code = if path == "/admin/deposit" { 5 } else { 6 };
            let action = AdminAction::money(code, account, asset, amount)
                .expect("5 and 6 are the deposit and withdrawal codes");
            need_post(Request::Money { action, to })
        }
        "/admin/balances" if method == "GET" => {
            money_on(config)?;
            Ok(Request::Balances(money_account(param("account"), config)?))
        }
        "/admin/balances" => Err(plain(
            "405 Method Not Allowed",
            "/admin/balances needs GET\n",
        )),
        "/admin/sessions" if method == "GET" => Ok(Request::Sessions),
        "/admin/sessions" => Err(plain(
            "405 Method Not Allowed",
            "/admin/sessions needs GET\n",
        )),
        other => Err(plain(
            "404 Not Found",
            &format!(
                "no admin request {other:?}: halt, resume, disable, enable, sessions, disconnect, \
                 deposit, withdraw, balances\n"
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

/// 409 unless money is on.
fn money_on(config: &Config) -> Result<(), Vec<u8>> {
    if config.money() {
        Ok(())
    } else {
        Err(plain(
            "409 Conflict",
            "money is off: no [[assets]] are configured (docs/operations.md, \"Money\")\n",
        ))
    }
}

/// An account that may hold money: a configured account or the fee account.
fn money_account(value: Option<&str>, config: &Config) -> Result<AccountId, Vec<u8>> {
    let v = value.ok_or_else(|| plain("400 Bad Request", "need ?account=ID\n"))?;
    let fee = config.risk.as_ref().and_then(|r| r.fee_account);
    v.parse::<AccountId>()
        .ok()
        .filter(|id| Some(*id) == fee || config.accounts.iter().any(|a| a.id == *id))
        .ok_or_else(|| {
            plain(
                "404 Not Found",
                &format!("unknown account {v:?}: neither an [[accounts]] id nor the fee account\n"),
            )
        })
}

/// A deposit's or withdrawal's account, asset, amount and shard.
fn money_params<'a>(
    param: &impl Fn(&str) -> Option<&'a str>,
    config: &Config,
) -> Result<(AccountId, AssetId, u64, MoneyShard), Vec<u8>> {
    money_on(config)?;
    let account = money_account(param("account"), config)?;
    let v = param("asset").ok_or_else(|| plain("400 Bad Request", "need &asset=NAME or ID\n"))?;
    let asset = config
        .asset(v)
        .ok_or_else(|| plain("404 Not Found", &format!("unknown asset {v:?}\n")))?
        .id;
    let v = param("amount").unwrap_or("");
    let amount = v.parse::<u64>().ok().filter(|a| *a > 0).ok_or_else(|| {
        plain(
            "400 Bad Request",
            &format!(
                "amount {v:?} is invalid: need &amount=N, a positive integer count of the \
                 asset's smallest units\n"
            ),
        )
    })?;
    let to = match (param("shard"), param("symbol")) {
        (Some(_), Some(_)) => {
            return Err(plain(
                "400 Bad Request",
                "name the shard once: &shard=N or &symbol=S, not both\n",
            ))
        }
        (Some(v), None) => MoneyShard::Shard(v.parse::<usize>().map_err(|_| {
            plain(
                "400 Bad Request",
                &format!("shard {v:?} is not a shard number\n"),
            )
        })?),
        (None, Some(v)) => MoneyShard::Symbol(symbol(Some(v), config)?),
        (None, None) => MoneyShard::Only,
    };
    Ok((account, asset, amount, to))
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
        Request::Act(_) | Request::Sessions | Request::Balances(_) => (0..n).collect(),
        // Exactly one shard: a deposit on every shard would multiply the money.
        Request::Money { to, .. } => match to {
            MoneyShard::Shard(s) => (s < n).then_some(s).into_iter().collect(),
            MoneyShard::Symbol(s) => shard_of(s).into_iter().collect(),
            MoneyShard::Only => (n == 1).then_some(0).into_iter().collect(),
        },
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

/// The answer once every shard has replied (names of assets from `config`).
pub fn answer(request: &Request, replies: &[ShardReply], config: &Config) -> Vec<u8> {
    match request {
        Request::Act(_) | Request::Money { .. }
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
        Request::Money { action, to } => money_answer(action, *to, replies, config),
        Request::Balances(account) => balances_answer(*account, replies),
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

/// A deposit's or withdrawal's answer: its one shard and outcome, the status following it.
fn money_answer(
    action: &AdminAction,
    to: MoneyShard,
    replies: &[ShardReply],
    config: &Config,
) -> Vec<u8> {
    let acted = replies.iter().find_map(|r| match r {
        ShardReply::Acted { shard, outcome, .. } => Some((*shard, *outcome)),
        _ => None,
    });
    let Some((shard, outcome)) = acted else {
        return match to {
            MoneyShard::Shard(s) => {
                plain("404 Not Found", &format!("no shard {s} in this engine\n"))
            }
            _ => plain(
                "400 Bad Request",
                "this engine has more than one shard and balances are kept per shard: name \
                 the one with &shard=N or &symbol=S (docs/operations.md, \"Money\")\n",
            ),
        };
    };
    let (asset, amount) = action.money_moved().unwrap_or_default();
    let name = config
        .assets
        .iter()
        .find(|a| a.id == asset)
        .map_or(String::new(), |a| a.name.clone());
    let status = match outcome {
        AdminOutcome::Applied => "200 OK",
        AdminOutcome::InsufficientFunds => "409 Conflict",
        AdminOutcome::UnknownAsset => "404 Not Found",
        _ => "400 Bad Request",
    };
    json(
        status,
        &serde_json::json!({
            "action": action.name(),
            "account": action.account(),
            "asset": name,
            "asset_id": asset,
            "amount": amount,
            "shard": shard,
            "outcome": outcome.name(),
        }),
    )
}

/// Per asset, the total over shards (u128: slices of u64 may add up past it).
#[derive(Debug, Serialize)]
struct AssetTotal<'a> {
    asset: &'a str,
    id: AssetId,
    available: u128,
    held: u128,
}

#[derive(Debug, Serialize)]
struct ShardBalances<'a> {
    shard: u16,
    balances: &'a [AssetBalance],
}

/// `GET /admin/balances`: each shard's slice, ascending, and the totals.
fn balances_answer(account: AccountId, replies: &[ShardReply]) -> Vec<u8> {
    let mut shards: Vec<ShardBalances<'_>> = replies
        .iter()
        .filter_map(|r| match r {
            ShardReply::Balances { shard, balances } => Some(ShardBalances {
                shard: *shard,
                balances,
            }),
            _ => None,
        })
        .collect();
    shards.sort_by_key(|s| s.shard);
    let mut total: Vec<AssetTotal<'_>> = Vec::new();
    for b in shards.iter().flat_map(|s| s.balances.iter()) {
        let i = match total.iter().position(|t| t.id == b.id) {
            Some(i) => i,
            None => {
                total.push(AssetTotal {
                    asset: &b.asset,
                    id: b.id,
                    available: 0,
                    held: 0,
                });
                total.len() - 1
            }
        };
        total[i].available += b.available as u128;
        total[i].held += b.held as u128;
    }
    total.sort_by_key(|t| t.id);
    #[derive(Serialize)]
    struct Answer<'a> {
        account: AccountId,
        shards: Vec<ShardBalances<'a>>,
        total: Vec<AssetTotal<'a>>,
    }
    let body = serde_json::to_string(&Answer {
        account,
        shards,
        total,
    })
    .expect("balances serialise");
    response("200 OK", "application/json", &format!("{body}\n"))
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
