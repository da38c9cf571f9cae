//! Snapshots: one backup, naming its root tree.

use serde::{Deserialize, Serialize};

use crate::id::Id;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Grows by one with each snapshot a device writes (max of the repository's + 1).
    pub seq: u64,
    /// Seconds and nanoseconds since the Unix epoch when the backup started.
    pub time: i64,
    pub time_nsec: u32,
    pub host: String,
    /// The absolute source paths, as bytes.
    pub paths: Vec<serde_bytes::ByteBuf>,
    pub parent: Option<Id>,
    /// Root tree: mirrors the absolute paths from `/`.
    pub tree: Id,
    pub summary: Summary,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Bytes of new blobs' plaintext this backup stored.
    pub new_bytes: u64,
    /// Bytes of pack files this backup uploaded.
    pub uploaded_bytes: u64,
    pub warnings: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn snapshot_round_trip(seq in any::<u64>(), time in any::<i64>(), host in ".{0,20}", paths in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30), 0..4), parent in proptest::option::of(any::<[u8; 32]>()), tree in any::<[u8; 32]>(), files in any::<u64>()) {
            let s = Snapshot { seq, time, time_nsec: 5, host, paths: paths.into_iter().map(serde_bytes::ByteBuf::from).collect(), parent: parent.map(Id), tree: Id(tree), summary: Summary { files, ..Default::default() } };
            prop_assert_eq!(decode::<Snapshot>(&encode(&s)).unwrap(), s);
        }
    }
}
