use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of traffic: on a paid cloud, requests are money.
#[derive(Debug, Default)]
pub struct Stats {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    requests: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub requests: u64,
}

impl Stats {
    pub(crate) fn sent(&self, n: usize) {
        self.bytes_sent.fetch_add(n as u64, Relaxed);
        self.requests.fetch_add(1, Relaxed);
    }
    pub(crate) fn received(&self, n: usize) {
        self.bytes_received.fetch_add(n as u64, Relaxed);
        self.requests.fetch_add(1, Relaxed);
    }
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            requests: self.requests.load(Relaxed),
        }
    }
}
