//! Trees: one directory listing each, stored as a blob of kind Tree.
//!
//! Names are bytes (non-UTF-8 names survive); nodes are sorted by name so the same directory
//! always encodes to the same tree and deduplicates.

use serde::{Deserialize, Serialize};

use crate::id::Id;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    File {
        size: u64,
        chunks: Vec<Id>,
    },
    Dir {
        tree: Id,
    },
    Symlink {
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
    },
    Fifo,
    Socket,
    CharDevice {
        rdev: u64,
    },
    BlockDevice {
        rdev: u64,
    },
    /// A file with more than [`LIST_LEN`] chunks: its chunk ids are stored apart, in chunk
    /// lists (blobs of kind Tree, see [`ChunkList`]), so that a large file's tree stays small and
    /// an unchanged stretch of a changed file (the pages of a database) is not stored again.
    LongFile {
        size: u64,
        lists: Vec<Id>,
    },
}

/// Most chunk ids a tree node holds itself; a file with more is written as [`Content::LongFile`]
/// with lists of this many ids (the last may be shorter). 512 ids are 16 KiB: a database of 4 KiB
/// pages has one list per 2 MiB, and a day's scattered page edits re-store only the lists they
/// touch. A writer-side choice: readers take any list length up to [`MAX_LIST_LEN`].
pub const LIST_LEN: usize = 512;

/// Most ids a reader accepts in one chunk list.
pub const MAX_LIST_LEN: usize = 1 << 16;

/// A stretch of a long file's chunk ids, in file order; the plaintext of a blob of kind Tree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkList {
    pub chunks: Vec<Id>,
}

impl ChunkList {
    /// Refuses an empty list and one longer than [`MAX_LIST_LEN`].
    pub fn validate(&self) -> Result<(), String> {
        if self.chunks.is_empty() {
            return Err("empty chunk list".into());
        }
        if self.chunks.len() > MAX_LIST_LEN {
            return Err(format!(
                "chunk list of {} ids (at most {MAX_LIST_LEN})",
                self.chunks.len()
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Permission bits and file type bits as `st_mode`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time: seconds since the Unix epoch and nanoseconds.
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub content: Content,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Sorts nodes by name; call before encoding.
    pub fn normalize(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// Checks what a decoder must refuse: empty, `.`/`..` or slash-bearing names, duplicates.
    pub fn validate(&self) -> Result<(), String> {
        for (i, n) in self.nodes.iter().enumerate() {
            if n.name.is_empty()
                || n.name == b"."
                || n.name == b".."
                || n.name.contains(&b'/')
                || n.name.contains(&0)
            {
                return Err(format!(
                    "unsafe name {:?}",
                    String::from_utf8_lossy(&n.name)
                ));
            }
            if i > 0 && self.nodes[i - 1].name >= n.name {
                return Err("names not sorted or repeated".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode};
    use proptest::prelude::*;

    fn content() -> impl Strategy<Value = Content> {
        prop_oneof![
            (
                any::<u64>(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..5)
            )
                .prop_map(|(size, c)| Content::File {
                    size,
                    chunks: c.into_iter().map(Id).collect()
                }),
            any::<[u8; 32]>().prop_map(|t| Content::Dir { tree: Id(t) }),
            proptest::collection::vec(any::<u8>(), 0..50)
                .prop_map(|target| Content::Symlink { target }),
            Just(Content::Fifo),
            Just(Content::Socket),
            any::<u64>().prop_map(|rdev| Content::CharDevice { rdev }),
            any::<u64>().prop_map(|rdev| Content::BlockDevice { rdev }),
            (
                any::<u64>(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..5)
            )
                .prop_map(|(size, l)| Content::LongFile {
                    size,
                    lists: l.into_iter().map(Id).collect()
                }),
        ]
    }

    proptest! {
        #[test]
        fn tree_round_trip(nodes in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 1..40), any::<u32>(), any::<i64>(), any::<u32>(), content()), 0..10)) {
            let mut t = Tree { nodes: nodes.into_iter().map(|(name, mode, mtime, nsec, content)| Node { name, mode, uid: 1, gid: 2, mtime, mtime_nsec: nsec, content }).collect() };
            t.normalize();
            let bytes = encode(&t);
            prop_assert_eq!(decode::<Tree>(&bytes).unwrap(), t);
        }

        #[test]
        fn chunk_list_round_trip(ids in proptest::collection::vec(any::<[u8; 32]>(), 1..40)) {
            let list = ChunkList { chunks: ids.into_iter().map(Id).collect() };
            prop_assert!(list.validate().is_ok());
            let bytes = encode(&list);
            // One varint byte for a count below 128, then the raw ids.
            prop_assert_eq!(bytes.len(), 1 + 32 * list.chunks.len());
            prop_assert_eq!(decode::<ChunkList>(&bytes).unwrap(), list);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<Tree>(&bytes);
        }
    }

    #[test]
    fn chunk_lists_are_bounded() {
        assert!(ChunkList::default().validate().is_err());
        let long = ChunkList {
            chunks: vec![Id([7; 32]); MAX_LIST_LEN + 1],
        };
        assert!(long.validate().is_err());
        let full = ChunkList {
            chunks: vec![Id([7; 32]); MAX_LIST_LEN],
        };
        assert!(full.validate().is_ok());
    }

    #[test]
    fn unsafe_names_are_refused() {
        let node = |name: &[u8]| Node {
            name: name.to_vec(),
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            mtime_nsec: 0,
            content: Content::Fifo,
        };
        for bad in [&b".."[..], b".", b"a/b", b""] {
            assert!(
                Tree {
                    nodes: vec![node(bad)]
                }
                .validate()
                .is_err()
            );
        }
        assert!(
            Tree {
                nodes: vec![node(b"a"), node(b"a")]
            }
            .validate()
            .is_err()
        );
        assert!(
            Tree {
                nodes: vec![node(b"a"), node(b"\xff")]
            }
            .validate()
            .is_ok()
        );
    }
}
