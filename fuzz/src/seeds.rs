//! The seed corpora, made by arca's real encoders (`cargo run --example gen_seeds` writes them
//! to `fuzz/corpus/<target>/`). Each seed starts with the mode or selector bytes its target
//! reads (see the target's doc comment).

use std::path::Path;

use arca_format::blob::{BlobKind, Sealer};
use arca_format::chunker::ChunkerParams;
use arca_format::config::RepoConfig;
use arca_format::id::Id;
use arca_format::index::{IndexFile, IndexPack};
use arca_format::object::{ObjectKind, seal_object};
use arca_format::pack::{PackBuilder, PackHeader};
use arca_format::snapshot::{Snapshot, Summary};
use arca_format::tree::{ChunkList, Content, Node, Tree};
use arca_format::{FORMAT_VERSION, encode};
use arca_vault::suite::KsfParams;
use arca_vault::wire::*;

use crate::vault::{Harness, PASSWORD, TINY_KSF};
use crate::{frame, keys, test_key};

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn node(name: &[u8], content: Content) -> Node {
    Node {
        name: name.to_vec(),
        mode: 0o100644,
        uid: 1000,
        gid: 1000,
        mtime: 1_700_000_000,
        mtime_nsec: 5,
        content,
    }
}

fn tree() -> Tree {
    let mut t = Tree {
        nodes: vec![
            node(
                b"file.txt",
                Content::File {
                    size: 5000,
                    chunks: vec![Id([1; 32]), Id([2; 32])],
                },
            ),
            node(b"dir", Content::Dir { tree: Id([3; 32]) }),
            node(
                b"link",
                Content::Symlink {
                    target: b"../x".to_vec(),
                },
            ),
            node(b"fifo", Content::Fifo),
            node(b"sock", Content::Socket),
            node(b"tty", Content::CharDevice { rdev: 0x0501 }),
            node(b"sda\xff", Content::BlockDevice { rdev: 0x0800 }),
            node(
                b"msgstore.db",
                Content::LongFile {
                    size: 4096 * 600,
                    lists: vec![Id([4; 32]), Id([5; 32])],
                },
            ),
        ],
    };
    t.normalize();
    t
}

fn snapshot() -> Snapshot {
    Snapshot {
        seq: 7,
        time: 1_700_000_000,
        time_nsec: 123,
        host: "host".into(),
        paths: vec![serde_bytes::ByteBuf::from(b"/home/u".to_vec())],
        parent: Some(Id([9; 32])),
        tree: Id([8; 32]),
        summary: Summary {
            files: 10,
            dirs: 2,
            bytes: 12345,
            new_bytes: 100,
            uploaded_bytes: 2048,
            warnings: 1,
        },
    }
}

/// A small real pack: two data blobs and one tree blob.
fn pack() -> (Vec<u8>, PackHeader) {
    let k = keys();
    let mut s = Sealer::default();
    let mut b = PackBuilder::default();
    let text = b"compressible text ".repeat(20);
    let tree_bytes = encode(&tree());
    for (kind, plain) in [
        (BlobKind::Data, &b"hello"[..]),
        (BlobKind::Data, &text[..]),
        (BlobKind::Tree, &tree_bytes[..]),
    ] {
        let id = Id(k.blob_id(plain));
        let mut sealed = Vec::new();
        s.seal_into(k, kind, &id, plain, &mut sealed);
        b.push(id, kind, plain.len() as u32, &sealed);
    }
    let (_, bytes, blobs) = b.finish(k);
    (bytes, PackHeader { blobs })
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Every target's seeds, as (target, file name, bytes).
pub fn all() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let mut add = |t: &'static str, name: &str, bytes: Vec<u8>| out.push((t, name.into(), bytes));
    let k = keys();

    // Pack headers: postcard, framed, and a whole real pack.
    let (pack_bytes, header) = pack();
    let area = pack_bytes.len() as u16; // every blob offset lies inside this area
    let header_plain = encode(&header);
    add(
        "pack_header",
        "postcard",
        cat(&[&[0], &area.to_le_bytes(), &header_plain]),
    );
    add(
        "pack_header",
        "framed",
        cat(&[&[1], &area.to_le_bytes(), &frame(&header_plain)]),
    );
    add("pack_header", "pack", cat(&[&[2, 0, 0], &pack_bytes]));
    add(
        "pack_header",
        "empty",
        cat(&[&[0, 1, 0], &encode(&PackHeader { blobs: vec![] })]),
    );

    // Blobs: a stored and a zstd-compressed framed plaintext, and real sealed blobs.
    let text = b"compressible text ".repeat(20);
    let zstd_text = zstd::bulk::compress(&text, 3).unwrap();
    let len = |n: usize| (n as u32).to_le_bytes();
    add("blob", "stored_data", cat(&[&[0], &len(5), &[0], b"hello"]));
    add(
        "blob",
        "zstd_tree",
        cat(&[&[1], &len(text.len()), &[1], &zstd_text]),
    );
    add(
        "blob",
        "zstd_data",
        cat(&[&[0], &len(text.len()), &[1], &zstd_text]),
    );
    let mut s = Sealer::default();
    for (name, kind, plain) in [
        ("sealed_data", BlobKind::Data, &text[..]),
        ("sealed_tree", BlobKind::Tree, &encode(&tree())[..]),
    ] {
        let mut sealed = Vec::new();
        s.seal_into(k, kind, &Id([7; 32]), plain, &mut sealed);
        add(
            "blob",
            name,
            cat(&[&[2 | kind as u8], &len(plain.len()), &sealed]),
        );
    }

    // Trees.
    add("tree", "tree", encode(&tree()));
    add("tree", "empty", encode(&Tree::default()));
    add(
        "tree",
        "chunk_list",
        encode(&ChunkList {
            chunks: vec![Id([6; 32]), Id([7; 32]), Id([6; 32])],
        }),
    );

    // Index files and snapshots: postcard, framed, sealed.
    let index = IndexFile {
        packs: vec![
            IndexPack {
                id: Id([4; 32]),
                size: pack_bytes.len() as u64,
                blobs: header.blobs.clone(),
            },
            IndexPack {
                id: Id([5; 32]),
                size: 0,
                blobs: vec![],
            },
        ],
    };
    for (target, kind, plain, sealed) in [
        (
            "index",
            ObjectKind::Index,
            encode(&index),
            seal_object(k, ObjectKind::Index, &index),
        ),
        (
            "snapshot",
            ObjectKind::Snapshot,
            encode(&snapshot()),
            seal_object(k, ObjectKind::Snapshot, &snapshot()),
        ),
    ] {
        add(target, "postcard", cat(&[&[0], &plain]));
        add(target, "framed", cat(&[&[1], &frame(&plain)]));
        add(target, "sealed", cat(&[&[2], &sealed]));
        let _ = kind;
    }

    // The outer framing of each kind of sealed object.
    add(
        "sealed_object",
        "pack_header",
        cat(&[&[0], &seal_object(k, ObjectKind::PackHeader, &header)]),
    );
    add(
        "sealed_object",
        "index",
        cat(&[&[1], &seal_object(k, ObjectKind::Index, &index)]),
    );
    add(
        "sealed_object",
        "snapshot",
        cat(&[&[2], &seal_object(k, ObjectKind::Snapshot, &snapshot())]),
    );

    // The repository config: body (the target adds the checksum) and the whole file.
    let cfg = RepoConfig::new(k, [7; 16], 1_700_000_000);
    let file = cfg.to_bytes();
    add("config", "body", cat(&[&[0], &file[..file.len() - 32]]));
    add("config", "file", cat(&[&[1], &file]));
    let small = RepoConfig::with_params(
        k,
        [8; 16],
        1,
        ChunkerParams {
            min: 64,
            avg: 128,
            max: 256,
        },
        1 << 20,
    );
    let mut body = vec![FORMAT_VERSION];
    body.extend_from_slice(&encode(&small));
    add("config", "small_body", cat(&[&[0], &body]));

    // The 64-digit key.
    let digits = arca_crypto::format_digits(&test_key());
    add("key_digits", "spaced", digits.clone().into_bytes());
    add(
        "key_digits",
        "dashed",
        digits.replace(' ', "-").to_uppercase().into_bytes(),
    );
    add("key_digits", "short", digits[..40].as_bytes().to_vec());

    // The key envelope (export key and account as the target fixes them).
    let env = arca_client::seal_envelope(&[0x24; 64], "alice", &test_key());
    add("key_envelope", "alice", cat(&[&[5], b"alice", &env]));
    add("key_envelope", "no_account", cat(&[&[0], &env]));

    // Vault requests, made by the real client side of OPAQUE against the harness's vault.
    let h = Harness::get();
    let app = h.app();
    let start = opaque_ke::ClientRegistration::<arca_vault::suite::Suite>::start(
        &mut rand_core::OsRng,
        PASSWORD,
    )
    .unwrap();
    add(
        "vault_request_registration_start",
        "request",
        json(&RegistrationStartRequest {
            request: start.message.serialize().to_vec(),
        }),
    );
    let login =
        opaque_ke::ClientLogin::<arca_vault::suite::Suite>::start(&mut rand_core::OsRng, PASSWORD)
            .unwrap();
    add(
        "vault_request_login_start",
        "request",
        json(&LoginStartRequest {
            request: login.message.serialize().to_vec(),
        }),
    );
    let proof_hash = blake3::hash(&arca_client::key_proof(&test_key())[..]);
    let finish = |change: &str| {
        format!(
            r#"{{"upload":"UPLOAD","envelope":"{}","ksf":{{"m_kib":8,"t":1,"p":1}},"guess_limit":10,"key_proof_hash":"{}"{change}}}"#,
            b64::encode(&env),
            b64::encode(proof_hash.as_bytes()),
        )
        .into_bytes()
    };
    add("vault_request_registration_finish", "first", finish(""));
    add(
        "vault_request_registration_finish",
        "change_key_proof",
        finish(r#","change":{"key_proof":"KEYPROOF"}"#),
    );
    add(
        "vault_request_registration_finish",
        "change_ticket",
        finish(r#","change":{"ticket":"AAAA"}"#),
    );
    add(
        "vault_request_login_finish",
        "real",
        br#"{"login_id":"LOGINID","finalization":"KE3"}"#.to_vec(),
    );
    add(
        "vault_request_login_finish",
        "failed",
        br#"{"login_id":"LOGINID","finalization":""}"#.to_vec(),
    );
    let mac = arca_client::head_mac(&test_key(), &[1; 16], 5);
    add(
        "vault_request_head",
        "head",
        json(&Head {
            seq: 5,
            mac: mac.clone(),
        }),
    );

    // Vault answers, as a real vault gives them.
    let (status, bytes) = h.send(
        &app,
        0,
        "POST",
        "/registration/start",
        json(&RegistrationStartRequest {
            request: start.message.serialize().to_vec(),
        }),
    );
    assert!(status.is_success());
    add("client_response_registration_start", "answer", bytes);
    let (status, bytes) = h.send(
        &app,
        0,
        "POST",
        "/login/start",
        json(&LoginStartRequest {
            request: login.message.serialize().to_vec(),
        }),
    );
    assert!(status.is_success());
    add("client_response_login_start", "answer", bytes.clone());
    let mut weak: LoginStartResponse = serde_json::from_slice(&bytes).unwrap();
    weak.ksf = KsfParams {
        m_kib: 4,
        t: 1,
        p: 1,
    };
    add("client_response_login_start", "weak_ksf", json(&weak));
    let (login_id, ke3) = h.login(&app);
    let (status, bytes) = h.send(
        &app,
        0,
        "POST",
        "/login/finish",
        json(&LoginFinishRequest {
            login_id,
            finalization: ke3,
        }),
    );
    assert!(status.is_success());
    add("client_response_login_finish", "answer", bytes);
    let _ = TINY_KSF;

    let (_, status_body) = h.send(&app, 0, "GET", "", Vec::new());
    add(
        "client_response_misc",
        "status",
        cat(&[&[0, 0], &status_body]),
    );
    add(
        "client_response_misc",
        "head",
        cat(&[&[1, 0], &json(&Head { seq: 5, mac })]),
    );
    add("client_response_misc", "no_head", cat(&[&[1, 0], b"null"]));
    add(
        "client_response_misc",
        "delete",
        cat(&[&[2, 0], br#"{"deleted":true}"#]),
    );
    add(
        "client_response_misc",
        "registered",
        cat(&[&[3, 0], br#"{"guess_limit":10,"guesses_left":9}"#]),
    );
    let (_, err) = h.send(
        &app,
        0,
        "POST",
        "/login/finish",
        br#"{"login_id":"AAAA","finalization":""}"#.to_vec(),
    );
    add("client_response_misc", "error", cat(&[&[4, 4], &err]));
    add(
        "client_response_misc",
        "wrong_password",
        cat(&[
            &[4, 1],
            br#"{"error":"wrong_password","message":"wrong password","guesses_left":3}"#,
        ]),
    );
    add(
        "client_response_misc",
        "head_behind",
        cat(&[
            &[4, 9],
            br#"{"error":"head_behind","message":"behind","head_seq":12}"#,
        ]),
    );
    add(
        "client_response_misc",
        "token",
        cat(&[&[5, 0], b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"]),
    );
    out
}

/// Writes every seed under `dir/<target>/seed-<name>`.
pub fn write_all(dir: &Path) -> std::io::Result<usize> {
    let seeds = all();
    for (target, name, bytes) in &seeds {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(format!("seed-{name}")), bytes)?;
    }
    Ok(seeds.len())
}
