//! The engine map's parsing and validation, and the router against fake engines on loopback
//! (a thread that answers the logon with a LogonAck and hands on every order it reads).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread::JoinHandle;

use veloz_core::{NewOrder, Side};
use veloz_wire::{decode_client, ClientMessage, FrameDecoder, InstrumentInfo, LogonAck};

use super::*;

const TWO: &str = r#"
[[engines]]
name = "eq-a"
addresses = ["127.0.0.1:7700", "127.0.0.2:7700"]
instruments = ["AAPL", "AMZN"]

[[engines]]
name = "eq_b"
addresses = ["127.0.0.1:7710"]
instruments = ["MSFT", "NVDA"]
"#;

fn err(text: &str) -> String {
    EngineMap::from_toml(text).unwrap_err().to_string()
}

fn entry(name: &str, addresses: &[&str], instruments: &[&str]) -> EngineEntry {
    EngineEntry {
        name: name.into(),
        addresses: addresses.iter().map(|s| s.to_string()).collect(),
        instruments: instruments.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn a_map_parses_and_routes_by_symbol() {
    let map = EngineMap::from_toml(TWO).unwrap();
    assert_eq!(map.engines().len(), 2);
    let a = map.engine_of("AMZN").unwrap();
    assert_eq!(
        (a.name.as_str(), a.primary(), a.standbys()),
        (
            "eq-a",
            "127.0.0.1:7700",
            &["127.0.0.2:7700".to_string()][..]
        )
    );
    assert_eq!(map.engine_of("NVDA").unwrap().name, "eq_b");
    assert!(map.engine_of("TSLA").is_none());
    assert!(
        map.engine_of("aapl").is_none(),
        "symbols are case-sensitive"
    );
    assert_eq!(map.engine("eq_b").unwrap().addresses.len(), 1);
    assert_eq!(
        map.instruments().collect::<Vec<_>>(),
        [
            ("AAPL", "eq-a"),
            ("AMZN", "eq-a"),
            ("MSFT", "eq_b"),
            ("NVDA", "eq_b")
        ]
    );
    // What it writes reads back as the same map.
    assert_eq!(EngineMap::from_toml(&map.to_toml_string()).unwrap(), map);
}

#[test]
fn the_example_map_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/engines.example.toml");
    let map = EngineMap::load(&path).unwrap();
    assert!(map.engines().len() >= 2);
    assert!(map.engines().iter().all(|e| !e.standbys().is_empty()));
}

#[test]
fn an_instrument_owned_twice_is_refused_naming_it_and_both_engines() {
    let e = err(&TWO.replace("\"MSFT\", \"NVDA\"", "\"MSFT\", \"AMZN\""));
    assert_eq!(e, "instrument AMZN is owned by two engines: eq-a and eq_b");
    let e = err(&TWO.replace("\"AAPL\", \"AMZN\"", "\"AAPL\", \"AAPL\""));
    assert_eq!(e, "engine eq-a lists instrument AAPL twice");
}

#[test]
fn an_engine_without_an_address_is_refused_naming_it() {
    let e = err(&TWO.replace("[\"127.0.0.1:7710\"]", "[]"));
    assert!(e.starts_with("engine eq_b has no address"), "{e}");
    // A missing key is a parse error naming the key.
    let e = err("[[engines]]\nname = \"x\"\ninstruments = []\n");
    assert!(e.contains("addresses"), "{e}");
}

#[test]
fn duplicate_names_and_shared_addresses_are_refused() {
    let e = err(&TWO.replace("eq_b", "eq-a"));
    assert_eq!(e, "engine eq-a is listed twice");
    let e = err(&TWO.replace("127.0.0.1:7710", "127.0.0.2:7700"));
    assert_eq!(
        e,
        "address 127.0.0.2:7700 is listed for engine eq-a and for engine eq_b"
    );
}

#[test]
fn malformed_names_addresses_symbols_and_keys_are_refused() {
    for (bad, says) in [
        ("eq a", "only ASCII letters"),
        ("eq.a", "only ASCII letters"),
        ("", "empty"),
    ] {
        let e = EngineMap::new(vec![entry(bad, &["h:1"], &[])])
            .unwrap_err()
            .to_string();
        assert!(e.contains(says) && e.contains(&format!("{bad:?}")), "{e}");
    }
    let long = "x".repeat(MAX_NAME_LEN + 1);
    assert!(EngineMap::new(vec![entry(&long, &["h:1"], &[])]).is_err());
    for bad in [
        "7700",
        "host",
        "host:",
        ":7700",
        "host:0",
        "host:70000",
        "a b:1",
    ] {
        let e = EngineMap::new(vec![entry("e", &[bad], &[])])
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("engine e: address {bad:?}")), "{e}");
    }
    assert!(EngineMap::new(vec![entry("e", &["[::1]:7700"], &[])]).is_ok());
    for bad in ["", " AAPL"] {
        let e = EngineMap::new(vec![entry("e", &["h:1"], &[bad])])
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{bad:?}")), "{e}");
    }
    assert_eq!(err(""), "no [[engines]] entry");
    let e = err(&TWO.replace("name = \"eq_b\"", "name = \"eq_b\"\nshard = 1"));
    assert!(
        e.starts_with("not an engine map:") && e.contains("shard"),
        "{e}"
    );
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("veloz-router-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("engines.toml");
    std::fs::write(&path, TWO.replace("eq_b", "eq-a")).unwrap();
    let e = EngineMap::load(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("engine map {}: engine eq-a is listed twice", path.display())
    );
    let e = EngineMap::load(&dir.join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.toml: cannot read it"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fake engine: accepts one session, answers its logon with `announced`, and sends on
/// every order it reads (with its instrument id as the engine read it).
fn fake_engine(
    announced: &[(SymbolId, &str)],
) -> (String, mpsc::Receiver<Command>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let announced: Vec<(SymbolId, String)> =
        announced.iter().map(|(i, s)| (*i, s.to_string())).collect();
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut decoder = FrameDecoder::new(1 << 20);
        let mut account = 0;
        loop {
            while let Some(frame) = decoder.next_frame().unwrap() {
                match decode_client(frame, account).unwrap() {
                    ClientMessage::Logon(l) => {
                        account = l.account;
                        let ack = LogonAck {
                            session_id: 77,
                            heartbeat_interval_ms: 1_000,
                            instruments: announced
                                .iter()
                                .map(|(id, symbol)| InstrumentInfo {
                                    id: *id,
                                    symbol,
                                    price_scale: 4,
                                    tick_size: 100,
                                    lot_size: 1,
                                    min_qty: 1,
                                    max_qty: 1_000,
                                })
                                .collect(),
                            streams: 1,
                        };
                        let bytes = FrameEncoder::new().logon_ack(&ack).to_vec();
                        socket.write_all(&bytes).unwrap();
                    }
                    ClientMessage::Order(c) => {
                        let _ = tx.send(c);
                    }
                    _ => {}
                }
            }
            match socket.read(decoder.read_buf()) {
                Ok(0) | Err(_) => return,
                Ok(n) => decoder.commit(n),
            }
        }
    });
    (addr, rx, handle)
}

fn order(symbol: SymbolId, coid: u64) -> Command {
    Command::New(NewOrder::limit(0, symbol, coid, Side::Buy, 1_900_000, 5))
}

#[test]
fn the_router_sends_each_order_to_its_owner_with_the_owners_id() {
    // The two engines number their instruments differently; the router learns each one's.
    let (a_addr, a_orders, a) = fake_engine(&[(1, "AAPL"), (2, "AMZN")]);
    let (b_addr, b_orders, b) = fake_engine(&[(7, "MSFT"), (8, "NVDA"), (9, "AAPL")]);
    let map = EngineMap::new(vec![
        entry("a", &[&a_addr], &["AAPL", "AMZN"]),
        entry("b", &[&b_addr], &["MSFT", "NVDA"]),
    ])
    .unwrap();
    let mut router = Router::new(map, Credential::new(3, "s3cret"));
    assert!(!router.is_connected("a") && !router.is_connected("b"));
    // The command's own symbol id does not matter: the owner's is put in.
    assert_eq!(router.send("NVDA", &order(999, 1)).unwrap(), "b");
    assert!(
        router.is_connected("b") && !router.is_connected("a"),
        "lazy"
    );
    assert_eq!(router.send("AMZN", &order(999, 2)).unwrap(), "a");
    assert_eq!(router.send("AAPL", &order(0, 3)).unwrap(), "a");
    assert_eq!(router.session_id("a"), Some(77));
    assert_eq!(router.symbol_id("MSFT").unwrap(), 7);
    assert_eq!(router.id_on("b", "AAPL"), Some(9), "announced, not owned");
    assert_eq!(router.symbol_on("a", 2), Some("AMZN"));
    let e = router.send("TSLA", &order(1, 4)).unwrap_err().to_string();
    assert_eq!(
        e,
        "no engine in the map owns instrument TSLA: the order was not sent"
    );
    assert_eq!(router.route("MSFT").unwrap().name, "b");
    assert!(router.route("TSLA").is_err());
    let admin = Command::Admin(veloz_core::AdminCommand {
        request_id: 1,
        action: veloz_core::AdminAction::HaltInstrument(1),
    });
    assert!(matches!(
        router.send("AAPL", &admin),
        Err(RouteError::NotAnOrder)
    ));
    assert_eq!(
        router.mass_cancel_everywhere(5).unwrap(),
        ["a".to_string(), "b".to_string()]
    );
    drop(router);
    a.join().unwrap();
    b.join().unwrap();
    let on = |rx: mpsc::Receiver<Command>| -> Vec<(Option<SymbolId>, u64)> {
        rx.iter()
            .map(|c| (c.symbol(), c.client_order_id()))
            .collect()
    };
    assert_eq!(on(a_orders), [(Some(2), 2), (Some(1), 3), (None, 5)]);
    assert_eq!(on(b_orders), [(Some(8), 1), (None, 5)]);
}

#[test]
fn an_engine_that_does_not_announce_its_instruments_is_refused() {
    let (addr, orders, engine) = fake_engine(&[(1, "AAPL")]);
    let map = EngineMap::new(vec![entry("a", &[&addr], &["AAPL", "AMZN"])]).unwrap();
    let mut router = Router::new(map, Credential::new(3, "s3cret"));
    let e = router.send("AAPL", &order(1, 1)).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("engine a at {addr}: the map gives it instrument AMZN, but the engine does not announce it (it announces: AAPL (1)); fix the map or the engine's configuration")
    );
    assert!(!router.is_connected("a"));
    engine.join().unwrap();
    assert_eq!(orders.iter().count(), 0, "nothing was sent");
}

#[test]
fn a_failed_logon_names_engine_address_and_account_never_the_token() {
    // A port nothing listens on (bound, then closed).
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let map = EngineMap::new(vec![entry("gone", &[&addr], &["AAPL"])]).unwrap();
    let mut router = Router::new(map, Credential::new(3, "s3cret"));
    let e = router.client("gone").unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("engine gone at {addr}: logon of account 3 failed")),
        "{e}"
    );
    assert!(!e.contains("s3cret") && !format!("{router:?}").contains("s3cret"));
    let e = router.client("other").unwrap_err().to_string();
    assert_eq!(e, "no engine named other in the map");
}
