//! The LOBSTER files: message rows ([`Msg`]) and orderbook rows ([`Row`]), parsed strictly.
//!
//! Contract: every parse failure panics naming the file, line and field; prices stay in
//! LOBSTER's unit (dollars x 10^4), times become integer nanoseconds (no floating point),
//! empty orderbook levels are dropped, and the data directory must exist (the test fails,
//! naming the path, rather than skip).

use std::fmt;
use std::path::{Path, PathBuf};

use veloz_core::{Price, Qty, Side};

use crate::{EMPTY_PRICE, TICK};

/// One message-file row.
#[derive(Clone, Debug)]
pub(crate) struct Msg {
    /// 1-based line in the message file.
    pub(crate) line: usize,
    /// Time as written (seconds after midnight).
    pub(crate) time: String,
    /// Nanoseconds after midnight.
    pub(crate) ts: u64,
    pub(crate) kind: u8,
    pub(crate) id: u64,
    pub(crate) size: Qty,
    pub(crate) price: Price,
    /// Direction: 1 = buy, -1 = sell (for executions: the side of the resting order).
    pub(crate) side: Side,
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} (t={}): type {} order {} {:?} {} @ {}",
            self.line, self.time, self.kind, self.id, self.side, self.size, self.price
        )
    }
}

/// One orderbook-file row: the non-empty levels of each side, best first.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) asks: Vec<(Price, Qty)>,
    pub(crate) bids: Vec<(Price, Qty)>,
}

impl Row {
    pub(crate) fn side(&self, side: Side) -> &[(Price, Qty)] {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }
}

pub(crate) fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/lobster");
    assert!(
        dir.is_dir(),
        "LOBSTER data not found at {}: this test needs the shared data directory \
         `../shared/data/lobster/` beside the repository (CI provides it); it is not skipped",
        dir.display()
    );
    dir
}

fn read_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty())
        // A header row (AMZN files) starts with a letter.
        .filter(|(_, l)| !l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .collect()
}

fn int(field: &str, what: &str, path: &Path, line: usize) -> i64 {
    field.trim().parse().unwrap_or_else(|e| {
        panic!(
            "{}:{line}: {what} {field:?} is not an integer: {e}",
            path.display()
        )
    })
}

/// `seconds[.fraction]` as integer nanoseconds (no floating point).
fn parse_time(s: &str, path: &Path, line: usize) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(
        frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()),
        "{}:{line}: time {s:?} has more than nanosecond precision or is malformed",
        path.display()
    );
    let secs = int(secs, "time", path, line) as u64;
    let frac = if frac.is_empty() {
        0
    } else {
        int(frac, "time fraction", path, line) as u64 * 10u64.pow(9 - frac.len() as u32)
    };
    secs * 1_000_000_000 + frac
}

pub(crate) fn read_messages(path: &Path) -> Vec<Msg> {
    read_lines(path)
        .into_iter()
        .map(|(line, l)| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 6, "{}:{line}: expected 6 fields", path.display());
            let side = match int(f[5], "direction", path, line) {
                1 => Side::Buy,
                -1 => Side::Sell,
                d => panic!("{}:{line}: direction {d}", path.display()),
            };
            let kind = int(f[1], "type", path, line);
            assert!(
                (1..=7).contains(&kind),
                "{}:{line}: unknown type {kind}",
                path.display()
            );
            let size = int(f[3], "size", path, line);
            assert!(size >= 0, "{}:{line}: negative size", path.display());
            Msg {
                line,
                time: f[0].to_string(),
                ts: parse_time(f[0], path, line),
                kind: kind as u8,
                id: int(f[2], "order id", path, line) as u64,
                size: size as Qty,
                price: int(f[4], "price", path, line),
                side,
            }
        })
        .collect()
}

pub(crate) fn read_rows(path: &Path, levels: usize) -> Vec<Row> {
    read_lines(path)
        .into_iter()
        .map(|(line, l)| {
            let f: Vec<i64> = l
                .split(',')
                .map(|x| int(x, "orderbook field", path, line))
                .collect();
            assert_eq!(
                f.len(),
                4 * levels,
                "{}:{line}: expected {} fields",
                path.display(),
                4 * levels
            );
            let mut row = Row {
                asks: Vec::new(),
                bids: Vec::new(),
            };
            for (side, offset, empty) in
                [(Side::Sell, 0, EMPTY_PRICE), (Side::Buy, 2, -EMPTY_PRICE)]
            {
                let levels_of = match side {
                    Side::Sell => &mut row.asks,
                    Side::Buy => &mut row.bids,
                };
                for l in 0..levels {
                    let (price, size) = (f[4 * l + offset], f[4 * l + offset + 1]);
                    if size == 0 {
                        assert_eq!(price, empty, "{}:{line}: empty level", path.display());
                        continue;
                    }
                    assert!(
                        size > 0 && price > 0 && levels_of.len() == l,
                        "{}:{line}: level {} of {side:?}: {size} @ {price} after an empty level",
                        path.display(),
                        l + 1
                    );
                    assert_eq!(
                        price % TICK,
                        0,
                        "{}:{line}: price {price} off the cent",
                        path.display()
                    );
                    levels_of.push((price, size as Qty));
                }
            }
            row
        })
        .collect()
}
