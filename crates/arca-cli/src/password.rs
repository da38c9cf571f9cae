//! Passwords: where they come from (`ARCA_PASSWORD`, `ARCA_NEW_PASSWORD`, or the terminal) and
//! whether a new one is strong enough. A password is held in memory that is wiped on drop, and
//! is never printed or logged.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

use crate::exit::{NotSetUp, UsageError};

pub type Password = Zeroizing<String>;

/// The variable holding the current password, for scripts and tests.
pub const PASSWORD_VAR: &str = "ARCA_PASSWORD";
/// The variable holding a new password for `arca password change`.
pub const NEW_PASSWORD_VAR: &str = "ARCA_NEW_PASSWORD";

/// zxcvbn's score (0-4) a new password must reach: 3 is "safely unguessable", about 10^10
/// guesses, which even the vault's operator could not try against Argon2id in reasonable time.
const MIN_SCORE: u8 = 3;

fn from_env(var: &str) -> Option<Password> {
    std::env::var_os(var).map(|v| Zeroizing::new(v.to_string_lossy().into_owned()))
}

pub fn at_terminal() -> bool {
    std::io::stdin().is_terminal()
}

fn ask(prompt: &str) -> Result<Password> {
    Ok(Zeroizing::new(
        rpassword::prompt_password(prompt).context("cannot read the password from the terminal")?,
    ))
}

/// The current password: `ARCA_PASSWORD`, else asked once on the terminal; `None` when it is
/// in neither place.
pub fn current(prompt: &str) -> Result<Option<Password>> {
    if let Some(p) = from_env(PASSWORD_VAR) {
        return Ok(Some(p));
    }
    if !at_terminal() {
        return Ok(None);
    }
    Ok(Some(ask(prompt)?))
}

/// Like [`current`], but an error when there is no way to get it.
pub fn require_current(prompt: &str) -> Result<Password> {
    current(prompt)?.ok_or_else(|| {
        NotSetUp(format!(
            "the password is needed: set {PASSWORD_VAR}, or run this at a terminal"
        ))
        .into()
    })
}

/// Asks again at the terminal after a wrong password; empty input means "stop trying".
pub fn ask_again(prompt: &str) -> Result<Option<Password>> {
    let p = ask(prompt)?;
    Ok((!p.is_empty()).then_some(p))
}

/// A new password: from `var`, else asked twice at the terminal. A weak one is refused with
/// the reason (and asked again at a terminal).
pub fn choose(var: &str) -> Result<Password> {
    if let Some(p) = from_env(var) {
        strong_enough(&p).with_context(|| format!("the password in {var} is refused"))?;
        return Ok(p);
    }
    if !at_terminal() {
        bail!(NotSetUp(format!(
            "a password is needed: run this at a terminal to type it, or set {var}"
        )));
    }
    eprintln!(
        "Choose a password for this backup. Use several unrelated words or a long phrase: the vault\n\
         allows only a few wrong guesses, but its operator could try many offline against a weak one."
    );
    loop {
        let first = ask("New password: ")?;
        if let Err(e) = strong_enough(&first) {
            eprintln!("arca: {e}");
            continue;
        }
        let second = ask("The same password again: ")?;
        if *first != *second {
            eprintln!("arca: the two passwords differ; try again");
            continue;
        }
        return Ok(first);
    }
}

/// Refuses a password that zxcvbn scores below 3, with its feedback as the reason.
pub fn strong_enough(password: &str) -> Result<()> {
    if password.is_empty() {
        bail!(UsageError("the password is empty".into()));
    }
    // zxcvbn's cost grows with length; past 256 characters a password is long enough anyway.
    let head: String = password.chars().take(256).collect();
    let head = Zeroizing::new(head);
    let estimate = zxcvbn::zxcvbn(&head, &["arca", "backup", "password", "vault"]);
    let score = u8::from(estimate.score());
    if score >= MIN_SCORE {
        return Ok(());
    }
    let mut reason = String::new();
    if let Some(f) = estimate.feedback() {
        if let Some(w) = f.warning() {
            reason.push_str(&w.to_string());
        }
        for s in f.suggestions() {
            if !reason.is_empty() {
                reason.push(' ');
            }
            reason.push_str(&s.to_string());
        }
    }
    if reason.is_empty() {
        reason.push_str("It could be guessed too quickly.");
    }
    bail!(UsageError(format!(
        "this password is too weak (strength {score} of 4, at least {MIN_SCORE} needed): {reason}"
    )))
}
