//! `arca`: end-to-end encrypted backups protected by a 64-digit key, a password, or both.

mod cli;
mod commands;
mod device;
mod exit;
mod head;
mod keysource;
mod output;
mod password;
mod progress;
mod vault;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "error",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARCA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let json = cli.json;
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => exit::report(&err, json),
    };
    std::process::exit(code);
}
