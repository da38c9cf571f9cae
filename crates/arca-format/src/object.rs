//! Sealed metadata objects (index files, snapshots, pack headers).
//!
//! Layout: `version (1) || kind (1) || nonce (24) || ciphertext || tag (16)`, sealed under the
//! metadata key with associated data `version || kind`. The plaintext is zstd-compressed postcard.

use arca_crypto::DerivedKeys;

use crate::{FORMAT_VERSION, FormatError, decode, encode};

/// Kinds of sealed objects; the byte after the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ObjectKind {
    PackHeader = 1,
    Index = 2,
    Snapshot = 3,
}

/// Largest plaintext a metadata object may decompress to (defends against zstd bombs).
pub const MAX_OBJECT_PLAINTEXT: usize = 1 << 30;

pub fn seal_object<T: serde::Serialize>(
    keys: &DerivedKeys,
    kind: ObjectKind,
    value: &T,
) -> Vec<u8> {
    let plain = encode(value);
    let compressed = zstd::bulk::compress(&plain, 3).expect("zstd compresses any input");
    let mut out = vec![FORMAT_VERSION, kind as u8];
    keys.meta
        .seal_into(&[FORMAT_VERSION, kind as u8], &compressed, &mut out);
    out
}

pub fn open_object<T: serde::de::DeserializeOwned>(
    keys: &DerivedKeys,
    kind: ObjectKind,
    bytes: &[u8],
) -> Result<T, FormatError> {
    if bytes.len() < 2 {
        return Err(FormatError::Malformed("object shorter than its header".into()));
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(FormatError::Version(bytes[0]));
    }
    if bytes[1] != kind as u8 {
        return Err(FormatError::Malformed(format!(
            "object kind {} where {:?} was expected",
            bytes[1], kind
        )));
    }
    let compressed = keys.meta.open(&bytes[..2], &bytes[2..])?;
    let mut plain = Vec::new();
    let mut decoder = zstd::stream::read::Decoder::new(&compressed[..])
        .map_err(|e| FormatError::Malformed(format!("zstd: {e}")))?;
    use std::io::Read;
    (&mut decoder)
        .take(MAX_OBJECT_PLAINTEXT as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|e| FormatError::Malformed(format!("zstd: {e}")))?;
    if plain.len() > MAX_OBJECT_PLAINTEXT {
        return Err(FormatError::Malformed("object too large".into()));
    }
    decode(&plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_crypto::BackupKey;

    #[test]
    fn kind_version_and_key_are_checked() {
        let k = BackupKey::from_bytes([5; 32]).derived();
        let sealed = seal_object(&k, ObjectKind::Index, &vec![1u32, 2, 3]);
        let v: Vec<u32> = open_object(&k, ObjectKind::Index, &sealed).unwrap();
        assert_eq!(v, vec![1, 2, 3]);
        assert!(matches!(
            open_object::<Vec<u32>>(&k, ObjectKind::Snapshot, &sealed),
            Err(FormatError::Malformed(_))
        ));
        let mut relabel = sealed.clone();
        relabel[1] = ObjectKind::Snapshot as u8;
        assert_eq!(
            open_object::<Vec<u32>>(&k, ObjectKind::Snapshot, &relabel),
            Err(FormatError::Authentication)
        );
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert_eq!(
            open_object::<Vec<u32>>(&k, ObjectKind::Index, &v2),
            Err(FormatError::Version(2))
        );
        let other = BackupKey::from_bytes([6; 32]).derived();
        assert_eq!(
            open_object::<Vec<u32>>(&other, ObjectKind::Index, &sealed),
            Err(FormatError::Authentication)
        );
    }
}
