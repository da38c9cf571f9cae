//! Command-line syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "arca",
    version,
    about = "End-to-end encrypted, deduplicating backups: the storage sees only ciphertext.",
    after_help = "Exit codes: 0 ok, 1 failed, 2 usage error or malformed key, 3 completed with warnings, \
                  4 wrong key, 5 repository damaged, 6 not set up (no repository or no key)."
)]
pub struct Cli {
    /// Where the backup is stored: a folder path or file:///path. Default: the folder this
    /// device was enabled with, else <data dir>/arca/repo.
    #[arg(long, global = true, env = "ARCA_REPO", value_name = "URL")]
    pub repo: Option<String>,
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
    Snapshots,
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
    /// What is set up, the last backup, the repository and its size.
    Status,
}

#[derive(Args, Debug)]
pub struct EnableArgs {
    /// Protect the backup with a 64-digit key that you keep.
    #[arg(long)]
    pub key: bool,
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
