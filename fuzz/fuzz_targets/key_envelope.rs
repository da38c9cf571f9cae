//! The key envelope as the vault hands it back: `arca_client::open_envelope` with a fixed export
//! key. Byte 0 is the length of the account name that follows; the rest is the envelope.
#![no_main]
use libfuzzer_sys::fuzz_target;

const EXPORT_KEY: [u8; 64] = [0x24; 64];

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n as usize).min(rest.len());
    let account = String::from_utf8_lossy(&rest[..n]);
    let envelope = &rest[n..];
    if let Some(key) = arca_client::open_envelope(&EXPORT_KEY, &account, envelope) {
        // Only an envelope sealed under this export key and account opens: seal it again and
        // the same key comes out.
        let again = arca_client::seal_envelope(&EXPORT_KEY, &account, &key);
        assert_eq!(
            arca_client::open_envelope(&EXPORT_KEY, &account, &again).unwrap(),
            key
        );
    }
});
