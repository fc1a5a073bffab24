use super::*;

/// `[admin]` on with the token "op-token".
fn config() -> Config {
    let mut c = Config::default();
    c.admin.token_sha256 = format!("{:x}", Sha256::digest(b"op-token"));
    c
}

fn req(line: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!("{line} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").into_bytes()
}

fn status(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn requests_are_checked_before_anything_reaches_a_shard() {
    let c = config();
    let ok = Some("op-token");
    assert_eq!(
        parse(&req("POST /admin/halt?symbol=AAPL", ok), &c),
        Ok(Request::Act(AdminAction::HaltInstrument(1)))
    );
    assert_eq!(
        parse(&req("POST /admin/resume?symbol=2", ok), &c),
        Ok(Request::Act(AdminAction::ResumeInstrument(2)))
    );
    assert_eq!(
        parse(&req("POST /admin/disable?account=2", ok), &c),
        Ok(Request::Act(AdminAction::DisableAccount(2)))
    );
    assert_eq!(
        parse(&req("POST /admin/enable?account=1", ok), &c),
        Ok(Request::Act(AdminAction::EnableAccount(1)))
    );
    assert_eq!(
        parse(&req("GET /admin/sessions", ok), &c),
        Ok(Request::Sessions)
    );
    assert_eq!(
        parse(&req("POST /admin/disconnect?session=42", ok), &c),
        Ok(Request::Disconnect(42))
    );
    let refused = |line: &str, token: Option<&str>, config: &Config| {
        status(&parse(&req(line, token), config).unwrap_err())
    };
    assert!(refused("POST /admin/halt?symbol=AAPL", None, &c).contains("401"));
    assert!(refused("POST /admin/halt?symbol=AAPL", Some("op-tokenx"), &c).contains("401"));
    assert!(refused("POST /admin/halt?symbol=AAPL", ok, &Config::default()).contains("403"));
    assert!(refused("GET /admin/halt?symbol=AAPL", ok, &c).contains("405"));
    assert!(refused("POST /admin/halt?symbol=NOPE", ok, &c).contains("404"));
    assert!(refused("POST /admin/halt", ok, &c).contains("400"));
    assert!(refused("POST /admin/disable?account=99", ok, &c).contains("404"));
    assert!(refused("POST /admin/disconnect?session=x", ok, &c).contains("400"));
    assert!(refused("POST /admin/reboot", ok, &c).contains("404"));
    // The token never appears in an answer.
    let body = parse(&req("POST /admin/halt?symbol=NOPE", Some("op-token")), &c).unwrap_err();
    assert!(!String::from_utf8_lossy(&body).contains("op-token"));
}

#[test]
fn commands_go_to_the_shards_they_concern() {
    let shard_of = |s: SymbolId| (s <= 4).then_some((s % 2) as usize);
    let to = |r: Request| shards_for(&r, shard_of, 2);
    assert_eq!(to(Request::Act(AdminAction::HaltInstrument(3))), vec![1]);
    assert_eq!(to(Request::Act(AdminAction::DisableAccount(1))), vec![0, 1]);
    assert_eq!(to(Request::Sessions), vec![0, 1]);
    assert_eq!(to(Request::Disconnect((1 << 48) | 5)), vec![1]);
    assert!(to(Request::Disconnect(9 << 48)).is_empty());
    let gone = answer(&Request::Disconnect(9 << 48), &[], &config());
    assert!(status(&gone).contains("404"));
}

#[test]
fn answers_say_what_each_shard_did() {
    let act = Request::Act(AdminAction::DisableAccount(2));
    let replies = [
        ShardReply::Acted {
            shard: 0,
            outcome: AdminOutcome::Applied,
            cancelled: 3,
        },
        ShardReply::Acted {
            shard: 1,
            outcome: AdminOutcome::Applied,
            cancelled: 0,
        },
    ];
    let text = String::from_utf8(answer(&act, &replies, &config())).unwrap();
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    assert!(text.contains("\"cancelled\":3"), "{text}");
    let refused = [ShardReply::Refused {
        shard: 1,
        why: "disk full".into(),
    }];
    let text = String::from_utf8(answer(&act, &refused, &config())).unwrap();
    assert!(text.starts_with("HTTP/1.0 503"), "{text}");
    assert!(text.contains("shard 1: disk full"), "{text}");
    assert!(status(&timed_out(1)).contains("504"));
}

/// `config()` with money on: USD (1) and BTC (2), AAPL funded, fee account 900.
fn funded() -> Config {
    let mut c = config();
    let text = format!(
        "{}\n[[assets]]\nid = 1\nname = \"USD\"\nscale = 2\n[[assets]]\nid = 2\nname = \"BTC\"\n\
         [risk]\nfee_account = 900\n",
        c.to_toml_string()
    )
    .replace(
        "symbol = \"AAPL\"\n",
        "symbol = \"AAPL\"\nbase = \"BTC\"\nquote = \"USD\"\n",
    );
    c = Config::from_toml_str(&text, "funded").unwrap();
    assert!(c.money());
    c
}

fn deposit(account: AccountId, asset: u32, amount: u64) -> AdminAction {
    AdminAction::Deposit {
        account,
        asset,
        amount,
    }
}

#[test]
fn money_requests_are_checked_and_name_one_shard() {
    let c = funded();
    let ok = Some("op-token");
    let p = |line: &str| parse(&req(line, ok), &c);
    assert_eq!(
        p("POST /admin/deposit?account=1&asset=USD&amount=500"),
        Ok(Request::Money {
            action: deposit(1, 1, 500),
            to: MoneyShard::Only
        })
    );
    // By asset id, to a shard by number or by symbol; the fee account may hold money.
    assert_eq!(
        p("POST /admin/withdraw?account=900&asset=2&amount=7&shard=1"),
        Ok(Request::Money {
            action: AdminAction::Withdraw {
                account: 900,
                asset: 2,
                amount: 7
            },
            to: MoneyShard::Shard(1)
        })
    );
    assert_eq!(
        p("POST /admin/deposit?account=2&asset=BTC&amount=1&symbol=MSFT"),
        Ok(Request::Money {
            action: deposit(2, 2, 1),
            to: MoneyShard::Symbol(3)
        })
    );
    assert_eq!(
        p("GET /admin/balances?account=900"),
        Ok(Request::Balances(900))
    );
    let refused = |line: &str, config: &Config| {
        let body = parse(&req(line, ok), config).unwrap_err();
        String::from_utf8_lossy(&body).into_owned()
    };
    for (line, status, says) in [
        (
            "POST /admin/deposit?account=1&asset=EUR&amount=5",
            "404",
            "unknown asset \"EUR\"",
        ),
        (
            "POST /admin/deposit?account=1&asset=USD&amount=0",
            "400",
            "amount \"0\" is invalid",
        ),
        (
            "POST /admin/deposit?account=1&asset=USD&amount=-3",
            "400",
            "amount \"-3\"",
        ),
        (
            "POST /admin/deposit?account=1&asset=USD",
            "400",
            "amount \"\"",
        ),
        (
            "POST /admin/deposit?account=1&amount=5",
            "400",
            "need &asset",
        ),
        (
            "POST /admin/deposit?account=77&asset=USD&amount=5",
            "404",
            "unknown account \"77\"",
        ),
        (
            "POST /admin/deposit?account=1&asset=USD&amount=5&shard=x",
            "400",
            "shard \"x\"",
        ),
        (
            "POST /admin/deposit?account=1&asset=USD&amount=5&symbol=NOPE",
            "404",
            "NOPE",
        ),
        (
            "POST /admin/deposit?account=1&asset=USD&amount=5&shard=0&symbol=AAPL",
            "400",
            "not both",
        ),
        (
            "GET /admin/deposit?account=1&asset=USD&amount=5",
            "405",
            "needs POST",
        ),
        ("POST /admin/balances?account=1", "405", "needs GET"),
        ("GET /admin/balances?account=5", "404", "unknown account"),
    ] {
        let text = refused(line, &c);
        assert!(
            text.contains(status) && text.contains(says),
            "{line}: {text}"
        );
    }
    // Money off: 409, nothing reaches a shard.
    let text = refused(
        "POST /admin/deposit?account=1&asset=USD&amount=5",
        &config(),
    );
    assert!(
        text.contains("409") && text.contains("money is off"),
        "{text}"
    );
    let text = refused("GET /admin/balances?account=1", &config());
    assert!(text.contains("409"), "{text}");
}

#[test]
fn a_deposit_goes_to_exactly_one_shard() {
    let shard_of = |s: SymbolId| (s <= 4).then_some((s % 2) as usize);
    let money = |to| Request::Money {
        action: deposit(1, 1, 5),
        to,
    };
    // Every other command goes everywhere; money never does (it would multiply).
    assert_eq!(
        shards_for(&money(MoneyShard::Shard(1)), shard_of, 2),
        vec![1]
    );
    assert_eq!(
        shards_for(&money(MoneyShard::Symbol(3)), shard_of, 2),
        vec![1]
    );
    assert_eq!(
        shards_for(&money(MoneyShard::Symbol(2)), shard_of, 2),
        vec![0]
    );
    assert_eq!(shards_for(&money(MoneyShard::Only), shard_of, 1), vec![0]);
    assert!(shards_for(&money(MoneyShard::Only), shard_of, 2).is_empty());
    assert!(shards_for(&money(MoneyShard::Shard(2)), shard_of, 2).is_empty());
    assert_eq!(shards_for(&Request::Balances(1), shard_of, 2), vec![0, 1]);
    // No shard to send it to: answered at once, nothing journaled.
    let c = funded();
    let text = String::from_utf8(answer(&money(MoneyShard::Only), &[], &c)).unwrap();
    assert!(
        text.starts_with("HTTP/1.0 400") && text.contains("&shard=N"),
        "{text}"
    );
    let text = String::from_utf8(answer(&money(MoneyShard::Shard(2)), &[], &c)).unwrap();
    assert!(
        text.starts_with("HTTP/1.0 404") && text.contains("no shard 2"),
        "{text}"
    );
}

#[test]
fn money_answers_say_the_shard_and_outcome() {
    let c = funded();
    let request = Request::Money {
        action: AdminAction::Withdraw {
            account: 1,
            asset: 1,
            amount: 900,
        },
        to: MoneyShard::Shard(1),
    };
    let acted = |outcome| {
        let reply = ShardReply::Acted {
            shard: 1,
            outcome,
            cancelled: 0,
        };
        String::from_utf8(answer(&request, &[reply], &c)).unwrap()
    };
    let text = acted(AdminOutcome::Applied);
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"action": "withdraw", "account": 1, "asset": "USD", "asset_id": 1,
            "amount": 900, "shard": 1, "outcome": "applied"})
    );
    let text = acted(AdminOutcome::InsufficientFunds);
    assert!(text.starts_with("HTTP/1.0 409") && text.contains("\"insufficient_funds\""));
    let text = acted(AdminOutcome::UnknownAsset);
    assert!(text.starts_with("HTTP/1.0 404") && text.contains("\"unknown_asset\""));
    let text = acted(AdminOutcome::InvalidAmount);
    assert!(text.starts_with("HTTP/1.0 400") && text.contains("\"invalid_amount\""));
    let refused = ShardReply::Refused {
        shard: 1,
        why: "disk full".into(),
    };
    let text = String::from_utf8(answer(&request, &[refused], &c)).unwrap();
    assert!(text.starts_with("HTTP/1.0 503"), "{text}");
}

#[test]
fn balances_answer_each_shard_and_the_total() {
    let b = |asset: &str, id, available, held| AssetBalance {
        asset: asset.into(),
        id,
        available,
        held,
    };
    let replies = [
        ShardReply::Balances {
            shard: 1,
            balances: vec![b("USD", 1, u64::MAX, 5), b("BTC", 2, 0, 0)],
        },
        ShardReply::Balances {
            shard: 0,
            balances: vec![b("USD", 1, 10, 0), b("BTC", 2, 3, 4)],
        },
    ];
    let text = String::from_utf8(answer(&Request::Balances(7), &replies, &funded())).unwrap();
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["account"], 7);
    assert_eq!(v["shards"][0]["shard"], 0);
    assert_eq!(v["shards"][1]["balances"][0]["available"], u64::MAX);
    assert_eq!(
        v["total"][1],
        serde_json::json!({"asset": "BTC", "id": 2, "available": 3, "held": 4})
    );
    // The total of USD passes u64: written as the exact integer.
    assert!(
        body.contains("\"available\":18446744073709551625"),
        "{body}"
    );
}
