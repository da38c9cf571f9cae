//! A blob: one chunk of file data or one tree, compressed when that pays, then sealed.
//!
//! Plaintext inside the AEAD: `flag (0 = stored, 1 = zstd) || bytes`. Associated data:
//! `FORMAT_VERSION || kind || id`, so a blob cannot be passed off as another blob or kind.

use std::borrow::Cow;

use arca_crypto::{AeadKey, DerivedKeys};
use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::{FORMAT_VERSION, FormatError};

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum BlobKind {
    Data = 0,
    Tree = 1,
}

const STORED: u8 = 0;
const ZSTD: u8 = 1;
/// Below this, compression is not tried.
const MIN_COMPRESS: usize = 64;
/// Chunks larger than this are first sampled to decide whether zstd pays.
const SAMPLE: usize = 16 * 1024;
/// The window of the level-1 compressor: 2^14 bytes, the sample's size, so the samples and the
/// small blobs it is made for see no difference. Larger inputs (the tree of a wide folder, an
/// index file) would otherwise size its context by their length and keep it: 0.57 MiB per
/// worker once a tree passes 128 KiB, about 1 MiB of the peak of a day-1 backup of 1 M small
/// files. Those inputs are mostly ids and short, local repeats (names, metadata): on that
/// backup's 67 MB of trees, the stored size grew by 0.04% (BENCHMARKS.md, "Session 15").
const FAST_WINDOW_LOG: u32 = 14;

/// A zstd level-1 compressor whose context stays small whatever it compresses
/// ([`FAST_WINDOW_LOG`]); readers need nothing of it.
pub(crate) fn fast_compressor() -> zstd::bulk::Compressor<'static> {
    let mut c = zstd::bulk::Compressor::new(1).expect("valid zstd level");
    c.set_parameter(zstd::zstd_safe::CParameter::WindowLog(FAST_WINDOW_LOG))
        .expect("a valid zstd window");
    c
}

fn aad(kind: BlobKind, id: &Id) -> [u8; 34] {
    let mut a = [0u8; 34];
    a[0] = FORMAT_VERSION;
    a[1] = kind as u8;
    a[2..].copy_from_slice(&id.0);
    a
}

fn key(keys: &DerivedKeys, kind: BlobKind) -> &AeadKey {
    match kind {
        BlobKind::Data => &keys.data,
        BlobKind::Tree => &keys.meta,
    }
}

/// Bytes left free before a plaintext that [`Sealer::seal_in_place`] seals: the nonce's and the
/// compression flag's room.
pub const SEAL_ROOM: usize = arca_crypto::NONCE_LEN + 1;

/// Reusable compression state for one worker thread.
pub struct Sealer {
    zstd: zstd::bulk::Compressor<'static>,
    fast: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

impl Default for Sealer {
    fn default() -> Self {
        Self::new(3)
    }
}

impl Sealer {
    pub fn new(level: i32) -> Self {
        Sealer {
            zstd: zstd::bulk::Compressor::new(level).expect("valid zstd level"),
            fast: fast_compressor(),
            scratch: Vec::new(),
        }
    }

    /// The zstd frame of `data` when it is shorter than `data`. `media`: the blob comes from a
    /// file of a compressed format ([`crate::magic`]); one no larger than a sample is then
    /// stored without a trial.
    fn compressed(&mut self, data: &[u8], media: bool, kind: BlobKind) -> Option<&[u8]> {
        if data.len() < MIN_COMPRESS || (media && data.len() <= SAMPLE) {
            return None;
        }
        if data.len() > SAMPLE {
            // Media and archives do not shrink: a fast trial on a sample saves compressing them.
            let sample = &data[..SAMPLE];
            let small = self.fast.compress(sample).ok()?;
            if small.len() * 10 > sample.len() * 9 {
                return None;
            }
        }
        let bound = zstd::zstd_safe::compress_bound(data.len());
        self.scratch.clear();
        self.scratch.reserve(bound);
        // Small blobs (SQLite pages) at the fast level: on the benchmark's 136 MiB message
        // store cut in 4 KiB pieces, level 1 compresses 45% faster than level 3 (190 against
        // 131 MB/s) for output 1% larger (1.728x against 1.744x).
        let compressor = if data.len() <= SAMPLE || kind == BlobKind::Tree {
            &mut self.fast
        } else {
            &mut self.zstd
        };
        let n = compressor
            .compress_to_buffer(data, &mut self.scratch)
            .ok()?;
        if n + 8 >= data.len() {
            return None;
        }
        Some(&self.scratch[..n])
    }

    /// Seals `plaintext` as a blob of `kind` whose id is `id`, appending it to `out`.
    /// Returns the number of bytes appended.
    pub fn seal_into(
        &mut self,
        keys: &DerivedKeys,
        kind: BlobKind,
        id: &Id,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> usize {
        let start = out.len();
        let key = key(keys, kind);
        let aad = aad(kind, id);
        match self.compressed(plaintext, false, kind) {
            Some(c) => key.seal_parts_into(&aad, &[&[ZSTD], c], out),
            None => key.seal_parts_into(&aad, &[&[STORED], plaintext], out),
        }
        out.len() - start
    }

    /// Seals the plaintext `buf[SEAL_ROOM..]` as [`Sealer::seal_into`] would, in `buf` itself:
    /// `buf` becomes the sealed blob. A blob stored as it is (media, which does not compress) is
    /// encrypted where it lies, with no copy; a compressed one is copied over its plaintext,
    /// which it is shorter than. So a chunk in the backup pipeline needs one buffer, not two.
    ///
    /// # Panics
    /// If `buf` is shorter than [`SEAL_ROOM`].
    pub fn seal_in_place(
        &mut self,
        keys: &DerivedKeys,
        kind: BlobKind,
        id: &Id,
        buf: &mut Vec<u8>,
    ) {
        self.seal_in_place_from(keys, kind, id, buf, false)
    }

    /// [`Sealer::seal_in_place`] for a blob of a file whose first bytes are of a compressed
    /// format when `media` ([`crate::magic::is_compressed_format`]): a blob no larger than a
    /// sample is then stored as it is, without trying zstd on it.
    pub fn seal_in_place_from(
        &mut self,
        keys: &DerivedKeys,
        kind: BlobKind,
        id: &Id,
        buf: &mut Vec<u8>,
        media: bool,
    ) {
        assert!(buf.len() >= SEAL_ROOM, "no room before the plaintext");
        let flag = match self.compressed(&buf[SEAL_ROOM..], media, kind) {
            Some(c) => {
                buf.truncate(SEAL_ROOM);
                buf.extend_from_slice(c);
                ZSTD
            }
            None => STORED,
        };
        buf[SEAL_ROOM - 1] = flag;
        key(keys, kind).seal_in_place(&aad(kind, id), buf);
    }
}

/// Memory reserved up front when decompressing; beyond it the buffer grows with the real output.
const PREALLOC: usize = 8 << 20;

/// Decompresses at most `limit` bytes. Memory follows the real output: neither the length the
/// index claims nor the content size a frame header declares is allocated beyond [`PREALLOC`].
///
/// A blob whose limit fits in [`PREALLOC`] (every chunk the chunker makes) is decompressed in
/// one call with this thread's reused decompression context: making a new context for each
/// blob cost about 5% of a restore's CPU time. Anything else, and any failure of that call, goes
/// through the streaming decoder, which also says why a blob is refused.
fn decompress_bounded(body: &[u8], limit: usize) -> Result<Vec<u8>, FormatError> {
    thread_local! {
        static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    // An empty body holds no frame: the one call would take it for no output at all, the
    // streaming decoder refuses it.
    if limit <= PREALLOC && !body.is_empty() {
        let fast = DECOMPRESSOR.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = zstd::bulk::Decompressor::new().ok();
            }
            let d = d.as_mut()?;
            let mut out = Vec::with_capacity(limit);
            d.decompress_to_buffer(body, &mut out).ok()?;
            (out.len() <= limit).then_some(out)
        });
        if let Some(out) = fast {
            return Ok(out);
        }
    }
    decompress_streaming(body, limit)
}

fn decompress_streaming(body: &[u8], limit: usize) -> Result<Vec<u8>, FormatError> {
    decompress_at_most(body, limit, limit.min(PREALLOC))?.ok_or_else(|| {
        FormatError::Malformed(format!(
            "blob decompresses to more than the {limit} bytes its index says"
        ))
    })
}

/// zstd's streaming decoder, stopped past `limit` bytes of output (`Ok(None)`: the frame holds
/// more), into a vector that starts with room for `capacity`. Blobs and sealed objects
/// (`object.rs`) both decompress through it.
pub(crate) fn decompress_at_most(
    body: &[u8],
    limit: usize,
    capacity: usize,
) -> Result<Option<Vec<u8>>, FormatError> {
    use std::io::Read;
    let zstd_err = |e: std::io::Error| FormatError::Malformed(format!("zstd: {e}"));
    let decoder = zstd::stream::read::Decoder::with_buffer(body).map_err(zstd_err)?;
    let mut out = Vec::with_capacity(capacity);
    decoder
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(zstd_err)?;
    Ok((out.len() <= limit).then_some(out))
}

/// Opens a sealed blob, decompresses it and checks that its plaintext hashes to `id`.
/// `raw_len` is the plaintext length the index promises; larger outputs are refused.
pub fn open_blob(
    keys: &DerivedKeys,
    kind: BlobKind,
    id: &Id,
    sealed: &[u8],
    raw_len: usize,
) -> Result<Vec<u8>, FormatError> {
    let mut buf = sealed.to_vec();
    Ok(open_blob_in_place(keys, kind, id, &mut buf, raw_len)?.into_vec(buf))
}

/// Where an opened blob's plaintext is.
#[derive(Debug)]
pub enum Plaintext {
    /// In the buffer the blob was sealed in, at this range of it (a stored blob).
    At(std::ops::Range<usize>),
    /// A decompressed copy.
    Decompressed(Vec<u8>),
}

impl Plaintext {
    /// The plaintext, given the buffer the blob was opened in.
    pub fn get<'a>(&'a self, sealed: &'a [u8]) -> &'a [u8] {
        match self {
            Plaintext::At(r) => &sealed[r.clone()],
            Plaintext::Decompressed(v) => v,
        }
    }

    /// The plaintext as a vector of its own, reusing `sealed` (the buffer it was opened in).
    pub fn into_vec(self, mut sealed: Vec<u8>) -> Vec<u8> {
        match self {
            Plaintext::At(r) => {
                sealed.copy_within(r.clone(), 0);
                sealed.truncate(r.len());
                sealed
            }
            Plaintext::Decompressed(v) => v,
        }
    }
}

/// [`open_blob`] without a copy: decrypts `sealed` where it lies. A stored blob's plaintext is
/// then a range of `sealed`; a compressed one is decompressed into a new buffer.
pub fn open_blob_in_place(
    keys: &DerivedKeys,
    kind: BlobKind,
    id: &Id,
    sealed: &mut [u8],
    raw_len: usize,
) -> Result<Plaintext, FormatError> {
    let framed = key(keys, kind).open_in_place(&aad(kind, id), sealed)?;
    let (plain, at) = match framed.split_first() {
        None => return Err(FormatError::Malformed("empty blob".into())),
        Some((&STORED, body)) => (Cow::Borrowed(body), arca_crypto::NONCE_LEN + 1),
        Some((&ZSTD, body)) => (Cow::Owned(decompress_bounded(body, raw_len)?), 0),
        Some((other, _)) => {
            return Err(FormatError::Malformed(format!("compression flag {other}")));
        }
    };
    if Id(keys.blob_id(&plain)) != *id {
        return Err(FormatError::IdMismatch);
    }
    Ok(match plain {
        Cow::Borrowed(p) => Plaintext::At(at..at + p.len()),
        Cow::Owned(v) => Plaintext::Decompressed(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_crypto::BackupKey;
    use proptest::prelude::*;

    fn keys() -> DerivedKeys {
        BackupKey::from_bytes([9; 32]).derived()
    }

    #[test]
    fn text_is_compressed_random_is_not() {
        let k = keys();
        let mut s = Sealer::default();
        let text = b"hello chat message ".repeat(2000);
        let mut out = Vec::new();
        let id = Id(k.blob_id(&text));
        let n = s.seal_into(&k, BlobKind::Data, &id, &text, &mut out);
        assert!(n < text.len() / 10);
        assert_eq!(
            open_blob(&k, BlobKind::Data, &id, &out, text.len()).unwrap(),
            text
        );

        let mut random = vec![0u8; 100_000];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut random);
        let id = Id(k.blob_id(&random));
        let mut out = Vec::new();
        let n = s.seal_into(&k, BlobKind::Data, &id, &random, &mut out);
        assert_eq!(n, random.len() + 1 + arca_crypto::OVERHEAD);
    }

    #[test]
    fn kind_and_id_are_bound() {
        let k = keys();
        let mut s = Sealer::default();
        let id = Id(k.blob_id(b"abc"));
        let mut out = Vec::new();
        s.seal_into(&k, BlobKind::Data, &id, b"abc", &mut out);
        assert_eq!(
            open_blob(&k, BlobKind::Tree, &id, &out, 3),
            Err(FormatError::Authentication)
        );
        let other = Id(k.blob_id(b"abd"));
        assert_eq!(
            open_blob(&k, BlobKind::Data, &other, &out, 3),
            Err(FormatError::Authentication)
        );
    }

    /// Found by the `blob` fuzz target (corpus/blob/regress-oom-declared-content-size): with
    /// no frame content size (or a declared one), `open_blob` allocated the whole length the
    /// index claims, or the size a frame header declares, before decompressing anything: 1.7 GB
    /// for a 6-byte input, and a capacity overflow panic for the largest claims.
    #[test]
    fn a_frame_header_cannot_claim_memory() {
        let k = keys();
        let mut framed = vec![ZSTD];
        // Magic, a single-segment frame with an 8-byte content size of 1 TiB, one empty block.
        framed.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0xe0]);
        framed.extend_from_slice(&(1u64 << 40).to_le_bytes());
        framed.extend_from_slice(&[1, 0, 0]);
        let id = Id([1; 32]);
        let mut sealed = Vec::new();
        k.data
            .seal_into(&aad(BlobKind::Data, &id), &framed, &mut sealed);
        // The fuzzer's own reproducer: a zstd flag and no frame at all, with 1.7 GB claimed.
        let mut empty = Vec::new();
        k.data
            .seal_into(&aad(BlobKind::Data, &id), &[ZSTD], &mut empty);
        // Claims within PREALLOC take the one-call path with a reused context, larger ones the
        // streaming decoder; both must refuse.
        for claimed in [
            0,
            4096,
            PREALLOC,
            0x6801_6801,
            u32::MAX as usize,
            usize::MAX,
        ] {
            for sealed in [&sealed, &empty] {
                let r = open_blob(&k, BlobKind::Data, &id, sealed, claimed);
                assert!(
                    matches!(r, Err(FormatError::Malformed(_))),
                    "claimed {claimed}, {} bytes: {r:?}",
                    sealed.len()
                );
            }
        }
        // An honest blob still opens with a claim far above its size, and not above it.
        let mut s = Sealer::default();
        let text = b"hello chat message ".repeat(100);
        let id = Id(k.blob_id(&text));
        let mut out = Vec::new();
        s.seal_into(&k, BlobKind::Data, &id, &text, &mut out);
        assert_eq!(
            open_blob(&k, BlobKind::Data, &id, &out, u32::MAX as usize).unwrap(),
            text
        );
        assert_eq!(
            open_blob(&k, BlobKind::Data, &id, &out, text.len()).unwrap(),
            text
        );
        // One byte short of its size: refused, and the reason says so.
        match open_blob(&k, BlobKind::Data, &id, &out, text.len() - 1) {
            Err(FormatError::Malformed(m)) => assert!(m.contains("more than"), "{m}"),
            other => panic!("{other:?}"),
        }
        // The reused context is left sound by a refused blob.
        assert_eq!(
            open_blob(&k, BlobKind::Data, &id, &out, text.len()).unwrap(),
            text
        );
    }

    #[test]
    fn a_lying_id_is_caught_after_decryption() {
        // Someone holding K who seals data under an id that is not its hash is still caught.
        let k = keys();
        let mut s = Sealer::default();
        let id = Id([1; 32]);
        let mut out = Vec::new();
        s.seal_into(&k, BlobKind::Data, &id, b"abc", &mut out);
        assert_eq!(
            open_blob(&k, BlobKind::Data, &id, &out, 3),
            Err(FormatError::IdMismatch)
        );
    }

    /// A small blob of a compressed format is stored without a trial even when it would
    /// shrink; a larger one is still tried (on its sample first) and compressed.
    #[test]
    fn small_media_blobs_are_stored_without_a_trial() {
        let k = keys();
        for (len, media, compressed) in [
            (4000, false, true),
            (4000, true, false),
            (SAMPLE, true, false),
            (SAMPLE + 1, true, true),
        ] {
            let data: Vec<u8> = b"thumbnail ".iter().copied().cycle().take(len).collect();
            let id = Id(k.blob_id(&data));
            let mut buf = vec![0u8; SEAL_ROOM];
            buf.extend_from_slice(&data);
            Sealer::default().seal_in_place_from(&k, BlobKind::Data, &id, &mut buf, media);
            let stored_len = SEAL_ROOM + len + arca_crypto::TAG_LEN;
            assert_eq!(
                buf.len() < stored_len,
                compressed,
                "{len} bytes, media {media}"
            );
            let p = open_blob_in_place(&k, BlobKind::Data, &id, &mut buf, len).unwrap();
            assert_eq!(p.get(&buf), &data[..]);
        }
    }

    proptest! {
        #[test]
        fn in_place_opening_gives_the_same_plaintext(data in proptest::collection::vec(0u8..4, 0..5000), flip in any::<u16>()) {
            // Small alphabets compress (opened into a new buffer), short inputs are stored
            // (opened as a range of the sealed bytes): both ways must give the plaintext.
            let k = keys();
            let id = Id(k.blob_id(&data));
            let mut sealed = Vec::new();
            Sealer::default().seal_into(&k, BlobKind::Data, &id, &data, &mut sealed);
            let mut buf = sealed.clone();
            let p = open_blob_in_place(&k, BlobKind::Data, &id, &mut buf, data.len()).unwrap();
            prop_assert_eq!(p.get(&buf), &data[..]);
            prop_assert_eq!(p.into_vec(buf), data.clone());
            // A flipped byte anywhere is refused, in place as well.
            let mut bad = sealed.clone();
            let at = flip as usize % bad.len();
            bad[at] ^= 1;
            prop_assert!(open_blob_in_place(&k, BlobKind::Data, &id, &mut bad, data.len()).is_err());
        }

        /// Sealing in place makes what `seal_into` makes (same length and compression flag,
        /// opening to the same plaintext), whether the data compresses (a small alphabet,
        /// repeated) or not (bytes of any value, or too short).
        #[test]
        fn sealing_in_place_matches_seal_into(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            small in any::<bool>(),
            rep in 1usize..30,
        ) {
            let data: Vec<u8> = if small { data.iter().map(|b| b % 4).collect() } else { data };
            let data = data.repeat(rep);
            let k = keys();
            let mut s = Sealer::default();
            for kind in [BlobKind::Data, BlobKind::Tree] {
                let id = Id(k.blob_id(&data));
                let mut copied = Vec::new();
                s.seal_into(&k, kind, &id, &data, &mut copied);
                let mut in_place = vec![0xEE; SEAL_ROOM];
                in_place.extend_from_slice(&data);
                s.seal_in_place(&k, kind, &id, &mut in_place);
                prop_assert_eq!(in_place.len(), copied.len());
                prop_assert_eq!(open_blob(&k, kind, &id, &in_place, data.len()).unwrap(), data.clone());
                let other = if kind == BlobKind::Data { BlobKind::Tree } else { BlobKind::Data };
                prop_assert!(open_blob(&k, other, &id, &in_place, data.len()).is_err());
            }
        }

        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000), rep in 1usize..5) {
            let data = data.repeat(rep);
            let k = keys();
            let mut s = Sealer::default();
            let id = Id(k.blob_id(&data));
            let mut out = Vec::new();
            s.seal_into(&k, BlobKind::Tree, &id, &data, &mut out);
            prop_assert_eq!(open_blob(&k, BlobKind::Tree, &id, &out, data.len()).unwrap(), data);
        }
    }
}
