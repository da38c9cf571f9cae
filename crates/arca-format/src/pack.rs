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

    /// Ends the pack: hands `write` the random padding that brings the file to a Padmé size (in
    /// pieces of at most [`PAD_PIECE`] bytes), then the sealed header and its length, and
    /// returns the blob list. Nothing of the tail is held whole beside the header: the padding
    /// of a 16 MiB pack reaches 0.5 MiB.
    pub fn finish<E>(
        self,
        keys: &DerivedKeys,
        mut write: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Vec<BlobEntry>, E> {
        let header = seal_object(
            keys,
            ObjectKind::PackHeader,
            &PackHeaderRef { blobs: &self.blobs },
        );
        let base = self.len + header.len() as u64 + 4;
        let mut pad = (padme(base) - base) as usize;
        let mut piece = vec![0u8; pad.min(PAD_PIECE)];
        while pad > 0 {
            let n = pad.min(piece.len());
            OsRng.fill_bytes(&mut piece[..n]);
            write(&piece[..n])?;
            pad -= n;
        }
        write(&header)?;
        write(&(header.len() as u32).to_le_bytes())?;
        Ok(self.blobs)
    }
}

/// Most bytes of padding [`PackLayout::finish`] hands over at once.
pub const PAD_PIECE: usize = 64 << 10;

/// [`PackHeader`] as it is written, borrowing the blob list: postcard encodes a slice as it
/// does a vector, so a pack's list (about 48 bytes a blob, 8 Ki blobs at most) is not copied
/// to be sealed.
#[derive(Serialize)]
struct PackHeaderRef<'a> {
    blobs: &'a [BlobEntry],
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
    pub fn finish(self, keys: &DerivedKeys) -> (Id, Vec<u8>, Vec<BlobEntry>) {
        let PackBuilder { mut buf, layout } = self;
        let blobs = layout
            .finish(keys, |bytes| {
                buf.extend_from_slice(bytes);
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap_or_else(|never| match never {});
        (Id::of_stored(&buf), buf, blobs)
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

    #[test]
    fn the_header_is_encoded_as_a_borrowed_list_is() {
        let blobs: Vec<BlobEntry> = (0..3u8)
            .map(|i| BlobEntry {
                id: Id([i; 32]),
                kind: if i == 1 {
                    BlobKind::Tree
                } else {
                    BlobKind::Data
                },
                offset: 1 + 1000 * u32::from(i),
                length: 1000,
                raw_length: 70_000 * u32::from(i),
            })
            .collect();
        assert_eq!(
            crate::encode(&PackHeaderRef { blobs: &blobs }),
            crate::encode(&PackHeader { blobs })
        );
    }

    #[test]
    fn padding_longer_than_a_piece_comes_in_pieces_and_the_pack_reads_back() {
        let k = BackupKey::from_bytes([5; 32]).derived();
        let mut s = Sealer::default();
        let mut layout = PackLayout::new();
        let mut bytes = PackLayout::START.to_vec();
        // Three random (so stored) blobs of 2.1 MB make a 6.3 MB pack, whose Padmé padding
        // (to a multiple of 256 KiB) exceeds one piece.
        for _ in 0..3 {
            let mut chunk = vec![0u8; 2_100_000];
            rand_core::RngCore::fill_bytes(&mut OsRng, &mut chunk);
            let id = Id(k.blob_id(&chunk));
            let mut sealed = Vec::new();
            s.seal_into(&k, BlobKind::Data, &id, &chunk, &mut sealed);
            layout.push(id, BlobKind::Data, chunk.len() as u32, sealed.len());
            bytes.extend_from_slice(&sealed);
        }
        let before = bytes.len();
        let mut pieces = Vec::new();
        let entries = layout
            .finish(&k, |tail| {
                pieces.push(tail.len());
                bytes.extend_from_slice(tail);
                Ok::<(), ()>(())
            })
            .unwrap();
        let (pad, _) = pieces.split_at(pieces.len() - 2);
        assert!(pad.len() > 1, "{pieces:?}");
        assert!(pad.iter().all(|&n| n <= PAD_PIECE), "{pieces:?}");
        assert!(pad.iter().sum::<usize>() > PAD_PIECE);
        assert_eq!(bytes.len(), before + pieces.iter().sum::<usize>());
        assert_eq!(padme(bytes.len() as u64), bytes.len() as u64);
        assert_eq!(read_header(&k, &bytes).unwrap(), entries);
        for e in &entries {
            let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            let plain = open_blob(&k, e.kind, &e.id, sealed, e.raw_length as usize).unwrap();
            assert_eq!(Id(k.blob_id(&plain)), e.id);
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
            let entries = layout.finish(&k, |tail| {
                hasher.update(tail);
                bytes.extend_from_slice(tail);
                Ok::<(), ()>(())
            }).unwrap();
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
