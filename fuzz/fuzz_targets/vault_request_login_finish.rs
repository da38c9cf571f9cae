//! The vault's `POST /v1/accounts/{account}/login/finish` handler: the input is the request
//! body, sent through the real router to a fresh vault after a real login start. `LOGINID` in
//! the input becomes that login's id and `KE3` the real OPAQUE finalization, so the fuzzer
//! reaches the paths past OPAQUE (release of the envelope, change ticket). Fails on a panic or
//! a 500 answer.
#![no_main]
use arca_fuzz::vault::{Harness, fill};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let h = Harness::get();
    let app = h.app();
    let (login_id, ke3) = h.login(&app);
    let body = fill(&fill(data, b"LOGINID", &login_id), b"KE3", &ke3);
    h.send(&app, 0, "POST", "/login/finish", body);
});
