//! One file per command; this one holds what they share.

mod backup;
mod check;
mod disable;
mod enable;
mod key;
mod ls;
mod password;
mod restore;
mod snapshots;
mod status;

use anyhow::{Context, Result};
use arca_crypto::BackupKey;
use arca_engine::{Repository, Spill};
use arca_storage::{Settings, Storage, StorageUrl};

use crate::cli::{Cli, Command, KeyCommand, PasswordCommand};
use crate::device::{Device, DeviceState, default_repo};
use crate::keysource;

/// What every command needs.
pub struct Ctx {
    pub json: bool,
    pub quiet: bool,
    pub device: Device,
    pub state: DeviceState,
    pub repo_url: String,
    /// Command-line transfer settings, which win over the environment and the config file.
    transfer_flags: Vec<(&'static str, String)>,
}

impl Ctx {
    fn new(cli: &Cli) -> Result<Self> {
        let device = Device::locate()?;
        let state = device.state()?;
        let repo_url = match (&cli.repo, &state.repo) {
            (Some(r), _) => r.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => default_repo()?,
        };
        let mut transfer_flags = Vec::new();
        if let Some(v) = cli.limit_upload {
            transfer_flags.push(("limit_upload", v.to_string()));
        }
        if let Some(v) = cli.limit_download {
            transfer_flags.push(("limit_download", v.to_string()));
        }
        if let Some(v) = cli.uploads {
            transfer_flags.push(("uploads", v.to_string()));
        }
        if let Some(v) = cli.downloads {
            transfer_flags.push(("downloads", v.to_string()));
        }
        Ok(Ctx {
            json: cli.json,
            quiet: cli.quiet,
            device,
            state,
            repo_url,
            transfer_flags,
        })
    }

    /// The storage config file: ARCA_STORAGE_CONFIG, else `storage.toml` in the config dir.
    pub fn storage_config(&self) -> std::path::PathBuf {
        match std::env::var_os("ARCA_STORAGE_CONFIG") {
            Some(p) if !p.is_empty() => p.into(),
            _ => self.device.dir.join("storage.toml"),
        }
    }

    pub fn storage(&self) -> Result<Storage> {
        let mut settings = Settings::load(Some(&self.storage_config()))?;
        for (k, v) in &self.transfer_flags {
            settings.set("transfers", k, v.clone());
        }
        Storage::open_with(&self.repo_url, &settings)
            .with_context(|| format!("cannot open the storage at {}", self.repo_url))
    }

    /// Opens the repository with the key from the environment, this device, the password, or
    /// the terminal.
    pub fn open(&self) -> Result<Repository> {
        Ok(self.open_keyed()?.0)
    }

    /// Like [`Ctx::open`], also returning K.
    pub fn open_keyed(&self) -> Result<(Repository, BackupKey)> {
        let storage = self.storage()?;
        // Tell "no repository here" apart before asking for a key.
        let config = Repository::read_config(&storage)?;
        let key = keysource::resolve(&self.device, &self.state, &config.repo_id)?;
        let mut repo = Repository::open(storage, &key)?;
        repo.set_index_spill(self.index_spill(&repo)?);
        Ok((repo, key))
    }

    /// A large repository's index goes to this device's cache folder for the repository (not
    /// the temporary folder, which may be a tmpfs, that is, memory). `ARCA_INDEX_IN_MEMORY`
    /// sets how many blobs are held in memory first.
    fn index_spill(&self, repo: &Repository) -> Result<Spill> {
        let mut spill = Spill {
            dir: self.device.cache_dir(&repo.id_hex()),
            ..Spill::default()
        };
        if let Ok(v) = std::env::var("ARCA_INDEX_IN_MEMORY") {
            spill.max_entries = v.parse().ok().filter(|n| *n > 0).with_context(|| {
                format!("ARCA_INDEX_IN_MEMORY must be a number of blobs above 0, not {v:?}")
            })?;
        }
        Ok(spill)
    }

    /// Opens the repository and checks it against the key vault's head register (refusing a
    /// rolled-back one unless `allow_rollback`). Warnings are printed on stderr (stdout may be
    /// JSON) and returned.
    pub fn open_checked(&self, allow_rollback: bool) -> Result<(Repository, Vec<String>)> {
        let (repo, key) = self.open_keyed()?;
        let warnings = crate::head::check(&self.device, &self.state, &repo, &key, allow_rollback)?;
        for w in &warnings {
            eprintln!("arca: warning: {w}");
        }
        Ok((repo, warnings))
    }

    /// Progress bars only for people at a terminal.
    pub fn progress(&self, what: &'static str) -> crate::progress::Progress {
        crate::progress::Progress::start(what, !self.json && !self.quiet)
    }

    pub fn say(&self, text: impl AsRef<str>) {
        if !self.quiet && !self.json {
            println!("{}", text.as_ref());
        }
    }

    pub fn emit_json(&self, v: serde_json::Value) {
        if self.json {
            println!("{v}");
        }
    }

    /// The repository's local folder, if it is one (never backed up into itself).
    pub fn repo_folder(&self) -> Option<std::path::PathBuf> {
        match StorageUrl::parse(&self.repo_url) {
            Ok(StorageUrl::File(p)) => Some(p),
            _ => None,
        }
    }
}

/// `ARCA_WRITES=direct|cached|streamed`: how restored files and a local repository's packs are
/// written (`arca_storage::WriteMode`); for measurements only, the default is chosen by them.
fn large_writes_from_env() -> Result<()> {
    let Some(v) = std::env::var_os("ARCA_WRITES") else {
        return Ok(());
    };
    // Read before any mode is set: the default.
    let default = arca_storage::large_writes().name();
    let mode = v.to_string_lossy().parse().map_err(|e: String| {
        anyhow::anyhow!("ARCA_WRITES: {e}; unset it to use the default ({default})")
    })?;
    arca_storage::set_large_writes(mode);
    Ok(())
}

pub fn run(cli: Cli) -> Result<i32> {
    large_writes_from_env()?;
    let ctx = Ctx::new(&cli)?;
    match cli.command {
        Command::Enable(a) => enable::run(&ctx, a),
        Command::Backup(a) => backup::run(&ctx, a),
        Command::Snapshots(a) => snapshots::run(&ctx, a),
        Command::Ls(a) => ls::run(&ctx, a),
        Command::Restore(a) => restore::run(&ctx, a),
        Command::Check(a) => check::run(&ctx, a),
        Command::Key {
            command: KeyCommand::Show,
        } => key::show(&ctx),
        Command::Password {
            command: PasswordCommand::Change(a),
        } => password::change(&ctx, a),
        Command::Password {
            command: PasswordCommand::Verify,
        } => password::verify(&ctx),
        Command::Disable(a) => disable::run(&ctx, a),
        Command::Status => status::run(&ctx),
    }
}
