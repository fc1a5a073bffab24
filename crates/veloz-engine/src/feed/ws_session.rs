//! An open WebSocket session of [`super::WsServer`]: its subscriptions, its pending batch
//! and the frame it sends, and the answers to its requests (subscribe, unsubscribe,
//! snapshot, ping).

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};
use veloz_md::Channel;

use super::{would_block, Ctx, Sock};
use crate::feed::json::{self, Request};
use crate::feed::{FeedState, ServerStats};

/// One open WebSocket session.
pub(super) struct Session {
    pub(super) ws: WebSocket<Sock>,
    /// Per instrument (index in [`FeedState::symbols`]): channels subscribed (bit
    /// `Channel as u8`).
    pub(super) subs: Vec<u8>,
    /// Per instrument: subscribed channels whose snapshot waits for the feed to start.
    pub(super) awaiting: Vec<u8>,
    pub(super) awaiting_any: bool,
    /// JSON objects waiting for the next frame: `[` then objects separated by `,` (the
    /// closing `]` is added when sent); empty when nothing waits.
    pub(super) batch: String,
    /// Bytes of the last frame until it is known written (0: written).
    pub(super) in_flight: usize,
    /// When the last frame was handed to the socket (ns since the epoch).
    pub(super) last_sent_ns: u64,
    /// Close at the next poll with this code and reason (slow consumer).
    pub(super) cut: Option<(CloseCode, String)>,
}

impl Session {
    /// Queue one encoded JSON object.
    pub(super) fn push(&mut self, obj: &[u8]) {
        // The encoder writes UTF-8 only; a failure would be a bug, and skipping is safe.
        if let Ok(text) = std::str::from_utf8(obj) {
            self.push_str(text);
        }
    }

    /// Queue one JSON object.
    pub(super) fn push_str(&mut self, obj: &str) {
        self.batch
            .push(if self.batch.is_empty() { '[' } else { ',' });
        self.batch.push_str(obj);
    }

    pub(super) fn unsent(&self) -> usize {
        self.batch.len() + self.in_flight
    }

    pub(super) fn wants(&self, idx: usize, bit: u8) -> bool {
        (self.subs[idx] & !self.awaiting[idx]) & bit != 0
    }
}
/// Hand the batch to the socket as one frame once the previous frame is written.
pub(super) fn send(s: &mut Session, ctx: &mut Ctx<'_>) -> Result<usize, ()> {
    let before = s.ws.get_ref().written;
    let result = send_inner(s, ctx.now);
    ctx.stats.bytes += s.ws.get_ref().written - before;
    result
}

fn send_inner(s: &mut Session, now: u64) -> Result<usize, ()> {
    let mut work = 0;
    if s.in_flight > 0 {
        match s.ws.flush() {
            Ok(()) => {
                s.in_flight = 0;
                work += 1;
            }
            Err(e) if would_block(&e) => return Ok(0),
            Err(_) => return Err(()),
        }
    }
    if s.batch.is_empty() {
        return Ok(work);
    }
    s.batch.push(']');
    // The next batch starts with this one's capacity: no regrowth (and no fresh pages)
    // on every pass.
    let capacity = s.batch.capacity();
    let text = std::mem::replace(&mut s.batch, String::with_capacity(capacity));
    // The frame's bytes on the wire: the payload and a 2, 4 or 10-byte header.
    let len = text.len();
    let wire = len
        + match len {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        };
    s.last_sent_ns = now;
    let result = s.ws.write(Message::text(text)).and_then(|()| s.ws.flush());
    match result {
        Ok(()) => Ok(work + 1),
        Err(e) if would_block(&e) => {
            // Queued in tungstenite's buffer; written on the next passes.
            s.in_flight = wire;
            Ok(work + 1)
        }
        Err(_) => Err(()),
    }
}

/// Cut `s` off as a slow consumer: drop what it was owed, close at the next poll.
pub(super) fn cut(s: &mut Session, limit: usize, stats: &mut ServerStats) {
    stats.cut_off += 1;
    let why = format!(
        "slow consumer: more than {limit} bytes unsent (feed.outbound_limit_bytes); reconnect and take fresh snapshots"
    );
    tracing::info!(target: "veloz::feed", unsent = s.unsent(), "WebSocket subscriber cut off: {why}");
    s.batch.clear();
    s.subs.iter_mut().for_each(|b| *b = 0);
    s.awaiting.iter_mut().for_each(|b| *b = 0);
    s.awaiting_any = false;
    s.cut = Some((CloseCode::Policy, why));
}

/// Send the snapshots whose feed has started since they were asked for.
pub(super) fn send_awaited(s: &mut Session, ctx: &mut Ctx<'_>) {
    let mut still = false;
    for (idx, info) in ctx.state.symbols().iter().enumerate() {
        if s.awaiting[idx] == 0 {
            continue;
        }
        if ctx.state.unavailable(info.id).is_some() {
            still = true;
            continue;
        }
        for ch in Channel::ALL {
            let bit = 1u8 << ch as u8;
            if s.awaiting[idx] & bit != 0 {
                ctx.scratch.clear();
                if json::snapshot(ctx.scratch, ctx.state, info, ch) {
                    s.push(ctx.scratch);
                }
            }
        }
        s.awaiting[idx] = 0;
    }
    s.awaiting_any = still;
}

/// The instruments a request names (indexes), or the names it got wrong.
fn resolve(state: &FeedState, names: &[String]) -> (Vec<usize>, Vec<String>) {
    if names.is_empty() {
        return ((0..state.symbols().len()).collect(), Vec::new());
    }
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match state.symbols().iter().position(|s| &s.name == name) {
            Some(i) if !found.contains(&i) => found.push(i),
            Some(_) => {}
            None => unknown.push(name.clone()),
        }
    }
    (found, unknown)
}

fn push_error(s: &mut Session, ctx: &mut Ctx<'_>, reason: &str) {
    ctx.scratch.clear();
    json::error(ctx.scratch, reason);
    s.push(ctx.scratch);
}

/// Answer one client request.
pub(super) fn request(s: &mut Session, text: &str, ctx: &mut Ctx<'_>) {
    let req = match json::parse_request(text) {
        Ok(r) => r,
        Err(why) => return push_error(s, ctx, &why),
    };
    let state = ctx.state;
    match req {
        Request::Subscribe { channel, symbols } => subscription(s, ctx, &channel, &symbols, true),
        Request::Unsubscribe { channel, symbols } => {
            subscription(s, ctx, &channel, &symbols, false)
        }
        Request::Snapshot { channel, symbol } => {
            let ch = match json::parse_channel(&channel) {
                Ok(c) => c,
                Err(why) => return push_error(s, ctx, &why),
            };
            let Some(info) = state.by_name(&symbol) else {
                return push_error(s, ctx, &format!("unknown symbol: {symbol:?}"));
            };
            ctx.scratch.clear();
            if json::snapshot(ctx.scratch, state, info, ch) {
                s.push(ctx.scratch);
            } else {
                let why = state.unavailable(info.id).unwrap_or_default();
                push_error(s, ctx, &why);
            }
        }
        Request::Ping { id } => {
            ctx.scratch.clear();
            json::pong(ctx.scratch, state, &id);
            s.push(ctx.scratch);
        }
    }
    if s.unsent() > ctx.limit {
        cut(s, ctx.limit, ctx.stats);
    }
}

/// Subscribe to (or unsubscribe from) `channel` of the instruments `symbols` names.
fn subscription(
    s: &mut Session,
    ctx: &mut Ctx<'_>,
    channel: &str,
    symbols: &[String],
    subscribe: bool,
) {
    let state = ctx.state;
    let ch = match json::parse_channel(channel) {
        Ok(c) => c,
        Err(why) => return push_error(s, ctx, &why),
    };
    let (found, unknown) = resolve(state, symbols);
    if !unknown.is_empty() {
        push_error(
            s,
            ctx,
            &format!("unknown symbol(s): {}", unknown.join(", ")),
        );
    }
    let bit = 1u8 << ch as u8;
    for idx in found {
        let info = &state.symbols()[idx];
        if subscribe {
            s.subs[idx] |= bit;
            ctx.scratch.clear();
            if json::snapshot(ctx.scratch, state, info, ch) {
                s.awaiting[idx] &= !bit;
                s.push(ctx.scratch);
            } else {
                s.awaiting[idx] |= bit;
                s.awaiting_any = true;
                let why = state.unavailable(info.id).unwrap_or_default();
                push_error(
                    s,
                    ctx,
                    &format!("{why}: the snapshot follows when the feed is available"),
                );
            }
        } else if s.subs[idx] & bit != 0 {
            s.subs[idx] &= !bit;
            s.awaiting[idx] &= !bit;
            ctx.scratch.clear();
            json::unsubscribed(ctx.scratch, info, ch, None);
            s.push(ctx.scratch);
        }
    }
}
