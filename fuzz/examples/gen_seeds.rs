//! Writes the seed corpora made by arca's real encoders into `fuzz/corpus/<target>/`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds`.
fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let n = arca_fuzz::seeds::write_all(&dir).expect("writing the seeds");
    println!("wrote {n} seeds under {}", dir.display());
}
