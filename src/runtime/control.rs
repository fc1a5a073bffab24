//! The control thread: pinned to its own core (or sharing one with a shard on small
//! hosts), it reads what the shards report over their control rings and never touches
//! shard state.
//!
//! It announces the listening address once every shard has recovered, checks each shard's
//! recovered state against the clean-shutdown marker of the previous run, and logs each
//! shard's stop. It sleeps 1 ms between polls: nothing it does is on the order path.
#![forbid(unsafe_code)]

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rtrb::Consumer;

use super::mesh::ControlMsg;
use super::shard::Shared;
use super::{ServeError, ShutdownMarker, SHUTDOWN_MARKER};

/// Start the control thread; it runs until `done` is set (after the shards have joined).
pub fn spawn(
    shared: Arc<Shared>,
    rx: Vec<Consumer<ControlMsg>>,
    core: usize,
    marker: Option<ShutdownMarker>,
    done: Arc<AtomicBool>,
) -> JoinHandle<Result<(), ServeError>> {
    std::thread::Builder::new()
        .name("veloz-control".into())
        .spawn(move || {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                eprintln!("veloz: warning: could not pin the control thread to core {core}");
            }
            run(&shared, rx, marker, &done)
        })
        .expect("spawn control thread")
}

fn run(
    shared: &Shared,
    mut rx: Vec<Consumer<ControlMsg>>,
    marker: Option<ShutdownMarker>,
    done: &AtomicBool,
) -> Result<(), ServeError> {
    let n = rx.len();
    let mut ready = 0;
    let mut result = Ok(());
    loop {
        let mut idle = true;
        for consumer in rx.iter_mut() {
            while let Ok(msg) = consumer.pop() {
                idle = false;
                match msg {
                    ControlMsg::Ready {
                        shard,
                        port: p,
                        last_seq,
                        state_hash,
                    } => {
                        if let Some(e) = check_marker(
                            shared,
                            marker.as_ref(),
                            shard as usize,
                            last_seq,
                            state_hash,
                        ) {
                            eprintln!("veloz: error: {e}");
                            shared.stop.store(true, Ordering::SeqCst);
                            result = Err(e);
                        }
                        ready += 1;
                        if ready == n && result.is_ok() {
                            let host = shared
                                .config
                                .gateway
                                .listen
                                .rsplit_once(':')
                                .map_or("127.0.0.1", |(h, _)| h);
                            // Scripts and tests read this line from stdout.
                            println!("veloz: listening on {host}:{p}");
                            let _ = std::io::stdout().flush();
                        }
                    }
                    ControlMsg::Stopped { .. } => {}
                }
            }
        }
        if idle {
            if done.load(Ordering::SeqCst) {
                return result;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The recovered state of `shard` must equal what the last clean shutdown recorded.
fn check_marker(
    shared: &Shared,
    marker: Option<&ShutdownMarker>,
    shard: usize,
    last_seq: u64,
    state_hash: u64,
) -> Option<ServeError> {
    let m = marker?.shards.iter().find(|m| m.shard == shard)?;
    let recorded = u64::from_str_radix(&m.state_hash, 16).ok()?;
    if m.last_seq == last_seq && recorded == state_hash {
        eprintln!("veloz: shard {shard}: state matches the clean shutdown (sequence {last_seq}, hash {state_hash:016x})");
        return None;
    }
    Some(ServeError::StateMismatch {
        shard,
        recovered_seq: last_seq,
        recovered: state_hash,
        marker_seq: m.last_seq,
        marker: recorded,
        path: shared.data_dir.join(SHUTDOWN_MARKER).display().to_string(),
    })
}
