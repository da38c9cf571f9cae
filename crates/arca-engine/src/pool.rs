//! Buffers handed back and forth between the backup's threads instead of allocated per chunk.
//!
//! A fresh allocation of a chunk-sized buffer is memory the kernel has to map and zero page by
//! page (and, in a virtual machine, often the host too); reusing a few buffers avoids that for
//! every chunk after the first few.

use std::sync::Mutex;

pub(crate) struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl BufPool {
    /// A pool that keeps at most `keep` idle buffers.
    pub(crate) fn new(keep: usize) -> Self {
        BufPool {
            free: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// An empty buffer that can hold `cap` bytes.
    pub(crate) fn get(&self, cap: usize) -> Vec<u8> {
        let v = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut v = v.unwrap_or_default();
        v.reserve(cap);
        v
    }

    /// Gives a buffer back for reuse.
    pub(crate) fn put(&self, mut v: Vec<u8>) {
        v.clear();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < self.keep {
            free.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_bounds() {
        let pool = BufPool::new(1);
        let mut a = pool.get(100);
        a.extend_from_slice(b"abc");
        let ptr = a.as_ptr();
        pool.put(a);
        pool.put(Vec::with_capacity(10)); // beyond `keep`: dropped
        let b = pool.get(50);
        assert!(b.is_empty() && b.capacity() >= 100);
        assert_eq!(b.as_ptr(), ptr);
        assert!(pool.get(10).capacity() >= 10);
    }
}
