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
    let gone = answer(&Request::Disconnect(9 << 48), &[]);
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
    let text = String::from_utf8(answer(&act, &replies)).unwrap();
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    assert!(text.contains("\"cancelled\":3"), "{text}");
    let refused = [ShardReply::Refused {
        shard: 1,
        why: "disk full".into(),
    }];
    let text = String::from_utf8(answer(&act, &refused)).unwrap();
    assert!(text.starts_with("HTTP/1.0 503"), "{text}");
    assert!(text.contains("shard 1: disk full"), "{text}");
    assert!(status(&timed_out(1)).contains("504"));
}
