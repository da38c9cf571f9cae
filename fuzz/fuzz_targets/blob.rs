//! Blobs: `blob::open_blob`. Byte 0 picks the kind (bit 0) and the mode (bit 1); bytes 1..5 are
//! the plaintext length the index promises (u32 LE, as `BlobEntry::raw_length`).
//! Mode 0: the rest is the framed plaintext (`flag || body`), sealed here as arca seals a blob,
//! with the id of `body` so a stored blob opens. Mode 1: the rest is the sealed blob as stored.
#![no_main]
use arca_format::FORMAT_VERSION;
use arca_format::blob::{BlobKind, open_blob};
use arca_format::id::Id;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let kind = if data[0] & 1 == 0 {
        BlobKind::Data
    } else {
        BlobKind::Tree
    };
    let raw_len = u32::from_le_bytes(data[1..5].try_into().unwrap()) as usize;
    let rest = &data[5..];
    let k = arca_fuzz::keys();
    let (id, sealed) = if data[0] & 2 == 0 {
        let id = Id(k.blob_id(rest.get(1..).unwrap_or_default()));
        let mut aad = vec![FORMAT_VERSION, kind as u8];
        aad.extend_from_slice(&id.0);
        let key = match kind {
            BlobKind::Data => &k.data,
            BlobKind::Tree => &k.meta,
        };
        let mut sealed = Vec::new();
        key.seal_into(&aad, rest, &mut sealed);
        (id, sealed)
    } else {
        (Id([7; 32]), rest.to_vec())
    };
    if let Ok(plain) = open_blob(k, kind, &id, &sealed, raw_len) {
        assert!(plain.len() <= raw_len.max(rest.len()));
        assert_eq!(Id(k.blob_id(&plain)), id);
    }
});
