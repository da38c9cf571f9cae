use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Counters the engine advances and a progress display reads.
#[derive(Debug, Default)]
pub struct Counters {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub total_files: AtomicU64,
    pub total_bytes: AtomicU64,
    /// Set once the totals are final.
    pub totals_known: AtomicBool,
}

impl Counters {
    pub(crate) fn add(&self, files: u64, bytes: u64) {
        if files > 0 {
            self.files.fetch_add(files, Relaxed);
        }
        if bytes > 0 {
            self.bytes.fetch_add(bytes, Relaxed);
        }
    }

    pub(crate) fn set_totals(&self, files: u64, bytes: u64) {
        self.total_files.store(files, Relaxed);
        self.total_bytes.store(bytes, Relaxed);
        self.totals_known.store(true, Relaxed);
    }
}
