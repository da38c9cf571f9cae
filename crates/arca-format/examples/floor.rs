//! The machine's floor for a backup of DIR: how fast this machine can read the files, and read,
//! cut, hash and seal them with arca's own primitives, on one thread and on several.
//!
//! ```sh
//! cargo run --release --example floor -p arca-format -- DIR [THREADS...]
//! ```
//!
//! Each file is read in 4 MiB pieces and cut into 1 MiB chunks (the default average chunk size;
//! fixed cuts, so the chunker's cost is measured apart, in `cut`). Per chunk: the keyed BLAKE3 id,
//! then XChaCha20-Poly1305 sealing with the id as associated data. No compression (most of a
//! chat folder is media that does not compress), no packing, no writing. Threads take whole
//! files from a shared list. Each figure is the best of three runs. The last line is JSON for
//! `bench/run.py`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use arca_crypto::{BackupKey, DerivedKeys};
use arca_format::chunker::{Cdc, ChunkerParams};

const PIECE: usize = 4 << 20;
const CHUNK: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Read,
    Cut,
    HashSeal,
    CutHashSeal,
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            files(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// Runs `work` over every file on `threads` threads; returns (bytes, seconds).
fn run(paths: &[PathBuf], threads: usize, work: Work, keys: &DerivedKeys, cdc: &Cdc) -> (u64, f64) {
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; PIECE + cdc.max_size()];
                let mut sealed = Vec::with_capacity(CHUNK + 64);
                let mut seal = |chunk: &[u8]| {
                    let id = keys.blob_id(chunk);
                    sealed.clear();
                    keys.data.seal_into(&id, chunk, &mut sealed);
                };
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let mut file = std::fs::File::open(path).expect("open");
                    // `filled` bytes are held in buf; chunks are taken from its front.
                    let mut filled = 0;
                    let mut eof = false;
                    while !eof || filled > 0 {
                        while !eof && filled < PIECE {
                            let n = file.read(&mut buf[filled..PIECE]).expect("read");
                            eof = n == 0;
                            filled += n;
                        }
                        bytes.fetch_add(filled as u64, Relaxed);
                        let mut at = 0;
                        match work {
                            Work::Read => at = filled,
                            Work::HashSeal => {
                                for chunk in buf[..filled].chunks(CHUNK) {
                                    seal(chunk);
                                }
                                at = filled;
                            }
                            Work::Cut | Work::CutHashSeal => {
                                // Cut while a whole max-size chunk is held, or at the end.
                                while at < filled && (eof || filled - at >= cdc.max_size()) {
                                    let n = cdc.cut(&buf[at..filled]);
                                    if work == Work::CutHashSeal {
                                        seal(&buf[at..at + n]);
                                    }
                                    at += n;
                                }
                                // Bytes not yet cut are counted again next round.
                                bytes.fetch_sub((filled - at) as u64, Relaxed);
                            }
                        }
                        buf.copy_within(at..filled, 0);
                        filled -= at;
                    }
                }
            });
        }
    });
    (bytes.into_inner(), start.elapsed().as_secs_f64())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: floor DIR [THREADS...]"));
    let mut thread_counts: Vec<usize> = args.map(|a| a.parse().expect("THREADS")).collect();
    if thread_counts.is_empty() {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        thread_counts = vec![1, cpus];
    }
    let mut paths = Vec::new();
    files(&dir, &mut paths).expect("walk DIR");
    // Largest first, so threads finish together.
    paths.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).map_or(0, |m| m.len())));

    let keys = BackupKey::generate().derived();
    let cdc = Cdc::new(keys.chunker.expose(), ChunkerParams::default());
    let mut json = Vec::new();
    for (name, work) in [
        ("read", Work::Read),
        ("cut", Work::Cut),
        ("hash_seal", Work::HashSeal),
        ("cut_hash_seal", Work::CutHashSeal),
    ] {
        for &threads in &thread_counts {
            let (bytes, secs) = (0..3)
                .map(|_| run(&paths, threads, work, &keys, &cdc))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("three runs");
            let mib_s = bytes as f64 / secs / (1 << 20) as f64;
            println!(
                "{name:<14} {threads} thread(s): {:>8.1} MiB in {secs:>7.3} s = {mib_s:>7.1} MiB/s",
                bytes as f64 / (1 << 20) as f64
            );
            json.push(format!(
                "{{\"work\":\"{name}\",\"threads\":{threads},\"bytes\":{bytes},\"seconds\":{secs:.4}}}"
            ));
        }
    }
    println!("[{}]", json.join(","));
}
