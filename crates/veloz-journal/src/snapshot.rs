//! Snapshot files: a shard's whole engine state at a journal sequence, so that recovery
//! replays only the journal after it (`docs/journal-format.md`, "Snapshots").
//!
//! A snapshot file is `snapshot-{seq:020}.vsn` in the shard directory: a 64-byte header
//! (magic, version, shard, the sequence it covers, the state hash, the body's length and
//! CRC-32C, the header's own CRC-32C) followed by the body that
//! [`Engine::write_snapshot`] writes. It is written whole through [`Storage::replace`]
//! (`{name}.tmp`, fsync, rename, directory fsync), so a file under the final name is complete.
//!
//! Loading ([`load_newest`]) tries the snapshots newest first and skips, with a
//! [`SnapshotSkipped`] warning naming the file, any whose header, CRC, body or recomputed
//! state hash is wrong, or whose instruments are not the configured ones; with none left the
//! caller replays the whole journal. A snapshot is only written once the journal is durable up
//! to its sequence. [`oldest_valid`] gives the retention point: journal segments entirely
//! before it may be archived or deleted (`archive.rs`), never one a kept snapshot needs.

use veloz_core::{Engine, Instrument, Seq};

use crate::backend::Storage;

/// Magic at offset 0.
pub const SNAP_MAGIC: [u8; 8] = *b"VELOZSNP";
/// The version this build writes and reads.
pub const SNAP_FORMAT_VERSION: u16 = 1;
/// Header length; the body starts here.
pub const SNAP_HEADER_LEN: usize = 64;
pub const SNAP_MAGIC_AT: usize = 0; // [u8; 8]
pub const SNAP_VERSION: usize = 8; // u16
pub const SNAP_HEADER_LEN_AT: usize = 10; // u16
pub const SNAP_SHARD: usize = 12; // u16
pub const SNAP_FLAGS: usize = 14; // u16, 0
pub const SNAP_SEQ: usize = 16; // u64
pub const SNAP_STATE_HASH: usize = 24; // u64
pub const SNAP_BODY_LEN: usize = 32; // u64
pub const SNAP_BODY_CRC: usize = 40; // u32
pub const SNAP_RESERVED: usize = 44; // [u8; 16], 0
pub const SNAP_CRC: usize = 60; // u32: CRC-32C of bytes 0..60

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".vsn";

/// `snapshot-{seq:020}.vsn`.
pub fn snapshot_name(seq: Seq) -> String {
    format!("{PREFIX}{seq:020}{SUFFIX}")
}

/// The sequence in a snapshot file name, if `name` is one.
pub fn parse_snapshot_name(name: &str) -> Option<Seq> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The snapshots in `storage`, newest (highest sequence) first.
pub fn list_snapshots<S: Storage>(storage: &S) -> std::io::Result<Vec<Seq>> {
    let mut seqs: Vec<Seq> = storage
        .list()?
        .iter()
        .filter_map(|n| parse_snapshot_name(n))
        .collect();
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    Ok(seqs)
}

/// A snapshot's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub shard: u16,
    pub seq: Seq,
    pub state_hash: u64,
    pub body_len: u64,
}

/// Build a whole snapshot file of `engine` at journal sequence `seq` into `out` (cleared
/// first; reuse it to keep the shard's path allocation-free once grown). Returns the state
/// hash recorded.
pub fn encode(engine: &Engine, seq: Seq, out: &mut Vec<u8>) -> u64 {
    encode_body(engine, out);
    seal(out, engine.shard(), seq, engine.state_hash())
}

/// The shard's part of [`encode`]: the header's space and the body, nothing else (no hash,
/// no CRC); [`seal_from_body`] finishes it on another thread.
pub fn encode_body(engine: &Engine, out: &mut Vec<u8>) {
    out.clear();
    out.resize(SNAP_HEADER_LEN, 0);
    engine.write_snapshot(out);
}

/// Finish a file built by [`encode_body`] off the shard's core: load the body back (which
/// checks it), take the state hash from the loaded engine, and write the header. Returns the
/// hash, or why the body does not load.
pub fn seal_from_body(out: &mut [u8], seq: Seq) -> Result<u64, String> {
    let engine = Engine::read_snapshot(&out[SNAP_HEADER_LEN..]).map_err(|e| e.to_string())?;
    Ok(seal(out, engine.shard(), seq, engine.state_hash()))
}

/// Write the header of a file whose body follows it; returns `hash`.
fn seal(out: &mut [u8], shard: u16, seq: Seq, hash: u64) -> u64 {
    let body_len = (out.len() - SNAP_HEADER_LEN) as u64;
    let body_crc = crc32c::crc32c(&out[SNAP_HEADER_LEN..]);
    let h = &mut out[..SNAP_HEADER_LEN];
    h[SNAP_MAGIC_AT..SNAP_MAGIC_AT + 8].copy_from_slice(&SNAP_MAGIC);
    h[SNAP_VERSION..SNAP_VERSION + 2].copy_from_slice(&SNAP_FORMAT_VERSION.to_le_bytes());
    h[SNAP_HEADER_LEN_AT..SNAP_HEADER_LEN_AT + 2]
        .copy_from_slice(&(SNAP_HEADER_LEN as u16).to_le_bytes());
    h[SNAP_SHARD..SNAP_SHARD + 2].copy_from_slice(&shard.to_le_bytes());
    h[SNAP_SEQ..SNAP_SEQ + 8].copy_from_slice(&seq.to_le_bytes());
    h[SNAP_STATE_HASH..SNAP_STATE_HASH + 8].copy_from_slice(&hash.to_le_bytes());
    h[SNAP_BODY_LEN..SNAP_BODY_LEN + 8].copy_from_slice(&body_len.to_le_bytes());
    h[SNAP_BODY_CRC..SNAP_BODY_CRC + 4].copy_from_slice(&body_crc.to_le_bytes());
    let crc = crc32c::crc32c(&h[..SNAP_CRC]);
    h[SNAP_CRC..SNAP_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    hash
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Check a snapshot file's header and CRCs (not its body's contents); see [`decode`].
pub fn decode_header(bytes: &[u8], shard: u16) -> Result<SnapshotHeader, String> {
    decode_checked(bytes, shard).map(|(h, _)| h)
}

/// Check a snapshot file's header and CRCs, rebuild its engine and check its state hash.
/// The error says what is wrong (the caller names the file).
pub fn decode(bytes: &[u8], shard: u16) -> Result<(SnapshotHeader, Engine), String> {
    let (header, body) = decode_checked(bytes, shard)?;
    let engine = Engine::read_snapshot(body).map_err(|e| e.to_string())?;
    if engine.shard() != shard {
        return Err(format!("body is of shard {}", engine.shard()));
    }
    let hash = engine.state_hash();
    if hash != header.state_hash {
        return Err(format!(
            "state hash {:016x} recorded, {hash:016x} after loading",
            header.state_hash
        ));
    }
    Ok((header, engine))
}

fn decode_checked(bytes: &[u8], shard: u16) -> Result<(SnapshotHeader, &[u8]), String> {
    if bytes.len() < SNAP_HEADER_LEN {
        return Err(format!("{} bytes, shorter than the header", bytes.len()));
    }
    let h = &bytes[..SNAP_HEADER_LEN];
    if h[..8] != SNAP_MAGIC {
        return Err("bad magic".into());
    }
    let crc = crc32c::crc32c(&h[..SNAP_CRC]);
    if crc != le_u32(h, SNAP_CRC) {
        return Err(format!(
            "header CRC {:08x}, computed {crc:08x}",
            le_u32(h, SNAP_CRC)
        ));
    }
    let version = le_u16(h, SNAP_VERSION);
    if version != SNAP_FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this build reads {SNAP_FORMAT_VERSION}"
        ));
    }
    if le_u16(h, SNAP_HEADER_LEN_AT) as usize != SNAP_HEADER_LEN
        || le_u16(h, SNAP_FLAGS) != 0
        || h[SNAP_RESERVED..SNAP_CRC].iter().any(|&b| b != 0)
    {
        return Err("unknown header length, flags or reserved bytes".into());
    }
    let header = SnapshotHeader {
        shard: le_u16(h, SNAP_SHARD),
        seq: le_u64(h, SNAP_SEQ),
        state_hash: le_u64(h, SNAP_STATE_HASH),
        body_len: le_u64(h, SNAP_BODY_LEN),
    };
    if header.shard != shard {
        return Err(format!("written for shard {}", header.shard));
    }
    let body = &bytes[SNAP_HEADER_LEN..];
    if body.len() as u64 != header.body_len {
        return Err(format!(
            "body is {} bytes, header says {}",
            body.len(),
            header.body_len
        ));
    }
    let crc = crc32c::crc32c(body);
    if crc != le_u32(h, SNAP_BODY_CRC) {
        return Err(format!(
            "body CRC {:08x}, computed {crc:08x}",
            le_u32(h, SNAP_BODY_CRC)
        ));
    }
    Ok((header, body))
}

/// Write `file` (built by [`encode`]) as `snapshot-{seq}.vsn`, durably (temp file, fsync,
/// rename, directory fsync). Returns the file name.
pub fn write<S: Storage>(storage: &S, seq: Seq, file: &[u8]) -> std::io::Result<String> {
    let name = snapshot_name(seq);
    storage.replace(&name, file)?;
    Ok(name)
}

/// Remove all but the `keep` newest snapshots (at least one is always kept); returns the names
/// removed.
pub fn prune<S: Storage>(storage: &S, keep: usize) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for seq in list_snapshots(storage)?.into_iter().skip(keep.max(1)) {
        let name = snapshot_name(seq);
        storage.remove(&name)?;
        removed.push(name);
    }
    Ok(removed)
}

/// The sequence of the oldest snapshot of `shard` in `storage` whose header and CRCs check
/// (the retention point: `archive::retain` keeps every segment recovery from it needs).
/// `None` when there is no such snapshot.
pub fn oldest_valid<S: Storage>(storage: &S, shard: u16) -> std::io::Result<Option<Seq>> {
    for seq in list_snapshots(storage)?.into_iter().rev() {
        let Ok(view) = storage.open_view(&snapshot_name(seq)) else {
            continue;
        };
        if decode_header(&view, shard).is_ok_and(|h| h.seq == seq) {
            return Ok(Some(seq));
        }
    }
    Ok(None)
}

/// A snapshot that was not used, and why (for the start-up log).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("skipped snapshot {file}: {why}")]
pub struct SnapshotSkipped {
    pub file: String,
    pub why: String,
}

/// The snapshot recovery starts from.
#[derive(Debug)]
pub struct Loaded {
    /// The file, as shown.
    pub file: String,
    pub header: SnapshotHeader,
    pub engine: Engine,
}

/// The newest valid snapshot of `shard` in `storage` whose instruments and money rules
/// ([`Engine::risk`]) equal those of `like` (the engine the caller built from its
/// configuration) and whose sequence is at most `max_seq` (if given), with a warning for each
/// newer one skipped. `None` when there is none: replay the whole journal (whose checkpoints
/// then tell whether the configuration still gives the recorded states).
pub fn load_newest<S: Storage>(
    storage: &S,
    shard: u16,
    like: &Engine,
    max_seq: Option<Seq>,
) -> (Option<Loaded>, Vec<SnapshotSkipped>) {
    let mut ours: Vec<Instrument> = like.instruments().cloned().collect();
    ours.sort_by_key(|i| i.id);
    let our_rules = like.risk().map(|r| r.normalized());
    let mut skipped = Vec::new();
    let seqs = match list_snapshots(storage) {
        Ok(s) => s,
        Err(e) => {
            skipped.push(SnapshotSkipped {
                file: storage.display_name(""),
                why: format!("cannot list the directory: {e}"),
            });
            return (None, skipped);
        }
    };
    for seq in seqs {
        let name = snapshot_name(seq);
        let file = storage.display_name(&name);
        let skip = |why: String| SnapshotSkipped {
            file: file.clone(),
            why,
        };
        if max_seq.is_some_and(|m| seq > m) {
            skipped.push(skip(format!("beyond the sequence asked for ({seq})")));
            continue;
        }
        let result = storage
            .open_view(&name)
            .map_err(|e| format!("cannot read it: {e}"))
            .and_then(|view| decode(&view, shard));
        match result {
            Ok((header, _)) if header.seq != seq => {
                skipped.push(skip(format!("its header says sequence {}", header.seq)));
            }
            Ok((header, engine)) => {
                if !engine.instruments().eq(ours.iter()) {
                    skipped.push(skip(
                        "its instruments differ from the configured ones".into(),
                    ));
                    continue;
                }
                if engine.risk().map(|r| r.normalized()) != our_rules {
                    skipped.push(skip(
                        "its money rules (assets, funding, fees, limits) differ from the \
                         configured ones"
                            .into(),
                    ));
                    continue;
                }
                return (
                    Some(Loaded {
                        file,
                        header,
                        engine,
                    }),
                    skipped,
                );
            }
            Err(why) => skipped.push(skip(why)),
        }
    }
    (None, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStorage;
    use veloz_core::{Command, NewOrder, Side};

    fn engine(orders: u64) -> Engine {
        let mut e = Engine::new(2, &[Instrument::simple(1, "A")]);
        let mut out = Vec::new();
        for k in 1..=orders {
            let cmd = Command::New(NewOrder::limit(1, 1, k, Side::Buy, 100 + k as i64, 1));
            e.apply(k, k, &cmd, &mut out);
        }
        e
    }

    #[test]
    fn newest_valid_is_loaded_and_bad_ones_are_skipped_by_name() {
        let storage = MemStorage::new();
        let inst = [Instrument::simple(1, "A")];
        let mut buf = Vec::new();
        for n in [3u64, 5, 8] {
            encode(&engine(n), n, &mut buf);
            write(&storage, n, &buf).unwrap();
        }
        // Damage the newest one's body.
        let mut bad = storage.open_view(&snapshot_name(8)).unwrap().0;
        let last = bad.len() - 1;
        bad[last] ^= 1;
        storage.replace(&snapshot_name(8), &bad).unwrap();
        let like = Engine::new(2, &inst);
        let (loaded, skipped) = load_newest(&storage, 2, &like, None);
        let loaded = loaded.unwrap();
        assert_eq!(loaded.header.seq, 5);
        assert_eq!(loaded.engine.state_hash(), engine(5).state_hash());
        assert_eq!(skipped.len(), 1);
        let w = skipped[0].to_string();
        assert!(
            w.contains("snapshot-00000000000000000008.vsn") && w.contains("body CRC"),
            "{w}"
        );
        // Another shard's or other instruments: none.
        assert!(load_newest(&storage, 1, &like, None).0.is_none());
        let other = Engine::new(2, &[Instrument::simple(2, "B")]);
        assert!(load_newest(&storage, 2, &other, None).0.is_none());
        // The same instruments with money rules: the snapshots (without) are skipped.
        let funded = Engine::with_risk(2, &inst, veloz_core::Risk::default()).unwrap();
        let (none, skipped) = load_newest(&storage, 2, &funded, None);
        assert!(none.is_none());
        assert!(
            skipped
                .iter()
                .any(|w| w.to_string().contains("money rules")),
            "{skipped:?}"
        );
        assert_eq!(
            load_newest(&storage, 2, &like, Some(4))
                .0
                .unwrap()
                .header
                .seq,
            3
        );
        assert_eq!(prune(&storage, 2).unwrap(), vec![snapshot_name(3)]);
        assert_eq!(list_snapshots(&storage).unwrap(), vec![8, 5]);
    }

    #[test]
    fn names_parse() {
        assert_eq!(parse_snapshot_name(&snapshot_name(42)), Some(42));
        assert_eq!(parse_snapshot_name("snapshot-42.vsn"), None);
        assert_eq!(
            parse_snapshot_name("snapshot-00000000000000000042.vsn.tmp"),
            None
        );
    }
}
