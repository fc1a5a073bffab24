//! `[retention]`: what becomes of journal segments older than the oldest kept snapshot
//! (`docs/operations.md`, "Retention"; `veloz_journal::archive`).
//!
//! A segment is retired only once every record in it is at or before the oldest snapshot
//! kept (`[snapshot] keep`), so recovery, which starts from the newest valid snapshot (or an
//! older kept one), never needs it. The engine's snapshot helper applies the rule after each
//! snapshot it writes; `veloz journal archive --data DIR` applies it offline.

use serde::{Deserialize, Serialize};

pub use veloz_journal::RetentionMode;

/// `[retention]`: archive, delete or keep the segments before the oldest kept snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// `"archive"` (default): compress each to `shard-N/{first_seq:020}.vlj.zst` (zstd) and
    /// remove it, so `veloz replay` can still rebuild from sequence 1. `"delete"`: remove it
    /// (the journal before the oldest kept snapshot is gone). `"off"`: keep every segment.
    pub mode: RetentionMode,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the default (also pinned as part of `Config::default()` in the crate's tests).
    #[test]
    fn default_is_archive_and_modes_parse() {
        assert_eq!(RetentionConfig::default().mode, RetentionMode::Archive);
        for (text, mode) in [
            ("mode = \"archive\"", RetentionMode::Archive),
            ("mode = \"delete\"", RetentionMode::Delete),
            ("mode = \"off\"", RetentionMode::Off),
        ] {
            let c: RetentionConfig = toml::from_str(text).unwrap();
            assert_eq!(c.mode, mode, "{text}");
        }
        let e = toml::from_str::<RetentionConfig>("mode = \"gzip\"").unwrap_err();
        assert!(e.to_string().contains("gzip"), "{e}");
        assert!(toml::from_str::<RetentionConfig>("level = 3").is_err());
    }
}
