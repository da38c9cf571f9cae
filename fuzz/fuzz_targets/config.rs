//! The repository config, the one object readable without K: `RepoConfig::from_bytes`, then
//! `check_key`. Byte 0 even: the rest is the config body (`version || postcard`) and the target
//! appends its true checksum, so the decoder behind the checksum is fuzzed; odd: the rest is the
//! stored file as is.
#![no_main]
use arca_format::config::RepoConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode % 2 == 0 {
        let mut b = rest.to_vec();
        let sum = blake3::hash(rest);
        b.extend_from_slice(sum.as_bytes());
        b
    } else {
        rest.to_vec()
    };
    if let Ok(cfg) = RepoConfig::from_bytes(&bytes) {
        let _ = cfg.check_key(&arca_fuzz::test_key());
        assert_eq!(RepoConfig::from_bytes(&cfg.to_bytes()).unwrap(), cfg);
    }
});
