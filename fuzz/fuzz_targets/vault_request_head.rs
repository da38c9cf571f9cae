//! The vault's `PUT /v1/accounts/{account}/head` handler: the input is the request body, sent
//! through the real router to a fresh vault for both accounts, followed by a `GET` of the head,
//! which must then answer the head that was accepted. Fails on a panic or a 500 answer.
#![no_main]
use arca_fuzz::vault::Harness;
use arca_vault::wire::Head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let h = Harness::get();
    let app = h.app();
    for who in 0..2 {
        let (status, _) = h.send(&app, who, "PUT", "/head", data.to_vec());
        let (got, body) = h.send(&app, who, "GET", "/head", Vec::new());
        if status.is_success() {
            let sent: Head = serde_json::from_slice(data).unwrap();
            let stored: Head = serde_json::from_slice(&body).unwrap();
            assert!(got.is_success());
            assert_eq!(stored, sent);
        }
    }
});
