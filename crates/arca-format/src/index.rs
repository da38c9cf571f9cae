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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobKind;
    use crate::object::{ObjectKind, open_object, seal_object};
    use crate::{decode, encode};
    use arca_crypto::BackupKey;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = BlobEntry> {
        (
            any::<[u8; 32]>(),
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(|(id, tree, offset, length, raw_length)| BlobEntry {
                id: Id(id),
                kind: if tree { BlobKind::Tree } else { BlobKind::Data },
                offset,
                length,
                raw_length,
            })
    }

    proptest! {
        #[test]
        fn index_round_trip(packs in proptest::collection::vec((any::<[u8; 32]>(), any::<u64>(), proptest::collection::vec(entry(), 0..20)), 0..6)) {
            let file = IndexFile { packs: packs.into_iter().map(|(id, size, blobs)| IndexPack { id: Id(id), size, blobs }).collect() };
            prop_assert_eq!(&decode::<IndexFile>(&encode(&file)).unwrap(), &file);
            let k = BackupKey::from_bytes([4; 32]).derived();
            let sealed = seal_object(&k, ObjectKind::Index, &file);
            prop_assert_eq!(open_object::<IndexFile>(&k, ObjectKind::Index, &sealed).unwrap(), file);
        }

        #[test]
        fn sealed_index_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let k = BackupKey::from_bytes([4; 32]).derived();
            let _ = open_object::<IndexFile>(&k, ObjectKind::Index, &bytes);
            let _ = decode::<IndexFile>(&bytes);
        }
    }
}
