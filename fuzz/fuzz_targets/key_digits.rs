//! The 64-digit key parser, `arca_crypto::parse_digits`, on any text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = arca_crypto::parse_digits(&text) {
        // What parses must print and parse back to the same key.
        let printed = arca_crypto::format_digits(&key);
        assert_eq!(arca_crypto::parse_digits(&printed).unwrap(), key);
    }
});
