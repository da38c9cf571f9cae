//! Making sure an SFTP run leaves no ssh control master behind.
//!
//! OpenDAL's SFTP service starts each connection as `ssh -M -f -S <socket> -o
//! ControlPersist=yes`: a control master that forks into the background, is no longer arca's
//! child, and stays until told to exit through its socket. A session that closes sends it
//! `ssh -O exit`. Under load that is not always enough: with [`crate::runtime`]'s drain alone,
//! 8 runs of the sftp test in 30 on a loaded machine left a master that had been answered "Exit
//! request sent." and was still connected minutes later, its socket already removed, so nothing
//! could stop it but a signal. (Without the drain it was 1 run in 18, when the closing was
//! cancelled half-way.)
//!
//! So on Linux a process that opens SFTP storage becomes a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`): masters that fork away from their `ssh` are re-parented to it
//! instead of to init. When the storage stops, after its sessions have closed,
//! [`stop_leftover_masters`] ends every ssh master still among its children (`SIGTERM`, then
//! `SIGKILL` after [`GRACE`]) and reaps them, and reaps masters that exited by themselves. That
//! is done only when the last SFTP storage of the process stops ([`opened`], [`closed`]): the
//! children cannot tell which storage started them, and another one still open needs its own.
//!
//! A side effect for programs that embed arca: any orphaned grandchild of such a program is
//! re-parented to it too, and stays a zombie until the program reaps it or exits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// SFTP storages open in this process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// An SFTP storage opens: this process adopts the masters its `ssh` commands fork away.
pub fn opened() {
    if OPEN.fetch_add(1, Ordering::SeqCst) == 0 {
        adopt_orphans();
    }
}

/// An SFTP storage has stopped; whether it was the last one open, so that every ssh master
/// among the children is a leftover.
pub fn closed() -> bool {
    OPEN.fetch_sub(1, Ordering::SeqCst) == 1
}

/// How long a master has to exit after `SIGTERM` before it is killed.
pub const GRACE: Duration = Duration::from_secs(2);

/// Makes this process the parent of the masters its `ssh` commands fork away.
#[cfg(target_os = "linux")]
fn adopt_orphans() {
    // SAFETY: `prctl(PR_SET_CHILD_SUBREAPER, 1)` takes one integer argument and only sets a
    // flag on the calling process; it touches no memory of ours. Failure (an old kernel) leaves
    // the flag unset, which only means leftover masters cannot be found; it is logged.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        tracing::debug!(
            "cannot become a child subreaper: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn adopt_orphans() {}

/// Ends and reaps every ssh control master among this process's children; returns how many
/// were still running.
#[cfg(target_os = "linux")]
pub fn stop_leftover_masters() -> usize {
    // Masters that exited by themselves are reaped here; the others are still running.
    let mut left: Vec<i32> = children()
        .into_iter()
        .filter(|&p| is_ssh_master(p) && !reap(p))
        .collect();
    let running = left.len();
    for &pid in &left {
        signal(pid, libc::SIGTERM);
    }
    let until = Instant::now() + GRACE;
    while !left.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        left.retain(|&p| !reap(p));
    }
    for pid in left {
        signal(pid, libc::SIGKILL);
        wait(pid, 0);
    }
    running
}

#[cfg(not(target_os = "linux"))]
pub fn stop_leftover_masters() -> usize {
    0
}

/// Reaps `pid` if it has exited; whether it has (or is no longer ours to wait for).
#[cfg(target_os = "linux")]
fn reap(pid: i32) -> bool {
    wait(pid, libc::WNOHANG) != 0
}

/// `waitpid(pid, options)`: 0 while a child waited for without blocking still runs.
#[cfg(target_os = "linux")]
fn wait(pid: i32, options: i32) -> i32 {
    let mut status = 0;
    // SAFETY: `status` is a valid, writable int for the duration of the call.
    unsafe { libc::waitpid(pid, &mut status, options) }
}

/// Sends `sig` to `pid`, a child of ours not yet reaped.
#[cfg(target_os = "linux")]
fn signal(pid: i32, sig: i32) {
    // SAFETY: `kill` with a valid signal number touches no memory; the callers pass only their
    // own children that are not yet reaped, so the pid cannot have been reused.
    unsafe { libc::kill(pid, sig) };
}

/// This process's children, from every thread's `children` list.
#[cfg(target_os = "linux")]
fn children() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `pid` is an ssh control master as openssh starts them: `ssh … -S <socket> -M …`.
#[cfg(target_os = "linux")]
fn is_ssh_master(pid: i32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    comm.trim_end() == "ssh" && args.contains(&&b"-M"[..]) && args.contains(&&b"-S"[..])
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// A stand-in for a master that was told to exit and did not: a program named `ssh`,
    /// started with `-S … -M`, whose parent exits at once, and that would run until signalled.
    /// It is adopted, left alone while another SFTP storage is open, then found, ended and
    /// reaped; a sleeping `sleep` beside it is not touched.
    #[test]
    fn an_adopted_master_is_ended_and_reaped_and_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join("ssh");
        std::fs::write(
            &ssh,
            "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n",
        )
        .unwrap();
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Two SFTP storages open. (`OPEN` is process-wide; nextest runs each test in a process
        // of its own.)
        opened();
        opened();
        // `sh -c '… &'` exits at once, so its children are orphaned and come to us.
        let script = format!(
            "'{}' -S sock -M -f >/dev/null 2>&1 & echo $!; sleep 600 >/dev/null 2>&1 & echo $!",
            ssh.display()
        );
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        let (master, other) = (pids[0], pids[1]);
        let until = Instant::now() + Duration::from_secs(10);
        while !(children().contains(&master) && is_ssh_master(master)) {
            assert!(Instant::now() < until, "the master was not adopted");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!is_ssh_master(other));
        // The first one stops: the master may be the other's, and is left alone.
        assert!(!closed());
        assert!(children().contains(&master));
        assert!(closed());
        assert_eq!(stop_leftover_masters(), 1);
        assert!(!std::path::Path::new(&format!("/proc/{master}")).exists());
        assert!(children().contains(&other));
        signal(other, libc::SIGKILL);
        wait(other, 0);
    }
}
