//! Where a repository's files live: one [`Storage`] type over Apache OpenDAL, reached by URL.
//!
//! The engine runs on plain threads; `Storage` gives them a blocking API and drives OpenDAL's
//! async operators on its own Tokio runtime. Several threads may call it at once: that is how
//! several transfers are kept in flight.
//!
//! Every operation goes through, from the outside in: OpenDAL's `RetryLayer` (transient errors
//! are tried again with exponential backoff and jitter), the [`meter`] layer (a deadline for
//! each attempt that grows with its size; counts of requests and bytes), the test-only
//! [`faults`] layer (`ARCA_TEST_FAULTS`), then the service. Services reached over HTTP count
//! each HTTP request in their transport instead, retries and listing pages included.

mod backend;
mod direct;
mod error;
mod faults;
mod local;
mod meter;
mod range;
mod reaper;
mod runtime;
mod settings;
mod stats;
mod throttle;
mod tls;
mod url;

use std::sync::Arc;
use std::time::Duration;

use opendal::Operator;
use opendal::layers::RetryLayer;

pub use direct::{
    ALIGN, AlignedBuf, DirectWriter, InFlight, STREAM_WINDOW, WriteMode, large_writes,
    set_large_writes,
};
pub use error::StorageError;
pub use faults::FaultSpec;
pub use local::{LocalFile, LocalFolder};
pub use range::RangeBuf;
pub use settings::{Settings, Transfers, env_name, parse_rate};
pub use stats::{Stats, StatsSnapshot};
pub use url::StorageUrl;

use throttle::{Limiter, sleep_until};

/// One listed file: its path relative to the repository root and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub size: u64,
}

/// Where uploads are written before they are renamed into place: arca's own temporary uploads
/// on SFTP and WebDAV, and OpenDAL's on a local folder.
pub const TEMPORARY_DIR: &str = ".tmp/";

/// How old a temporary upload must be (by the server's last-modified time) before it is taken
/// for one a killed run left behind and removed. An upload in progress, from this device or
/// another one backing up into the same repository, is younger: one pack takes minutes at most
/// (a stalled transfer is abandoned after `ARCA_TIMEOUT`), and a day also covers any plausible
/// difference between the server's clock and this device's.
pub const STALE_TEMPORARY_AGE: Duration = Duration::from_secs(24 * 3600);

/// A temporary upload found in [`TEMPORARY_DIR`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Temporary {
    pub path: String,
    pub size: u64,
    /// Time since the server last modified it; `None` if the server does not say.
    pub age: Option<Duration>,
}

impl Temporary {
    /// Whether it is old enough to be a leftover of a killed run (never when its age is unknown).
    pub fn is_stale(&self) -> bool {
        self.age.is_some_and(|a| a >= STALE_TEMPORARY_AGE)
    }
}

/// What a sweep of [`TEMPORARY_DIR`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Stale temporary uploads removed.
    pub removed: usize,
    pub removed_bytes: u64,
    /// Younger ones (or of unknown age) left alone.
    pub kept: usize,
}

/// A repository's storage.
#[derive(Clone)]
pub struct Storage {
    /// Declared before `rt`, so that the last clone drops the operator (and with it an SFTP
    /// pool's sessions) before the runtime, which then lets their closing finish (see
    /// [`runtime`]).
    op: Operator,
    rt: Arc<runtime::IoRuntime>,
    url: StorageUrl,
    stats: Arc<Stats>,
    transfers: Transfers,
    upload: Option<Arc<Limiter>>,
    /// Paces downloads here, for services whose HTTP answers are not paced as they stream.
    download: Option<Arc<Limiter>>,
    /// Write under a temporary name, then rename (servers that store a write as it arrives).
    rename_into_place: bool,
    /// Whether this kind of storage has a [`TEMPORARY_DIR`] to sweep.
    has_temporaries: bool,
    /// Stale temporary uploads are removed before this storage's first write.
    swept: Arc<std::sync::Once>,
    /// The folder of a local repository read and written directly (see [`local`]); `None` for
    /// other services, and when faults are injected or uploads are paced, which go through
    /// OpenDAL.
    local: Option<LocalFolder>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.url)
    }
}

type Result<T> = std::result::Result<T, StorageError>;

/// How often a ranged read that came back short is tried again while the object is long enough.
const SHORT_READ_RETRIES: usize = 3;

impl Storage {
    /// Opens the storage a URL names, with settings from the environment only.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &Settings::from_env())
    }

    /// Opens the storage a URL names (see [`StorageUrl`]) with `settings` (endpoints,
    /// credentials, transfers; see [`Settings`]).
    pub fn open_with(url: &str, settings: &Settings) -> Result<Self> {
        let url = StorageUrl::parse(url)?;
        let mut transfers = settings.transfers(backend::default_transfers(&url))?;
        // A paced transfer must not be taken for a stalled one.
        if let Some(l) = transfers.limit_upload.min(transfers.limit_download) {
            transfers.min_rate = transfers.min_rate.min((l / 2).max(1));
        }
        let faults = match settings.get("test", "faults")? {
            Some(spec) => Some(FaultSpec::parse(&spec)?),
            None => None,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("arca-io")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Setup(format!("cannot start the I/O runtime: {e}")))?;
        // Before the operator exists, so that no ssh master starts before this process adopts
        // its masters.
        let rt = runtime::IoRuntime::new(rt, matches!(url, StorageUrl::Sftp { .. }));
        let stats = Arc::new(Stats::default());
        let download = transfers.limit_download.map(|r| Arc::new(Limiter::new(r)));
        let http = url.is_http();
        // Building some services (SFTP's connection pool) needs a runtime.
        let op = {
            let _guard = rt.enter();
            backend::operator(&url, settings)?
        };
        let mut op = op;
        if http {
            opendal::install_default();
            let section = url.kind();
            let ca_file = settings.get(section, "ca_file")?;
            let transport = meter::MeteredTransport {
                inner: tls::transport(section, ca_file.as_deref())?,
                stats: stats.clone(),
                limit_download: download.clone(),
                cert: tls::CertHint::new(section, ca_file.is_some()),
            };
            let ctx = op
                .base_context()
                .with_http_transport(opendal::HttpTransporter::new(transport));
            op = op.with_context(ctx);
        }
        let faults_off = faults.is_none();
        if let Some(spec) = faults {
            tracing::warn!("injecting storage faults ({spec:?}): for tests only");
            let atomic = matches!(
                url,
                StorageUrl::File(_) | StorageUrl::Memory | StorageUrl::S3 { .. }
            );
            op = op.layer(faults::FaultLayer::new(spec, atomic));
        }
        let retry_stats = stats.clone();
        let op = op
            .layer(meter::MeterLayer {
                stats: stats.clone(),
                count_ops: !http,
                timeout: transfers.timeout,
                min_rate: transfers.min_rate,
            })
            .layer(
                RetryLayer::new()
                    .with_jitter()
                    .with_factor(2.0)
                    .with_min_delay(transfers.retry_delay)
                    .with_max_delay(Duration::from_secs(30).max(transfers.retry_delay))
                    .with_max_times(transfers.retries)
                    .with_notify(move |ev: opendal::layers::RetryEvent<'_>| {
                        retry_stats.retry();
                        tracing::info!(
                            "retrying {} (attempt {}) in {:.1}s after: {}",
                            ev.op,
                            ev.attempt,
                            ev.retry_after.as_secs_f64(),
                            ev.err
                        );
                    }),
            );
        let local = match &url {
            StorageUrl::File(p) if faults_off && transfers.limit_upload.is_none() => {
                Some(LocalFolder::new(p.clone(), url.to_string(), stats.clone()))
            }
            _ => None,
        };
        Ok(Storage {
            local,
            op,
            rt: Arc::new(rt),
            rename_into_place: matches!(url, StorageUrl::Sftp { .. } | StorageUrl::WebDav { .. }),
            has_temporaries: matches!(
                url,
                StorageUrl::Sftp { .. } | StorageUrl::WebDav { .. } | StorageUrl::File(_)
            ),
            swept: Arc::new(std::sync::Once::new()),
            url,
            stats,
            transfers,
            upload: transfers.limit_upload.map(|r| Arc::new(Limiter::new(r))),
            download: if http { None } else { download },
        })
    }

    pub fn url(&self) -> &StorageUrl {
        &self.url
    }

    /// The transfer settings in force (transfers in flight, retries, limits).
    pub fn transfers(&self) -> &Transfers {
        &self.transfers
    }

    /// Bytes and requests moved so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    fn err(&self, path: &str, op: &'static str, e: opendal::Error) -> StorageError {
        StorageError::from_opendal(&self.url, path, op, e)
    }

    fn paced_download(&self, n: u64) {
        if let Some(l) = &self.download {
            sleep_until(l.book(n).1);
        }
    }

    /// Reads a whole file.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        if let Some(local) = &self.local {
            let v = local.read(path)?;
            self.paced_download(v.len() as u64);
            return Ok(v);
        }
        let buf = self
            .rt
            .block_on(self.op.read(path))
            .map_err(|e| self.err(path, "read", e))?;
        let v = buf.to_vec();
        self.paced_download(v.len() as u64);
        Ok(v)
    }

    /// Reads `len` bytes at `offset`; fewer bytes than asked is an error. A read that comes back
    /// short from an object long enough to hold the range is tried again.
    pub fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut buf = RangeBuf::new();
        self.read_range_into(path, offset, len, &mut buf)?;
        Ok(buf.into_vec())
    }

    /// [`Storage::read_range`] into `buf`, whose allocation is reused (its contents are
    /// replaced). A caller reading many ranges keeps one buffer.
    pub fn read_range_into(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        buf: &mut RangeBuf,
    ) -> Result<()> {
        let mut tries = 0;
        loop {
            self.read_range_once(path, offset, len, buf)?;
            if buf.len() as u64 == len {
                self.paced_download(len);
                return Ok(());
            }
            let size = self.size(path)?.unwrap_or(0);
            tries += 1;
            if size < offset + len || tries > SHORT_READ_RETRIES {
                return Err(StorageError::ShortRead {
                    path: path.to_string(),
                    wanted: len,
                    got: buf.len() as u64,
                });
            }
            tracing::info!(
                "{path}: a read of {len} bytes at {offset} returned {}; trying again",
                buf.len()
            );
        }
    }

    fn read_range_once(&self, path: &str, offset: u64, len: u64, out: &mut RangeBuf) -> Result<()> {
        if let Some(local) = &self.local {
            return local.read_range_into(path, offset, len, out);
        }
        let buf = self
            .rt
            .block_on(async { self.op.read_with(path).range(offset..offset + len).await })
            .map_err(|e| match e.kind() {
                // A range past the end of the file: the file is shorter than the caller knows
                // it to be, which is damage to report as such, not a storage failure.
                opendal::ErrorKind::RangeNotSatisfied => StorageError::ShortRead {
                    path: path.to_string(),
                    wanted: len,
                    got: 0,
                },
                _ => self.err(path, "read", e),
            })?;
        let out = out.reset();
        out.reserve(buf.len());
        for piece in buf {
            out.extend_from_slice(&piece);
        }
        Ok(())
    }

    /// Writes a whole file. It appears whole or not at all: the local filesystem writes a
    /// temporary file, fsyncs and renames it; S3 and the drives store an upload whole; on SFTP
    /// and WebDAV, whose servers may store an upload as it arrives, arca writes under a
    /// temporary name in `.tmp/` and renames the file into place.
    ///
    /// The first write through a `Storage` first removes stale temporary uploads (see
    /// [`Storage::sweep_temporaries`]), so the next backup after a killed one cleans up after
    /// it; commands that only read never delete anything.
    pub fn write(&self, path: &str, data: Vec<u8>) -> Result<()> {
        self.sweep_once();
        let n = data.len() as u64;
        let booked = self.upload.as_ref().map(|l| l.book(n));
        if let Some((start, _)) = booked {
            sleep_until(start);
        }
        if self.rename_into_place {
            let tmp = format!(".tmp/{}.{}", path.replace('/', "_"), rand_suffix());
            self.rt
                .block_on(self.op.write(&tmp, data))
                .map_err(|e| self.err(path, "write", e))?;
            if let Err(e) = self.rt.block_on(self.op.rename(&tmp, path)) {
                let _ = self.rt.block_on(self.op.delete(&tmp));
                return Err(self.err(path, "write", e));
            }
        } else {
            self.rt
                .block_on(self.op.write(path, data))
                .map_err(|e| self.err(path, "write", e))?;
        }
        if let Some((_, end)) = booked {
            sleep_until(end);
        }
        Ok(())
    }

    /// For a repository in a local folder: the folder, to stream large objects into (see
    /// [`LocalFolder::create`]). `None` for other services, which take whole objects through
    /// [`Storage::write`].
    pub fn local_folder(&self) -> Option<&LocalFolder> {
        self.local.as_ref()
    }

    /// Size of a file, or `None` if it does not exist.
    pub fn size(&self, path: &str) -> Result<Option<u64>> {
        match self.rt.block_on(self.op.stat(path)) {
            Ok(m) => Ok(Some(m.content_length())),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(path, "stat", e)),
        }
    }

    /// Every file under `dir` (recursively), sorted by path.
    pub fn list(&self, dir: &str) -> Result<Vec<Listed>> {
        let dir = if dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        let entries = match self
            .rt
            .block_on(async { self.op.list_with(&dir).recursive(true).await })
        {
            Ok(e) => e,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(&dir, "list", e)),
        };
        let mut out = Vec::new();
        for e in entries {
            if e.metadata().is_dir() {
                continue;
            }
            let mut size = e.metadata().content_length();
            if size == 0 {
                // Some services do not return sizes in listings.
                size = self.size(e.path())?.unwrap_or(0);
            }
            out.push(Listed {
                path: e.path().to_string(),
                size,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Removes stale temporary uploads, once per `Storage`, before its first write.
    fn sweep_once(&self) {
        if !self.has_temporaries {
            return;
        }
        self.swept.call_once(|| match self.sweep_temporaries() {
            Ok(s) if s.removed > 0 => tracing::info!(
                "removed {} temporary uploads ({} bytes) that interrupted runs left in {TEMPORARY_DIR}",
                s.removed,
                s.removed_bytes
            ),
            Ok(_) => {}
            // Cleaning up is not worth failing a backup for; the next one tries again.
            Err(e) => tracing::warn!("cannot clean up {TEMPORARY_DIR}: {e}"),
        });
    }

    /// The temporary uploads in [`TEMPORARY_DIR`], with their ages by the server's clock.
    pub fn temporaries(&self) -> Result<Vec<Temporary>> {
        if !self.has_temporaries {
            return Ok(Vec::new());
        }
        let entries = match self
            .rt
            .block_on(async { self.op.list_with(TEMPORARY_DIR).recursive(true).await })
        {
            Ok(e) => e,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(TEMPORARY_DIR, "list", e)),
        };
        let now = std::time::SystemTime::now();
        let mut out = Vec::new();
        for e in entries {
            if e.metadata().is_dir() {
                continue;
            }
            let (mut size, mut modified) =
                (e.metadata().content_length(), e.metadata().last_modified());
            if modified.is_none() {
                // Some services leave the time out of listings.
                match self.rt.block_on(self.op.stat(e.path())) {
                    Ok(m) => (size, modified) = (m.content_length(), m.last_modified()),
                    // Renamed into place meanwhile.
                    Err(err) if err.kind() == opendal::ErrorKind::NotFound => continue,
                    Err(err) => return Err(self.err(e.path(), "stat", err)),
                }
            }
            // A time in the future (clocks apart) counts as new.
            let age = modified.map(|t| {
                now.duration_since(std::time::SystemTime::from(t))
                    .unwrap_or(Duration::ZERO)
            });
            out.push(Temporary {
                path: e.path().to_string(),
                size,
                age,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// A line for `arca check` about the temporary uploads, if there are any (or if they cannot
    /// be listed).
    pub fn temporaries_note(&self) -> Option<String> {
        let t = match self.temporaries() {
            Ok(t) if t.is_empty() => return None,
            Ok(t) => t,
            Err(e) => return Some(format!("cannot list the temporary uploads: {e}")),
        };
        let bytes: u64 = t.iter().map(|t| t.size).sum();
        let stale = t.iter().filter(|t| t.is_stale()).count();
        let hours = STALE_TEMPORARY_AGE.as_secs() / 3600;
        Some(format!(
            "{} temporary uploads in {TEMPORARY_DIR} ({bytes} bytes), {stale} of them older than {hours} h: left by interrupted runs (harmless); the next backup removes those older than {hours} h, and keeps younger ones, which a backup still running may be writing",
            t.len()
        ))
    }

    /// Removes the temporary uploads older than [`STALE_TEMPORARY_AGE`]: what runs killed
    /// mid-upload left behind. Younger ones may belong to a run still going (on this device or
    /// another) and are kept.
    pub fn sweep_temporaries(&self) -> Result<Sweep> {
        let mut sweep = Sweep::default();
        for t in self.temporaries()? {
            if !t.is_stale() {
                sweep.kept += 1;
                continue;
            }
            match self.rt.block_on(self.op.delete(&t.path)) {
                Ok(()) => {
                    sweep.removed += 1;
                    sweep.removed_bytes += t.size;
                }
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err(&t.path, "delete", e)),
            }
        }
        Ok(sweep)
    }

    pub fn delete(&self, path: &str) -> Result<()> {
        self.rt
            .block_on(self.op.delete(path))
            .map_err(|e| self.err(path, "delete", e))
    }
}

/// A short random suffix for temporary names.
fn rand_suffix() -> String {
    use rand::RngCore;
    format!("{:016x}", rand::rngs::OsRng.next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(s: &Storage) {
        assert!(s.list("data").unwrap().is_empty());
        s.write("data/ab/abc", b"hello world".to_vec()).unwrap();
        s.write("index/1", vec![1; 10]).unwrap();
        assert_eq!(s.read("data/ab/abc").unwrap(), b"hello world");
        assert_eq!(s.read_range("data/ab/abc", 6, 5).unwrap(), b"world");
        // One buffer reused for reads of several lengths holds exactly each range.
        let mut buf = RangeBuf {
            bytes: b"stale bytes from before, longer than the file".to_vec(),
            start: 3,
        };
        for (offset, len, want) in [
            (0u64, 11u64, &b"hello world"[..]),
            (6, 3, b"wor"),
            (0, 5, b"hello"),
            (2, 9, b"llo world"),
        ] {
            s.read_range_into("data/ab/abc", offset, len, &mut buf)
                .unwrap();
            assert_eq!(&buf[..], want);
        }
        for (offset, len) in [(6, 50), (11, 1), (20, 5)] {
            assert!(matches!(
                s.read_range("data/ab/abc", offset, len),
                Err(StorageError::ShortRead { .. })
            ));
        }
        assert_eq!(s.size("data/ab/abc").unwrap(), Some(11));
        assert_eq!(s.size("data/ab/none").unwrap(), None);
        let l = s.list("data").unwrap();
        assert_eq!(
            l,
            vec![Listed {
                path: "data/ab/abc".into(),
                size: 11
            }]
        );
        assert!(matches!(s.read("nope"), Err(StorageError::NotFound { .. })));
        s.delete("data/ab/abc").unwrap();
        assert!(s.list("data").unwrap().is_empty());
        let st = s.stats();
        assert!(
            st.bytes_sent >= 21 && st.bytes_received >= 16 && st.requests >= 8,
            "{st:?}"
        );
    }

    fn settings(toml: &str, env: &[(&str, &str)]) -> Settings {
        Settings::from_parts(toml, env).unwrap()
    }

    #[test]
    fn every_kind_of_storage_is_built_from_its_url_and_settings() {
        let none = settings("", &[]);
        let s3 = settings(
            "[s3]\nendpoint = \"http://127.0.0.1:9\"\n",
            &[("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")],
        );
        let s = Storage::open_with("s3://bucket/prefix", &s3).unwrap();
        assert_eq!(s.url().kind(), "s3");
        assert_eq!((s.transfers().uploads, s.transfers().downloads), (4, 8));
        // AWS itself needs a region.
        let e = Storage::open_with("s3://bucket/prefix", &none).unwrap_err();
        assert!(e.to_string().contains("AWS_REGION"), "{e}");
        Storage::open_with("s3://bucket", &settings("", &[("AWS_REGION", "eu-west-3")])).unwrap();
        Storage::open_with(
            "webdavs://me@dav.example/remote.php/dav",
            &settings("", &[("ARCA_WEBDAV_PASSWORD", "pw")]),
        )
        .unwrap();
        Storage::open_with(
            "sftp://me@host.example:2222/srv/backup",
            &settings("[sftp]\nkey = \"/home/me/.ssh/id_ed25519\"\n", &[]),
        )
        .unwrap();
        let e = Storage::open_with(
            "sftp://host.example/srv",
            &settings("", &[("ARCA_SFTP_KNOWN_HOSTS", "maybe")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("strict"), "{e}");
        for (scheme, section, name) in [
            ("gdrive", "GDRIVE", "Google Drive"),
            ("onedrive", "ONEDRIVE", "OneDrive"),
            ("dropbox", "DROPBOX", "Dropbox"),
        ] {
            let url = format!("{scheme}://arca-backup");
            // a lasting token: refresh token with the app's id and secret
            let refresh = format!("ARCA_{section}_REFRESH_TOKEN");
            let id = format!("ARCA_{section}_CLIENT_ID");
            let secret = format!("ARCA_{section}_CLIENT_SECRET");
            let s = Storage::open_with(
                &url,
                &settings("", &[(&refresh, "r"), (&id, "i"), (&secret, "c")]),
            )
            .unwrap();
            assert_eq!(s.url().kind(), scheme);
            // or a short-lived access token, from the config file
            Storage::open_with(
                &url,
                &settings(&format!("[{scheme}]\naccess_token = \"t\"\n"), &[]),
            )
            .unwrap();
            // none: the message says what to set
            let e = Storage::open_with(&url, &none).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(&refresh), "{e}");
            let e = Storage::open_with(&url, &settings("", &[(&refresh, "r")]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&id), "{e}");
        }
    }

    #[test]
    fn transfer_settings_apply() {
        let s = Storage::open_with(
            "memory://",
            &settings(
                "[transfers]\nuploads = 7\nlimit_upload = \"1M\"\n",
                &[("ARCA_DOWNLOADS", "3"), ("ARCA_RETRIES", "0")],
            ),
        )
        .unwrap();
        let t = s.transfers();
        assert_eq!((t.uploads, t.downloads, t.retries), (7, 3, 0));
        assert_eq!(t.limit_upload, Some(1_000_000));
        let t0 = std::time::Instant::now();
        s.write("a", vec![0; 300_000]).unwrap();
        s.write("b", vec![0; 300_000]).unwrap();
        assert!(
            t0.elapsed() >= Duration::from_millis(550),
            "{:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn injected_faults_are_retried() {
        let s = Storage::open_with(
            "memory://",
            &settings(
                "",
                &[
                    ("ARCA_TEST_FAULTS", "3:0.3:0.2"),
                    ("ARCA_TIMEOUT", "0.1"),
                    ("ARCA_MIN_RATE", "1G"),
                    ("ARCA_RETRY_DELAY", "0.001"),
                    ("ARCA_RETRIES", "30"),
                ],
            ),
        )
        .unwrap();
        for i in 0..20 {
            s.write(&format!("data/{i}"), vec![i as u8; 1000]).unwrap();
        }
        for i in 0..20 {
            assert_eq!(s.read(&format!("data/{i}")).unwrap(), vec![i as u8; 1000]);
            assert_eq!(
                s.read_range(&format!("data/{i}"), 10, 100).unwrap(),
                vec![i as u8; 100]
            );
        }
        assert_eq!(s.list("data").unwrap().len(), 20);
        assert!(s.stats().retries > 5, "{:?}", s.stats());
    }

    #[test]
    fn stale_temporary_uploads_are_swept_before_the_first_write_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&format!("file://{}", dir.path().display())).unwrap();
        assert!(s.temporaries().unwrap().is_empty());
        assert_eq!(s.temporaries_note(), None);
        let tmp = dir.path().join(".tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let plant = |name: &str, len: usize, hours: u64| {
            let p = tmp.join(name);
            let f = std::fs::File::create(&p).unwrap();
            f.set_len(len as u64).unwrap();
            f.set_modified(std::time::SystemTime::now() - Duration::from_secs(hours * 3600))
                .unwrap();
            p
        };
        let old = plant("data_aa_aa.1", 100, 30);
        let recent = plant("data_bb_bb.2", 10, 23);
        let t = s.temporaries().unwrap();
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(
            t.iter().map(|t| (t.size, t.is_stale())).collect::<Vec<_>>(),
            vec![(100, true), (10, false)]
        );
        let note = s.temporaries_note().unwrap();
        assert!(
            note.contains("2 temporary uploads") && note.contains("1 of them older than 24 h"),
            "{note}"
        );
        // listing and reading never remove anything
        s.list("data").unwrap();
        assert!(old.exists());
        s.write("snapshots/x", vec![1; 10]).unwrap();
        assert!(!old.exists() && recent.exists());
        // once per Storage: a later write does not list .tmp again
        let again = plant("data_cc_cc.3", 5, 48);
        s.write("snapshots/y", vec![2; 10]).unwrap();
        assert!(again.exists());
        // a new Storage (the next backup) does
        let s2 = Storage::open(&format!("file://{}", dir.path().display())).unwrap();
        let sweep = s2.sweep_temporaries().unwrap();
        assert_eq!(
            sweep,
            Sweep {
                removed: 1,
                removed_bytes: 5,
                kept: 1
            }
        );
        assert!(!again.exists() && recent.exists());
        // services without temporary uploads have none to list
        assert!(
            Storage::open("memory://")
                .unwrap()
                .temporaries()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let url = "webdavs://dav.example/arca";
        let missing = dir.path().join("missing.pem");
        let e = Storage::open_with(
            url,
            &settings("", &[("ARCA_WEBDAV_CA_FILE", missing.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("missing.pem") && e.contains("cannot be read"),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = Storage::open_with(
            url,
            &settings(
                &format!("[webdav]\nca_file = {:?}\n", junk.to_str().unwrap()),
                &[],
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("holds no certificate") && e.contains("ARCA_WEBDAV_CA_FILE"),
            "{e}"
        );
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.cert.pem()).unwrap();
        Storage::open_with(
            url,
            &settings("", &[("ARCA_WEBDAV_CA_FILE", good.to_str().unwrap())]),
        )
        .unwrap();
        Storage::open_with(
            "s3://bucket/x",
            &settings(
                &format!(
                    "[s3]\nendpoint = \"https://minio.lan:9000\"\nca_file = {:?}\n",
                    good.to_str().unwrap()
                ),
                &[],
            ),
        )
        .unwrap();
    }

    #[test]
    fn memory_backend() {
        exercise(&Storage::open("memory://").unwrap());
    }

    #[test]
    fn local_folder_backend() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&format!("file://{}", dir.path().display())).unwrap();
        exercise(&s);
        // no temp files are left behind under the real names
        s.write("snapshots/x", vec![5; 100]).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("snapshots/x")).unwrap(),
            vec![5; 100]
        );
    }
}
