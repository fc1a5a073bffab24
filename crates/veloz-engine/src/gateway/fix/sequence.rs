//! Sequence numbers of a FIX session (see the parent module's invariants): SequenceReset
//! from the client, ResendRequest both ways, and the resend of stored messages with
//! PossDupFlag=Y and OrigSendingTime, gap-filling what is not stored.

use veloz_fix::{tags, Message, Parser};

use super::{FixInbound, FixSession, FixStats};

impl FixSession {
    /// A SequenceReset: GapFill moves the expected number up from its own place; Reset
    /// moves it whatever its number.
    pub(super) fn sequence_reset(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        expected: u64,
        wall: u64,
        out: &mut Vec<u8>,
    ) -> Option<FixInbound> {
        let gap_fill = msg.get(tags::GAP_FILL_FLAG) == Some(b"Y");
        let Ok(Some(new)) = msg.get_u64(tags::NEW_SEQ_NO) else {
            self.reject(
                out,
                wall,
                seq,
                Some(tags::NEW_SEQ_NO),
                1,
                "NewSeqNo (36) is missing",
                Some(b"4"),
            );
            return None;
        };
        if gap_fill && seq != expected {
            if seq > expected && !self.resend_pending {
                self.resend_pending = true;
                self.resend_request(out, wall, expected);
            }
            return None;
        }
        if new < expected {
            let text = format!("NewSeqNo (36) {new} is below the expected MsgSeqNum {expected}");
            self.reject(out, wall, seq, Some(tags::NEW_SEQ_NO), 5, &text, Some(b"4"));
            return None;
        }
        if let Some(store) = self.store.as_mut() {
            store.next_in = new;
        }
        None
    }

    /// Answer a ResendRequest from the stored messages, gap-filling the rest.
    pub(super) fn resend(&mut self, msg: &Message<'_>, wall: u64, out: &mut Vec<u8>) {
        let begin = msg
            .get_u64(tags::BEGIN_SEQ_NO)
            .ok()
            .flatten()
            .unwrap_or(1)
            .max(1);
        let end = msg.get_u64(tags::END_SEQ_NO).ok().flatten().unwrap_or(0);
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let last = store.next_out - 1;
        let end = if end == 0 || end > last { last } else { end };
        if begin > end {
            return;
        }
        let stored = store.flush().and_then(|()| store.messages(begin, end));
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(target: "veloz::fix", path = %store.path().display(), "FIX store {}: cannot read for a resend: {e}; gap-filled instead", store.path().display());
                Vec::new()
            }
        };
        let mut cursor = begin;
        let mut parser = Parser::new();
        for (seq, bytes) in &stored {
            if *seq > cursor {
                self.gap_fill(out, wall, cursor, *seq);
            }
            if let Ok(old) = parser.parse(bytes) {
                self.resend_one(out, wall, *seq, &old);
            }
            cursor = seq + 1;
        }
        if cursor <= end {
            self.gap_fill(out, wall, cursor, end + 1);
        }
        let peer = self.peer.as_deref().unwrap_or("?");
        FixStats::bump(&self.shared.stats.resends_served, 1);
        FixStats::bump(&self.shared.stats.resent_messages, stored.len() as u64);
        tracing::info!(target: "veloz::fix", comp_id = peer, begin, end, resent = stored.len(), "FIX session {peer}: resent {begin}..={end} ({} messages, the rest gap-filled)", stored.len());
    }

    /// Write `old` again with its own MsgSeqNum, PossDupFlag=Y and its first SendingTime.
    fn resend_one(&mut self, out: &mut Vec<u8>, wall: u64, seq: u64, old: &Message<'_>) {
        let w = &mut self.writer;
        w.begin(old.msg_type());
        w.str(tags::SENDER_COMP_ID, &self.shared.comp_id);
        w.str(tags::TARGET_COMP_ID, self.peer.as_deref().unwrap_or(""));
        w.uint(tags::MSG_SEQ_NUM, seq);
        w.bool(tags::POSS_DUP_FLAG, true);
        w.timestamp(tags::SENDING_TIME, wall);
        if let Some(sent) = old.get(tags::SENDING_TIME) {
            w.bytes(tags::ORIG_SENDING_TIME, sent);
        }
        for (tag, value) in old.fields() {
            if !is_header(tag) {
                w.bytes(tag, value);
            }
        }
        w.finish(out);
        self.last_out_now();
    }

    fn gap_fill(&mut self, out: &mut Vec<u8>, wall: u64, seq: u64, new: u64) {
        let w = &mut self.writer;
        w.begin(b"4");
        w.str(tags::SENDER_COMP_ID, &self.shared.comp_id);
        w.str(tags::TARGET_COMP_ID, self.peer.as_deref().unwrap_or(""));
        w.uint(tags::MSG_SEQ_NUM, seq);
        w.bool(tags::POSS_DUP_FLAG, true);
        w.timestamp(tags::SENDING_TIME, wall);
        w.bool(tags::GAP_FILL_FLAG, true);
        w.uint(tags::NEW_SEQ_NO, new);
        w.finish(out);
        self.last_out_now();
    }

    pub(super) fn resend_request(&mut self, out: &mut Vec<u8>, wall: u64, from: u64) {
        FixStats::bump(&self.shared.stats.resend_requests_sent, 1);
        self.send_admin(out, wall, b"2", |w| {
            w.uint(tags::BEGIN_SEQ_NO, from);
            w.uint(tags::END_SEQ_NO, 0);
        });
    }
}

/// Header and trailer tags (not copied into a resent message's body).
fn is_header(tag: u32) -> bool {
    matches!(
        tag,
        tags::BEGIN_STRING
            | tags::BODY_LENGTH
            | tags::MSG_TYPE
            | tags::SENDER_COMP_ID
            | tags::TARGET_COMP_ID
            | tags::MSG_SEQ_NUM
            | tags::SENDING_TIME
            | tags::POSS_DUP_FLAG
            | tags::POSS_RESEND
            | tags::ORIG_SENDING_TIME
            | tags::CHECK_SUM
    )
}
