//! The vault's `POST /v1/accounts/{account}/registration/start` handler: the input is the request body,
//! sent through the real router to a fresh vault, for the registered account and for an
//! unregistered one. Fails on a panic or a 500 answer (see src/vault.rs).
#![no_main]
use arca_fuzz::vault::Harness;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let h = Harness::get();
    let app = h.app();
    for who in 0..2 {
        h.send(&app, who, "POST", "/registration/start", data.to_vec());
    }
});
