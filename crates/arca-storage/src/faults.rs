//! Fault injection, for tests only: `ARCA_TEST_FAULTS=SEED:RATE[:STALL_SECONDS]` puts this
//! layer between arca and a real backend. Each operation attempt fails with probability `RATE`
//! in one of the ways networks and servers fail:
//!
//! - a transient error before anything is sent (a reset connection, a 503);
//! - a stall: the operation hangs for `STALL_SECONDS` (default 30), longer than the timeout;
//! - a truncated read: the answer stops early (reported as an error, as an HTTP client does
//!   when fewer bytes than announced arrive) or, for ranged reads, silently comes back short;
//! - a truncated write: the connection drops part-way; a service that stores uploads whole (S3,
//!   a local folder) keeps nothing, others keep the part that arrived (under the temporary name
//!   arca writes to on them);
//! - a lost answer: the object is stored whole, but the client hears an error.
//!
//! Two more kinds are opt-in, named after the stall: `SEED:RATE:STALL:corrupt,reorder`:
//!
//! - `corrupt`: a read that succeeds comes back with one byte flipped (a faulty proxy, NIC or
//!   RAM; each object arca reads is authenticated, so this must be caught, never restored);
//! - `reorder`: with probability `RATE`, an operation's answer is held back by up to 200 ms
//!   (at most the stall) after the service gave it, so that parallel uploads and downloads
//!   complete in another order than they were started.
//!
//! Faults are drawn from a generator seeded with `SEED`, so a failing run can be replayed
//! (up to the interleaving of threads). When `ARCA_TEST_FAULTS_LOG` names a file, every fault
//! injected appends one line to it: `KIND OPERATION PATH`, for campaigns to count.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opendal::raw::*;
use opendal::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::StorageError;

#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    pub seed: u64,
    pub rate: f64,
    pub stall: Duration,
    /// Successful reads may come back with a flipped byte.
    pub corrupt: bool,
    /// Answers may be held back, so operations complete out of order.
    pub reorder: bool,
}

impl FaultSpec {
    pub fn parse(s: &str) -> Result<Self, StorageError> {
        let bad = || {
            StorageError::Setup(format!(
                "ARCA_TEST_FAULTS={s:?}: expected SEED:RATE[:STALL_SECONDS[:corrupt,reorder]], like 7:0.1"
            ))
        };
        let mut it = s.split(':');
        let seed = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let rate: f64 = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(bad());
        }
        let stall = match it.next() {
            Some(v) => Duration::from_secs_f64(v.parse::<f64>().map_err(|_| bad())?),
            None => Duration::from_secs(30),
        };
        let (mut corrupt, mut reorder) = (false, false);
        if let Some(extra) = it.next() {
            for kind in extra.split(',') {
                match kind {
                    "corrupt" => corrupt = true,
                    "reorder" => reorder = true,
                    _ => return Err(bad()),
                }
            }
        }
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(FaultSpec {
            seed,
            rate,
            stall,
            corrupt,
            reorder,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    Error,
    Stall,
    /// Reads: the answer stops early. Writes: part of the object is stored.
    Truncate,
    /// Writes: stored whole, but the answer is lost.
    LostAnswer,
    /// Reads: one byte of a successful answer is flipped.
    Corrupt,
}

#[derive(Debug)]
struct Dice {
    rng: Mutex<StdRng>,
    spec: FaultSpec,
    /// The service stores an upload whole or not at all.
    atomic: bool,
}

impl Dice {
    fn roll(&self, kinds: &[Fault]) -> Fault {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if rng.r#gen::<f64>() >= self.spec.rate {
            return Fault::None;
        }
        kinds[rng.gen_range(0..kinds.len())]
    }

    /// Appends `KIND OPERATION PATH` to the file `ARCA_TEST_FAULTS_LOG` names, if any.
    fn record(&self, kind: &str, op: &str, path: &str) {
        let Some(log) = std::env::var_os("ARCA_TEST_FAULTS_LOG") else {
            return;
        };
        let line = format!("{kind} {op} {path}\n");
        // One write of a short line to a file opened for appending: lines from parallel
        // operations and processes do not mix.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }

    /// With the `reorder` kind: maybe holds an answer back for a while.
    async fn reorder(&self, op: &str, path: &str) {
        if !self.spec.reorder {
            return;
        }
        let delay = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            if rng.r#gen::<f64>() >= self.spec.rate {
                return;
            }
            let max = Duration::from_millis(200).min(self.spec.stall);
            max.mul_f64(rng.r#gen::<f64>())
        };
        self.record("reorder", op, path);
        tokio::time::sleep(delay).await;
    }
    /// `buf` with some bits of byte `at` flipped (never a no-op).
    fn corrupt(&self, buf: &Buffer, at: usize, path: &str) -> Buffer {
        let mut bytes = buf.to_vec();
        bytes[at] ^= 1 + self.below(255) as u8;
        self.record("corrupt", "read", path);
        Buffer::from(bytes)
    }

    fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .gen_range(0..n)
    }
}

fn injected(what: &str) -> Error {
    Error::new(ErrorKind::Unexpected, format!("injected fault: {what}")).set_temporary()
}

const SIMPLE: &[Fault] = &[Fault::Error, Fault::Stall];

#[derive(Clone, Debug)]
pub(crate) struct FaultLayer {
    dice: Arc<Dice>,
}

impl FaultLayer {
    pub(crate) fn new(spec: FaultSpec, atomic: bool) -> Self {
        FaultLayer {
            dice: Arc::new(Dice {
                rng: Mutex::new(StdRng::seed_from_u64(spec.seed)),
                spec,
                atomic,
            }),
        }
    }
}

impl Layer for FaultLayer {
    fn apply_service(&self, inner: Servicer) -> Servicer {
        Arc::new(FaultService {
            inner,
            dice: self.dice.clone(),
        })
    }
}

#[derive(Debug)]
pub(crate) struct FaultService {
    inner: Servicer,
    dice: Arc<Dice>,
}

impl FaultService {
    /// A simple fault before an operation: an error, or a stall after which it goes on.
    async fn before(&self, what: &str, path: &str) -> Result<()> {
        before(&self.dice, what, path).await
    }
}

async fn before(dice: &Dice, what: &str, path: &str) -> Result<()> {
    match dice.roll(SIMPLE) {
        Fault::Error => {
            dice.record("error", what, path);
            Err(injected(&format!("{what}: connection reset by peer")))
        }
        Fault::Stall => {
            dice.record("stall", what, path);
            tokio::time::sleep(dice.spec.stall).await;
            Ok(())
        }
        _ => Ok(()),
    }
}

impl Service for FaultService {
    type Reader = FaultReader;
    type Writer = FaultWriter;
    type Lister = FaultLister;
    type Deleter = FaultDeleter;
    type Copier = oio::Copier;
    type Composer = oio::Composer;

    fn info(&self) -> ServiceInfo {
        self.inner.info()
    }

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    async fn create_dir(
        &self,
        ctx: &OperationContext,
        path: &str,
        args: OpCreateDir,
    ) -> Result<RpCreateDir> {
        self.before("create_dir", path).await?;
        self.inner.create_dir(ctx, path, args).await
    }

    async fn stat(&self, ctx: &OperationContext, path: &str, args: OpStat) -> Result<RpStat> {
        self.before("stat", path).await?;
        let rp = self.inner.stat(ctx, path, args).await;
        self.dice.reorder("stat", path).await;
        rp
    }

    fn read(&self, ctx: &OperationContext, path: &str, args: OpRead) -> Result<Self::Reader> {
        Ok(FaultReader {
            inner: self.inner.read(ctx, path, args)?,
            path: path.to_string(),
            dice: self.dice.clone(),
        })
    }

    fn write(&self, ctx: &OperationContext, path: &str, args: OpWrite) -> Result<Self::Writer> {
        Ok(FaultWriter {
            srv: self.inner.clone(),
            ctx: ctx.clone(),
            path: path.to_string(),
            args,
            bufs: Vec::new(),
            dice: self.dice.clone(),
        })
    }

    fn delete(&self, ctx: &OperationContext) -> Result<Self::Deleter> {
        Ok(FaultDeleter {
            inner: self.inner.delete(ctx)?,
            dice: self.dice.clone(),
        })
    }

    fn list(&self, ctx: &OperationContext, path: &str, args: OpList) -> Result<Self::Lister> {
        Ok(FaultLister {
            inner: self.inner.list(ctx, path, args)?,
            path: path.to_string(),
            dice: self.dice.clone(),
            started: false,
        })
    }

    fn copy(
        &self,
        ctx: &OperationContext,
        from: &str,
        to: &str,
        args: OpCopy,
    ) -> Result<Self::Copier> {
        self.inner.copy(ctx, from, to, args)
    }

    fn compose(&self, ctx: &OperationContext, to: &str, args: OpCompose) -> Result<Self::Composer> {
        self.inner.compose(ctx, to, args)
    }

    async fn rename(
        &self,
        ctx: &OperationContext,
        from: &str,
        to: &str,
        args: OpRename,
    ) -> Result<RpRename> {
        self.before("rename", from).await?;
        self.inner.rename(ctx, from, to, args).await
    }

    async fn restore(
        &self,
        ctx: &OperationContext,
        path: &str,
        args: OpRestore,
    ) -> Result<RpRestore> {
        self.inner.restore(ctx, path, args).await
    }

    async fn presign(
        &self,
        ctx: &OperationContext,
        path: &str,
        args: OpPresign,
    ) -> Result<RpPresign> {
        self.inner.presign(ctx, path, args).await
    }
}

pub(crate) struct FaultReader {
    inner: oio::Reader,
    path: String,
    dice: Arc<Dice>,
}

const READ_FAULTS: &[Fault] = &[Fault::Error, Fault::Stall, Fault::Truncate, Fault::Truncate];
/// With `corrupt`: the ways a read fails, and as often again, a corrupted answer.
const READ_FAULTS_CORRUPT: &[Fault] = &[
    Fault::Error,
    Fault::Stall,
    Fault::Truncate,
    Fault::Truncate,
    Fault::Corrupt,
    Fault::Corrupt,
    Fault::Corrupt,
    Fault::Corrupt,
];

impl FaultReader {
    /// Draws this read's fault; an error is returned at once, a stall waits here, and the
    /// faults that change the answer are applied by the caller.
    async fn draw(&self) -> Result<Fault> {
        let dice = &self.dice;
        let fault = dice.roll(if dice.spec.corrupt {
            READ_FAULTS_CORRUPT
        } else {
            READ_FAULTS
        });
        match fault {
            Fault::Error => {
                dice.record("error", "read", &self.path);
                return Err(injected("read: 503 Service Unavailable"));
            }
            Fault::Stall => {
                dice.record("stall", "read", &self.path);
                tokio::time::sleep(dice.spec.stall).await
            }
            _ => {}
        }
        Ok(fault)
    }

    /// Whether a truncated answer to a read of `range` comes back short without a word: a
    /// ranged read inside an object may (a broken server); other reads end with the error an
    /// HTTP client raises for a short body.
    fn silently_short(&self, range: BytesRange) -> bool {
        range.offset() > 0 && range.size().is_some() && self.dice.below(2) == 0
    }
}

impl oio::Read for FaultReader {
    /// Streamed reads (what `Operator::read` uses): the fault is drawn when the stream opens and
    /// applied to its first non-empty chunk.
    async fn open(&self, range: BytesRange) -> Result<(RpRead, Box<dyn oio::ReadStreamDyn>)> {
        let dice = &self.dice;
        let fault = self.draw().await?;
        let (rp, inner) = self.inner.open(range).await?;
        dice.reorder("read", &self.path).await;
        if !matches!(fault, Fault::Truncate | Fault::Corrupt) {
            return Ok((rp, inner));
        }
        let stream = FaultStream {
            inner,
            fault,
            dice: dice.clone(),
            path: self.path.clone(),
            silent: self.silently_short(range),
            done: false,
        };
        Ok((rp, Box::new(stream)))
    }

    async fn read(&self, range: BytesRange) -> Result<(RpRead, Buffer)> {
        let dice = &self.dice;
        let fault = self.draw().await?;
        let (rp, buf) = self.inner.read(range).await?;
        dice.reorder("read", &self.path).await;
        if fault == Fault::Truncate && !buf.is_empty() {
            let keep = dice.below(buf.len() as u64) as usize;
            if self.silently_short(range) {
                dice.record("short", "read", &self.path);
                return Ok((rp, buf.slice(0..keep)));
            }
            dice.record("truncate", "read", &self.path);
            return Err(injected(&format!(
                "read: the answer ended after {keep} of {} bytes",
                buf.len()
            )));
        }
        if fault == Fault::Corrupt && !buf.is_empty() {
            let at = dice.below(buf.len() as u64) as usize;
            return Ok((rp, dice.corrupt(&buf, at, &self.path)));
        }
        Ok((rp, buf))
    }
}

/// A read stream whose first non-empty chunk is corrupted (one byte flipped) or cut short.
struct FaultStream {
    inner: Box<dyn oio::ReadStreamDyn>,
    fault: Fault,
    dice: Arc<Dice>,
    path: String,
    silent: bool,
    /// The fault was applied; for a silent truncation, the stream has ended.
    done: bool,
}

impl oio::ReadStream for FaultStream {
    async fn read(&mut self) -> Result<Buffer> {
        if self.done && self.fault == Fault::Truncate {
            return Ok(Buffer::new());
        }
        let buf = oio::ReadStream::read(&mut self.inner).await?;
        if self.done || buf.is_empty() {
            return Ok(buf);
        }
        self.done = true;
        let dice = &self.dice;
        let at = dice.below(buf.len() as u64) as usize;
        if self.fault == Fault::Corrupt {
            return Ok(dice.corrupt(&buf, at, &self.path));
        }
        if self.silent {
            dice.record("short", "read", &self.path);
            return Ok(buf.slice(0..at));
        }
        dice.record("truncate", "read", &self.path);
        Err(injected(&format!(
            "read: the answer ended after {at} bytes of a chunk of {}",
            buf.len()
        )))
    }
}

pub(crate) struct FaultWriter {
    srv: Servicer,
    ctx: OperationContext,
    path: String,
    args: OpWrite,
    bufs: Vec<Buffer>,
    dice: Arc<Dice>,
}

impl FaultWriter {
    async fn send(&self, bufs: Vec<Buffer>) -> Result<Metadata> {
        let mut w = self.srv.write(&self.ctx, &self.path, self.args.clone())?;
        for b in bufs {
            oio::Write::write(&mut w, b).await?;
        }
        oio::Write::close(&mut w).await
    }
}

impl oio::Write for FaultWriter {
    async fn write(&mut self, bs: Buffer) -> Result<()> {
        self.bufs.push(bs);
        Ok(())
    }

    async fn close(&mut self) -> Result<Metadata> {
        let fault = self.dice.roll(&[
            Fault::Error,
            Fault::Stall,
            Fault::Truncate,
            Fault::Truncate,
            Fault::LostAnswer,
        ]);
        let (dice, path) = (&self.dice, self.path.as_str());
        let r = match fault {
            Fault::Error => {
                dice.record("error", "write", path);
                Err(injected("write: 500 Internal Server Error"))
            }
            Fault::Stall => {
                dice.record("stall", "write", path);
                tokio::time::sleep(dice.spec.stall).await;
                self.send(self.bufs.clone()).await
            }
            Fault::Truncate => {
                dice.record("truncate", "write", path);
                let all: Vec<u8> = self.bufs.iter().flat_map(|b| b.to_vec()).collect();
                let keep = dice.below(all.len() as u64) as usize;
                if !dice.atomic {
                    self.send(vec![Buffer::from(all[..keep].to_vec())]).await?;
                }
                Err(injected(&format!(
                    "write: connection dropped after {keep} of {} bytes",
                    all.len()
                )))
            }
            Fault::LostAnswer => {
                dice.record("lost-answer", "write", path);
                self.send(self.bufs.clone()).await?;
                Err(injected("write: the answer was lost"))
            }
            Fault::None | Fault::Corrupt => self.send(self.bufs.clone()).await,
        };
        dice.reorder("write", path).await;
        r
    }

    async fn abort(&mut self) -> Result<()> {
        self.bufs.clear();
        Ok(())
    }
}

pub(crate) struct FaultLister {
    inner: oio::Lister,
    path: String,
    dice: Arc<Dice>,
    started: bool,
}

impl oio::List for FaultLister {
    async fn next(&mut self) -> Result<Option<oio::Entry>> {
        if !self.started {
            before(&self.dice, "list", &self.path).await?;
            self.started = true;
        }
        self.inner.next().await
    }
}

pub(crate) struct FaultDeleter {
    inner: oio::Deleter,
    dice: Arc<Dice>,
}

impl oio::Delete for FaultDeleter {
    async fn delete(&mut self, path: &str, args: OpDelete) -> Result<()> {
        before(&self.dice, "delete", path).await?;
        let r = self.inner.delete(path, args).await;
        self.dice.reorder("delete", path).await;
        r
    }

    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec() {
        assert_eq!(
            FaultSpec::parse("7:0.25").unwrap(),
            FaultSpec {
                seed: 7,
                rate: 0.25,
                stall: Duration::from_secs(30),
                corrupt: false,
                reorder: false,
            }
        );
        let s = FaultSpec::parse("7:0.25:2:corrupt,reorder").unwrap();
        assert!(s.corrupt && s.reorder);
        let s = FaultSpec::parse("7:0.25:2:reorder").unwrap();
        assert!(!s.corrupt && s.reorder);
        assert_eq!(
            FaultSpec::parse("1:1:0.5").unwrap().stall,
            Duration::from_millis(500)
        );
        for bad in [
            "",
            "x:0.1",
            "1:2",
            "1",
            "1:0.1:x",
            "1:0.1:2:3",
            "1:0.1:2:corrupt:x",
            "1:0.1:2:corrupt,",
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad}");
        }
    }

    /// A corrupted read hands back the object with exactly one byte changed, and nothing else
    /// is ever wrong: the layer corrupts, it does not invent.
    #[test]
    fn corrupted_reads_flip_one_byte() {
        let settings = crate::Settings::from_parts(
            "",
            &[
                ("ARCA_TEST_FAULTS", "5:0.4:0.05:corrupt,reorder"),
                ("ARCA_TIMEOUT", "1"),
                ("ARCA_MIN_RATE", "1G"),
                ("ARCA_RETRY_DELAY", "0.001"),
                ("ARCA_RETRIES", "30"),
            ],
        )
        .unwrap();
        let s = crate::Storage::open_with("memory://", &settings).unwrap();
        let (mut corrupted, mut whole) = (0, 0);
        for i in 0..60u32 {
            let data: Vec<u8> = (0..2000u32).map(|j| (i * 7 + j) as u8).collect();
            let path = format!("data/{i}");
            s.write(&path, data.clone()).unwrap();
            for (got, want) in [
                (s.read(&path).unwrap(), &data[..]),
                (s.read_range(&path, 100, 500).unwrap(), &data[100..600]),
            ] {
                assert_eq!(got.len(), want.len());
                match got.iter().zip(want).filter(|(a, b)| a != b).count() {
                    0 => whole += 1,
                    1 => corrupted += 1,
                    n => panic!("{path}: {n} bytes differ"),
                }
            }
        }
        assert!(corrupted >= 5, "corrupted {corrupted}, whole {whole}");
        assert!(whole >= 60, "corrupted {corrupted}, whole {whole}");
    }
}
