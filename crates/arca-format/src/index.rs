//! Index files: which blobs each pack holds, so a reader need not open pack headers.

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::pack::BlobEntry;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    pub id: Id,
    /// Size of the pack file in bytes.
    pub size: u64,
    pub blobs: Vec<BlobEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    pub packs: Vec<IndexPack>,
}
