//! The in-memory union of every index file: blob id -> where it is stored.

use std::collections::HashMap;

use arca_format::blob::BlobKind;
use arca_format::id::Id;
use arca_format::index::IndexPack;

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
    blobs: HashMap<Id, Location>,
}

impl MasterIndex {
    pub fn add_pack(&mut self, pack: &IndexPack) {
        if self.pack_pos.contains_key(&pack.id) {
            return;
        }
        let pos = self.packs.len() as u32;
        self.packs.push((pack.id, pack.size));
        self.pack_pos.insert(pack.id, pos);
        for b in &pack.blobs {
            self.blobs.entry(b.id).or_insert(Location {
                pack: pos,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
                kind: b.kind,
            });
        }
    }

    pub fn get(&self, id: &Id) -> Option<&Location> {
        self.blobs.get(id)
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains_key(id)
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
        self.blobs.len()
    }

    pub fn blob_ids(&self) -> impl Iterator<Item = &Id> {
        self.blobs.keys()
    }
}
