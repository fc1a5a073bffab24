//! The journal's helper ("sync") thread: group commit when `durability = "group"`, and in
//! both modes keeping the [`ARM_WINDOW`] bytes just ahead of the writer mapped writable.
//!
//! Contract: it learns of new segments from [`SyncMsg`]s (sent before any position names
//! their generation) and of the writer's progress from the shared atomics. In group mode it
//! syncs in order (every older segment to its end, then the current one) and advances the
//! durable watermark only over synced bytes: whole pages up to the writer's mark, or the
//! partial page too once records waited in it a full period, or at stop. A sync or arming
//! error is stored in the shared state (`failed`, `failure`: the writer refuses appends, the
//! journal is "unavailable") and retried every [`RETRY_EVERY`]: the range whose sync failed
//! is written again through the file first ([`RangeSync::rewrite_range`]: after a failed
//! writeback the kernel may have marked its pages clean, so a bare second sync could succeed
//! without writing them), then synced; when that and the arming succeed the flag is cleared
//! and the watermark moves on. Nothing becomes durable that was not synced after the error.
//! At stop while failing, the thread ends without the last sync.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::shared::{unpack, Shared};
use super::RETRY_EVERY;
use crate::backend::RangeSync;
use crate::error::JournalError;

/// The helper thread keeps this many bytes ahead of the writer mapped writable, so that the
/// appending thread takes no page fault (and never waits in one for the filesystem). The
/// window is small enough that armed pages receive data soon (arming adds next to no
/// writeback) and large enough to cover a helper thread that is late to run at the
/// journal's full append speed (docs/BENCHMARKS.md, "Figures behind design choices").
pub(super) const ARM_WINDOW: usize = 32 << 20;
/// ... and re-arms the window at least this often, since writeback write-protects the pages
/// it cleans.
const REARM_EVERY: Duration = Duration::from_millis(100);

pub(super) enum SyncMsg<Y> {
    /// A new segment of generation `gen`; the previous one ended at `sealed_end`.
    Roll {
        gen: u64,
        handle: Y,
        file: String,
        sealed_end: Option<usize>,
    },
}

pub(super) struct SyncSeg<Y> {
    pub(super) gen: u64,
    pub(super) handle: Y,
    pub(super) file: String,
    /// Synced up to here.
    pub(super) synced: usize,
    /// Where its data ended when the next segment was activated.
    pub(super) end: Option<usize>,
}

/// Where the helper last armed pages ahead of the writer.
struct Armed {
    gen: u64,
    from: usize,
    at: Instant,
}

/// The journal's helper thread: group commit (when `group`), and keeping the pages just ahead
/// of the writer mapped writable in both modes.
pub(super) fn helper_loop<Y: RangeSync>(
    shared: Arc<Shared>,
    rx: Receiver<SyncMsg<Y>>,
    mut segs: VecDeque<SyncSeg<Y>>,
    poll: Duration,
    group: bool,
) {
    let mut durable = shared.durable.load(Ordering::Acquire);
    let mut armed = Armed {
        gen: u64::MAX,
        from: 0,
        at: Instant::now(),
    };
    // Since when records have been waiting (group mode).
    let mut pending_since: Option<Instant> = None;
    // While failing: when to try again.
    let mut retry: Option<Instant> = None;
    let fail = |why: String| {
        Shared::set_failing(&shared.failed, &shared.failure, why);
        Some(Instant::now() + RETRY_EVERY)
    };
    loop {
        let stop = shared.stop.load(Ordering::Acquire);
        // Each (seq, pos) pair is loaded seq first: the writer stores them in the other
        // order, so the position covers at least the record the sequence number names.
        let written = shared.written.load(Ordering::Acquire);
        let pos = shared.pos.load(Ordering::Acquire);
        let mark_seq = shared.mark_seq.load(Ordering::Acquire);
        let mark_pos = shared.mark_pos.load(Ordering::Acquire);
        // Messages are sent before a position names their generation, so these cover it.
        while let Ok(SyncMsg::Roll {
            gen,
            handle,
            file,
            sealed_end,
        }) = rx.try_recv()
        {
            if let (Some(end), Some(last)) = (sealed_end, segs.back_mut()) {
                last.end = Some(end);
            }
            segs.push_back(SyncSeg {
                gen,
                handle,
                file,
                synced: 0,
                end: None,
            });
        }
        if retry.is_some_and(|t| Instant::now() < t) {
            if stop {
                return;
            }
            thread::park_timeout(poll);
            continue;
        }
        let retrying = retry.is_some();
        if retrying {
            // Arm the writer's window again whatever was armed before the failure.
            armed.gen = u64::MAX;
        }
        let (gen, offset) = unpack(pos);
        let mut synced = false;
        if group {
            // Whole pages, unless there are none to sync and records have waited in the
            // writer's page for a full period (a slow trickle), or this is the last sync
            // before stopping.
            let partial =
                stop || (mark_seq <= durable && pending_since.is_some_and(|t| t.elapsed() >= poll));
            let (target_seq, target_pos) = if partial {
                (written.max(mark_seq), pos)
            } else {
                (mark_seq, mark_pos)
            };
            if target_seq > durable {
                let (g, o) = unpack(target_pos);
                if let Err((file, source)) = sync_upto(&mut segs, g, o, retrying) {
                    let e = JournalError::Sync {
                        file,
                        durable_seq: durable,
                        source,
                    };
                    retry = fail(e.to_string());
                    continue;
                }
                if partial {
                    // The sync cleaned, and so write-protected, the writer's page.
                    if let Some(cur) = segs.front().filter(|s| s.gen == g) {
                        let _ = cur.handle.prefault_range(o, 1);
                    }
                }
                durable = target_seq;
                shared.durable.store(durable, Ordering::Release);
                synced = true;
            }
            pending_since = if written > durable {
                Some(
                    pending_since
                        .filter(|_| !synced)
                        .unwrap_or_else(Instant::now),
                )
            } else {
                None
            };
        } else {
            while segs.front().is_some_and(|s| s.gen < gen) {
                segs.pop_front();
            }
        }
        if let Err(e) = arm_ahead(&segs, gen, offset, &mut armed) {
            retry = fail(e.to_string());
            continue;
        }
        if retrying {
            retry = None;
            shared.failed.store(false, Ordering::Release);
        }
        if synced {
            continue;
        }
        if stop && (!group || written <= durable) {
            return;
        }
        thread::park_timeout(poll);
    }
}

/// Keep `ARM_WINDOW` bytes ahead of the writer mapped writable: again when the writer has
/// used a quarter of the window, when it moved to a new segment, and every `REARM_EVERY`
/// (writeback write-protects pages it cleans).
fn arm_ahead<Y: RangeSync>(
    segs: &VecDeque<SyncSeg<Y>>,
    gen: u64,
    offset: usize,
    armed: &mut Armed,
) -> Result<(), JournalError> {
    let due = armed.gen != gen
        || offset >= armed.from + ARM_WINDOW / 4
        || armed.at.elapsed() >= REARM_EVERY;
    if !due {
        return Ok(());
    }
    if let Some(seg) = segs.iter().find(|s| s.gen == gen) {
        if let Err(source) = seg.handle.prefault_range(offset, ARM_WINDOW) {
            if arming_failed(&source) {
                return Err(JournalError::Prepare {
                    file: seg.file.clone(),
                    offset: offset as u64,
                    source,
                });
            }
        }
        *armed = Armed {
            gen,
            from: offset,
            at: Instant::now(),
        };
    }
    Ok(())
}

/// Whether an error from arming pages means that writing them would fail (SIGBUS: EFAULT,
/// typically a full disk; EIO), rather than that arming is unsupported (EINVAL before Linux
/// 5.14) or was interrupted.
pub(super) fn arming_failed(e: &std::io::Error) -> bool {
    const EIO: i32 = 5;
    const EFAULT: i32 = 14;
    matches!(e.raw_os_error(), Some(EIO) | Some(EFAULT))
}

/// Sync every segment older than generation `gen` to its end, and `gen` up to `offset`;
/// when `rewrite` (a retry after a failure), write each range again before syncing it.
fn sync_upto<Y: RangeSync>(
    segs: &mut VecDeque<SyncSeg<Y>>,
    gen: u64,
    offset: usize,
    rewrite: bool,
) -> Result<(), (String, std::io::Error)> {
    let sync = |seg: &SyncSeg<Y>, end: usize| {
        let len = end - seg.synced;
        if rewrite {
            seg.handle.rewrite_range(seg.synced, len)?;
        }
        seg.handle.sync_range(seg.synced, len)
    };
    while let Some(front) = segs.front_mut() {
        if front.gen < gen {
            let end = front.end.unwrap_or(front.synced);
            if end > front.synced {
                sync(front, end).map_err(|e| (front.file.clone(), e))?;
            }
            segs.pop_front();
        } else {
            if front.gen == gen && offset > front.synced {
                sync(front, offset).map_err(|e| (front.file.clone(), e))?;
                front.synced = offset;
            }
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<(u64, usize, usize)>>>);

    struct Rec {
        id: u64,
        log: Log,
    }

    impl RangeSync for Rec {
        fn sync_range(&self, offset: usize, len: usize) -> std::io::Result<()> {
            self.log.0.lock().unwrap().push((self.id, offset, len));
            Ok(())
        }
    }

    fn seg(gen: u64, log: &Log, synced: usize) -> SyncSeg<Rec> {
        SyncSeg {
            gen,
            handle: Rec {
                id: gen,
                log: log.clone(),
            },
            file: format!("seg{gen}"),
            synced,
            end: None,
        }
    }

    #[test]
    fn sync_covers_sealed_segments_first_in_order() {
        let log = Log::default();
        let mut segs = VecDeque::new();
        segs.push_back(seg(0, &log, 100));
        sync_upto(&mut segs, 0, 500, false).unwrap();
        // Segment 0 sealed at 900, segment 1 written to 300, segment 2 to 64.
        segs.back_mut().unwrap().end = Some(900);
        let mut s1 = seg(1, &log, 0);
        s1.end = Some(4000);
        segs.push_back(s1);
        segs.push_back(seg(2, &log, 0));
        sync_upto(&mut segs, 2, 64, false).unwrap();
        assert_eq!(
            *log.0.lock().unwrap(),
            vec![(0, 100, 400), (0, 500, 400), (1, 0, 4000), (2, 0, 64)]
        );
        assert_eq!(segs.len(), 1);
        // Nothing new: no sync.
        sync_upto(&mut segs, 2, 64, false).unwrap();
        assert_eq!(log.0.lock().unwrap().len(), 4);
    }
}
