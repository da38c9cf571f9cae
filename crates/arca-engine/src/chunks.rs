//! A file's chunk ids: held in its tree node while there are at most `LIST_LEN` of them, else
//! stored apart in chunk lists (`Content::LongFile`, docs/FORMAT.md section 12).
//!
//! Lists keep a large file's cost in memory and in the repository proportional to what changed:
//! a backup holds one list at a time instead of every page id of a database, and an unchanged
//! stretch of a changed file stores no new list.

use arca_format::id::Id;
use arca_format::tree::{ChunkList, Content, LIST_LEN};
use serde::{Deserialize, Serialize};

use crate::index::MasterIndex;
use crate::repo::Repository;
use crate::{EngineError, Result};

/// What a tree node records of a file's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileChunks {
    /// The chunk ids themselves, in file order.
    Inline(Vec<Id>),
    /// The ids of the chunk lists that hold them.
    Lists(Vec<Id>),
}

impl FileChunks {
    /// The tree content of a file of `size` bytes.
    pub fn content(&self, size: u64) -> Content {
        match self {
            FileChunks::Inline(chunks) => Content::File {
                size,
                chunks: chunks.clone(),
            },
            FileChunks::Lists(lists) => Content::LongFile {
                size,
                lists: lists.clone(),
            },
        }
    }

    /// A file's size and chunks, taken from its tree content; `None` for anything but a file.
    pub fn from_content(content: Content) -> Option<(u64, FileChunks)> {
        match content {
            Content::File { size, chunks } => Some((size, FileChunks::Inline(chunks))),
            Content::LongFile { size, lists } => Some((size, FileChunks::Lists(lists))),
            _ => None,
        }
    }

    /// The blobs the tree node names directly (chunks, or lists).
    pub fn refs(&self) -> &[Id] {
        match self {
            FileChunks::Inline(ids) | FileChunks::Lists(ids) => ids,
        }
    }

    /// Calls `f` with the chunk ids in file order, one stretch at a time: the inline ids, or
    /// each list in turn (read, authenticated and validated, one at a time).
    pub fn for_each_stretch(
        &self,
        repo: &Repository,
        index: &MasterIndex,
        mut f: impl FnMut(&[Id]) -> Result<()>,
    ) -> Result<()> {
        match self {
            FileChunks::Inline(chunks) => f(chunks),
            FileChunks::Lists(lists) => {
                for id in lists {
                    f(&repo.read_chunk_list(index, id)?.chunks)?;
                }
                Ok(())
            }
        }
    }
}

/// Gathers a file's chunk ids as they are cut. Once a file has more than `LIST_LEN`, every full
/// stretch is encoded as a chunk list and handed to `store`, which returns its blob id.
#[derive(Debug, Default)]
pub(crate) struct ChunksBuilder {
    current: Vec<Id>,
    lists: Vec<Id>,
}

impl ChunksBuilder {
    pub fn push(&mut self, id: Id, store: impl FnOnce(&[u8]) -> Result<Id>) -> Result<()> {
        if self.current.len() == LIST_LEN {
            self.store_current(store)?;
        }
        self.current.push(id);
        Ok(())
    }

    fn store_current(&mut self, store: impl FnOnce(&[u8]) -> Result<Id>) -> Result<()> {
        let list = ChunkList {
            chunks: std::mem::take(&mut self.current),
        };
        let id = store(&arca_format::encode(&list))?;
        self.lists.push(id);
        self.current = list.chunks;
        self.current.clear();
        Ok(())
    }

    /// The file's chunks: inline if it never filled a list, else its lists (the last stored now).
    pub fn finish(mut self, store: impl FnOnce(&[u8]) -> Result<Id>) -> Result<FileChunks> {
        if self.lists.is_empty() {
            return Ok(FileChunks::Inline(self.current));
        }
        if !self.current.is_empty() {
            self.store_current(store)?;
        }
        Ok(FileChunks::Lists(self.lists))
    }
}

/// Decodes and validates a chunk list's plaintext.
pub(crate) fn decode_list(id: &Id, bytes: &[u8]) -> Result<ChunkList> {
    let list: ChunkList = arca_format::decode(bytes)
        .map_err(|e| EngineError::damaged(format!("chunk list {}", id.short()), e))?;
    list.validate()
        .map_err(|e| EngineError::damaged(format!("chunk list {}", id.short()), e))?;
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> Id {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&(n as u64).to_le_bytes());
        Id(b)
    }

    /// Builds the chunks of a file of `n` chunks, keeping the lists it stores.
    fn build(n: usize) -> (FileChunks, Vec<ChunkList>) {
        let mut stored = Vec::new();
        let mut store = |bytes: &[u8]| -> Result<Id> {
            let list: ChunkList = arca_format::decode(bytes).unwrap();
            stored.push(list);
            Ok(id(1_000_000 + stored.len()))
        };
        let mut b = ChunksBuilder::default();
        for i in 0..n {
            b.push(id(i), &mut store).unwrap();
        }
        (b.finish(&mut store).unwrap(), stored)
    }

    #[test]
    fn short_files_keep_their_ids_inline() {
        for n in [0, 1, LIST_LEN] {
            let (chunks, stored) = build(n);
            assert_eq!(chunks, FileChunks::Inline((0..n).map(id).collect()));
            assert!(stored.is_empty());
        }
    }

    #[test]
    fn long_files_are_cut_into_full_lists_in_order() {
        for n in [LIST_LEN + 1, 2 * LIST_LEN, 3 * LIST_LEN + 7] {
            let (chunks, stored) = build(n);
            let FileChunks::Lists(lists) = &chunks else {
                panic!("{n} chunks should be in lists");
            };
            assert_eq!(lists.len(), n.div_ceil(LIST_LEN));
            assert_eq!(stored.len(), lists.len());
            for l in &stored[..stored.len() - 1] {
                assert_eq!(l.chunks.len(), LIST_LEN);
            }
            let all: Vec<Id> = stored.iter().flat_map(|l| l.chunks.clone()).collect();
            assert_eq!(all, (0..n).map(id).collect::<Vec<_>>());
            assert!(stored.iter().all(|l| l.validate().is_ok()));
        }
    }

    #[test]
    fn content_round_trips() {
        for c in [
            FileChunks::Inline(vec![id(1), id(2)]),
            FileChunks::Lists(vec![id(3)]),
        ] {
            assert_eq!(FileChunks::from_content(c.content(9)), Some((9, c.clone())));
        }
        assert_eq!(FileChunks::from_content(Content::Fifo), None);
    }

    #[test]
    fn a_damaged_list_is_refused() {
        let err = decode_list(&id(1), &[0]).unwrap_err();
        assert!(err.to_string().contains("chunk list"), "{err}");
        assert!(decode_list(&id(1), &[1, 2]).is_err());
    }
}
