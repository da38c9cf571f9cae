//! Progress bars on a terminal; nothing when output is not a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use arca_engine::Counters;
use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts a bar labelled `what` if stdout is a terminal and output is for people.
    pub fn start(what: &'static str, enabled: bool) -> Self {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = (enabled && std::io::stdout().is_terminal()).then(|| {
            let (c, s) = (counters.clone(), stop.clone());
            std::thread::spawn(move || draw(what, &c, &s))
        });
        Progress {
            counters,
            stop,
            thread,
        }
    }

    /// Whether a bar is drawn: work done only to feed it (counting the files to back up
    /// first) is skipped when no one sees it (`--json`, `--quiet`, not a terminal).
    pub fn shown(&self) -> bool {
        self.thread.is_some()
    }

    pub fn finish(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn draw(what: &str, c: &Counters, stop: &AtomicBool) {
    let counting =
        ProgressStyle::with_template("{spinner} {prefix} {msg} {bytes} {binary_bytes_per_sec}")
            .expect("valid template");
    let with_totals = ProgressStyle::with_template(
        "{prefix} {msg} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let bar = ProgressBar::no_length().with_style(counting);
    bar.set_prefix(what.to_string());
    let mut styled = false;
    while !stop.load(Relaxed) {
        let files = c.files.load(Relaxed);
        if c.totals_known.load(Relaxed) {
            if !styled {
                bar.set_style(with_totals.clone());
                styled = true;
            }
            bar.set_length(c.total_bytes.load(Relaxed));
            bar.set_message(format!("{files}/{} files", c.total_files.load(Relaxed)));
        } else {
            bar.set_message(format!("{files} files"));
        }
        bar.set_position(c.bytes.load(Relaxed));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}
