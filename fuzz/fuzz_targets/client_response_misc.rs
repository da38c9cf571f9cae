//! The device's decoding of the vault's other answers, as the HTTP client decodes them. Byte 0
//! picks the message: account status, head (then `verify_head`), delete, registration finish,
//! an error body (`error_from`, with the HTTP status from byte 1), or an account token
//! (`token_account`). The rest is the body.
#![no_main]
use arca_fuzz::vault::client_decode;
use arca_vault::wire::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let body = &data[2..];
    match data[0] % 6 {
        0 => {
            let _ = client_decode::<AccountStatus>(body);
        }
        1 => {
            if let Some(Some(head)) = client_decode::<Option<Head>>(body) {
                let _ = arca_client::verify_head(&arca_fuzz::test_key(), &[1; 16], &head);
            }
        }
        2 => {
            let _ = client_decode::<DeleteResponse>(body);
        }
        3 => {
            let _ = client_decode::<RegistrationFinishResponse>(body);
        }
        4 => {
            let status = 400 + u16::from(data[1]);
            let _ = arca_client::error_from(
                status,
                Some(u64::from(data[1])),
                &String::from_utf8_lossy(body),
            );
        }
        _ => {
            let _ = arca_client::token_account(&String::from_utf8_lossy(body));
        }
    }
});
