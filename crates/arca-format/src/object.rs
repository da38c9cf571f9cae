//! Sealed metadata objects (index files, snapshots, pack headers).
//!
//! Layout: `version (1) || kind (1) || nonce (24) || ciphertext || tag (16)`, sealed under the
//! metadata key with associated data `version || kind`. The sealed plaintext is
//! `length (u32 LE) || zstd(postcard(value)) || zeros`, padded to a Padmé bucket of at least
//! 512 bytes so an object's size says little about how many entries it holds.

use arca_crypto::{DerivedKeys, NONCE_LEN, TAG_LEN};

use crate::blob::{decompress_at_most, fast_compressor};
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
    // Level 1 with a small window (`blob::fast_compressor`): the bulk of an object is ids,
    // which do not compress at any level, and a context sized by the object would take
    // 0.57 MiB for a 0.5 MiB index file (1.27 MiB at level 3), made for each object written.
    // The frame is written straight after the header, the nonce's room and its length, and
    // sealed where it lies: an object of n bytes is held twice at most (its encoding and the
    // sealed object), not four times (with the frame and the padded plaintext beside them).
    let header = [FORMAT_VERSION, kind as u8];
    // The sealed plaintext starts after the header and the nonce; its frame after the length.
    let sealed_from = header.len() + NONCE_LEN;
    let frame_from = sealed_from + 4;
    let bound = zstd::zstd_safe::compress_bound(plain.len());
    let mut out = Vec::with_capacity(sealed_from + bucket(4 + bound) + TAG_LEN);
    out.extend_from_slice(&header);
    out.resize(frame_from + bound, 0);
    let clen = fast_compressor()
        .compress_to_buffer(&plain, &mut out[frame_from..])
        .expect("zstd compresses any input into its bound");
    drop(plain);
    out[sealed_from..frame_from].copy_from_slice(&(clen as u32).to_le_bytes());
    out.truncate(frame_from + clen);
    out.resize(sealed_from + bucket(4 + clen), 0);
    keys.meta.seal_in_place_at(&header, &mut out, header.len());
    out
}

/// The padded plaintext size of an object whose framed content is `len` bytes.
fn bucket(len: usize) -> usize {
    crate::pack::padme(len.max(512) as u64) as usize
}

pub fn open_object<T: serde::de::DeserializeOwned>(
    keys: &DerivedKeys,
    kind: ObjectKind,
    bytes: &[u8],
) -> Result<T, FormatError> {
    open_object_owned(keys, kind, bytes.to_vec())
}

/// [`open_object`] on bytes it may keep: they are decrypted where they lie and dropped before
/// the value is decoded, so opening an object of n bytes holds about 2n at most (the sealed
/// bytes and the decompressed ones, then those and the value), not 3n. Index files are the
/// largest objects (0.5 MiB), and a backup opens several at once while it loads the index.
pub fn open_object_owned<T: serde::de::DeserializeOwned>(
    keys: &DerivedKeys,
    kind: ObjectKind,
    mut bytes: Vec<u8>,
) -> Result<T, FormatError> {
    if bytes.len() < 2 {
        return Err(FormatError::Malformed(
            "object shorter than its header".into(),
        ));
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
    let (head, sealed) = bytes.split_at_mut(2);
    let framed = keys.meta.open_in_place(head, sealed)?;
    if framed.len() < 4 {
        return Err(FormatError::Malformed("object without a length".into()));
    }
    let clen = u32::from_le_bytes(framed[..4].try_into().expect("4 bytes")) as usize;
    let compressed = framed
        .get(4..4 + clen)
        .ok_or_else(|| FormatError::Malformed("object length exceeds its content".into()))?;
    let plain = decompress(compressed)?;
    drop(bytes);
    decode(&plain)
}

/// zstd's frame, decompressed into a vector sized by the size the frame records (when it is
/// plausible), so that it is not grown by doubling to up to twice what it holds.
fn decompress(compressed: &[u8]) -> Result<Vec<u8>, FormatError> {
    let recorded = zstd::zstd_safe::get_frame_content_size(compressed)
        .ok()
        .flatten()
        .unwrap_or(0);
    let plausible = (compressed.len() as u64).saturating_mul(16) + (64 << 10);
    let capacity = recorded.min(plausible) as usize;
    decompress_at_most(compressed, MAX_OBJECT_PLAINTEXT, capacity)?
        .ok_or_else(|| FormatError::Malformed("object too large".into()))
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
        let big: Vec<u64> = (0..300).map(|i| i * 7919).collect();
        let a = seal_object(&k, ObjectKind::Index, &vec![1u64]);
        let b = seal_object(&k, ObjectKind::Index, &big[..40].to_vec());
        assert_eq!(a.len(), b.len(), "small objects share one size bucket");
        let c: Vec<u64> = open_object(
            &k,
            ObjectKind::Index,
            &seal_object(&k, ObjectKind::Index, &big),
        )
        .unwrap();
        assert_eq!(c, big);
        let other = BackupKey::from_bytes([6; 32]).derived();
        assert_eq!(
            open_object::<Vec<u32>>(&other, ObjectKind::Index, &sealed),
            Err(FormatError::Authentication)
        );
    }
}
