//! The I/O runtime a [`crate::Storage`] runs its operations on, and how it stops.
//!
//! Dropping a tokio runtime cancels the tasks still on it. For most services that loses
//! nothing. SFTP is different: OpenDAL's SFTP service keeps a pool of `openssh` sessions, and
//! a session dropped from the pool is closed by a task of its own, which runs
//! `ssh -O exit` against the session's control master and then removes the folder that holds
//! the master's socket. Cancel that task half-way and the folder can be gone before
//! `ssh -O exit` reached the socket: the master, started with `ControlPersist=yes`, then stays
//! connected to the server for good, with no socket left to stop it by. Under load that
//! happened to 1 run of the sftp test in 18.
//!
//! So a runtime that serves SFTP is given time for such tasks to finish before it is dropped:
//! [`IoRuntime`] waits, up to [`DRAIN_LIMIT`], for the runtime to have no task left. Then, if
//! it was the last SFTP runtime of the process, it ends the masters that are still running
//! although told to exit ([`crate::reaper`]).

use std::ops::Deref;
use std::time::{Duration, Instant};

/// The longest a stopping runtime waits for its tasks; closing an ssh session is a message to a
/// local socket and normally takes milliseconds.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// A runtime that, when it serves SFTP, lets its tasks finish before it stops, then ends the
/// ssh masters left among this process's children once no SFTP storage is open.
pub struct IoRuntime {
    rt: tokio::runtime::Runtime,
    sftp: bool,
}

impl IoRuntime {
    /// Call it before the runtime starts any ssh command: an SFTP runtime makes the process
    /// adopt its masters ([`crate::reaper::opened`]).
    pub fn new(rt: tokio::runtime::Runtime, sftp: bool) -> Self {
        if sftp {
            crate::reaper::opened();
        }
        IoRuntime { rt, sftp }
    }
}

impl Deref for IoRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if !self.sftp {
            return;
        }
        // `block_on` cannot run inside another runtime (where dropping this one is a bug tokio
        // reports itself).
        if tokio::runtime::Handle::try_current().is_err() {
            self.drain();
        }
        // Another SFTP storage still open has masters of its own among the children.
        if crate::reaper::closed() {
            let stopped = crate::reaper::stop_leftover_masters();
            if stopped > 0 {
                tracing::debug!("stopped {stopped} ssh masters that outlived their sessions");
            }
        }
    }
}

impl IoRuntime {
    /// Waits, up to [`DRAIN_LIMIT`], for the runtime to have no task left.
    fn drain(&self) {
        let until = Instant::now() + DRAIN_LIMIT;
        let metrics = self.rt.metrics();
        self.rt.block_on(async {
            while metrics.num_alive_tasks() > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let left = metrics.num_alive_tasks();
        if left > 0 {
            tracing::warn!(
                "{left} storage tasks still running after {} s; stopping them",
                DRAIN_LIMIT.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A task spawned just before the drop, like an ssh session's close, gets to finish.
    #[test]
    fn a_draining_runtime_lets_its_tasks_finish() {
        for drain in [true, false] {
            let io = IoRuntime::new(runtime(), drain);
            let done = Arc::new(AtomicBool::new(false));
            let d = done.clone();
            io.spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                d.store(true, Ordering::SeqCst);
            });
            drop(io);
            assert_eq!(done.load(Ordering::SeqCst), drain, "drain {drain}");
        }
    }

    /// A task that never ends holds the drop up only for [`DRAIN_LIMIT`].
    #[test]
    fn a_task_that_never_ends_is_stopped_after_the_limit() {
        let io = IoRuntime::new(runtime(), true);
        io.spawn(std::future::pending::<()>());
        let t = Instant::now();
        drop(io);
        let took = t.elapsed();
        assert!(took >= DRAIN_LIMIT, "{took:?}");
        assert!(took < DRAIN_LIMIT + Duration::from_secs(20), "{took:?}");
    }
}
