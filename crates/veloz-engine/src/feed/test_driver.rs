//! Test support for the feed servers: a driver thread owns a [`FeedState`] (fed by a core
//! `Engine` over two instruments, AAPL and MSFT, price scale 2) and a server, and polls it;
//! the test thread sends it orders and jobs, and talks to the server as subscribers do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use veloz_core::{Command, Engine, Instrument, NewOrder, Price, Qty, Side};
use veloz_md::FeedBuilder;

use super::{unix_now_ns, FeedServer, FeedState, ServerStats, SymbolInfo};

pub(super) const AAPL: u32 = 1;
pub(super) const MSFT: u32 = 2;
/// The feed session of the tests' state.
pub(super) const SESSION: u64 = 42;

/// What the driver thread owns.
pub(super) struct World<S> {
    pub state: FeedState,
    pub server: S,
    pub engine: Engine,
    pub seq: u64,
}

impl<S: FeedServer> World<S> {
    /// A GTC limit order from account 1, through the engine, the feed and the server.
    pub fn order(&mut self, side: Side, symbol: u32, price: Price, qty: Qty) {
        self.seq += 1;
        let seq = self.seq;
        let ts = 1_700_000_000_000_000_000 + seq;
        let mut events = Vec::new();
        let cmd = Command::New(NewOrder::limit(1, symbol, seq, side, price, qty));
        self.engine.apply(seq, ts, &cmd, &mut events);
        for e in events {
            self.state.push_event(0, e);
        }
        let msgs = self.state.end_command(0, seq, ts).to_vec();
        self.server.publish(&self.state, &msgs);
    }
}

type Job<S> = Box<dyn FnOnce(&mut World<S>) + Send>;

/// The driver thread and its job queue; stops the thread on drop.
pub(super) struct Driver<S> {
    jobs: Sender<Job<S>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<S: FeedServer + 'static> Driver<S> {
    /// Drive `server`, polling it every `pause`.
    pub fn start(server: S, pause: Duration) -> Driver<S> {
        let instruments: Vec<Instrument> = [(AAPL, "AAPL"), (MSFT, "MSFT")]
            .iter()
            .map(|&(id, name)| Instrument {
                price_scale: 2,
                ..Instrument::simple(id, name)
            })
            .collect();
        let symbols = instruments
            .iter()
            .map(|i| SymbolInfo {
                id: i.id,
                name: i.symbol.clone(),
                price_scale: i.price_scale,
                shard: 0,
            })
            .collect();
        let mut state = FeedState::new(SESSION, symbols, 1, 5);
        state.seed(0, FeedBuilder::new([AAPL, MSFT]));
        let mut world = World {
            state,
            server,
            engine: Engine::new(0, &instruments),
            seq: 0,
        };
        let (jobs, rx) = channel::<Job<S>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                while let Ok(job) = rx.try_recv() {
                    job(&mut world);
                }
                world.server.poll(&world.state, unix_now_ns());
                std::thread::sleep(pause);
            }
        });
        Driver {
            jobs,
            stop,
            thread: Some(thread),
        }
    }

    /// Run `f` on the driver thread and return its result.
    pub fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut World<S>) -> R + Send + 'static,
    ) -> R {
        let (tx, rx) = channel();
        self.jobs
            .send(Box::new(move |w| {
                let _ = tx.send(f(w));
            }))
            .unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    pub fn order(&self, side: Side, symbol: u32, price: Price, qty: Qty) {
        self.with(move |w| w.order(side, symbol, price, qty));
    }

    pub fn stats(&self) -> ServerStats {
        self.with(|w| w.server.stats())
    }
}

impl<S> Drop for Driver<S> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
