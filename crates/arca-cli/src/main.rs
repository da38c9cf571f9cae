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

/// Keeps glibc's malloc from spreading freed chunk and pack buffers over many heaps.
///
/// glibc gives each thread that allocates its own heap (arena), up to 8 per core, and a buffer
/// freed by another thread (the pipeline passes chunk buffers from the walker to the sealers and
/// the packer) goes back to the heap it came from, where it stays resident. With two heaps,
/// measured on a 2.1 GiB chat folder (BENCHMARKS.md, "Memory and size"): day-0 peak RSS 72-77 ->
/// 58 MiB, restore 56-60 -> 52 MiB, at the same CPU time. A fixed 128 KiB mmap threshold saved
/// more (46 MiB) but cost 20% more CPU in page faults, and was not kept. Setting
/// `MALLOC_ARENA_MAX` in the environment overrides this.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: `mallopt` only changes a tuning parameter of glibc's allocator and is documented
    // as callable at any time; M_ARENA_MAX with 2 is a valid value. It is called first thing in
    // `main`, before any other thread exists. Its return value (1 on success, 0 on a refused
    // value) needs no handling: on refusal glibc keeps its default behaviour.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() {
    limit_malloc_arenas();
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
