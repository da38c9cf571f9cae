//! The blobs one backup has sent on so far, so that a chunk met twice in a run (a forwarded
//! photo, a repeated SQLite page) is stored once.
//!
//! A day-0 backup sends every blob it meets, so this set grows with the data: as a hash set of
//! full ids it was the largest thing a backup held that grew with the data (19 MiB at its peak
//! for 134 k blobs). It keeps the first 128 bits of each id instead: ids are keyed BLAKE3, so
//! two different blobs share those bits with probability about n² / 2^129 (1e-21 for a billion
//! blobs), and one who lacks the key cannot make them collide. Were it to happen, the second blob
//! would not be stored and the restore and `check` would report it missing; no wrong byte would
//! be restored. The newest ids sit in a small hash set; every 16 Ki they are merged into one
//! sorted vector, 16 bytes per id with no spare room.

use std::collections::HashSet;

use arca_format::id::Id;

/// Ids held in the hash set before they are merged into the sorted vector.
const RECENT_MAX: usize = 1 << 14;

#[derive(Debug, Default)]
pub(crate) struct Sent {
    recent: HashSet<u128>,
    /// Sorted, each key once, none of them in `recent`.
    sorted: Vec<u128>,
}

fn key(id: &Id) -> u128 {
    u128::from_le_bytes(id.0[..16].try_into().expect("16 bytes"))
}

impl Sent {
    pub fn contains(&self, id: &Id) -> bool {
        let k = key(id);
        self.recent.contains(&k) || self.sorted.binary_search(&k).is_ok()
    }

    /// Records `id`; returns false if it was already recorded.
    pub fn insert(&mut self, id: &Id) -> bool {
        let k = key(id);
        if self.sorted.binary_search(&k).is_ok() || !self.recent.insert(k) {
            return false;
        }
        if self.recent.len() >= RECENT_MAX {
            self.merge();
        }
        true
    }

    fn merge(&mut self) {
        let mut recent: Vec<u128> = self.recent.drain().collect();
        recent.sort_unstable();
        let mut out = Vec::with_capacity(self.sorted.len() + recent.len());
        let (mut a, mut b) = (self.sorted.iter().peekable(), recent.iter().peekable());
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            if x < y {
                out.push(*a.next().expect("peeked"));
            } else {
                out.push(*b.next().expect("peeked"));
            }
        }
        out.extend(a);
        out.extend(b);
        self.sorted = out;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.recent.len() + self.sorted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> Id {
        Id(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    /// Across several merges every id inserted is found once, repeats are refused, and ids
    /// never inserted are absent.
    #[test]
    fn ids_are_found_across_merges() {
        let mut s = Sent::default();
        let n = 3 * RECENT_MAX as u32 + 123;
        for i in 0..n {
            assert!(s.insert(&id(i)), "{i} is new");
            if i % 1000 == 0 {
                // A repeat, both of a merged id and of a recent one.
                assert!(!s.insert(&id(i / 2)));
                assert!(!s.insert(&id(i)));
            }
        }
        assert_eq!(s.len(), n as usize);
        assert!(s.sorted.windows(2).all(|w| w[0] < w[1]));
        assert!(s.sorted.len() >= 3 * RECENT_MAX);
        for i in 0..n {
            assert!(s.contains(&id(i)), "{i}");
        }
        for i in n..n + 5000 {
            assert!(!s.contains(&id(i)), "{i} was never inserted");
        }
    }
}
