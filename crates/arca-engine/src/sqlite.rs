//! Consistent captures of live SQLite databases.
//!
//! An app may be writing its database while we back it up. Reading the file raw could capture a
//! torn mix of two transactions, or miss commits still in the `-wal` file. Two ways out:
//! - rollback-journal databases: hold a read transaction (SQLite's SHARED lock) while reading the
//!   file raw. No writer can commit while it is held, so the bytes are one committed state, and
//!   they are the file's own bytes: a restore is byte-identical.
//! - WAL databases: the committed state is the file plus the WAL, so copy it with SQLite's
//!   online backup API in a single step (under one read transaction) into a temporary file.
//!   A WAL database that no program has open (no `-wal` or `-shm` beside it) is read raw instead
//!   (`backup.rs`, `read_quiet_wal`), and kept only if it is unchanged and still has no
//!   sidecars after the read: opening it with SQLite, even read-only, would leave a `-shm` and
//!   an empty `-wal` in the user's folder. WAL mode is told from the header (bytes 18 and 19
//!   are 2), before any SQLite connection is opened.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// A read transaction on a rollback-journal database; writers cannot commit while it lives.
///
/// The caller must read the database through a file descriptor it opened *before* taking this
/// lock and must not close any descriptor of that file while the lock lives: POSIX advisory locks
/// are per process, and closing any descriptor of the file would drop SQLite's lock.
pub struct ReadLock {
    conn: Connection,
}

impl Drop for ReadLock {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}

/// Makes `conn` wait up to about 30 s for a lock, trying again every millisecond. SQLite's own
/// busy timeout backs off to one try per 100 ms, and a rollback-journal writer that commits back
/// to back holds its exclusive lock most of the time: a reader that looks so rarely can wait for
/// many seconds, or give up.
fn wait_for_locks(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(|tries: i32| {
        std::thread::sleep(std::time::Duration::from_millis(1));
        tries < 30_000
    }))
}

/// Takes a read lock on `src` if it is a rollback-journal database; `Ok(None)` if it uses WAL.
pub fn read_lock(src: &Path) -> rusqlite::Result<Option<ReadLock>> {
    let mut conn = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    wait_for_locks(&mut conn)?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(None);
    }
    conn.execute_batch("BEGIN DEFERRED")?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
    Ok(Some(ReadLock { conn }))
}

/// Copies the database at `src` into a new file `dst` as one consistent committed state.
pub fn consistent_copy(src: &Path, dst: &Path) -> rusqlite::Result<()> {
    let mut source = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    wait_for_locks(&mut source)?;
    let _ = std::fs::remove_file(dst);
    let mut dest = Connection::open(dst)?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut dest)?;
        // -1: all pages in one step, under one read transaction.
        loop {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => continue,
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
    // The copy keeps the source's journal mode; with WAL, make sure nothing is left in a -wal.
    dest.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").ok();
    drop(dest);
    for suffix in SIDECARS {
        let mut side = dst.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    Ok(())
}

/// Names of the files SQLite keeps beside a database.
pub const SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];
