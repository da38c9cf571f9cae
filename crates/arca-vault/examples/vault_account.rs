//! A device's side of the vault for shell scripts (campaigns/vault_api.sh): register an account
//! or log in to it over HTTP with arca-client, with the cheap test Argon2id parameters (the
//! server must run with `insecure_test_ksf = true`).
//!
//! ```sh
//! cargo run -p arca-vault --example vault_account -- register URL ACCOUNT PASSWORD GUESS_LIMIT
//! cargo run -p arca-vault --example vault_account -- login URL ACCOUNT PASSWORD
//! ```
//!
//! The bearer token is read from `ARCA_VAULT_TOKEN` (never from the command line). `register`
//! writes the 64-digit key's digest (BLAKE3 of K, hex) to stdout; `login` recovers K and writes
//! the same digest and the guesses left, so a script can compare the two.

use std::process::ExitCode;

use arca_client::{Http, recover, register};
use arca_crypto::BackupKey;
use arca_vault::suite::KsfParams;

const TEST_KSF: KsfParams = KsfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

fn digest(k: &BackupKey) -> String {
    blake3::hash(arca_crypto::format_digits(k).as_bytes())
        .to_hex()
        .to_string()
}

fn run(args: &[String]) -> Result<String, String> {
    let token = std::env::var("ARCA_VAULT_TOKEN").map_err(|_| "set ARCA_VAULT_TOKEN")?;
    match args {
        [cmd, url, account, password, limit] if cmd == "register" => {
            let limit: u32 = limit.parse().map_err(|e| format!("GUESS_LIMIT: {e}"))?;
            let t = Http::new(url, &token, account).map_err(|e| e.to_string())?;
            let k = BackupKey::generate();
            let r = register(
                &t,
                account,
                password.as_bytes(),
                &k,
                TEST_KSF,
                Some(limit),
                None,
            )
            .map_err(|e| e.to_string())?;
            Ok(format!("{} {}", digest(&k), r.guesses_left))
        }
        [cmd, url, account, password] if cmd == "login" => {
            let t = Http::new(url, &token, account).map_err(|e| e.to_string())?;
            let r = recover(&t, account, password.as_bytes(), &TEST_KSF)
                .map_err(|e| e.to_string())?;
            Ok(format!("{} {}", digest(&r.key), r.guesses_left))
        }
        _ => Err(
            "usage: vault_account register URL ACCOUNT PASSWORD GUESS_LIMIT | login URL ACCOUNT PASSWORD"
                .into(),
        ),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vault_account: {e}");
            ExitCode::FAILURE
        }
    }
}
