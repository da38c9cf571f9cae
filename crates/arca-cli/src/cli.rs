//! Command-line syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

fn parse_rate(s: &str) -> Result<u64, String> {
    arca_storage::parse_rate(s)
}

#[derive(Parser, Debug)]
#[command(
    name = "arca",
    version,
    about = "End-to-end encrypted, deduplicating backups: the storage sees only ciphertext.",
    after_help = "Exit codes: 0 ok, 1 failed, 2 usage error, malformed key or weak password, \
                  3 completed with warnings, 4 wrong key or wrong password, 5 repository damaged or \
                  rolled back (older than the key vault's head register), 6 not set up (no repository, \
                  no key, no password backup), 7 the password backup is gone (its guesses were used up).\n\n\
                  Environment: ARCA_REPO, ARCA_KEY, ARCA_KEY_FILE, ARCA_CONFIG_DIR, ARCA_PASSWORD, \
                  ARCA_NEW_PASSWORD, ARCA_VAULT (http(s):// URL or embedded vault database path), \
                  ARCA_VAULT_TOKEN, ARCA_VAULT_CA, ARCA_STORAGE_CONFIG (default <config dir>/storage.toml), \
                  ARCA_S3_ENDPOINT, ARCA_S3_REGION, ARCA_S3_PATH_STYLE, AWS_ACCESS_KEY_ID, \
                  AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ARCA_WEBDAV_USER, ARCA_WEBDAV_PASSWORD, \
                  ARCA_SFTP_KEY, ARCA_SFTP_KNOWN_HOSTS, ARCA_GDRIVE_*, ARCA_ONEDRIVE_*, ARCA_DROPBOX_* \
                  (REFRESH_TOKEN, CLIENT_ID, CLIENT_SECRET or ACCESS_TOKEN), ARCA_UPLOADS, \
                  ARCA_DOWNLOADS, ARCA_RETRIES, ARCA_TIMEOUT, ARCA_INDEX_IN_MEMORY; see README.md."
)]
pub struct Cli {
    /// Where the backup is stored: a folder path, file:///path, s3://bucket/prefix,
    /// webdav(s)://[user@]host/path, sftp://[user@]host[:port]/path, gdrive://folder,
    /// onedrive://folder or dropbox://folder. Default: the one this device was enabled with,
    /// else <data dir>/arca/repo. Endpoints and credentials come from the environment or the
    /// storage config file (README.md).
    #[arg(long, global = true, env = "ARCA_REPO", value_name = "URL")]
    pub repo: Option<String>,
    /// Send at most this many bytes per second, averaged over each object (e.g. 500k, 2M,
    /// 1MiB; also ARCA_LIMIT_UPLOAD).
    #[arg(long, global = true, value_name = "RATE", value_parser = parse_rate)]
    pub limit_upload: Option<u64>,
    /// Receive at most this many bytes per second (also ARCA_LIMIT_DOWNLOAD).
    #[arg(long, global = true, value_name = "RATE", value_parser = parse_rate)]
    pub limit_download: Option<u64>,
    /// Objects uploaded at once (default by storage: 2 for a folder or WebDAV, 4 for S3 or
    /// SFTP; also ARCA_UPLOADS).
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub uploads: Option<u32>,
    /// Objects downloaded at once (default 4, 8 for S3; also ARCA_DOWNLOADS).
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub downloads: Option<u32>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail (-vv for debugging).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Set up end-to-end encrypted backup on this device.
    Enable(EnableArgs),
    /// Back up now: incremental, deduplicated, encrypted.
    Backup(BackupArgs),
    /// List the backups.
    Snapshots(SnapshotsArgs),
    /// Browse a backup without restoring it.
    Ls(LsArgs),
    /// Restore a backup (default: the latest) into a folder.
    Restore(RestoreArgs),
    /// Verify the repository; with --read-data, every byte of every pack.
    Check(CheckArgs),
    /// Show this device's 64-digit key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Change or check the password that protects the backup.
    Password {
        #[command(subcommand)]
        command: PasswordCommand,
    },
    /// Turn backup off on this device: delete the vault's password record and this device's key
    /// and state (and with --delete-backup, the backup itself).
    Disable(DisableArgs),
    /// What is set up, the last backup, the repository and its size.
    Status,
}

#[derive(Args, Debug)]
pub struct EnableArgs {
    /// Protect the backup with a 64-digit key that you keep.
    #[arg(long)]
    pub key: bool,
    /// Protect the backup with a password, checked by a key vault that allows only a few wrong
    /// guesses (ARCA_PASSWORD gives it without a terminal).
    #[arg(long)]
    pub password: bool,
    /// The key vault: an http(s):// URL, or the path of an embedded vault database. Default:
    /// ARCA_VAULT, else <data dir>/arca/vault.db.
    #[arg(long, value_name = "URL", requires = "password")]
    pub vault: Option<String>,
    /// Wrong password guesses allowed before the vault destroys the password backup
    /// (default 10).
    #[arg(long, value_name = "N", requires = "password",
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub guess_limit: Option<u32>,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Files or folders to back up; default: those of this device's last backup.
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// `latest` (default) or a snapshot id prefix; then an optional path inside the backup.
    pub args: Vec<String>,
    /// Browse even if the storage holds an older state of the backup than the key vault's head
    /// register says it should.
    #[arg(long)]
    pub allow_rollback: bool,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// `latest` (default) or a snapshot id prefix.
    pub snapshot: Option<String>,
    /// Folder to restore into (created if needed).
    #[arg(long, value_name = "DIR")]
    pub target: PathBuf,
    /// Restore only this path inside the backup (repeatable).
    #[arg(long, value_name = "PATH")]
    pub include: Vec<String>,
    /// Go on even if the storage holds an older state of the backup than the key vault's head
    /// register says it should.
    #[arg(long)]
    pub allow_rollback: bool,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    /// List the backups even if the storage holds an older state of the backup than the key
    /// vault's head register says it should.
    #[arg(long)]
    pub allow_rollback: bool,
}

#[derive(Subcommand, Debug)]
pub enum PasswordCommand {
    /// Replace the password. Needs the current one (ARCA_PASSWORD), or with --with-key the
    /// 64-digit key; the new one is asked twice (or ARCA_NEW_PASSWORD).
    Change(ChangeArgs),
    /// Check that you still remember the password. Spends a guess, which a right password refunds.
    Verify,
}

#[derive(Args, Debug)]
pub struct ChangeArgs {
    /// Prove the right to change it with the 64-digit key (ARCA_KEY, ARCA_KEY_FILE or this
    /// device's key) instead of the current password.
    #[arg(long)]
    pub with_key: bool,
}

#[derive(Args, Debug)]
pub struct DisableArgs {
    /// Also delete every backup in the repository, for good.
    #[arg(long)]
    pub delete_backup: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also read and authenticate every byte of every pack.
    #[arg(long)]
    pub read_data: bool,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Print this device's 64-digit key.
    Show,
}
