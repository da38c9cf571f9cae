//! The blobs one backup has sent on so far, so that a chunk met twice in a run (a forwarded
//! photo, a repeated SQLite page) is stored once.
//!
//! A day-0 backup sends every blob it meets, so this set grows with the data: as a hash set of
//! full ids it was the largest thing a backup held that grew with the data (19 MiB at its peak
//! for 134 k blobs). It keeps the first 128 bits of each id instead: ids are keyed BLAKE3, so
//! two different blobs share those bits with probability about n² / 2^129 (1e-21 for a billion
//! blobs), and one who lacks the key cannot make them collide. Were it to happen, the second blob
//! would not be stored and the restore and `check` would report it missing; no wrong byte would
//! be restored. The newest ids sit in a small hash set, merged into one sorted vector (16 bytes
//! per id) once they number 16 Ki or an eighth of the vector, whichever is more: each merge
//! copies the vector, so merges grow apart as it grows and a run copies each id about nine
//! times in all, not once per 16 Ki ids sent.

use std::collections::HashSet;

use arca_format::id::Id;

/// Ids held in the hash set before they are merged into the sorted vector, at the least.
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

    /// Records `id`, which the caller has just found not [`Sent::contains`].
    pub fn add(&mut self, id: &Id) {
        self.recent.insert(key(id));
        if self.recent.len() >= RECENT_MAX.max(self.sorted.len() / 8) {
            self.merge();
        }
    }

    /// Records `id`; returns false if it was already recorded.
    #[cfg(test)]
    pub fn insert(&mut self, id: &Id) -> bool {
        if self.contains(id) {
            return false;
        }
        self.add(id);
        true
    }

    /// Merges the hash set into the vector in place, from the back: the vector grows by exactly
    /// the new ids, and no second copy of it is made.
    fn merge(&mut self) {
        let mut recent: Vec<u128> = self.recent.drain().collect();
        recent.sort_unstable();
        let old = self.sorted.len();
        self.sorted.reserve_exact(recent.len());
        self.sorted.resize(old + recent.len(), 0);
        let (mut i, mut k) = (old, self.sorted.len());
        while let Some(&r) = recent.last() {
            k -= 1;
            if i > 0 && self.sorted[i - 1] > r {
                i -= 1;
                self.sorted[k] = self.sorted[i];
            } else {
                self.sorted[k] = r;
                recent.pop();
            }
        }
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

    /// Past 128 Ki ids, merges wait for an eighth of the vector; the in-place merge keeps the
    /// vector sorted and every id findable, and the vector holds no spare room.
    #[test]
    fn merges_grow_apart_and_keep_every_id() {
        let mut s = Sent::default();
        let n = 400_000u32;
        let cheap = |i: u32| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            Id(b)
        };
        let mut merges = 0;
        for i in 0..n {
            let before = s.sorted.len();
            assert!(!s.contains(&cheap(i)));
            s.add(&cheap(i));
            merges += usize::from(s.sorted.len() != before);
        }
        assert!(s.sorted.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.sorted.capacity(), s.sorted.len());
        // 16 Ki at a time would be 24 merges; growing apart, fewer.
        assert!(merges < 20, "{merges} merges");
        for i in (0..n).step_by(97) {
            assert!(s.contains(&cheap(i)), "{i}");
        }
        assert!(!s.contains(&cheap(n)));
    }
}
