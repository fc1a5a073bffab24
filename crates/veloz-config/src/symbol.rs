//! Instrument symbols (`[[instruments]] symbol`): 1 to [`SYMBOL_MAX_LEN`] characters out of
//! `A-Z`, `0-9`, `.`, `_`, `/` and `-` (`AAPL`, `BRK.B`, `ES_Z5`, `BTC/USD`, `BTC-PERP`).
//!
//! A symbol appears unquoted in the logs, metrics labels, admin URLs (`?symbol=AAPL`),
//! `veloz replay --symbol` and the trade tape; this set needs quoting in none of them. The
//! check runs in [`Config::validate`](crate::Config::validate) and names the instrument, the
//! offending character and its position.

use crate::ConfigError;

/// The longest instrument symbol, in characters (all ASCII).
pub const SYMBOL_MAX_LEN: usize = 32;

/// Whether `c` may appear in an instrument symbol: `A-Z`, `0-9`, `.`, `_`, `/`, `-`.
pub fn symbol_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '/' | '-')
}

/// Instrument `id`'s symbol: its first character outside [`symbol_char`], or its length when
/// it is empty or longer than [`SYMBOL_MAX_LEN`], as [`ConfigError::InvalidSymbol`].
pub fn check(id: u32, symbol: &str) -> Result<(), ConfigError> {
    let bad = |why: String| ConfigError::InvalidSymbol {
        id,
        symbol: symbol.to_string(),
        why,
    };
    if let Some((i, c)) = symbol.chars().enumerate().find(|(_, c)| !symbol_char(*c)) {
        return Err(bad(format!("has {c:?} at character {}", i + 1)));
    }
    match symbol.len() {
        0 => Err(bad("is empty".to_string())),
        n if n > SYMBOL_MAX_LEN => Err(bad(format!("has {n} characters"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn symbols_are_refused_outside_their_character_set_naming_instrument_and_character() {
        let load = |symbol: &str| {
            Config::from_toml_str(
                &format!("[[instruments]]\nid = 7\nsymbol = {symbol:?}\n"),
                "t",
            )
        };
        for good in ["AAPL", "BRK.B", "ES_Z5", "BTC/USD", "BTC-PERP", "X", "9984"] {
            load(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        let err = load("BRK,B \"x\"").unwrap_err().to_string();
        assert_eq!(
            err,
            "instrument 7: symbol \"BRK,B \\\"x\\\"\" has ',' at character 4: a symbol is 1 to 32 \
             characters out of A-Z 0-9 . _ / -"
        );
        for (bad, why) in [
            ("aapl", "has 'a' at character 1"),
            ("AAPL ", "has ' ' at character 5"),
            ("AÄ", "has 'Ä' at character 2"),
            ("A\nB", "has '\\n' at character 2"),
            ("", "is empty"),
            (&"A".repeat(33), "has 33 characters"),
        ] {
            let err = load(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("instrument 7: symbol ") && err.contains(why),
                "{bad:?}: {err}"
            );
        }
        // Every symbol of the embedded default passes.
        Config::default().validate().unwrap();
    }
}
