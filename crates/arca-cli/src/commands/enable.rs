use anyhow::{Context, Result, bail};
use arca_client::ClientError;
use arca_crypto::{BackupKey, format_digits};
use arca_engine::{EngineError, Repository};
use arca_format::chunker::ChunkerParams;
use arca_format::config::DEFAULT_PACK_SIZE;

use super::Ctx;
use crate::cli::EnableArgs;
use crate::device::DeviceState;
use crate::exit::{OK, UsageError};
use crate::password::{self, PASSWORD_VAR};
use crate::vault::{self, Location};
use crate::{keysource, password::Password};

/// How the password part of `enable` went.
enum PasswordSetup {
    /// A new password was registered; the vault allows this many wrong guesses.
    Registered { guess_limit: u32 },
    /// The vault already held a password backup for this repository, and this device joined it
    /// with that password.
    Joined,
}

pub fn run(ctx: &Ctx, args: EnableArgs) -> Result<i32> {
    if !args.key && !args.password {
        bail!(UsageError(
            "choose how the backup is protected: `arca enable --key` makes a 64-digit key that you keep, `arca enable --password` a password checked by a guess-limited key vault (both together work too)".into()
        ));
    }
    let stored = ctx.device.stored_key()?;
    let had_key = stored.is_some();
    if stored.is_some() && (!args.password || ctx.state.vault.is_some()) {
        bail!(UsageError(format!(
            "backup is already enabled on this device (config folder {}); `arca status` shows how, `arca key show` prints its key{}",
            ctx.device.dir.display(),
            if ctx.state.vault.is_some() {
                ", `arca password change` changes its password"
            } else {
                ", `arca enable --password` adds a password"
            }
        )));
    }
    let location = if args.password {
        Some(vault::select(args.vault.as_deref(), &ctx.state)?)
    } else {
        None
    };
    if let Some(Location::Http(_)) = &location {
        vault::token(&ctx.device)?;
    }

    let storage = ctx.storage()?;
    let existing = match Repository::read_config(&storage) {
        Ok(c) => Some(c),
        Err(EngineError::NoRepository(_)) => None,
        Err(e) => return Err(e.into()),
    };
    // This device's key (an earlier `enable --key`) wins; else the one given in the environment.
    let mut key = match stored {
        Some(k) => Some(k),
        None => keysource::from_env()?,
    };

    // A password backup of this repository may already exist: then this device joins it.
    let mut joined = false;
    if let (Some(loc), Some(config), None) = (&location, &existing, &key)
        && let Some(k) = join_with_password(ctx, loc, &config.repo_id)?
    {
        key = Some(k);
        joined = true;
    }
    if existing.is_some() && key.is_none() {
        bail!(UsageError(format!(
            "a backup already exists at {}; to use it from this device, set ARCA_KEY (or ARCA_KEY_FILE) to its 64-digit key and run `arca enable` again{}",
            ctx.repo_url,
            if args.password {
                ", or set ARCA_VAULT to the key vault that holds its password"
            } else {
                ""
            }
        )));
    }
    // Choose the new password before anything is created, so a weak one leaves nothing behind.
    let new_password = if args.password && !joined {
        Some(password::choose(PASSWORD_VAR)?)
    } else {
        None
    };

    let (repo, key, created) = match existing {
        None => {
            let key = key.unwrap_or_else(BackupKey::generate);
            let (chunker, pack_size) = tuning()?;
            // The device keeps the key before the repository exists: a config dir that cannot
            // be written must not leave behind a backup whose key nobody has.
            ctx.device.store_key(&key)?;
            (
                Repository::init_with(storage, &key, chunker, pack_size)?,
                key,
                true,
            )
        }
        Some(_) => {
            let key = key.expect("checked above");
            let repo = Repository::open(storage, &key)?;
            ctx.device.store_key(&key)?;
            (repo, key, false)
        }
    };
    let mut state = DeviceState {
        repo: Some(ctx.repo_url.clone()),
        repo_id: Some(repo.id_hex()),
        paths: ctx.state.paths.clone(),
        vault: None,
        // The key was never shown if only a password was asked for on a device without a key.
        password_only: !args.key && !had_key,
    };
    ctx.device.save_state(&state)?;

    let mut setup = None;
    if let Some(loc) = &location {
        setup = Some(if joined {
            PasswordSetup::Joined
        } else {
            let pw = new_password.as_ref().expect("chosen above");
            register(ctx, loc, &repo, &key, pw, args.guess_limit).with_context(|| {
                format!(
                    "the backup at {} is set up and this device keeps its key, but the password could not be registered at the key vault {}; fix that and run `arca enable --password` again",
                    ctx.repo_url,
                    loc.to_text()
                )
            })?
        });
        if let Location::Http(_) = loc {
            ctx.device.store_vault_token(&vault::token(&ctx.device)?)?;
        }
        state.vault = Some(loc.to_text());
        ctx.device.save_state(&state)?;
    }

    report(ctx, &args, &repo, &key, created, location.as_ref(), setup);
    Ok(OK)
}

/// If the vault holds a password backup for this repository, recovers K with the password
/// (asked once). `None` when it holds none.
fn join_with_password(ctx: &Ctx, loc: &Location, repo_id: &[u8; 16]) -> Result<Option<BackupKey>> {
    let Some(conn) = vault::connect(loc, repo_id, &ctx.device, false)? else {
        return Ok(None);
    };
    let status = conn.status()?;
    if !status.registered {
        return Ok(None);
    }
    let pw = password::require_current(&format!(
        "This backup already has a password; type it to use the backup from this device ({} guesses left): ",
        status.guesses_left.unwrap_or(0)
    ))?;
    let recovered = conn.recover(&pw)?;
    Ok(Some(recovered.key.clone()))
}

fn register(
    ctx: &Ctx,
    loc: &Location,
    repo: &Repository,
    key: &BackupKey,
    pw: &Password,
    guess_limit: Option<u32>,
) -> Result<PasswordSetup> {
    let conn = vault::connect(loc, &repo.config().repo_id, &ctx.device, true)?
        .expect("created when absent");
    let status = conn.transport.status().map_err(ClientError::from)?;
    if status.registered {
        bail!(UsageError(format!(
            "the key vault {} already holds a password for this backup; `arca password change` replaces it",
            conn.describe()
        )));
    }
    let done = arca_client::register(
        conn.transport.as_ref(),
        &conn.account,
        pw.as_bytes(),
        key,
        vault::ksf(),
        guess_limit,
        None,
    )?;
    Ok(PasswordSetup::Registered {
        guess_limit: done.guess_limit,
    })
}

fn report(
    ctx: &Ctx,
    args: &EnableArgs,
    repo: &Repository,
    key: &BackupKey,
    created: bool,
    location: Option<&Location>,
    setup: Option<PasswordSetup>,
) {
    let digits = args.key.then(|| format_digits(key));
    let guess_limit = match &setup {
        Some(PasswordSetup::Registered { guess_limit }) => Some(*guess_limit),
        _ => None,
    };
    let joined = matches!(setup, Some(PasswordSetup::Joined));
    if ctx.json {
        ctx.emit_json(serde_json::json!({
            "repository": ctx.repo_url,
            "repository_id": repo.id_hex(),
            "created": created,
            "key": digits,
            "key_file": ctx.device.key_path(),
            "password": location.is_some(),
            "password_joined": joined,
            "vault": location.map(Location::to_text),
            "guess_limit": guess_limit,
        }));
        return;
    }
    if ctx.quiet && digits.is_none() {
        return;
    }
    println!(
        "End-to-end encrypted backup is {} at {}.\n",
        if created { "set up" } else { "connected" },
        ctx.repo_url
    );
    if let Some(digits) = &digits {
        println!("Your 64-digit key:\n\n    {digits}\n");
        println!(
            "Write it down or keep it in a password manager, away from this device. It is the only way\n\
             to restore this backup on a new device{}: nobody, including the storage provider, can\n\
             recover it for you. This device keeps a copy in {} (readable only by you);\n\
             `arca key show` prints it again.\n",
            if location.is_some() {
                " if you forget the password"
            } else {
                ""
            },
            ctx.device.key_path().display()
        );
    }
    if let Some(loc) = location {
        if joined {
            println!(
                "This device joined the password backup held by the key vault {}.",
                loc.to_text()
            );
        } else {
            println!(
                "Your password protects the backup through the key vault {}.\n\
                 The vault never sees the password or the backup key: it checks the password with OPAQUE\n\
                 and allows {} wrong guesses in a row, then destroys the password backup for good.",
                loc.to_text(),
                guess_limit.unwrap_or(10)
            );
        }
        let is_default = Location::default_embedded().ok().as_ref() == Some(loc);
        let vault_env = match loc {
            Location::Embedded(_) if is_default => String::new(),
            Location::Embedded(_) => format!("ARCA_VAULT={} ", loc.to_text()),
            Location::Http(u) => format!("ARCA_VAULT={u} ARCA_VAULT_TOKEN=<your token> "),
        };
        println!(
            "\nTo restore on a new device, run\n\n    {vault_env}ARCA_REPO={} arca restore --target DIR\n\n\
             and type the password when asked.",
            ctx.repo_url
        );
        if digits.is_none() {
            println!(
                "This device keeps the backup key in {} (readable only by you); `arca key show` prints\n\
                 it as a 64-digit key, a second way in that needs no vault.",
                ctx.device.key_path().display()
            );
        }
        if let Location::Embedded(db) = loc {
            println!(
                "The embedded vault is a file on this machine standing in for a vault server: keep it\n\
                 and its master key {} safe, or use an `arca-vault` server.",
                vault::master_key_path(db).display()
            );
        }
    }
}

/// `ARCA_CHUNKER=min,avg,max` and `ARCA_PACK_SIZE=bytes` choose a new repository's chunk and
/// pack sizes; they exist for the measurements that chose the defaults (BENCHMARKS.md).
fn tuning() -> Result<(ChunkerParams, u32)> {
    let mut chunker = ChunkerParams::default();
    if let Ok(v) = std::env::var("ARCA_CHUNKER") {
        let parts: Vec<u32> = v.split(',').filter_map(|p| p.trim().parse().ok()).collect();
        let [min, avg, max] = parts[..] else {
            bail!(UsageError(format!(
                "ARCA_CHUNKER must be min,avg,max in bytes, not {v:?}"
            )));
        };
        chunker = ChunkerParams { min, avg, max };
    }
    let pack_size = match std::env::var("ARCA_PACK_SIZE") {
        Ok(v) => v.trim().parse().map_err(|_| {
            UsageError(format!(
                "ARCA_PACK_SIZE must be a number of bytes, not {v:?}"
            ))
        })?,
        Err(_) => DEFAULT_PACK_SIZE,
    };
    Ok((chunker, pack_size))
}
