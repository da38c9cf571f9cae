//! Consistent copies of live SQLite databases.
//!
//! An app may be writing its database while we back it up. Reading the file raw could capture a
//! torn mix of two transactions, or miss commits still in the `-wal` file. Instead we open the
//! database read-only and copy it with SQLite's online backup API in a single step, which holds a
//! read transaction for the whole copy: the copy is exactly one committed state, WAL included.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// Copies the database at `src` into a new file `dst` as one consistent committed state.
pub fn consistent_copy(src: &Path, dst: &Path) -> rusqlite::Result<()> {
    let source = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(std::time::Duration::from_secs(30))?;
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
