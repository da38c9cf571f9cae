use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of traffic: on a paid cloud, requests are money.
///
/// For services reached over HTTP (S3, WebDAV, the cloud drives) every HTTP request is counted,
/// retries and listing pages included, with the bytes of its body and of its answer's body. For
/// the others (a local folder, memory, SFTP) every storage operation counts as one request.
#[derive(Debug, Default)]
pub struct Stats {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub requests: u64,
    /// Operations tried again after a transient error.
    pub retries: u64,
}

impl Stats {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }
    pub(crate) fn sent(&self, n: u64) {
        self.bytes_sent.fetch_add(n, Relaxed);
    }
    pub(crate) fn received(&self, n: u64) {
        self.bytes_received.fetch_add(n, Relaxed);
    }
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            requests: self.requests.load(Relaxed),
            retries: self.retries.load(Relaxed),
        }
    }
}
