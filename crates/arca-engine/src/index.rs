//! The union of every index file: blob id -> where it is stored.
//!
//! Its size grows with the number of blobs in the repository (a SQLite database stored page by
//! page makes many), so the blobs of the index files loaded at the start are kept in one vector
//! sorted by id, 52 bytes per blob and found by binary search, instead of a hash map (about
//! twice that, and three times while it grows). Past [`Spill::max_entries`] blobs, that vector
//! moves to this device's disk (`spill.rs`) and memory holds one id per 83 blobs. Blobs of
//! packs added later, such as the packs an interrupted backup left unindexed, go into a small
//! hash map beside it.

use std::collections::HashMap;

use arca_format::blob::BlobKind;
use arca_format::id::Id;
use arca_format::index::{IndexFile, IndexPack};

use crate::Result;
use crate::spill::{DiskIndex, Runs, Spill};

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

/// The blobs of the index files loaded at the start.
#[derive(Debug)]
enum Sorted {
    /// Sorted by id, one entry per id.
    Memory(Vec<(Id, Location)>),
    /// Past [`Spill::max_entries`]: on this device's disk (see `spill.rs`).
    Disk(DiskIndex),
}

#[derive(Debug)]
pub struct MasterIndex {
    packs: Vec<(Id, u64)>,
    pack_pos: HashMap<Id, u32>,
    sorted: Sorted,
    /// Blobs of packs added one by one after the bulk load; none of them is in `sorted`.
    recent: HashMap<Id, Location>,
}

impl Default for MasterIndex {
    fn default() -> Self {
        MasterIndex {
            packs: Vec::new(),
            pack_pos: HashMap::new(),
            sorted: Sorted::Memory(Vec::new()),
            recent: HashMap::new(),
        }
    }
}

impl MasterIndex {
    /// The union of `files`, held in memory. A blob stored in several packs is found in the
    /// first that lists it.
    #[cfg(test)]
    pub fn from_files(files: Vec<IndexFile>) -> Self {
        let mut bulk = BulkLoad::new(&Spill {
            max_entries: usize::MAX,
            ..Spill::default()
        });
        for file in files {
            bulk.add_file(file)
                .expect("an index in memory writes no scratch file");
        }
        bulk.finish()
            .expect("an index in memory writes no scratch file")
    }

    /// Adds one pack's blobs; a blob already known keeps its first location.
    pub fn add_pack(&mut self, pack: &IndexPack) -> Result<()> {
        let Some(pos) = self.new_pack(pack) else {
            return Ok(());
        };
        for b in &pack.blobs {
            if self.find(&b.id)?.is_none() {
                self.recent.entry(b.id).or_insert(location(pos, b));
            }
        }
        Ok(())
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

    fn find(&self, id: &Id) -> Result<Option<Location>> {
        match &self.sorted {
            Sorted::Memory(v) => Ok(v.binary_search_by(|e| e.0.cmp(id)).ok().map(|i| v[i].1)),
            Sorted::Disk(d) => d.get(id),
        }
    }

    /// Where blob `id` is. Errors only when the index is on disk and its scratch file fails.
    pub fn get(&self, id: &Id) -> Result<Option<Location>> {
        match self.recent.get(id) {
            Some(l) => Ok(Some(*l)),
            None => self.find(id),
        }
    }

    pub fn contains(&self, id: &Id) -> Result<bool> {
        Ok(self.get(id)?.is_some())
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
        let sorted = match &self.sorted {
            Sorted::Memory(v) => v.len(),
            Sorted::Disk(d) => d.len(),
        };
        sorted + self.recent.len()
    }

    /// Whether the index moved to this device's disk (it has more than `Spill::max_entries`).
    pub fn on_disk(&self) -> bool {
        matches!(self.sorted, Sorted::Disk(_))
    }

    /// Calls `f` with every blob and where it is.
    pub fn for_each_blob(&self, mut f: impl FnMut(&Id, &Location)) -> Result<()> {
        match &self.sorted {
            Sorted::Memory(v) => v.iter().for_each(|(id, l)| f(id, l)),
            Sorted::Disk(d) => d.for_each(&mut f)?,
        }
        self.recent.iter().for_each(|(id, l)| f(id, l));
        Ok(())
    }
}

/// Builds a [`MasterIndex`] from index files handed in one at a time (as they are downloaded),
/// so that no more than one decoded file is held beside the growing index. Past
/// `Spill::max_entries` blobs, they go to disk in sorted runs, merged by [`BulkLoad::finish`].
pub struct BulkLoad {
    index: MasterIndex,
    spill: Spill,
    /// Blobs not yet in a run, in the order loaded.
    buf: Vec<(Id, Location)>,
    runs: Option<Runs>,
}

impl BulkLoad {
    pub fn new(spill: &Spill) -> Self {
        BulkLoad {
            index: MasterIndex::default(),
            spill: spill.clone(),
            buf: Vec::new(),
            runs: None,
        }
    }

    pub fn add_file(&mut self, file: IndexFile) -> Result<()> {
        for pack in file.packs {
            let Some(pos) = self.index.new_pack(&pack) else {
                continue;
            };
            for b in &pack.blobs {
                if self.buf.len() >= self.spill.max_entries {
                    self.spill_run()?;
                }
                self.buf.push((b.id, location(pos, b)));
            }
        }
        Ok(())
    }

    /// Sorts what is in memory and keeps one entry per id: of a blob listed by several packs,
    /// the pack added first, as `MasterIndex::add_pack` does.
    fn sort_buf(&mut self) {
        self.buf
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.pack.cmp(&b.1.pack)));
        self.buf.dedup_by(|later, first| later.0 == first.0);
    }

    fn spill_run(&mut self) -> Result<()> {
        self.sort_buf();
        let runs = match &mut self.runs {
            Some(r) => r,
            None => self.runs.insert(Runs::new(&self.spill.dir)?),
        };
        runs.push(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    pub fn finish(mut self) -> Result<MasterIndex> {
        self.sort_buf();
        let Some(mut runs) = self.runs.take() else {
            self.buf.shrink_to_fit();
            self.index.sorted = Sorted::Memory(self.buf);
            return Ok(self.index);
        };
        if !self.buf.is_empty() {
            runs.push(&self.buf)?;
        }
        drop(std::mem::take(&mut self.buf));
        let disk = runs.merge()?;
        tracing::debug!("the index has {} blobs; it is on disk", disk.len());
        self.index.sorted = Sorted::Disk(disk);
        Ok(self.index)
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
            .for_each(|p| single.add_pack(p).unwrap());
        // The same files through the disk: runs of two entries, merged.
        let dir = tempfile::tempdir().unwrap();
        let mut disk = BulkLoad::new(&Spill {
            dir: dir.path().to_path_buf(),
            max_entries: 2,
        });
        files.iter().for_each(|f| disk.add_file(f.clone()).unwrap());
        let disk = disk.finish().unwrap();
        assert!(disk.on_disk() && !bulk.on_disk());
        for idx in [&bulk, &single, &disk] {
            assert_eq!(idx.packs().len(), 3);
            assert_eq!(idx.blob_count(), 5);
            let mut ids: Vec<u8> = Vec::new();
            idx.for_each_blob(|id, _| ids.push(id.0[0])).unwrap();
            ids.sort();
            assert_eq!(ids, [1, 3, 5, 7, 9]);
            let at = |b: u8| {
                let l = idx.get(&Id([b; 32])).unwrap().unwrap();
                (idx.pack(&l).0.0[0], l.offset)
            };
            assert_eq!(at(3), (1, 10));
            assert_eq!(at(7), (2, 10));
            assert_eq!(at(5), (1, 0));
            assert_eq!(at(1), (3, 10));
            for absent in [0, 2, 4, 255] {
                assert!(!idx.contains(&Id([absent; 32])).unwrap());
            }
            assert!(idx.has_pack(&Id([3; 32])) && !idx.has_pack(&Id([4; 32])));
        }
        // A pack added after the bulk load: its new blobs are found, known ones keep their place.
        for mut idx in [bulk, disk] {
            idx.add_pack(&pack(4, &[2, 9])).unwrap();
            assert_eq!(idx.blob_count(), 6);
            let at = |b: u8| idx.pack(&idx.get(&Id([b; 32])).unwrap().unwrap()).0;
            assert_eq!(at(2), Id([4; 32]));
            assert_eq!(at(9), Id([1; 32]));
        }
    }

    /// Many blobs over many runs and pages: every one is found where the in-memory index
    /// finds it, ids between them are not, and the disk index holds one entry per id.
    #[test]
    fn a_disk_index_answers_like_memory() {
        let mut files = Vec::new();
        let mut n = 0u32;
        for f in 0..7u8 {
            let mut packs = Vec::new();
            for p in 0..13u8 {
                let blobs = (0..61)
                    .map(|i| {
                        n += 1;
                        // Every third blob also sits in an earlier pack (100 blobs back; a
                        // pack never holds a blob twice).
                        let k = if n % 3 == 0 && n > 100 { n - 100 } else { n };
                        let mut id = [0u8; 32];
                        id[..8].copy_from_slice(&blake3::hash(&k.to_le_bytes()).as_bytes()[..8]);
                        BlobEntry {
                            id: Id(id),
                            kind: if i % 5 == 0 {
                                BlobKind::Tree
                            } else {
                                BlobKind::Data
                            },
                            offset: i * 100,
                            length: 100 + i,
                            raw_length: 90 + i,
                        }
                    })
                    .collect();
                packs.push(IndexPack {
                    id: Id([f.wrapping_mul(13).wrapping_add(p); 32]),
                    size: 10_000,
                    blobs,
                });
            }
            files.push(IndexFile { packs });
        }
        let mem = MasterIndex::from_files(files.clone());
        let dir = tempfile::tempdir().unwrap();
        let mut bulk = BulkLoad::new(&Spill {
            dir: dir.path().to_path_buf(),
            max_entries: 500,
        });
        files.into_iter().for_each(|f| bulk.add_file(f).unwrap());
        let disk = bulk.finish().unwrap();
        assert!(disk.on_disk());
        assert_eq!(disk.blob_count(), mem.blob_count());
        let mut listed = Vec::new();
        disk.for_each_blob(|id, l| listed.push((*id, *l))).unwrap();
        assert!(
            listed.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, once each"
        );
        let mut seen = 0;
        mem.for_each_blob(|id, l| {
            assert_eq!(disk.get(id).unwrap(), Some(*l));
            let mut near = *id;
            near.0[31] ^= 1;
            assert_eq!(disk.get(&near).unwrap(), None);
            seen += 1;
        })
        .unwrap();
        assert_eq!(seen, listed.len());
        assert!(seen > 3000, "{seen} blobs span many 83-entry pages");
    }
}
