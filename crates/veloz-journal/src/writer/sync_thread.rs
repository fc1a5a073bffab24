//! The journal's helper ("sync") thread: group commit when `durability = "group"` with
//! `sync_driver = "thread"` ([`HelperRole::GroupSync`]), and in every mode keeping the
//! [`ARM_WINDOW`] bytes just ahead of the writer mapped writable. With `sync_driver =
//! "caller"` it only arms ([`HelperRole::ArmOnly`]: bounded steps, normal scheduler, parked
//! between passes, never a sync; it also re-arms the page a caller-driven partial sync
//! write-protected, `Shared::rearm`): the writer's caller runs the syncs (`caller_sync`).
//!
//! It is a state machine ([`Helper`]) whose passes never block and read time only from their
//! argument: its thread drives it (the default), or the writer's caller does with stepped
//! helpers (`writer/stepped.rs`).
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
//! At stop while failing, the thread ends without the last sync. Its failures set only its
//! own bit of `failed` ([`HELPER_FAILING`]), and its success clears only that bit.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::shared::{unpack, Shared, HELPER_FAILING, NO_REARM};
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
/// In group mode arming advances at most this far per pass of the loop (64 pages, against
/// 8,192 for the whole window), so that a pass never holds the thread long: it runs at
/// a real-time priority and must not keep a core from the shard, and a sync must never wait
/// behind a long arming call. At one pass per `group_max_wait_us` (200 us) that still arms
/// over 1 GB/s, above the append rate group commit sustains. With `durability = "none"` a
/// pass arms the whole window (nothing waits behind it, and appends run faster).
pub(super) const ARM_STEP: usize = 256 << 10;

/// What the helper thread does besides arming pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HelperRole {
    /// Group commit run by this thread (`SyncDriver::Thread`): sync, advance the watermark;
    /// arm [`ARM_STEP`] per pass.
    GroupSync,
    /// Only arm pages, `step` bytes per pass: the whole window with `durability = "none"`,
    /// [`ARM_STEP`] when the caller runs group commit (`SyncDriver::Caller`).
    ArmOnly { step: usize },
}

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

/// How far ahead of the writer pages are armed.
struct Armed {
    /// The segment generation the frontier is in.
    gen: u64,
    /// The writer's position when the last fill of the window began.
    from: usize,
    /// Pages below this offset (from where the writer was when the pass began) are armed.
    upto: usize,
    /// When the window was last armed from the writer's position on.
    at: Instant,
    /// A fill of the window is under way (it goes on at the next pass).
    filling: bool,
}

impl Armed {
    /// Nothing armed yet: the first call fills the window from the writer's position.
    fn none(now: Instant) -> Armed {
        Armed {
            gen: u64::MAX,
            from: 0,
            upto: 0,
            at: now,
            filling: false,
        }
    }
}

/// What one pass of the helper did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HelperPass {
    /// It synced, or a try failed: run the next pass at once.
    Again,
    /// Nothing to do until the next period (`poll`), or until the writer wakes it.
    Idle,
    /// The writer stopped it and it finished (the last sync made, in group mode).
    Stopped,
}

/// The journal's helper: group commit (when its role is [`HelperRole::GroupSync`]), and
/// keeping the pages just ahead of the writer mapped writable in every role. A state machine
/// whose [`Helper::pass`] never blocks and reads time only from its argument: the helper
/// thread drives it ([`Helper::run`]), or with stepped helpers (`JournalConfig::helpers`) the
/// writer's caller does, by its own clock.
pub(super) struct Helper<Y> {
    shared: Arc<Shared>,
    rx: Receiver<SyncMsg<Y>>,
    segs: VecDeque<SyncSeg<Y>>,
    poll: Duration,
    /// Group commit runs here.
    group: bool,
    /// Arming advances at most this far per pass.
    step: usize,
    armed: Armed,
    /// The durable watermark this helper advanced to.
    durable: u64,
    /// Since when records have been waiting (group mode).
    pending_since: Option<Instant>,
    /// While failing: when to try again.
    retry: Option<Instant>,
}

impl<Y: RangeSync> Helper<Y> {
    pub(super) fn new(
        shared: Arc<Shared>,
        rx: Receiver<SyncMsg<Y>>,
        segs: VecDeque<SyncSeg<Y>>,
        poll: Duration,
        role: HelperRole,
        now: Instant,
    ) -> Helper<Y> {
        let durable = shared.durable.load(Ordering::Acquire);
        let (group, step) = match role {
            HelperRole::GroupSync => (true, ARM_STEP),
            HelperRole::ArmOnly { step } => (false, step),
        };
        Helper {
            shared,
            rx,
            segs,
            poll,
            group,
            step,
            armed: Armed::none(now),
            durable,
            pending_since: None,
            retry: None,
        }
    }

    /// The helper thread: passes, parked for `poll` between idle ones (or until the writer
    /// unparks it).
    pub(super) fn run(mut self) {
        loop {
            match self.pass(Instant::now()) {
                HelperPass::Again => {}
                HelperPass::Idle => thread::park_timeout(self.poll),
                HelperPass::Stopped => return,
            }
        }
    }

    /// One pass at time `now`: take new segments, sync (group mode), arm a step; or wait
    /// out a retry interval.
    pub(super) fn pass(&mut self, now: Instant) -> HelperPass {
        let shared = &*self.shared;
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
        }) = self.rx.try_recv()
        {
            if let (Some(end), Some(last)) = (sealed_end, self.segs.back_mut()) {
                last.end = Some(end);
            }
            self.segs.push_back(SyncSeg {
                gen,
                handle,
                file,
                synced: 0,
                end: None,
            });
        }
        if self.retry.is_some_and(|t| now < t) {
            return if stop {
                HelperPass::Stopped
            } else {
                HelperPass::Idle
            };
        }
        let retrying = self.retry.is_some();
        if retrying {
            // Arm the writer's window again whatever was armed before the failure.
            self.armed.gen = u64::MAX;
        }
        let (gen, offset) = unpack(pos);
        let mut synced = false;
        if self.group {
            let durable = self.durable;
            // Whole pages, unless there are none to sync and records have waited in the
            // writer's page for a full period (a slow trickle), or this is the last sync
            // before stopping.
            let waited = |t: Instant| now.saturating_duration_since(t) >= self.poll;
            let partial = stop || (mark_seq <= durable && self.pending_since.is_some_and(waited));
            let (target_seq, target_pos) = if partial {
                (written.max(mark_seq), pos)
            } else {
                (mark_seq, mark_pos)
            };
            if target_seq > durable {
                let (g, o) = unpack(target_pos);
                if let Err((file, source)) = sync_upto(&mut self.segs, g, o, retrying) {
                    let e = JournalError::Sync {
                        file,
                        durable_seq: durable,
                        source,
                    };
                    self.fail(now, e.to_string());
                    return HelperPass::Again;
                }
                if partial {
                    // The sync cleaned, and so write-protected, the writer's page.
                    if let Some(cur) = self.segs.front().filter(|s| s.gen == g) {
                        let _ = cur.handle.prefault_range(o, 1);
                    }
                }
                self.durable = target_seq;
                shared.durable.store(target_seq, Ordering::Release);
                synced = true;
            }
            self.pending_since = if written > self.durable {
                Some(self.pending_since.filter(|_| !synced).unwrap_or(now))
            } else {
                None
            };
        } else {
            while self.segs.front().is_some_and(|s| s.gen < gen) {
                self.segs.pop_front();
            }
            // A caller-driven partial sync cleaned, and so write-protected, the writer's page.
            let rearm = shared.rearm.swap(NO_REARM, Ordering::AcqRel);
            if rearm != NO_REARM {
                let (g, o) = unpack(rearm);
                if let Some(cur) = self.segs.iter().find(|s| s.gen == g) {
                    let _ = cur.handle.prefault_range(o, 1);
                }
            }
        }
        if let Err(e) = arm_ahead(&self.segs, gen, offset, &mut self.armed, self.step, now) {
            self.fail(now, e.to_string());
            return HelperPass::Again;
        }
        if retrying {
            self.retry = None;
            shared.clear_failed(HELPER_FAILING);
        }
        if synced {
            return HelperPass::Again;
        }
        if stop && (!self.group || written <= self.durable) {
            return HelperPass::Stopped;
        }
        HelperPass::Idle
    }

    fn fail(&mut self, now: Instant, why: String) {
        self.shared.set_helper_failing(why);
        self.retry = Some(now + RETRY_EVERY);
    }
}

/// Keep `ARM_WINDOW` bytes ahead of the writer mapped writable, at most `step` bytes per
/// call: a fill of the window starts when the writer has used a quarter of it, when it moved
/// to a new segment, and every `REARM_EVERY` (writeback write-protects pages it cleans; pages
/// still writable cost only a page-table walk), and goes on over the next calls until the
/// window is armed.
fn arm_ahead<Y: RangeSync>(
    segs: &VecDeque<SyncSeg<Y>>,
    gen: u64,
    offset: usize,
    armed: &mut Armed,
    step: usize,
    now: Instant,
) -> Result<(), JournalError> {
    // An idle writer (the same position as at the last fill) needs no re-arming: its window
    // is re-armed at the first pass after it moves again.
    let due = now.saturating_duration_since(armed.at) >= REARM_EVERY;
    if armed.gen != gen || (due && offset != armed.from) {
        *armed = Armed {
            gen,
            from: offset,
            upto: offset,
            at: now,
            filling: true,
        };
    }
    let target = offset.saturating_add(ARM_WINDOW);
    if !armed.filling {
        if armed.upto > target - ARM_WINDOW / 4 {
            return Ok(());
        }
        armed.filling = true;
        armed.from = offset;
    }
    let from = armed.upto.max(offset);
    if from >= target {
        armed.filling = false;
        return Ok(());
    }
    let len = (target - from).min(step);
    if let Some(seg) = segs.iter().find(|s| s.gen == gen) {
        if let Err(source) = seg.handle.prefault_range(from, len) {
            if arming_failed(&source) {
                return Err(JournalError::Prepare {
                    file: seg.file.clone(),
                    offset: from as u64,
                    source,
                });
            }
        }
        armed.upto = from + len;
        armed.filling = armed.upto < target;
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
        /// Logged with the generation's high bit set, apart from syncs.
        fn prefault_range(&self, offset: usize, len: usize) -> std::io::Result<()> {
            self.log
                .0
                .lock()
                .unwrap()
                .push((self.id | 1 << 63, offset, len));
            Ok(())
        }
    }

    /// Arming fills the window a step per call, then waits until a quarter of it is used,
    /// and starts again from the writer's position in a new segment.
    #[test]
    fn arming_fills_the_window_in_steps_with_hysteresis() {
        const STEP: usize = ARM_WINDOW / 4;
        let log = Log::default();
        let mut segs = VecDeque::new();
        segs.push_back(seg(0, &log, 0));
        let mut now = Instant::now();
        let mut armed = Armed::none(now);
        let arms = |log: &Log| -> Vec<(usize, usize)> {
            let mut l = log.0.lock().unwrap();
            let got = l.iter().map(|&(_, o, n)| (o, n)).collect();
            l.clear();
            got
        };
        for _ in 0..6 {
            arm_ahead(&segs, 0, 100, &mut armed, STEP, now).unwrap();
        }
        let want: Vec<_> = (0..4).map(|i| (100 + i * STEP, STEP)).collect();
        assert_eq!(arms(&log), want, "four steps, then the window is armed");
        // Less than a quarter of the window used: nothing to do.
        arm_ahead(&segs, 0, 100 + STEP - 1, &mut armed, STEP, now).unwrap();
        assert!(arms(&log).is_empty());
        // A quarter used: the next fill starts where the armed range ends.
        arm_ahead(&segs, 0, 100 + STEP, &mut armed, STEP, now).unwrap();
        arm_ahead(&segs, 0, 100 + STEP, &mut armed, STEP, now).unwrap();
        assert_eq!(arms(&log), vec![(100 + ARM_WINDOW, STEP)]);
        // The re-arming period passed: nothing while the writer stays where it was when
        // the last fill began, a fill from its position once it moves.
        for _ in 0..5 {
            arm_ahead(&segs, 0, 100 + STEP, &mut armed, STEP, now).unwrap();
        }
        arms(&log);
        now += REARM_EVERY;
        arm_ahead(&segs, 0, 100 + STEP, &mut armed, STEP, now).unwrap();
        assert!(
            arms(&log).is_empty(),
            "an idle writer's window is left alone"
        );
        arm_ahead(&segs, 0, 100 + STEP + 1, &mut armed, STEP, now).unwrap();
        assert_eq!(arms(&log), vec![(100 + STEP + 1, STEP)]);
        // A new segment: from the writer's position there.
        segs.push_back(seg(1, &log, 0));
        arm_ahead(&segs, 1, 64, &mut armed, STEP, now).unwrap();
        assert_eq!(arms(&log), vec![(64, STEP)]);
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
