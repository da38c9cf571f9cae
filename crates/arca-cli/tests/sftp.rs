//! arca against a real SSH server (OpenSSH's sshd on a loopback port, a generated host key
//! that the client trusts, a generated user key): the full cycle.

mod servers;

use servers::{Arca, Sftp};

#[test]
fn backup_incremental_restore_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sftp) = Sftp::start(&dir.path().join("server")) else {
        return;
    };
    let arca = Arca::new(dir.path(), sftp.url(), sftp.env());
    servers::cycle(&arca, &dir.path().join("src"));
    assert!(sftp.dir.join("srv/repo/config").is_file());
    // Every pack arrived under its own name; no temporary file is left.
    let tmp = sftp.dir.join("srv/repo/.tmp");
    let left = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "temporary files left in {}", tmp.display());
}

#[test]
fn an_unknown_host_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sftp) = Sftp::start(&dir.path().join("server")) else {
        return;
    };
    std::fs::write(sftp.dir.join("known_hosts"), "").unwrap();
    let arca = Arca::new(dir.path(), sftp.url(), sftp.env());
    let out = arca.run(&["enable", "--key"]);
    assert_eq!(out.status.code(), Some(1), "{}", servers::show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&sftp.url()), "{err}");
}
