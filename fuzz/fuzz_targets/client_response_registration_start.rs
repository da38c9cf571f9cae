//! The device's handling of the vault's registration start answer: the input is the answer body,
//! decoded as the HTTP client decodes it, then `arca_client::register` runs on it (OPAQUE
//! `RegistrationResponse` parsing and the client's finish) through a scripted transport.
#![no_main]
use arca_fuzz::vault::{PASSWORD, Scripted, TINY_KSF, client_decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(resp) = client_decode(data) else {
        return;
    };
    let t = Scripted {
        registration_start: Some(resp),
        ..Scripted::default()
    };
    let _ = arca_client::register(
        &t,
        "alice",
        PASSWORD,
        &arca_fuzz::test_key(),
        TINY_KSF,
        None,
        None,
    );
});
