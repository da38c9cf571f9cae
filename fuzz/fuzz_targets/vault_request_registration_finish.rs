//! The vault's `POST /v1/accounts/{account}/registration/finish` handler: the input is the
//! request body, sent through the real router to a fresh vault for the registered account
//! (a password change) and an unregistered one (a first registration). `UPLOAD` in the input
//! becomes a real OPAQUE registration upload for that account, and `KEYPROOF` the real key
//! proof, so the fuzzer reaches the paths past OPAQUE. Fails on a panic or a 500 answer.
#![no_main]
use arca_fuzz::vault::{Harness, fill};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let h = Harness::get();
    let app = h.app();
    let proof = arca_client::key_proof(&arca_fuzz::test_key());
    for who in 0..2 {
        let mut body = data.to_vec();
        if data.windows(6).any(|w| w == b"UPLOAD") {
            body = fill(&body, b"UPLOAD", &h.upload(&app, who));
        }
        body = fill(&body, b"KEYPROOF", &proof[..]);
        h.send(&app, who, "POST", "/registration/finish", body);
    }
});
