//! Snapshots: `open_object::<Snapshot>` on sealed, framed or postcard input (see src/lib.rs).
#![no_main]
use arca_format::object::{ObjectKind, open_object};
use arca_format::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(obj) = arca_fuzz::object_from_input(ObjectKind::Snapshot, data) else {
        return;
    };
    if let Ok(snap) = open_object::<Snapshot>(arca_fuzz::keys(), ObjectKind::Snapshot, &obj) {
        let again = arca_format::encode(&snap);
        assert_eq!(arca_format::decode::<Snapshot>(&again).unwrap(), snap);
    }
});
