//! Pack headers: `pack::read_header` on a whole pack. Byte 0 is the mode (see src/lib.rs);
//! bytes 1..3 size the blob area in front of the header (modes 0 and 1); the rest is the header.
//! In mode 2 and above the rest is the whole pack as stored.
#![no_main]
use arca_format::object::ObjectKind;
use arca_format::pack::read_header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let mode = data[0];
    let area = u16::from_le_bytes([data[1], data[2]]) as usize % 8192;
    let rest = &data[3..];
    let pack = if mode < 2 {
        let mut input = vec![mode];
        input.extend_from_slice(rest);
        let header = arca_fuzz::object_from_input(ObjectKind::PackHeader, &input).unwrap();
        let mut pack = vec![arca_format::FORMAT_VERSION];
        pack.resize(1 + area, 0xa5);
        pack.extend_from_slice(&header);
        pack.extend_from_slice(&(header.len() as u32).to_le_bytes());
        pack
    } else {
        rest.to_vec()
    };
    if let Ok(blobs) = read_header(arca_fuzz::keys(), &pack) {
        // Every entry read_header accepts must be sliceable out of the pack.
        for b in blobs {
            let end = b.offset as usize + b.length as usize;
            assert!(b.offset >= 1 && end <= pack.len());
            let _ = &pack[b.offset as usize..end];
        }
    }
});
