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

/// Keeps glibc's malloc from holding on to freed chunk and pack buffers.
///
/// glibc serves a block of 128 KiB or more with its own mapping, given back when freed, but
/// after such a block is freed it raises that threshold to the block's size (up to 32 MiB). From
/// then on the MiB-sized chunk, sealed-blob and read buffers come from the per-thread heaps,
/// which fragment and keep their pages: measured on an 8.3 GiB chat folder, a day-0 backup
/// peaked at 108 MiB resident with a 55 MiB heap; with the threshold fixed, 52 MiB, flat within
/// 20% from 0.5 to 8.3 GiB (BENCHMARKS.md, "Memory and size"). Setting `MALLOC_MMAP_THRESHOLD_`
/// in the environment overrides this.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_buffers_mapped() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    // SAFETY: `mallopt` only changes a tuning parameter of glibc's allocator and is documented
    // as callable at any time; M_MMAP_THRESHOLD with 128 KiB (its default, within the allowed
    // 0..=32 MiB) is valid. It is called first thing in `main`, before any other thread exists.
    // Its return value (1 on success, 0 on a refused value) needs no handling: on refusal
    // glibc keeps its default behaviour.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_buffers_mapped() {}

fn main() {
    keep_large_buffers_mapped();
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
