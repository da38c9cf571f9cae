//! Packs: many sealed blobs in one stored file, with a sealed header at the end and padding that
//! hides the size of what is inside.
//!
//! Layout: `version (1) || blob... || padding || header object || header length (u32 LE)`.
//! The header object is a sealed [`PackHeader`](crate::object::ObjectKind::PackHeader) listing
//! every blob; the padding is random bytes that bring the file size to a Padmé bucket.

use arca_crypto::DerivedKeys;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::blob::BlobKind;
use crate::id::Id;
use crate::object::{ObjectKind, open_object, seal_object};
use crate::{FORMAT_VERSION, FormatError};

/// Where one blob sits in its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    pub id: Id,
    pub kind: BlobKind,
    /// Byte offset of the sealed blob in the pack file.
    pub offset: u32,
    /// Length of the sealed blob.
    pub length: u32,
    /// Length of the blob's plaintext.
    pub raw_length: u32,
}

/// The sealed directory of a pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackHeader {
    pub blobs: Vec<BlobEntry>,
}

/// Padmé padding (Nikitin et al., 2019): at most 12% overhead, leaks O(log log n) bits of size.
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - len.leading_zeros() as u64;
    let s = 64 - e.leading_zeros() as u64;
    let last_bits = e - s;
    let mask = (1u64 << last_bits) - 1;
    (len + mask) & !mask
}

/// The layout of one pack being built: where each blob goes, and the pack's tail. The bytes
/// themselves are kept by the caller: in memory ([`PackBuilder`]) or streamed to a file.
#[derive(Debug)]
pub struct PackLayout {
    len: u64,
    blobs: Vec<BlobEntry>,
}

impl Default for PackLayout {
    fn default() -> Self {
        Self::new()
    }
}

impl PackLayout {
    /// The bytes every pack starts with, before its first blob.
    pub const START: [u8; 1] = [FORMAT_VERSION];

    pub fn new() -> Self {
        PackLayout {
            len: Self::START.len() as u64,
            blobs: Vec::new(),
        }
    }

    /// Bytes of the pack so far (the start and the blobs).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Records a sealed blob of `sealed_len` bytes as the next one; the caller appends its bytes.
    pub fn push(&mut self, id: Id, kind: BlobKind, raw_length: u32, sealed_len: usize) {
        self.blobs.push(BlobEntry {
            id,
            kind,
            offset: self.len as u32,
            length: sealed_len as u32,
            raw_length,
        });
        self.len += sealed_len as u64;
    }

    /// The bytes that end the pack (random padding to a Padmé size, the sealed header, its
    /// length), and the blob list.
    pub fn finish(self, keys: &DerivedKeys) -> (Vec<u8>, Vec<BlobEntry>) {
        let header = seal_object(
            keys,
            ObjectKind::PackHeader,
            &PackHeader {
                blobs: self.blobs.clone(),
            },
        );
        let base = self.len + header.len() as u64 + 4;
        let pad = (padme(base) - base) as usize;
        let mut tail = vec![0u8; pad];
        OsRng.fill_bytes(&mut tail);
        tail.extend_from_slice(&header);
        tail.extend_from_slice(&(header.len() as u32).to_le_bytes());
        (tail, self.blobs)
    }
}

/// Builds one pack in memory.
pub struct PackBuilder {
    buf: Vec<u8>,
    layout: PackLayout,
}

impl Default for PackBuilder {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl PackBuilder {
    pub fn with_capacity(cap: usize) -> Self {
        let mut buf = Vec::with_capacity(cap);
        buf.extend_from_slice(&PackLayout::START);
        PackBuilder {
            buf,
            layout: PackLayout::new(),
        }
    }

    /// Bytes of blobs so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.layout.blob_count()
    }

    /// Appends an already sealed blob.
    pub fn push(&mut self, id: Id, kind: BlobKind, raw_length: u32, sealed: &[u8]) {
        self.layout.push(id, kind, raw_length, sealed.len());
        self.buf.extend_from_slice(sealed);
    }

    /// Seals the header, pads, and returns the pack's id, bytes and blob list.
    pub fn finish(mut self, keys: &DerivedKeys) -> (Id, Vec<u8>, Vec<BlobEntry>) {
        let (tail, blobs) = self.layout.finish(keys);
        self.buf.extend_from_slice(&tail);
        (Id::of_stored(&self.buf), self.buf, blobs)
    }
}

/// Length of the header object, from the pack's last 4 bytes; `pack_len` is the file size.
pub fn header_length(pack_len: u64, trailer: &[u8; 4]) -> Result<u64, FormatError> {
    let n = u32::from_le_bytes(*trailer) as u64;
    if n + 5 > pack_len {
        return Err(FormatError::Malformed(format!(
            "pack header length {n} exceeds pack size {pack_len}"
        )));
    }
    Ok(n)
}

/// Reads the blob list of a whole pack and checks that every entry lies inside the blob area.
pub fn read_header(keys: &DerivedKeys, pack: &[u8]) -> Result<Vec<BlobEntry>, FormatError> {
    if pack.len() < 5 {
        return Err(FormatError::Malformed("pack shorter than 5 bytes".into()));
    }
    if pack[0] != FORMAT_VERSION {
        return Err(FormatError::Version(pack[0]));
    }
    let trailer: [u8; 4] = pack[pack.len() - 4..].try_into().expect("4 bytes");
    let hlen = header_length(pack.len() as u64, &trailer)? as usize;
    let hstart = pack.len() - 4 - hlen;
    let header: PackHeader =
        open_object(keys, ObjectKind::PackHeader, &pack[hstart..pack.len() - 4])?;
    for b in &header.blobs {
        let end = b.offset as u64 + b.length as u64;
        if b.offset < 1 || end > hstart as u64 {
            return Err(FormatError::Malformed(format!(
                "blob {} lies outside the pack's blob area",
                b.id.short()
            )));
        }
    }
    Ok(header.blobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::{Sealer, open_blob};
    use arca_crypto::BackupKey;
    use proptest::prelude::*;

    #[test]
    fn padme_examples() {
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(1 << 20), 1 << 20);
        for n in [5u64, 100, 4097, 1 << 20, 8_000_001, 123_456_789] {
            let p = padme(n);
            assert!(p >= n && (p - n) * 100 <= n * 12 + 100, "{n} -> {p}");
        }
    }

    proptest! {
        #[test]
        fn pack_round_trip(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..20)) {
            let k = BackupKey::from_bytes([3; 32]).derived();
            let mut s = Sealer::default();
            let mut b = PackBuilder::default();
            let mut ids = Vec::new();
            for c in &chunks {
                let id = Id(k.blob_id(c));
                let mut sealed = Vec::new();
                s.seal_into(&k, BlobKind::Data, &id, c, &mut sealed);
                b.push(id, BlobKind::Data, c.len() as u32, &sealed);
                ids.push(id);
            }
            let (pid, bytes, entries) = b.finish(&k);
            prop_assert_eq!(pid, Id::of_stored(&bytes));
            prop_assert_eq!(padme(bytes.len() as u64), bytes.len() as u64);
            let header = read_header(&k, &bytes).unwrap();
            prop_assert_eq!(&header, &entries);
            for (e, c) in header.iter().zip(&chunks) {
                let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
                prop_assert_eq!(&open_blob(&k, BlobKind::Data, &e.id, sealed, c.len()).unwrap(), c);
            }
        }

        #[test]
        fn streamed_layout_reads_back(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..20)) {
            let k = BackupKey::from_bytes([4; 32]).derived();
            let mut s = Sealer::default();
            let mut layout = PackLayout::new();
            let mut bytes = PackLayout::START.to_vec();
            let mut hasher = blake3::Hasher::new();
            hasher.update(&PackLayout::START);
            for c in &chunks {
                let id = Id(k.blob_id(c));
                let mut sealed = Vec::new();
                s.seal_into(&k, BlobKind::Data, &id, c, &mut sealed);
                layout.push(id, BlobKind::Data, c.len() as u32, sealed.len());
                hasher.update(&sealed);
                bytes.extend_from_slice(&sealed);
                prop_assert_eq!(layout.len(), bytes.len() as u64);
            }
            let (tail, entries) = layout.finish(&k);
            hasher.update(&tail);
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(Id(*hasher.finalize().as_bytes()), Id::of_stored(&bytes));
            prop_assert_eq!(padme(bytes.len() as u64), bytes.len() as u64);
            prop_assert_eq!(read_header(&k, &bytes).unwrap(), entries);
        }

        #[test]
        fn header_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = BackupKey::from_bytes([3; 32]).derived();
            let _ = read_header(&k, &bytes);
        }
    }
}
