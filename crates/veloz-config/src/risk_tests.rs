use super::*;
use crate::routing::Routing;

/// The money example shipped in config/.
const EXAMPLE: &str = include_str!("../../../config/money.example.toml");

const HASH: &str = "c3fe0b469a6d4f19a25fbec114762d2186aa2c22888f52c5550a77fc104bcff3";

/// A funded config: USD and BTC, BTC/USD funded, ETH/USD not, fee account 900; `extra` is
/// appended.
fn funded(extra: &str) -> String {
    format!(
        "[[assets]]\nid = 1\nname = \"USD\"\nscale = 2\n\
         [[assets]]\nid = 2\nname = \"BTC\"\nscale = 8\n\
         [risk]\nfee_account = 900\nmax_order_qty = 50\nmax_open_orders = 4\n\
         [[risk.accounts]]\naccount = 7\nmax_order_qty = 100\n\
         [[instruments]]\nid = 10\nsymbol = \"BTC/USD\"\nbase = \"BTC\"\nquote = \"USD\"\n\
         base_unit = 1000\nquote_unit = 3\nmaker_fee_bps = 2\ntaker_fee_bps = 5\n\
         [[instruments]]\nid = 11\nsymbol = \"ETH/USD\"\n\
         [[accounts]]\nid = 7\nname = \"seven\"\ntoken_sha256 = \"{HASH}\"\n{extra}"
    )
}

fn err(text: &str) -> String {
    Config::from_toml_str(text, "t").unwrap_err().to_string()
}

#[test]
fn a_funded_config_becomes_the_cores_rules() {
    let c = Config::from_toml_str(&funded(""), "t").unwrap();
    assert!(c.money());
    let r = c.risk().unwrap();
    assert_eq!(r.fee_account, 900);
    assert_eq!(
        r.assets,
        [
            Asset {
                id: 1,
                name: "USD".into(),
                scale: 2
            },
            Asset {
                id: 2,
                name: "BTC".into(),
                scale: 8
            }
        ]
    );
    assert_eq!(
        r.funding,
        [(
            10,
            Funding {
                base: 2,
                quote: 1,
                base_unit: 1000,
                quote_unit: 3,
                maker_fee_bps: 2,
                taker_fee_bps: 5
            }
        )]
    );
    let defaults = Limits {
        max_order_qty: 50,
        max_order_notional: 0,
        max_open_orders: 4,
        max_notional_per_sec: 0,
    };
    assert_eq!(r.limits, defaults);
    // Account 7 sets its qty limit and inherits the rest.
    assert_eq!(
        r.account_limits,
        [(
            7,
            Limits {
                max_order_qty: 100,
                ..defaults
            }
        )]
    );
    assert_eq!(c.asset("BTC").map(|a| a.id), Some(2));
    assert_eq!(c.asset("1").map(|a| a.name.as_str()), Some("USD"));
    assert!(c.asset("EUR").is_none());
    // Every shard gets the same rules; an engine keeps balances.
    let routing = Routing::from_config(&c, 2).unwrap();
    for shard in 0..2 {
        let e = c.shard_engine(&routing, shard);
        assert_eq!(e.risk(), Some(&r));
        assert_eq!(e.instruments().count(), 1);
    }
}

#[test]
fn money_off_builds_the_engine_as_before() {
    let c = Config::default();
    assert!(!c.money());
    assert_eq!(c.risk(), None);
    let routing = Routing::from_config(&c, 1).unwrap();
    let e = c.shard_engine(&routing, 0);
    assert_eq!(e.risk(), None);
    assert_eq!(e.instruments().count(), 4);
    // Nothing about money in the printed config.
    let text = c.to_toml_string();
    for word in ["assets", "[risk", "base", "quote", "fee_"] {
        assert!(!text.contains(word), "{word} in:\n{text}");
    }
}

#[test]
fn the_printed_config_shows_money_and_reads_back() {
    let c = Config::from_toml_str(&funded(""), "t").unwrap();
    let text = c.to_toml_string();
    for line in [
        "[[assets]]",
        "name = \"USD\"",
        "[risk]",
        "fee_account = 900",
        "[[risk.accounts]]",
        "account = 7",
        "base = \"BTC\"",
        "quote = \"USD\"",
        "base_unit = 1000",
        "quote_unit = 3",
        "maker_fee_bps = 2",
        "taker_fee_bps = 5",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert_eq!(Config::from_toml_str(&text, "printed").unwrap(), c);
}

#[test]
fn the_money_example_loads() {
    let c = Config::from_toml_str(EXAMPLE, "config/money.example.toml").unwrap();
    let r = c.risk().unwrap();
    assert_eq!(r.fee_account, 900);
    assert_eq!(r.assets.len(), 3);
    assert_eq!(r.funding.len(), 2);
    // 3 mBTC at 65,000.00 USDC/BTC is 195 USDC (micro-USDC).
    let btc = r.funding_of(1).unwrap();
    assert_eq!(btc.notional(6_500_000, 3), Some(195_000_000));
    assert_eq!(btc.base_amount(3), Some(300_000));
    assert!(c.admin.token_hash().is_some());
    assert_eq!(
        Config::from_toml_str(&c.to_toml_string(), "again").unwrap(),
        c
    );
}

#[test]
fn every_bad_money_value_is_refused_naming_it() {
    let base_inst = "[[instruments]]\nid = 1\nsymbol = \"X\"\n";
    let cases: Vec<(String, &str)> = vec![
        (
            funded("[[assets]]\nid = 1\nname = \"EUR\"\n"),
            "asset id 1 is used twice (names USD and EUR)",
        ),
        (
            funded("[[assets]]\nid = 3\nname = \"USD\"\n"),
            "asset name \"USD\" is used twice (ids 1 and 3)",
        ),
        (
            funded("[[assets]]\nid = 3\nname = \"usd\"\n"),
            "asset 3: name \"usd\" has 'u' at character 1",
        ),
        (
            funded("[[assets]]\nid = 3\nname = \"\"\n"),
            "asset 3: name \"\" has 0 characters",
        ),
        (
            funded("[[assets]]\nid = 3\nname = \"EUR\"\nscale = 19\n"),
            "asset EUR: scale = 19 is invalid: must be <= 18",
        ),
        (
            funded("[[instruments]]\nid = 12\nsymbol = \"Y\"\nbase = \"BTC\"\nquote = \"EUR\"\n"),
            "instrument Y: quote = \"EUR\" is not a configured asset (assets: USD, BTC)",
        ),
        (
            funded("[[instruments]]\nid = 12\nsymbol = \"Y\"\nbase = \"BTC\"\nquote = \"BTC\"\n"),
            "instrument Y: base and quote are the same asset \"BTC\"",
        ),
        (
            funded("[[instruments]]\nid = 12\nsymbol = \"Y\"\nbase = \"BTC\"\n"),
            "instrument Y: base = \"BTC\" needs quote too (both or neither)",
        ),
        (
            funded(
                "[[instruments]]\nid = 12\nsymbol = \"Y\"\nbase = \"BTC\"\nquote = \"USD\"\n\
                 quote_unit = 0\n",
            ),
            "instrument Y: quote_unit = 0 is invalid: must be > 0",
        ),
        (
            funded(
                "[[instruments]]\nid = 12\nsymbol = \"Y\"\nbase = \"BTC\"\nquote = \"USD\"\n\
                 taker_fee_bps = 10001\n",
            ),
            "instrument Y: taker_fee_bps = 10001 is invalid: must be <= 10000",
        ),
        (
            funded("[[instruments]]\nid = 12\nsymbol = \"Y\"\nmaker_fee_bps = 3\n"),
            "instrument Y: maker_fee_bps = 3 is set but the instrument has no base and quote",
        ),
        (
            funded("[[risk.accounts]]\naccount = 7\n"),
            "[[risk.accounts]] lists account 7 twice",
        ),
        (
            format!(
                "{base_inst}[[instruments]]\nid = 2\nsymbol = \"Y\"\nbase = \"A\"\nquote = \"B\"\n"
            ),
            "instrument Y: base = \"A\" and quote = \"B\" but no [[assets]] are configured",
        ),
        (
            format!("{base_inst}[risk]\nmax_order_qty = 5\n"),
            "[risk] is set but no [[assets]] are configured",
        ),
        (
            format!("{base_inst}[[assets]]\nid = 1\nname = \"USD\"\n"),
            "[risk] fee_account is missing: it is required when [[assets]] are configured",
        ),
        (
            format!("{base_inst}[[assets]]\nid = 1\nname = \"USD\"\n[risk]\nmax_order_qty = 5\n"),
            "[risk] fee_account is missing",
        ),
        (
            format!("{base_inst}[[assets]]\nid = 1\nname = \"USD\"\n[risk]\nfee_account = 0\n"),
            "[risk] fee_account = 0 is invalid",
        ),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.starts_with(want), "want {want:?}, got {e:?}");
    }
    // Unknown fields are refused by name, as everywhere.
    assert!(err(&funded("[[assets]]\nid = 3\nname = \"E\"\ndecimals = 2\n")).contains("decimals"));
    assert!(err(&funded("[[risk.accounts]]\naccount = 8\nmax_qty = 2\n")).contains("max_qty"));
}
