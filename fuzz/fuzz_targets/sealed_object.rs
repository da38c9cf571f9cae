//! The outer framing of every sealed metadata object, as the cloud can alter it: version, kind,
//! nonce, ciphertext and tag, opened as each kind. The first byte picks the kind.
#![no_main]
use arca_format::index::IndexFile;
use arca_format::object::{ObjectKind, open_object};
use arca_format::pack::PackHeader;
use arca_format::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let k = arca_fuzz::keys();
    let _ = match which % 3 {
        0 => open_object::<PackHeader>(k, ObjectKind::PackHeader, rest).map(|_| ()),
        1 => open_object::<IndexFile>(k, ObjectKind::Index, rest).map(|_| ()),
        _ => open_object::<Snapshot>(k, ObjectKind::Snapshot, rest).map(|_| ()),
    };
});
