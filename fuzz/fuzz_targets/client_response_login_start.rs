//! The device's handling of the vault's login start answer: the input is the answer body,
//! decoded as the HTTP client decodes it, then `arca_client::recover` runs on it (the Argon2id
//! floor and ceiling, OPAQUE `CredentialResponse` parsing, the client's finish) through a
//! scripted transport. Parameters inside the ceiling but above 4 MiB or 3 passes are skipped
//! only to keep each run fast; those beyond it must be refused before any stretching.
#![no_main]
use arca_fuzz::vault::{PASSWORD, Scripted, TINY_KSF, client_decode};
use arca_vault::suite::KsfParams;
use arca_vault::wire::LoginStartResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(resp) = client_decode::<LoginStartResponse>(data) else {
        return;
    };
    let k = resp.ksf;
    if k.within(&KsfParams::CEILING) && (k.m_kib > 4096 || k.t > 3 || k.p > 4) {
        return;
    }
    let t = Scripted {
        login_start: Some(resp),
        ..Scripted::default()
    };
    let _ = arca_client::recover(&t, "alice", PASSWORD, &TINY_KSF);
});
