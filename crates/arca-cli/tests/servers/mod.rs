//! Real storage servers for the tests, started on loopback ports in temporary folders and
//! stopped when dropped: an S3 server (moto, from PyPI), a WebDAV server (`rclone serve
//! webdav`), an SSH server (OpenSSH's sshd, with a generated host key and a test user key).
//!
//! The HTTP servers can also serve HTTPS with a certificate from a private CA made by the test
//! ([`TestCa`]), as self-hosted servers do.
//!
//! A test whose server program is missing is skipped with a loud message, unless
//! `ARCA_REQUIRE_SERVERS=1` (set by `.ci/run`, which installs them all): then it fails.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Finds a program on PATH (or at one of `extra` places).
pub fn which(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .chain(extra.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// `None` (after a loud message) if `program` is missing and servers are not required.
pub fn require(program: &str, found: Option<PathBuf>, install: &str) -> Option<PathBuf> {
    if found.is_some() {
        return found;
    }
    if std::env::var("ARCA_REQUIRE_SERVERS").is_ok_and(|v| v == "1") {
        panic!("{program} is missing and ARCA_REQUIRE_SERVERS=1: install it with {install}");
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED: {program} is not installed, so this test did not run. Install it with `{install}` (.ci/run does).\n"
    );
    None
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited at start: {st}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not listen on port {port} within 60 s");
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a server certificate it signed for 127.0.0.1 and localhost, as PEM files.
pub struct TestCa {
    /// The CA's certificate: what a client must be told to trust.
    pub ca: PathBuf,
    /// The server's certificate and private key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "arca test private CA");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = p.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        let t = TestCa {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        std::fs::write(&t.ca, ca.pem()).unwrap();
        std::fs::write(&t.cert, cert.pem()).unwrap();
        std::fs::write(&t.key, key.serialize_pem()).unwrap();
        t
    }
}

/// One HTTP/1.0 request to moto, unsigned; the status and body.
pub fn http(port: u16, method: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // moto does not check signatures, but it reads the account from the credential, and
    // answers anonymous reads of private objects with 403.
    let auth = "AWS4-HMAC-SHA256 Credential=arca-test/20250101/us-east-1/s3/aws4_request, \
                SignedHeaders=host, Signature=00";
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp[end + 4..].to_vec())
}

/// Every `<tag>value</tag>` in an XML text.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let j = rest.find(&close).expect("closed tag");
        out.push(rest[..j].to_string());
        rest = &rest[j..];
    }
    out
}

/// The moto request above, over HTTPS trusting `ca` (Python's ssl module, which moto's Python
/// has anyway).
pub fn https(port: u16, ca: &Path, method: &str, path: &str) -> (u16, Vec<u8>) {
    const SCRIPT: &str = "import sys, ssl, http.client\n\
        ctx = ssl.create_default_context(cafile=sys.argv[1])\n\
        c = http.client.HTTPSConnection('127.0.0.1', int(sys.argv[2]), context=ctx, timeout=30)\n\
        c.request(sys.argv[3], sys.argv[4], headers={'Authorization': sys.argv[5], 'Content-Length': '0'})\n\
        r = c.getresponse()\n\
        sys.stdout.buffer.write(b'%d\\n' % r.status + r.read())\n";
    let auth = "AWS4-HMAC-SHA256 Credential=arca-test/20250101/us-east-1/s3/aws4_request, \
                SignedHeaders=host, Signature=00";
    let python = which("python3", &[]).expect("python3 (moto's)");
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(ca)
        .arg(port.to_string())
        .args([method, path, auth])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let nl = out.stdout.iter().position(|&b| b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&out.stdout[..nl]).parse().unwrap();
    (status, out.stdout[nl + 1..].to_vec())
}

/// An S3 server: moto, in memory; over HTTPS with a [`TestCa`] certificate if asked.
pub struct S3 {
    pub port: u16,
    /// The CA that signed the server's certificate, when it serves HTTPS.
    pub ca: Option<PathBuf>,
    _proc: Proc,
}

impl S3 {
    pub fn start() -> Option<S3> {
        S3::start_with(None)
    }

    /// moto serving HTTPS with a certificate from `ca`.
    pub fn start_tls(ca: &TestCa) -> Option<S3> {
        S3::start_with(Some(ca))
    }

    fn start_with(tls: Option<&TestCa>) -> Option<S3> {
        let bin = require(
            "moto_server",
            which("moto_server", &[]),
            "pip install 'moto[server]'",
        )?;
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(t) = tls {
            cmd.arg("-c").arg(&t.cert).arg("-k").arg(&t.key);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut p = Proc { child };
        wait_for_port(port, &mut p.child, "moto_server");
        Some(S3 {
            port,
            ca: tls.map(|t| t.ca.clone()),
            _proc: p,
        })
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// A request to the server, unsigned.
    fn request(&self, method: &str, path: &str) -> (u16, Vec<u8>) {
        match &self.ca {
            Some(ca) => https(self.port, ca, method, path),
            None => http(self.port, method, path),
        }
    }

    pub fn create_bucket(&self, name: &str) {
        let (st, body) = self.request("PUT", &format!("/{name}"));
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    }

    /// The environment that points arca at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("ARCA_S3_ENDPOINT".into(), self.endpoint()),
            ("AWS_ACCESS_KEY_ID".into(), "arca-test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "arca-test-secret".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ]
    }

    /// Every object of every bucket: (bucket, key, size).
    pub fn objects(&self) -> Vec<(String, String, u64)> {
        let (st, body) = self.request("GET", "/");
        assert_eq!(st, 200);
        let mut out = Vec::new();
        for bucket in xml_values(&String::from_utf8_lossy(&body), "Name") {
            let mut token: Option<String> = None;
            loop {
                let mut q = format!("/{bucket}?list-type=2&max-keys=1000");
                if let Some(t) = &token {
                    q.push_str(&format!("&continuation-token={t}"));
                }
                let (st, body) = self.request("GET", &q);
                assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
                let xml = String::from_utf8_lossy(&body).to_string();
                let keys = xml_values(&xml, "Key");
                let sizes = xml_values(&xml, "Size");
                assert_eq!(keys.len(), sizes.len());
                for (k, s) in keys.into_iter().zip(sizes) {
                    out.push((bucket.clone(), k, s.parse().unwrap()));
                }
                token = xml_values(&xml, "NextContinuationToken").pop();
                if token.is_none() {
                    break;
                }
            }
        }
        out
    }

    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let (st, body) = self.request("GET", &format!("/{bucket}/{key}"));
        assert_eq!(st, 200, "{bucket}/{key}");
        body
    }
}

/// A WebDAV server: `rclone serve webdav` over a folder; over HTTPS with a [`TestCa`]
/// certificate if asked.
pub struct WebDav {
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
    proc: Option<Proc>,
    /// The server's certificate and key, when it serves HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
}

impl WebDav {
    pub fn start(dir: &Path) -> Option<WebDav> {
        WebDav::start_with(dir, None)
    }

    /// The server, serving HTTPS with a certificate from `ca`.
    pub fn start_tls(dir: &Path, ca: &TestCa) -> Option<WebDav> {
        WebDav::start_with(dir, Some(ca))
    }

    fn start_with(dir: &Path, tls: Option<&TestCa>) -> Option<WebDav> {
        let bin = require("rclone", which("rclone", &[]), "apt-get install -y rclone")?;
        let mut w = WebDav {
            port: free_port(),
            dir: dir.to_path_buf(),
            bin,
            proc: None,
            tls: tls.map(|t| (t.cert.clone(), t.key.clone())),
        };
        w.restart();
        Some(w)
    }

    /// Stops the server (as if it died).
    pub fn stop(&mut self) {
        self.proc = None;
    }

    /// Starts it again on the same port and folder.
    pub fn restart(&mut self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.args(["serve", "webdav"])
            .arg(&self.dir)
            .args(["--addr", &format!("127.0.0.1:{}", self.port)])
            .args(["--config", "/dev/null"]);
        if let Some((cert, key)) = &self.tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rclone");
        let mut p = Proc { child };
        wait_for_port(self.port, &mut p.child, "rclone serve webdav");
        self.proc = Some(p);
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() {
            "webdavs"
        } else {
            "webdav"
        };
        format!("{scheme}://127.0.0.1:{}/{path}", self.port)
    }
}

/// An SSH server: sshd on a loopback port, as this user, with a generated host key; the client
/// side trusts exactly that host key and logs in with a generated user key.
pub struct Sftp {
    pub port: u16,
    pub dir: PathBuf,
    /// Put first on PATH: an `ssh` that uses this test's known_hosts file.
    pub bin_dir: PathBuf,
    pub user_key: PathBuf,
    pub user: String,
    _proc: Proc,
}

impl Sftp {
    pub fn start(dir: &Path) -> Option<Sftp> {
        Sftp::start_with(dir, "", "")
    }

    /// The server with more lines for its sshd_config, and the client's `ssh` with more
    /// options (given before OpenDAL's, so they win).
    pub fn start_with(dir: &Path, sshd_config: &str, ssh_options: &str) -> Option<Sftp> {
        let sshd = require(
            "sshd",
            which("sshd", &["/usr/sbin/sshd"]),
            "apt-get install -y openssh-server",
        )?;
        let ssh = require(
            "ssh",
            which("ssh", &["/usr/bin/ssh"]),
            "apt-get install -y openssh-client",
        )?;
        let keygen = which("ssh-keygen", &["/usr/bin/ssh-keygen"]).expect("ssh-keygen");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        // sshd insists on its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        for name in ["host_key", "user_key"] {
            let st = Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(name))
                .status()
                .unwrap();
            assert!(st.success());
        }
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let port = free_port();
        let d = dir.display();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n\
                 Subsystem sftp internal-sftp\n{sshd_config}"
            ),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {}\n", host_pub.join(" ")),
        )
        .unwrap();
        std::fs::write(
            dir.join("ssh_config"),
            format!("UserKnownHostsFile {d}/known_hosts\nGlobalKnownHostsFile /dev/null\n"),
        )
        .unwrap();
        let wrapper = dir.join("bin/ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec {} -F {d}/ssh_config {ssh_options} \"$@\"\n",
                ssh.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd");
        let mut p = Proc { child };
        wait_for_port(port, &mut p.child, "sshd");
        std::fs::create_dir_all(dir.join("srv")).unwrap();
        Some(Sftp {
            port,
            dir: dir.to_path_buf(),
            bin_dir: dir.join("bin"),
            user_key: dir.join("user_key"),
            user,
            _proc: p,
        })
    }

    pub fn url(&self) -> String {
        format!(
            "sftp://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            self.dir.join("srv/repo").display()
        )
    }

    /// Where openssh keeps its control sockets for this test (`XDG_STATE_HOME`).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The ssh control masters running for this test's arca: (pid, control socket).
    pub fn masters(&self) -> Vec<(u32, String)> {
        let prefix = self.state_dir().join(".ssh-connection");
        let prefix = prefix.to_string_lossy();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if !args.iter().any(|a| a == "-M") {
                continue;
            }
            let sock = args.windows(2).find(|w| w[0] == "-S").map(|w| &w[1]);
            if let Some(sock) = sock.filter(|s| s.starts_with(&*prefix)) {
                out.push((pid, sock.clone()));
            }
        }
        out
    }

    /// What a failed wait for masters to exit should show: each master's pid, its control
    /// socket, whether the socket and its folder still exist, and its log.
    pub fn describe_masters(&self) -> String {
        let mut out = String::new();
        for (pid, sock) in self.masters() {
            let sock = Path::new(&sock);
            let folder = sock.parent().unwrap_or(sock);
            let log = std::fs::read_to_string(folder.join("log")).unwrap_or_default();
            out.push_str(&format!(
                "\n  pid {pid}, socket {} (socket exists: {}, folder exists: {}), log: {:?}",
                sock.display(),
                sock.exists(),
                folder.exists(),
                log.trim()
            ));
        }
        out
    }

    pub fn env(&self) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_default();
        vec![
            ("PATH".into(), format!("{}:{path}", self.bin_dir.display())),
            ("ARCA_SFTP_KEY".into(), self.user_key.display().to_string()),
            // openssh keeps its control sockets here; short, private, and removed with the test.
            (
                "XDG_STATE_HOME".into(),
                self.state_dir().display().to_string(),
            ),
        ]
    }
}

impl Drop for Sftp {
    /// Stops the ssh masters a killed arca left (they would outlive the test).
    fn drop(&mut self) {
        for (pid, _) in self.masters() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// A device running `arca` against one repository URL.
pub struct Arca {
    pub root: PathBuf,
    pub repo: String,
    pub env: Vec<(String, String)>,
}

impl Arca {
    pub fn new(root: &Path, repo: String, env: Vec<(String, String)>) -> Arca {
        Arca {
            root: root.to_path_buf(),
            repo,
            env,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root.join("home"))
            .env("ARCA_CONFIG_DIR", self.root.join("device"))
            .env("ARCA_REPO", &self.repo)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `arca --json ARGS`, which must succeed; its JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.run(&a);
        assert!(out.status.success(), "arca {args:?} failed\n{}", show(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("arca {args:?}: {e}\n{}", show(&out)))
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Deterministic bytes that do not compress.
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::RngCore::fill_bytes(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed),
        &mut v,
    );
    v
}

/// Every entry under `root`: relative path, content (files, link targets) and mode.
pub fn tree(root: &Path) -> Vec<(PathBuf, Option<Vec<u8>>, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if m.is_dir() {
                stack.push(p.clone());
                out.push((rel, None, m.permissions().mode()));
            } else if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap().into_os_string();
                out.push((rel, Some(t.into_encoded_bytes()), 0));
            } else {
                out.push((
                    rel,
                    Some(std::fs::read(&p).unwrap()),
                    m.permissions().mode(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Where a restore into `target` puts `src`.
pub fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

/// A source folder: text, incompressible data, a subfolder, an empty folder and a symlink.
pub fn make_source(src: &Path) {
    std::fs::create_dir_all(src.join("docs/empty")).unwrap();
    std::fs::create_dir_all(src.join("photos")).unwrap();
    std::fs::write(src.join("docs/note.txt"), "meet at noon\n".repeat(500)).unwrap();
    std::fs::write(src.join("photos/a.jpg"), random_bytes(1, 3_000_000)).unwrap();
    std::fs::write(src.join("photos/b.jpg"), random_bytes(2, 1_500_000)).unwrap();
    std::os::unix::fs::symlink("../docs/note.txt", src.join("photos/link")).unwrap();
}

/// The full cycle every backend must pass: first backup, incremental backup, restore (byte for
/// byte), `check --read-data`, and traffic counters that add up.
pub fn cycle(arca: &Arca, src: &Path) {
    make_source(src);
    let src_s = src.to_str().unwrap();
    arca.json(&["enable", "--key"]);

    let first = arca.json(&["backup", src_s]);
    let t = &first["traffic"];
    let uploaded = first["uploaded_bytes"].as_u64().unwrap();
    assert!(uploaded > 4_500_000, "{first}");
    let sent = t["bytes_sent"].as_u64().unwrap();
    assert!(
        sent >= uploaded && sent < uploaded + 200_000,
        "bytes sent {sent} vs packs {uploaded}: {first}"
    );
    assert!(t["requests"].as_u64().unwrap() >= 4, "{first}");

    // incremental: one file changed, one added
    std::fs::write(src.join("docs/note.txt"), "meet at one\n".repeat(500)).unwrap();
    std::fs::write(src.join("docs/new.bin"), random_bytes(3, 200_000)).unwrap();
    let second = arca.json(&["backup", src_s]);
    let up2 = second["uploaded_bytes"].as_u64().unwrap();
    assert!(
        up2 < 600_000,
        "the incremental backup uploaded {up2}: {second}"
    );
    let sent2 = second["traffic"]["bytes_sent"].as_u64().unwrap();
    assert!(sent2 < 700_000, "{second}");
    assert_eq!(second["seq"], 2);

    let snaps = arca.json(&["snapshots"]);
    assert_eq!(snaps.as_array().map(|a| a.len()), Some(2), "{snaps}");

    let target = arca.root.join("restore");
    let r = arca.json(&["restore", "--target", target.to_str().unwrap()]);
    assert_eq!(tree(&restored(&target, src)), tree(src));
    let received = r["traffic"]["bytes_received"].as_u64().unwrap();
    assert!(received >= 4_700_000, "{r}");

    let c = arca.json(&["check", "--read-data"]);
    assert_eq!(c["ok"], true, "{c}");
    assert!(c["bytes_read"].as_u64().unwrap() >= uploaded, "{c}");
    let st = arca.json(&["status"]);
    assert_eq!(st["snapshots"], 2, "{st}");
    assert!(st["traffic"]["requests"].as_u64().unwrap() >= 1, "{st}");
}
