//! `--limit-upload` / `--limit-download`: a shared budget of bytes per second.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Transfers take turns on a link of `rate` bytes per second: a transfer of `n` bytes starts
/// when the link is free and holds it for `n / rate` seconds, so the bytes moved never exceed
/// the rate averaged over any whole transfer, however many run at once.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: f64,
    free_at: Mutex<Instant>,
}

impl Limiter {
    pub(crate) fn new(rate: u64) -> Self {
        Limiter {
            rate: rate as f64,
            free_at: Mutex::new(Instant::now()),
        }
    }

    /// Books `n` bytes; returns when the transfer may start and when it may end at the earliest.
    pub(crate) fn book(&self, n: u64) -> (Instant, Instant) {
        let mut free = self.free_at.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*free).max(Instant::now());
        let end = start + Duration::from_secs_f64(n as f64 / self.rate);
        *free = end;
        (start, end)
    }
}

/// Sleeps (on a plain thread) until `t`.
pub(crate) fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_taken() {
        let l = Limiter::new(1000);
        let (s1, e1) = l.book(500);
        let (s2, e2) = l.book(1000);
        assert!(e1 - s1 >= Duration::from_millis(499));
        assert!(s2 >= e1);
        assert!(e2 - s2 >= Duration::from_millis(999));
    }
}
