//! The device's handling of the vault's login finish answer: a real login with a real vault
//! (see src/vault.rs) whose finish answer is replaced by the input, decoded as the HTTP client
//! decodes it; `arca_client::recover` then opens the released envelope and the key envelope.
#![no_main]
use arca_client::Embedded;
use arca_fuzz::vault::{Harness, PASSWORD, Scripted, TINY_KSF, client_decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(resp) = client_decode(data) else {
        return;
    };
    let t = Scripted {
        inner: Some(Embedded {
            vault: Harness::get().vault(),
            account: "alice".into(),
        }),
        login_finish: Some(resp),
        ..Scripted::default()
    };
    let _ = arca_client::recover(&t, "alice", PASSWORD, &TINY_KSF);
});
