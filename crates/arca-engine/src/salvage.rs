//! Resuming an interrupted backup: packs that arrived whole but that no index names yet (the
//! backup was killed, or lost its connection, between a pack and the index file that lists it)
//! are indexed at the start of the next backup, so their blobs are not uploaded again.
//!
//! Only a pack's tail is read: its header, sealed under the repository key, says which blobs
//! it holds; a pack is taken only if its header opens and its size is exactly what a pack with
//! those blobs and that header has. A pack cut short by a broken upload fails both tests and
//! stays unused (check notes it as harmless).

use arca_format::id::Id;
use arca_format::index::{IndexFile, IndexPack};
use arca_format::object::{ObjectKind, open_object};
use arca_format::pack::{PackHeader, header_length, padme};

use crate::index::MasterIndex;
use crate::repo::{DATA, Repository, pack_path};
use crate::{EngineError, Result};

/// Bytes read from a pack's end in one request (the header of a full 16 MiB pack of small
/// chunks fits in it).
const TAIL: u64 = 256 << 10;

/// The blob list of a stored pack, read from its tail and checked against its size.
pub(crate) fn pack_header(repo: &Repository, id: &Id, size: u64) -> Result<IndexPack> {
    let path = pack_path(id);
    let bad = |why: String| EngineError::damaged(&path, why);
    if size < 5 {
        return Err(bad("it is too short to be a pack".into()));
    }
    let tail_len = size.min(TAIL);
    let tail = repo.read_pack_range(id, size - tail_len, tail_len)?;
    let trailer: [u8; 4] = tail[tail.len() - 4..].try_into().expect("4 bytes");
    let hlen = header_length(size, &trailer).map_err(|e| bad(e.to_string()))?;
    let header_bytes = if hlen + 4 <= tail_len {
        tail[(tail_len - 4 - hlen) as usize..(tail_len - 4) as usize].to_vec()
    } else {
        repo.read_pack_range(id, size - 4 - hlen, hlen)?
    };
    let header: PackHeader = open_object(repo.keys(), ObjectKind::PackHeader, &header_bytes)
        .map_err(|e| bad(format!("its header does not open: {e}")))?;
    // Blobs lie back to back from byte 1; padding fills up to a Padmé size.
    let mut end = 1u64;
    for b in &header.blobs {
        if b.offset as u64 != end {
            return Err(bad("its blobs are not back to back".into()));
        }
        end += b.length as u64;
    }
    if padme(end + hlen + 4) != size {
        return Err(bad(format!(
            "it is {size} bytes, not the {} its header implies",
            padme(end + hlen + 4)
        )));
    }
    Ok(IndexPack {
        id: *id,
        size,
        blobs: header.blobs,
    })
}

/// Indexes the whole packs that no index names; returns how many.
pub(crate) fn salvage(repo: &Repository, index: &mut MasterIndex) -> Result<usize> {
    let orphans: Vec<(Id, u64)> = repo
        .list_ids(DATA)?
        .into_iter()
        .filter(|(id, _)| !index.has_pack(id))
        .collect();
    if orphans.is_empty() {
        return Ok(0);
    }
    let found = repo.fetch_all(&orphans, |(id, size)| {
        Ok(match pack_header(repo, id, *size) {
            Ok(p) => Some(p),
            Err(e @ EngineError::Damaged { .. }) => {
                tracing::info!("not reused: {e}");
                None
            }
            Err(e) => return Err(e),
        })
    })?;
    let file = IndexFile {
        packs: found.into_iter().flatten().collect(),
    };
    if file.packs.is_empty() {
        return Ok(0);
    }
    repo.write_index(&file)?;
    for p in &file.packs {
        index.add_pack(p)?;
    }
    tracing::info!(
        "reused {} packs that an interrupted backup had uploaded",
        file.packs.len()
    );
    Ok(file.packs.len())
}
