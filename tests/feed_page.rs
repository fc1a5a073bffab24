//! The live book page (`http://<feed.ws_listen>/`) of a real `veloz serve`, loaded in
//! headless Chromium (Debian package `chromium`, installed by `make tools`): after a few
//! orders, the page's ladder shows the engine's best bid and ask (read from the DOM by the
//! page's stable element ids), its connection state is live, and a screenshot of it is a
//! real PNG.
//!
//! Without `chromium` on PATH the test fails and says to run `make tools`. Engine tests hold
//! `common::serial()`.

mod common;

use std::path::Path;
use std::process::{Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use veloz_core::Side;
use veloz_load::client::Client;
use veloz_wire::ExecType;

const WAIT: Duration = Duration::from_secs(10);

/// Send a GTC limit order of AAPL (id 1, price scale 4) and wait for its acceptance
/// (skipping the reports of earlier orders that traded as makers).
fn order(c: &mut Client, coid: u64, side: Side, price: i64, qty: u64) {
    c.send(&limit(1, coid, side, price, qty)).unwrap();
    loop {
        let r = c.next_report(WAIT).unwrap();
        if r.client_order_id == coid {
            assert_eq!(r.exec_type, ExecType::Accepted, "{r:?}");
            return;
        }
    }
}

/// Headless Chromium on `url` with a fresh profile in `profile`, extra arguments `args`;
/// killed after 90 s.
fn chromium(profile: &Path, args: &[String], url: &str) -> Output {
    let which = Process::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .unwrap();
    assert!(
        which.status.success(),
        "chromium is not installed: run `make tools` (it installs the Debian package chromium)"
    );
    let mut child = Process::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The text of the element with id `id` in `dom` (the page writes ids on table cells).
fn text_of(dom: &str, id: &str) -> Option<String> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let rest = &dom[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    Some(rest[start..end].trim().to_string())
}

#[test]
fn the_book_page_shows_the_engines_best_bid_and_ask() {
    let _serial = serial();
    let dir = TempDir::new("feed-page");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    assert!(!engine.ws.is_empty(), "{:?}", engine.stdout_lines);
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    order(&mut alice, 1, Side::Buy, 1_885_000, 5);
    order(&mut alice, 2, Side::Buy, 1_890_000, 3);
    order(&mut bob, 3, Side::Sell, 1_910_000, 4);
    order(&mut bob, 4, Side::Sell, 1_905_000, 9);
    // A trade: 2 of the best bid; 1 stays at 189.00.
    order(&mut bob, 5, Side::Sell, 1_890_000, 2);
    let url = format!("http://{}/", engine.ws);

    // The DOM once the page has had its snapshots: the ladder's best bid and ask.
    let out = chromium(
        &dir.path().join("profile-dom"),
        &["--virtual-time-budget=4000".into(), "--dump-dom".into()],
        &url,
    );
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    let context = || {
        format!(
            "chromium exited {:?}; DOM:\n{dom:.6000}\nstderr:\n{:.3000}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert_eq!(
        text_of(&dom, "best-bid-AAPL").as_deref(),
        Some("189.0000"),
        "{}",
        context()
    );
    assert_eq!(
        text_of(&dom, "best-bid-qty-AAPL").as_deref(),
        Some("1"),
        "{}",
        context()
    );
    assert_eq!(
        text_of(&dom, "best-ask-AAPL").as_deref(),
        Some("190.5000"),
        "{}",
        context()
    );
    assert_eq!(
        text_of(&dom, "best-ask-qty-AAPL").as_deref(),
        Some("9"),
        "{}",
        context()
    );
    assert!(dom.contains("data-state=\"open\""), "{}", context());
    // The last trade and the numbers are shown.
    assert!(dom.contains("trades #1"), "{}", context());
    // The other instruments have their (empty) ladders.
    assert!(dom.contains("id=\"book-MSFT\""), "{}", context());

    // A screenshot of the same page is a real PNG of a browser window.
    let png = dir.path().join("page.png");
    let out = chromium(
        &dir.path().join("profile-shot"),
        &[
            "--virtual-time-budget=4000".into(),
            format!("--screenshot={}", png.display()),
        ],
        &url,
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}); chromium exited {:?}: {}",
            png.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 900), "the window size asked for");
    assert!(
        bytes.len() > 10_000,
        "a {} byte screenshot is too small to show a page",
        bytes.len()
    );

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}
