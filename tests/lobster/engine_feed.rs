//! The AMZN day through a real `veloz serve` process, watched by real binary-feed
//! subscribers over loopback TCP: at every checkpoint their L3 and L2 books must hash like
//! the engine's books at that sequence number, across a subscriber reconnect and across an
//! engine restart.
//!
//! - The commands are the ones the in-process replay (`replay.rs`) gave the matching core,
//!   sent by one account (`alice`, self-trades allowed) with fresh client order ids. The
//!   engine runs one shard, so it numbers orders as the replay did.
//! - Subscribers: one L3 + L2 subscriber from the start (it reconnects when the engine
//!   restarts, and must then see a new feed session); a second one that leaves at a quarter
//!   and comes back at three quarters with fresh snapshots.
//! - At each checkpoint the test waits until the feed's watermark (a ping's pong) reaches the
//!   engine sequence number of the last command sent, then records both subscribers' hashes.
//! - The engine's truth is its own journal: after the run, the test replays the engine's
//!   journal into a matching core and compares the hashes at every checkpoint's sequence.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use veloz_core::{Command, Engine, Instrument, Seq};
use veloz_journal::{JournalReader, MmapStorage, RecordBody};
use veloz_load::client::Client;
use veloz_md::wire::{decode_server, FrameReader, MdEncoder, ServerMsg, Snapshot};
use veloz_md::{engine_l2_hash, engine_l3_hash, Applied, Channel, Subscriber};

use crate::common::{self, EngineProcess, TempDir};
use crate::files::{data_dir, read_messages, read_rows};
use crate::replay::Replay;
use crate::{SYMBOL, TICK};

const WAIT: Duration = Duration::from_secs(30);
const CHECKPOINTS: usize = 12;
const ALICE: (u32, &str) = (1, "demo-alice");

/// A checkpoint: the engine sequence, the steady subscriber's (L3, L2) hashes, and the
/// visitor's when it is connected.
type Checkpoint = (Seq, (u64, u64), Option<(u64, u64)>);

/// A blocking binary-feed subscriber to the L3 and L2 channels of one instrument.
struct FeedSub {
    stream: TcpStream,
    reader: FrameReader,
    enc: MdEncoder,
    session: u64,
    l3: Option<Subscriber>,
    l2: Option<Subscriber>,
    next_ping: u64,
    /// Updates applied.
    updates: u64,
}

impl FeedSub {
    fn connect(addr: &str, symbol: &str) -> FeedSub {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("feed {addr}: {e}"));
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut sub = FeedSub {
            stream,
            reader: FrameReader::new(veloz_md::wire::DEFAULT_MAX_SERVER_FRAME),
            enc: MdEncoder::new(),
            session: 0,
            l3: None,
            l2: None,
            next_ping: 1,
            updates: 0,
        };
        let frame = sub
            .enc
            .subscribe(&[symbol], &[Channel::L3, Channel::L2])
            .to_vec();
        sub.stream.write_all(&frame).unwrap();
        // Hello, then one snapshot per channel.
        while sub.l3.is_none() || sub.l2.is_none() || sub.session == 0 {
            sub.read_one();
        }
        sub
    }

    /// Read and apply one message; returns a pong's watermark of shard 0.
    fn read_one(&mut self) -> Option<Seq> {
        loop {
            if let Some(frame) = self.reader.next_frame().expect("well-formed feed") {
                let msg = decode_server(frame).expect("decodable feed frame");
                return self.apply(msg);
            }
            let n = self
                .reader
                .read_from(&mut self.stream)
                .expect("the feed keeps talking (heartbeats)");
            assert!(n > 0, "the feed closed the connection");
        }
    }

    fn apply(&mut self, msg: ServerMsg) -> Option<Seq> {
        match msg {
            ServerMsg::Hello(h) => self.session = h.session,
            ServerMsg::Snapshot(s) => {
                assert_eq!(s.session, self.session, "a snapshot of another session");
                match s.snapshot {
                    Snapshot::L3(l3) => self.l3 = Some(Subscriber::l3(&l3).unwrap()),
                    Snapshot::L2(l2) => self.l2 = Some(Subscriber::l2(&l2)),
                    other => panic!("not subscribed: {other:?}"),
                }
            }
            ServerMsg::Update(m) => {
                let sub = match m.channel() {
                    Channel::L3 => self.l3.as_mut(),
                    Channel::L2 => self.l2.as_mut(),
                    other => panic!("not subscribed to {other:?}: {m:?}"),
                }
                .expect("a snapshot before updates");
                match sub.apply(&m).unwrap() {
                    Applied::Applied(_) => self.updates += 1,
                    other => panic!("{m:?} gives {other:?}: the feed must be gap-free"),
                }
            }
            ServerMsg::Pong { marks, .. } => {
                assert_eq!(marks.session, self.session);
                return Some(marks.watermarks[0]);
            }
            ServerMsg::Heartbeat(_) => {}
            other => panic!("unexpected from the feed: {other:?}"),
        }
        None
    }

    /// Wait until the feed has published engine command `seq`: the books are then those
    /// of the engine after it.
    fn catch_up(&mut self, seq: Seq) {
        let deadline = Instant::now() + WAIT;
        loop {
            let id = self.next_ping;
            self.next_ping += 1;
            let frame = self.enc.ping(id).to_vec();
            self.stream.write_all(&frame).unwrap();
            let mark = loop {
                if let Some(m) = self.read_one() {
                    break m;
                }
            };
            if mark >= seq {
                assert_eq!(mark, seq, "the feed is past the last command sent");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the feed reached {mark}, not {seq}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn hashes(&self) -> (u64, u64) {
        (
            self.l3.as_ref().unwrap().hash(),
            self.l2.as_ref().unwrap().hash(),
        )
    }
}

/// `cmd` as sent by alice with client order id `coid`.
fn as_alice(cmd: Command, coid: u64) -> Command {
    match cmd {
        Command::New(mut o) => {
            o.account = ALICE.0;
            o.client_order_id = coid;
            Command::New(o)
        }
        Command::Cancel(mut c) => {
            c.account = ALICE.0;
            c.client_order_id = coid;
            Command::Cancel(c)
        }
        Command::Replace(mut r) => {
            r.account = ALICE.0;
            r.client_order_id = coid;
            Command::Replace(r)
        }
        other => panic!("the replay sends no {other:?}"),
    }
}

fn config(dir: &Path) -> std::path::PathBuf {
    let path = common::test_config(dir, "group", "");
    let mut config = veloz_config::Config::load(&path).unwrap();
    // One shard (order ids as in the replay), the replay's one instrument.
    config.engine.cores = vec![0];
    let mut amzn = config.instruments[0].clone();
    amzn.id = SYMBOL;
    amzn.symbol = "AMZN".into();
    amzn.price_scale = 4;
    amzn.tick_size = TICK;
    amzn.lot_size = 1;
    amzn.min_qty = 1;
    amzn.max_qty = 1_000_000_000;
    amzn.price_band_bps = 0;
    amzn.reference_price = 0;
    amzn.market_protection_ticks = 1_000_000;
    config.instruments = vec![amzn];
    std::fs::write(&path, config.to_toml_string()).unwrap();
    path
}

/// Send `cmds` (numbered from `coid`), reading alice's reports as they come so that her
/// session never backs up.
fn send(client: &mut Client, cmds: &[Command], coid: &mut u64) {
    for chunk in cmds.chunks(256) {
        for &cmd in chunk {
            *coid += 1;
            client.send(&as_alice(cmd, *coid)).unwrap();
        }
        while client.recv(Duration::from_millis(1)).unwrap().is_some() {}
    }
}

#[test]
fn amzn_day_through_the_engine_feed_matches_the_engines_books() {
    let _serial = common::serial();
    let dir = data_dir().join("AMZN_L1_VSandwar74");
    let stem = "AMZN_2012-06-21_34200000_57600000";
    let msgs = read_messages(&dir.join(format!("{stem}_message_1.csv")));
    let rows = read_rows(&dir.join(format!("{stem}_orderbook_1.csv")), 1);
    let (_, _, failures, commands) = Replay::new("AMZN", 1, &msgs, &rows).run();
    assert!(
        failures.is_empty(),
        "the in-process replay failed: {failures:?}"
    );
    assert!(commands.len() > 50_000);

    let tmp = TempDir::new("lobster-feed");
    let config = config(tmp.path());
    let mut engine = EngineProcess::start(&config);
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let mut steady = FeedSub::connect(&engine.feed, "AMZN");
    let first_session = steady.session;
    let mut visitor = Some(FeedSub::connect(&engine.feed, "AMZN"));
    let mut coid = 0u64;
    let mut sent: Seq = 0;
    // Engine sequence numbers the commands did not take (the clean-shutdown checkpoint).
    let mut offset: Seq = 0;
    let mut seen: Vec<Checkpoint> = Vec::new();
    let per = commands.len().div_ceil(CHECKPOINTS);
    let mut restarted = false;
    let mut restart_seq = 0;
    for (k, part) in commands.chunks(per).enumerate() {
        send(&mut alice, part, &mut coid);
        sent += part.len() as Seq;
        let seq = sent + offset;
        steady.catch_up(seq);
        if let Some(v) = visitor.as_mut() {
            v.catch_up(seq);
        }
        seen.push((seq, steady.hashes(), visitor.as_ref().map(|v| v.hashes())));
        let done = k + 1;
        if done == CHECKPOINTS / 4 {
            // The visitor drops its connection ...
            visitor = None;
        } else if done == 3 * CHECKPOINTS / 4 {
            // ... and comes back with fresh snapshots.
            let mut v = FeedSub::connect(&engine.feed, "AMZN");
            v.catch_up(seq);
            seen.push((seq, steady.hashes(), Some(v.hashes())));
            visitor = Some(v);
        } else if done == CHECKPOINTS / 2 {
            // The engine restarts: a new feed session, seeded from the recovered books.
            drop(alice);
            drop(steady);
            let (code, _, _) = engine.stop();
            assert_eq!(code, 0, "clean stop");
            engine = EngineProcess::start(&config);
            alice = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap().0;
            steady = FeedSub::connect(&engine.feed, "AMZN");
            assert_ne!(
                steady.session, first_session,
                "a restart is a new feed session"
            );
            // The clean shutdown journaled a checkpoint: one sequence number more.
            offset += 1;
            steady.catch_up(sent + offset);
            seen.push((sent + offset, steady.hashes(), None));
            restarted = true;
            restart_seq = sent + offset;
        }
    }
    assert!(restarted && visitor.is_some());
    let final_seq = sent + offset;
    // What the engine says of its feed since the restart: both subscribers connected and
    // never cut off, every command published.
    let text = common::scrape(&engine.metrics);
    let series = |s: &str| common::metric(&text, s).unwrap_or_else(|| panic!("{s} in\n{text}"));
    assert_eq!(series("veloz_feed_subscribers{feed=\"binary\"}"), 2.0);
    assert_eq!(series("veloz_feed_connections_total{feed=\"binary\"}"), 2.0);
    assert_eq!(series("veloz_feed_cut_off_total{feed=\"binary\"}"), 0.0);
    assert_eq!(
        series("veloz_feed_commands_total"),
        (final_seq - restart_seq) as f64
    );
    assert_eq!(series("veloz_feed_shards_down"), 0.0);
    let updates = steady.updates;
    assert!(
        updates > 10_000,
        "the steady subscriber applied {updates} updates since the restart"
    );
    drop(steady);
    drop(alice);
    let (code, _, _) = engine.stop();
    assert_eq!(code, 0, "clean stop");

    // The engine's books at each checkpoint, from its own journal.
    let instrument = Instrument {
        id: SYMBOL,
        symbol: "AMZN".into(),
        price_scale: 4,
        tick_size: TICK,
        lot_size: 1,
        min_qty: 1,
        max_qty: 1_000_000_000,
        price_band_bps: 0,
        reference_price: 0,
        market_protection_ticks: 1_000_000,
    };
    let mut truth = Engine::new(0, &[instrument]);
    let storage = MmapStorage::new(veloz_journal::shard_dir(&tmp.path().join("data"), 0)).unwrap();
    let mut events = Vec::new();
    let mut checks = seen.iter().peekable();
    let mut compared = 0;
    let mut last = 0;
    for record in JournalReader::open(storage, 0).unwrap() {
        let record = record.unwrap();
        if let RecordBody::Command(cmd) = record.body {
            events.clear();
            truth.apply(record.seq, record.ts, &cmd, &mut events);
        }
        last = record.seq;
        while let Some((seq, steady, visitor)) = checks.next_if(|c| c.0 == record.seq) {
            let want = (
                engine_l3_hash(&truth, SYMBOL),
                engine_l2_hash(&truth, SYMBOL),
            );
            assert_eq!(*steady, want, "steady subscriber at engine sequence {seq}");
            if let Some(v) = visitor {
                assert_eq!(*v, want, "reconnected subscriber at engine sequence {seq}");
            }
            compared += 1;
        }
    }
    // The last record is the final clean-shutdown checkpoint.
    assert_eq!(last, final_seq + 1, "the journal holds every command sent");
    assert_eq!(compared, seen.len(), "every checkpoint compared");
    println!(
        "AMZN through the engine: {final_seq} commands, {compared} checkpoints compared with the journal's books, {updates} updates applied by the steady subscriber after the restart"
    );
}
