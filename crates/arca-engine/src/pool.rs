//! Buffers reused between the backup pipeline's threads, and the byte budget that bounds how
//! much chunk data is in flight between them.
//!
//! Counting items is not enough to bound memory: with 4 MiB chunks (a video) a few queued items
//! hold as much as hundreds of SQLite pages, and every pooled buffer grows to the largest chunk
//! it has held. The budget caps the bytes of chunks between the walker and the packer, and the
//! pool caps the bytes it keeps idle (on a 2 GiB chat folder: buffers at the peak 46 -> 31 MiB
//! with a 16 MiB budget, BENCHMARKS.md).

use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub(crate) struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
    keep_bytes: usize,
}

impl BufPool {
    /// A pool that keeps at most `keep` idle buffers holding at most `keep_bytes` in all.
    pub(crate) fn new(keep: usize, keep_bytes: usize) -> Self {
        BufPool {
            free: Mutex::new(Vec::new()),
            keep,
            keep_bytes,
        }
    }

    /// An empty buffer that can hold `cap` bytes: the smallest idle one that does, else a new
    /// one of exactly `cap`. (Growing an idle buffer that is too small would copy it, and
    /// `Vec::reserve` may double it: a 3 MiB buffer asked for 3.5 MiB became 6 MiB, and the
    /// buffers in flight held up to twice the budget.)
    pub(crate) fn get(&self, cap: usize) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let fit = (0..free.len())
            .filter(|&i| free[i].capacity() >= cap)
            .min_by_key(|&i| free[i].capacity());
        match fit {
            Some(i) => free.swap_remove(i),
            None => {
                drop(free);
                Vec::with_capacity(cap)
            }
        }
    }

    /// Gives a buffer back for reuse.
    pub(crate) fn put(&self, mut v: Vec<u8>) {
        v.clear();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let idle: usize = free.iter().map(|b| b.capacity()).sum();
        if free.len() < self.keep && idle + v.capacity() <= self.keep_bytes {
            free.push(v);
        }
    }
}

/// Bytes in flight, at most `limit` unless a single item is larger (it then goes alone).
pub(crate) struct Budget {
    limit: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Budget {
            limit,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits until `n` more bytes fit, then counts them; `false` (nothing counted) if `stop`
    /// says the pipeline has failed, so a waiter never outlives the threads that would free it.
    pub(crate) fn take(&self, n: usize, stop: impl Fn() -> bool) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used > 0 && *used + n > self.limit {
            if stop() {
                return false;
            }
            used = self
                .freed
                .wait_timeout(used, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *used += n;
        true
    }

    /// Gives back `n` bytes counted by [`Budget::take`].
    pub(crate) fn give(&self, n: usize) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(n);
        drop(used);
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_bounds() {
        let pool = BufPool::new(1, 1000);
        let mut a = pool.get(100);
        a.extend_from_slice(b"abc");
        let ptr = a.as_ptr();
        pool.put(a);
        pool.put(Vec::with_capacity(10)); // beyond `keep`: dropped
        let b = pool.get(50);
        assert!(b.is_empty() && b.capacity() >= 100);
        assert_eq!(b.as_ptr(), ptr);
        // Beyond the idle byte cap: dropped.
        pool.put(Vec::with_capacity(2000));
        assert!(pool.get(1).capacity() < 2000);
        assert!(pool.get(10).capacity() >= 10);
    }

    /// A request gets the smallest idle buffer that holds it, and one larger than every idle
    /// buffer gets a new buffer of exactly its size, not a doubled one.
    #[test]
    fn best_fit_and_exact_sizes() {
        let pool = BufPool::new(4, 1 << 30);
        for cap in [4096, 1 << 20, 3 << 20] {
            pool.put(Vec::with_capacity(cap));
        }
        let b = pool.get(5000);
        assert!(
            (1 << 20..3 << 20).contains(&b.capacity()),
            "{}",
            b.capacity()
        );
        let small = pool.get(100);
        assert!(small.capacity() < 1 << 20, "{}", small.capacity());
        let big = pool.get((7 << 20) / 2);
        assert!(big.capacity() >= (7 << 20) / 2 && big.capacity() < 4 << 20);
        // The 3 MiB buffer is still idle: it did not fit 3.5 MiB and was not grown.
        assert!(pool.get(3 << 20).capacity() >= 3 << 20);
    }

    #[test]
    fn budget_waits_for_room_and_lets_a_large_item_go_alone() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        let budget = Budget::new(100);
        assert!(budget.take(60, || false));
        assert!(budget.take(40, || false));
        // Full: a waiter gives up when told to stop, having counted nothing.
        assert!(!budget.take(1, || true));
        // A waiter goes on once enough is given back, and not before.
        let got = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(budget.take(50, || stop.load(SeqCst)));
                got.store(1, SeqCst);
            });
            std::thread::sleep(Duration::from_millis(120));
            assert_eq!(got.load(SeqCst), 0);
            budget.give(40);
            std::thread::sleep(Duration::from_millis(120));
            assert_eq!(got.load(SeqCst), 0, "10 bytes free are not enough for 50");
            budget.give(60);
        });
        assert_eq!(got.load(SeqCst), 1);
        budget.give(50);
        // Larger than the whole budget: goes when nothing else is in flight.
        assert!(budget.take(500, || false));
        budget.give(500);
    }
}
