//! The blobs one backup has sent on so far, so that a chunk met twice in a run (a forwarded
//! photo, a repeated SQLite page) is stored once.
//!
//! A day-0 backup sends every blob it meets, so this set grows with the data: as a hash set of
//! full ids it was the largest thing a backup held that grew with the data (19 MiB at its peak
//! for 134 k blobs). It keeps the first 128 bits of each id instead: ids are keyed BLAKE3, so
//! two different blobs share those bits with probability about n² / 2^129 (1e-21 for a billion
//! blobs), and one who lacks the key cannot make them collide. Were it to happen, the second blob
//! would not be stored and the restore and `check` would report it missing; no wrong byte would
//! be restored.
//!
//! The newest ids sit in a small hash set, merged into one sorted vector (16 bytes per id) once
//! they number 16 Ki (or the limit below, if lower) or an eighth of the vector, whichever is
//! more. Past [`Spill::max_entries`] ids (the limit the master index has in memory), the
//! vector goes to this device's disk as a sorted run (`keyruns.rs`), with a Bloom filter and each 4 KiB page's
//! first id kept in memory: about 1.3 bytes per id in memory instead of 16. Held whole, the
//! vector made a day-0 backup's peak grow by about twice its size (it is reallocated as it
//! grows): 2.4 MB of heap at 8.5 GiB, about 4.7 MB at 17 GiB.

use std::collections::HashSet;

use arca_format::id::Id;

use crate::Result;
use crate::keyruns::KeyRuns;
use crate::spill::Spill;

/// Ids held in the hash set before they are merged into the sorted vector, at the least.
const RECENT_MAX: usize = 1 << 14;

#[derive(Debug)]
pub(crate) struct Sent {
    recent: HashSet<u128>,
    /// Sorted, each key once, none of them in `recent` or on disk.
    sorted: Vec<u128>,
    /// Past `memory_max` keys in `sorted`, they move here.
    disk: KeyRuns,
    memory_max: usize,
}

fn key(id: &Id) -> u128 {
    u128::from_le_bytes(id.0[..16].try_into().expect("16 bytes"))
}

impl Sent {
    /// An empty set that moves its keys to a scratch file in `spill.dir` past
    /// `spill.max_entries` of them.
    pub fn new(spill: &Spill) -> Self {
        Sent {
            recent: HashSet::new(),
            sorted: Vec::new(),
            disk: KeyRuns::new(spill.dir.clone()),
            memory_max: spill.max_entries.max(1),
        }
    }

    /// Whether `id` was recorded. Errors only when a scratch file cannot be read.
    pub fn contains(&self, id: &Id) -> Result<bool> {
        let k = key(id);
        Ok(self.recent.contains(&k)
            || self.sorted.binary_search(&k).is_ok()
            || self.disk.contains(k)?)
    }

    /// Records `id`, which the caller has just found not [`Sent::contains`]. Errors only when
    /// a scratch file cannot be written.
    pub fn add(&mut self, id: &Id) -> Result<()> {
        self.recent.insert(key(id));
        let recent_max = RECENT_MAX.min(self.memory_max);
        if self.recent.len() >= recent_max.max(self.sorted.len() / 8) {
            self.merge();
            if self.sorted.len() >= self.memory_max {
                self.disk.push(&self.sorted)?;
                self.sorted = Vec::new();
            }
        }
        Ok(())
    }

    /// Records `id`; returns false if it was already recorded.
    #[cfg(test)]
    pub fn insert(&mut self, id: &Id) -> bool {
        if self.contains(id).unwrap() {
            return false;
        }
        self.add(id).unwrap();
        true
    }

    /// Merges the hash set into the vector in place, from the back: the vector grows by exactly
    /// the new ids, and no second copy of it is made.
    fn merge(&mut self) {
        let mut recent: Vec<u128> = self.recent.drain().collect();
        recent.sort_unstable();
        if self.sorted.is_empty() {
            // The first merge, and every one after the vector went to disk (with the default
            // limit, each): nothing to merge with.
            self.sorted = recent;
            return;
        }
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
        self.recent.len() + self.sorted.len() + self.disk.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> Id {
        Id(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    fn in_memory() -> Sent {
        Sent::new(&Spill {
            max_entries: usize::MAX,
            ..Spill::default()
        })
    }

    /// Across several merges every id inserted is found once, repeats are refused, and ids
    /// never inserted are absent.
    #[test]
    fn ids_are_found_across_merges() {
        let mut s = in_memory();
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
            assert!(s.contains(&id(i)).unwrap(), "{i}");
        }
        for i in n..n + 5000 {
            assert!(!s.contains(&id(i)).unwrap(), "{i} was never inserted");
        }
    }

    /// Past 128 Ki ids, merges wait for an eighth of the vector; the in-place merge keeps the
    /// vector sorted and every id findable, and the vector holds no spare room.
    #[test]
    fn merges_grow_apart_and_keep_every_id() {
        let mut s = in_memory();
        let n = 400_000u32;
        let cheap = |i: u32| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            Id(b)
        };
        let mut merges = 0;
        for i in 0..n {
            let before = s.sorted.len();
            assert!(!s.contains(&cheap(i)).unwrap());
            s.add(&cheap(i)).unwrap();
            merges += usize::from(s.sorted.len() != before);
        }
        assert!(s.sorted.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.sorted.capacity(), s.sorted.len());
        // 16 Ki at a time would be 24 merges; growing apart, fewer.
        assert!(merges < 20, "{merges} merges");
        for i in (0..n).step_by(97) {
            assert!(s.contains(&cheap(i)).unwrap(), "{i}");
        }
        assert!(!s.contains(&cheap(n)).unwrap());
    }

    /// Past the limit the keys move to disk: memory holds no more than the limit in the
    /// vector, every id is still found (in the hash set, the vector or any run), repeats are
    /// refused, and ids never inserted are absent.
    #[test]
    fn past_the_limit_ids_move_to_disk_and_are_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sent::new(&Spill {
            dir: dir.path().to_path_buf(),
            max_entries: 20_000,
        });
        let n = 9 * RECENT_MAX as u32 + 77;
        for i in 0..n {
            assert!(s.insert(&id(i)), "{i} is new");
            assert!(s.sorted.len() < 20_000);
            if i % 997 == 0 {
                assert!(!s.insert(&id(i / 3)), "{} was inserted", i / 3);
            }
        }
        assert!(s.disk.len() > 100_000, "{} keys on disk", s.disk.len());
        assert_eq!(s.len(), n as usize);
        for i in 0..n {
            assert!(s.contains(&id(i)).unwrap(), "{i}");
        }
        for i in n..n + 20_000 {
            assert!(!s.contains(&id(i)).unwrap(), "{i} was never inserted");
        }
        // The scratch files have no names: nothing is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
