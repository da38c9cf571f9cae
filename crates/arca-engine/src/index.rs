//! The in-memory union of every index file: blob id -> where it is stored.
//!
//! Its size grows with the number of blobs in the repository (a SQLite database stored page by
//! page makes many), so the blobs of the index files loaded at the start are kept in one vector
//! sorted by id, 52 bytes per blob and found by binary search, instead of a hash map (about
//! twice that, and three times while it grows). Blobs of packs added later, such as the packs
//! an interrupted backup left unindexed, go into a small hash map beside it.

use std::collections::HashMap;

use arca_format::blob::BlobKind;
use arca_format::id::Id;
use arca_format::index::{IndexFile, IndexPack};

/// Where one blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Position of the pack in [`MasterIndex::packs`].
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
    pub kind: BlobKind,
}

#[derive(Debug, Default)]
pub struct MasterIndex {
    packs: Vec<(Id, u64)>,
    pack_pos: HashMap<Id, u32>,
    /// Sorted by id, one entry per id.
    sorted: Vec<(Id, Location)>,
    /// Blobs of packs added one by one after the bulk load; none of them is in `sorted`.
    recent: HashMap<Id, Location>,
}

impl MasterIndex {
    /// The union of `files`, taken apart as they are read so that each file's memory is given
    /// back before the next. A blob stored in several packs is found in the first that lists it.
    pub fn from_files(files: Vec<IndexFile>) -> Self {
        let mut bulk = BulkLoad::default();
        for file in files {
            bulk.add_file(file);
        }
        bulk.finish()
    }

    /// Adds one pack's blobs; a blob already known keeps its first location.
    pub fn add_pack(&mut self, pack: &IndexPack) {
        let Some(pos) = self.new_pack(pack) else {
            return;
        };
        for b in &pack.blobs {
            if self.find(&b.id).is_none() {
                self.recent.entry(b.id).or_insert(location(pos, b));
            }
        }
    }

    /// Registers a pack; `None` if it is already known.
    fn new_pack(&mut self, pack: &IndexPack) -> Option<u32> {
        if self.pack_pos.contains_key(&pack.id) {
            return None;
        }
        let pos = self.packs.len() as u32;
        self.packs.push((pack.id, pack.size));
        self.pack_pos.insert(pack.id, pos);
        Some(pos)
    }

    fn find(&self, id: &Id) -> Option<&Location> {
        self.sorted
            .binary_search_by(|e| e.0.cmp(id))
            .ok()
            .map(|i| &self.sorted[i].1)
    }

    pub fn get(&self, id: &Id) -> Option<&Location> {
        self.find(id).or_else(|| self.recent.get(id))
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.get(id).is_some()
    }

    pub fn pack(&self, loc: &Location) -> (Id, u64) {
        self.packs[loc.pack as usize]
    }

    pub fn packs(&self) -> &[(Id, u64)] {
        &self.packs
    }

    pub fn has_pack(&self, id: &Id) -> bool {
        self.pack_pos.contains_key(id)
    }

    pub fn blob_count(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub fn blob_ids(&self) -> impl Iterator<Item = &Id> {
        self.sorted.iter().map(|e| &e.0).chain(self.recent.keys())
    }
}

/// Builds a [`MasterIndex`] from index files handed in one at a time (as they are downloaded),
/// so that no more than one decoded file is held beside the growing index.
#[derive(Debug, Default)]
pub struct BulkLoad {
    index: MasterIndex,
}

impl BulkLoad {
    pub fn add_file(&mut self, file: IndexFile) {
        let index = &mut self.index;
        for pack in file.packs {
            let Some(pos) = index.new_pack(&pack) else {
                continue;
            };
            index
                .sorted
                .extend(pack.blobs.iter().map(|b| (b.id, location(pos, b))));
        }
    }

    /// Sorts the blobs; of a blob listed by several packs, the pack added first is kept, as
    /// `MasterIndex::add_pack` does.
    pub fn finish(self) -> MasterIndex {
        let mut index = self.index;
        index
            .sorted
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.pack.cmp(&b.1.pack)));
        index.sorted.dedup_by(|later, first| later.0 == first.0);
        index.sorted.shrink_to_fit();
        index
    }
}

fn location(pack: u32, b: &arca_format::pack::BlobEntry) -> Location {
    Location {
        pack,
        offset: b.offset,
        length: b.length,
        raw_length: b.raw_length,
        kind: b.kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_format::pack::BlobEntry;

    fn pack(n: u8, blobs: &[u8]) -> IndexPack {
        IndexPack {
            id: Id([n; 32]),
            size: 1000,
            blobs: blobs
                .iter()
                .enumerate()
                .map(|(i, b)| BlobEntry {
                    id: Id([*b; 32]),
                    kind: BlobKind::Data,
                    offset: 10 * i as u32,
                    length: 10,
                    raw_length: 8,
                })
                .collect(),
        }
    }

    /// The bulk load and adding packs one by one give the same answers: every blob found, in
    /// the first pack that lists it, a pack listed twice counted once, unknown ids absent.
    #[test]
    fn bulk_load_and_one_by_one_agree() {
        let files = vec![
            IndexFile {
                packs: vec![pack(1, &[5, 3, 9]), pack(2, &[3, 7])],
            },
            IndexFile {
                packs: vec![pack(1, &[5, 3, 9]), pack(3, &[7, 1, 5])],
            },
        ];
        let bulk = MasterIndex::from_files(files.clone());
        let mut single = MasterIndex::default();
        files
            .iter()
            .flat_map(|f| &f.packs)
            .for_each(|p| single.add_pack(p));
        for idx in [&bulk, &single] {
            assert_eq!(idx.packs().len(), 3);
            assert_eq!(idx.blob_count(), 5);
            let mut ids: Vec<u8> = idx.blob_ids().map(|i| i.0[0]).collect();
            ids.sort();
            assert_eq!(ids, [1, 3, 5, 7, 9]);
            let at = |b: u8| {
                let l = idx.get(&Id([b; 32])).unwrap();
                (idx.pack(l).0.0[0], l.offset)
            };
            assert_eq!(at(3), (1, 10));
            assert_eq!(at(7), (2, 10));
            assert_eq!(at(5), (1, 0));
            assert_eq!(at(1), (3, 10));
            assert!(!idx.contains(&Id([2; 32])));
            assert!(idx.has_pack(&Id([3; 32])) && !idx.has_pack(&Id([4; 32])));
        }
        // A pack added after the bulk load: its new blobs are found, known ones keep their place.
        let mut bulk = bulk;
        bulk.add_pack(&pack(4, &[2, 9]));
        assert_eq!(bulk.blob_count(), 6);
        assert_eq!(bulk.pack(bulk.get(&Id([2; 32])).unwrap()).0, Id([4; 32]));
        assert_eq!(bulk.pack(bulk.get(&Id([9; 32])).unwrap()).0, Id([1; 32]));
    }
}
