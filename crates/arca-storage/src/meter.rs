//! Measuring and bounding every storage operation: the [`MeterLayer`] gives each attempt a
//! deadline that grows with the bytes it moves (so a stalled connection is given up and retried,
//! while a large pack on a slow line is not), and counts operations on services that are not
//! reached over HTTP; [`MeteredTransport`] counts HTTP requests and their bytes, and paces
//! downloads to `--limit-download`.
//!
//! OpenDAL's own `TimeoutLayer` has one fixed limit per I/O call; a 16 MiB pack is one call,
//! which takes seconds on a datacenter link and minutes on a home uplink, so no fixed limit
//! suits both.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use opendal::raw::*;
use opendal::*;

use crate::stats::Stats;
use crate::throttle::Limiter;

/// Deadlines and operation counts.
#[derive(Clone, Debug)]
pub(crate) struct MeterLayer {
    pub stats: Arc<Stats>,
    /// Count operations here (services not reached over HTTP).
    pub count_ops: bool,
    pub timeout: Duration,
    pub min_rate: u64,
}

impl Layer for MeterLayer {
    fn apply_service(&self, inner: Servicer) -> Servicer {
        Arc::new(MeterService {
            inner,
            m: Arc::new(self.clone()),
        })
    }
}

impl MeterLayer {
    fn limit(&self, bytes: u64) -> Duration {
        self.timeout + Duration::from_secs_f64(bytes as f64 / self.min_rate as f64)
    }

    async fn within<T>(
        &self,
        op: Operation,
        bytes: u64,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let limit = self.limit(bytes);
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "no answer within {:.0} s (the connection stalled)",
                    limit.as_secs_f64()
                ),
            )
            .with_operation(op)
            .set_temporary()),
        }
    }

    fn op(&self) {
        if self.count_ops {
            self.stats.request();
        }
    }
    fn sent(&self, n: u64) {
        if self.count_ops {
            self.stats.sent(n);
        }
    }
    fn received(&self, n: u64) {
        if self.count_ops {
            self.stats.received(n);
        }
    }
}

#[derive(Debug)]
pub(crate) struct MeterService {
    inner: Servicer,
    m: Arc<MeterLayer>,
}

impl Service for MeterService {
    type Reader = MeterReader;
    type Writer = MeterWriter;
    type Lister = MeterLister;
    type Deleter = MeterDeleter;
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
        self.m.op();
        self.m
            .within(
                Operation::CreateDir,
                0,
                self.inner.create_dir(ctx, path, args),
            )
            .await
    }

    async fn stat(&self, ctx: &OperationContext, path: &str, args: OpStat) -> Result<RpStat> {
        self.m.op();
        self.m
            .within(Operation::Stat, 0, self.inner.stat(ctx, path, args))
            .await
    }

    fn read(&self, ctx: &OperationContext, path: &str, args: OpRead) -> Result<Self::Reader> {
        Ok(MeterReader {
            inner: self.inner.read(ctx, path, args)?,
            m: self.m.clone(),
        })
    }

    fn write(&self, ctx: &OperationContext, path: &str, args: OpWrite) -> Result<Self::Writer> {
        Ok(MeterWriter {
            inner: self.inner.write(ctx, path, args)?,
            m: self.m.clone(),
            written: 0,
        })
    }

    fn delete(&self, ctx: &OperationContext) -> Result<Self::Deleter> {
        Ok(MeterDeleter {
            inner: self.inner.delete(ctx)?,
            m: self.m.clone(),
        })
    }

    fn list(&self, ctx: &OperationContext, path: &str, args: OpList) -> Result<Self::Lister> {
        Ok(MeterLister {
            inner: self.inner.list(ctx, path, args)?,
            m: self.m.clone(),
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
        self.m.op();
        self.m
            .within(Operation::Rename, 0, self.inner.rename(ctx, from, to, args))
            .await
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

pub(crate) struct MeterReader {
    inner: oio::Reader,
    m: Arc<MeterLayer>,
}

impl oio::Read for MeterReader {
    async fn open(&self, range: BytesRange) -> Result<(RpRead, Box<dyn oio::ReadStreamDyn>)> {
        self.m.op();
        let (rp, stream) = self
            .m
            .within(Operation::Read, 0, self.inner.open(range))
            .await?;
        Ok((
            rp,
            Box::new(MeterStream {
                inner: stream,
                m: self.m.clone(),
            }) as Box<dyn oio::ReadStreamDyn>,
        ))
    }

    async fn read(&self, range: BytesRange) -> Result<(RpRead, Buffer)> {
        self.m.op();
        // A whole object of unknown size gets the time of a full pack.
        let bytes = range.size().unwrap_or(16 << 20);
        let (rp, buf) = self
            .m
            .within(Operation::Read, bytes, self.inner.read(range))
            .await?;
        self.m.received(buf.len() as u64);
        Ok((rp, buf))
    }
}

pub(crate) struct MeterStream {
    inner: Box<dyn oio::ReadStreamDyn>,
    m: Arc<MeterLayer>,
}

impl oio::ReadStream for MeterStream {
    async fn read(&mut self) -> Result<Buffer> {
        let buf = self
            .m
            .within(Operation::Read, 0, self.inner.read_dyn())
            .await?;
        self.m.received(buf.len() as u64);
        Ok(buf)
    }
}

pub(crate) struct MeterWriter {
    inner: oio::Writer,
    m: Arc<MeterLayer>,
    written: u64,
}

impl oio::Write for MeterWriter {
    async fn write(&mut self, bs: Buffer) -> Result<()> {
        let n = bs.len() as u64;
        self.m
            .within(Operation::Write, n, self.inner.write(bs))
            .await?;
        self.written += n;
        Ok(())
    }

    async fn copy_from(&mut self, path: &str, args: OpRead, range: BytesRange) -> Result<()> {
        self.inner.copy_from(path, args, range).await
    }

    async fn close(&mut self) -> Result<Metadata> {
        self.m.op();
        let meta = self
            .m
            .within(Operation::Write, self.written, self.inner.close())
            .await?;
        self.m.sent(self.written);
        Ok(meta)
    }

    async fn abort(&mut self) -> Result<()> {
        self.m.within(Operation::Write, 0, self.inner.abort()).await
    }
}

pub(crate) struct MeterLister {
    inner: oio::Lister,
    m: Arc<MeterLayer>,
    started: bool,
}

impl oio::List for MeterLister {
    async fn next(&mut self) -> Result<Option<oio::Entry>> {
        if !self.started {
            self.started = true;
            self.m.op();
        }
        self.m.within(Operation::List, 0, self.inner.next()).await
    }
}

pub(crate) struct MeterDeleter {
    inner: oio::Deleter,
    m: Arc<MeterLayer>,
}

impl oio::Delete for MeterDeleter {
    async fn delete(&mut self, path: &str, args: OpDelete) -> Result<()> {
        self.m.op();
        self.m
            .within(Operation::Delete, 0, self.inner.delete(path, args))
            .await
    }

    async fn close(&mut self) -> Result<()> {
        self.m
            .within(Operation::Delete, 0, self.inner.close())
            .await
    }
}

/// Counts every HTTP request with the bytes of its body and of its answer's body, and paces
/// the reading of answers to the download limit (the server then sends no faster).
pub(crate) struct MeteredTransport {
    pub inner: HttpTransporter,
    pub stats: Arc<Stats>,
    pub limit_download: Option<Arc<Limiter>>,
    /// What to say when a server's TLS certificate is refused.
    pub cert: crate::tls::CertHint,
}

impl HttpTransport for MeteredTransport {
    async fn fetch(&self, req: http::Request<Buffer>) -> Result<http::Response<HttpBody>> {
        self.stats.request();
        self.stats.sent(req.body().len() as u64);
        let resp = self
            .inner
            .fetch(req)
            .await
            .map_err(|e| self.cert.explain(e))?;
        let (parts, body) = resp.into_parts();
        let stats = self.stats.clone();
        let limiter = self.limit_download.clone();
        let body = body.map_inner(move |inner| {
            Box::new(MeteredBody {
                inner,
                stats,
                limiter,
                pause: None,
            })
        });
        Ok(http::Response::from_parts(parts, body))
    }
}

type BodyStream = Box<dyn Stream<Item = Result<Buffer>> + Send + Sync + Unpin + 'static>;

struct MeteredBody {
    inner: BodyStream,
    stats: Arc<Stats>,
    limiter: Option<Arc<Limiter>>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stream for MeteredBody {
    type Item = Result<Buffer>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(p) = self.pause.as_mut() {
            if p.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(buf))) = &item {
            let n = buf.len() as u64;
            self.stats.received(n);
            if let Some(l) = &self.limiter {
                let (_, end) = l.book(n);
                self.pause = Some(Box::pin(tokio::time::sleep_until(end.into())));
            }
        }
        item
    }
}
