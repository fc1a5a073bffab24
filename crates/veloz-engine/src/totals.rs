//! The merged view of the shards' metrics the control thread keeps: per shard the latest
//! cumulative counters and the latencies summed over every interval snapshot.
//!
//! Invariants: snapshots are folded in as they arrive; histograms share their bounds
//! ([`new_histogram`]), so adding them never fails. Read by the metrics exposition and the
//! shutdown report; written only by the control thread.

use hdrhistogram::Histogram;

use super::exposition::{self, ShardView};
use super::metrics::{new_histogram, Counters, ShardSnapshot};

/// What the control thread knows of one shard.
#[derive(Debug)]
pub struct ShardTotals {
    pub counters: Counters,
    /// Cumulative latencies since start, by `Latency` index.
    pub latencies: [Histogram<u64>; 5],
}

/// Every shard's totals.
#[derive(Debug)]
pub struct Totals {
    pub shards: Vec<ShardTotals>,
    pub started: std::time::Instant,
}

impl Totals {
    pub fn new(n: usize) -> Totals {
        Totals {
            shards: (0..n)
                .map(|_| ShardTotals {
                    counters: Counters::default(),
                    latencies: std::array::from_fn(|_| new_histogram()),
                })
                .collect(),
            started: std::time::Instant::now(),
        }
    }

    /// Fold one snapshot in.
    pub fn absorb(&mut self, snap: &ShardSnapshot) {
        let state = &mut self.shards[snap.shard as usize];
        state.counters = snap.counters;
        for (total, interval) in state.latencies.iter_mut().zip(&snap.intervals) {
            total
                .add(interval)
                .expect("histograms share their bounds (metrics::new_histogram)");
        }
    }

    /// Every shard merged, by `Latency` index.
    pub fn merged(&self) -> [Histogram<u64>; 5] {
        std::array::from_fn(|i| {
            let mut h = new_histogram();
            for s in &self.shards {
                h.add(&s.latencies[i]).expect("same bounds");
            }
            h
        })
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let views: Vec<ShardView<'_>> = self
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| ShardView {
                shard: i as u16,
                counters: &s.counters,
                latencies: &s.latencies,
            })
            .collect();
        exposition::render(
            &views,
            self.started.elapsed().as_secs_f64(),
            crate::logging::dropped(),
        )
    }
}
