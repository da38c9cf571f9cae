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
//! Faults are drawn from a generator seeded with `SEED`, so a failing run can be replayed
//! (up to the interleaving of threads).

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
}

impl FaultSpec {
    pub fn parse(s: &str) -> Result<Self, StorageError> {
        let bad = || {
            StorageError::Setup(format!(
                "ARCA_TEST_FAULTS={s:?}: expected SEED:RATE[:STALL_SECONDS], like 7:0.1"
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
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(FaultSpec { seed, rate, stall })
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
    async fn before(&self, what: &str) -> Result<()> {
        before(&self.dice, what).await
    }
}

async fn before(dice: &Dice, what: &str) -> Result<()> {
    match dice.roll(SIMPLE) {
        Fault::Error => Err(injected(&format!("{what}: connection reset by peer"))),
        Fault::Stall => {
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
        self.before("create_dir").await?;
        self.inner.create_dir(ctx, path, args).await
    }

    async fn stat(&self, ctx: &OperationContext, path: &str, args: OpStat) -> Result<RpStat> {
        self.before("stat").await?;
        self.inner.stat(ctx, path, args).await
    }

    fn read(&self, ctx: &OperationContext, path: &str, args: OpRead) -> Result<Self::Reader> {
        Ok(FaultReader {
            inner: self.inner.read(ctx, path, args)?,
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
        self.before("rename").await?;
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
    dice: Arc<Dice>,
}

impl oio::Read for FaultReader {
    async fn open(&self, range: BytesRange) -> Result<(RpRead, Box<dyn oio::ReadStreamDyn>)> {
        before(&self.dice, "read").await?;
        self.inner.open(range).await
    }

    async fn read(&self, range: BytesRange) -> Result<(RpRead, Buffer)> {
        let fault = self
            .dice
            .roll(&[Fault::Error, Fault::Stall, Fault::Truncate, Fault::Truncate]);
        match fault {
            Fault::Error => return Err(injected("read: 503 Service Unavailable")),
            Fault::Stall => tokio::time::sleep(self.dice.spec.stall).await,
            _ => {}
        }
        let (rp, buf) = self.inner.read(range).await?;
        if fault == Fault::Truncate && !buf.is_empty() {
            let keep = self.dice.below(buf.len() as u64) as usize;
            // A ranged read inside an object may come back short without a word (a broken
            // server); a whole read ends with the error an HTTP client raises for a short body.
            if range.offset() > 0 && range.size().is_some() && self.dice.below(2) == 0 {
                return Ok((rp, buf.slice(0..keep)));
            }
            return Err(injected(&format!(
                "read: the answer ended after {keep} of {} bytes",
                buf.len()
            )));
        }
        Ok((rp, buf))
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
        match fault {
            Fault::Error => Err(injected("write: 500 Internal Server Error")),
            Fault::Stall => {
                tokio::time::sleep(self.dice.spec.stall).await;
                self.send(self.bufs.clone()).await
            }
            Fault::Truncate => {
                let all: Vec<u8> = self.bufs.iter().flat_map(|b| b.to_vec()).collect();
                let keep = self.dice.below(all.len() as u64) as usize;
                if !self.dice.atomic {
                    self.send(vec![Buffer::from(all[..keep].to_vec())]).await?;
                }
                Err(injected(&format!(
                    "write: connection dropped after {keep} of {} bytes",
                    all.len()
                )))
            }
            Fault::LostAnswer => {
                self.send(self.bufs.clone()).await?;
                Err(injected("write: the answer was lost"))
            }
            Fault::None => self.send(self.bufs.clone()).await,
        }
    }

    async fn abort(&mut self) -> Result<()> {
        self.bufs.clear();
        Ok(())
    }
}

pub(crate) struct FaultLister {
    inner: oio::Lister,
    dice: Arc<Dice>,
    started: bool,
}

impl oio::List for FaultLister {
    async fn next(&mut self) -> Result<Option<oio::Entry>> {
        if !self.started {
            before(&self.dice, "list").await?;
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
        before(&self.dice, "delete").await?;
        self.inner.delete(path, args).await
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
                stall: Duration::from_secs(30)
            }
        );
        assert_eq!(
            FaultSpec::parse("1:1:0.5").unwrap().stall,
            Duration::from_millis(500)
        );
        for bad in ["", "x:0.1", "1:2", "1", "1:0.1:x", "1:0.1:2:3"] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
