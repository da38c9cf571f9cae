//! Index files: `open_object::<IndexFile>` on sealed, framed or postcard input (see src/lib.rs).
#![no_main]
use arca_format::index::IndexFile;
use arca_format::object::{ObjectKind, open_object};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(obj) = arca_fuzz::object_from_input(ObjectKind::Index, data) else {
        return;
    };
    if let Ok(index) = open_object::<IndexFile>(arca_fuzz::keys(), ObjectKind::Index, &obj) {
        // What decodes must encode back to the same value.
        let again = arca_format::encode(&index);
        assert_eq!(arca_format::decode::<IndexFile>(&again).unwrap(), index);
    }
});
