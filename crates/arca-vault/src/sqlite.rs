//! The SQLite record store: WAL, synchronous writes, `secure_delete` so destroyed records are
//! overwritten on disk, and migrations applied at open.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::VaultError;
use crate::store::{Charge, PendingLogin, Record, RecordStore, Result, Status};
use crate::suite::KsfParams;
use crate::wire::Head;

/// Schema migrations, applied in order; `user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE server_setup (id INTEGER PRIMARY KEY CHECK (id = 1), sealed BLOB NOT NULL);
CREATE TABLE records (
    account TEXT PRIMARY KEY,
    password_file BLOB NOT NULL,
    envelope BLOB NOT NULL,
    ksf TEXT NOT NULL,
    guess_limit INTEGER NOT NULL,
    guesses_left INTEGER NOT NULL,
    key_proof_hash BLOB,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE tombstones (account TEXT PRIMARY KEY, destroyed INTEGER NOT NULL);
CREATE TABLE phantoms (account TEXT PRIMARY KEY, guesses_left INTEGER NOT NULL);
CREATE TABLE logins (
    id BLOB PRIMARY KEY,
    account TEXT NOT NULL,
    state BLOB NOT NULL,
    expires INTEGER NOT NULL,
    known INTEGER NOT NULL
);
CREATE TABLE tickets (hash BLOB PRIMARY KEY, account TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE heads (account TEXT PRIMARY KEY, seq INTEGER NOT NULL, mac BLOB NOT NULL);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    account TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL
);
"#];

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn ksf_text(k: &KsfParams) -> String {
    serde_json::to_string(k).expect("KsfParams serializes")
}

fn ksf_parse(s: &str) -> rusqlite::Result<KsfParams> {
    serde_json::from_str(s).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let ksf: String = row.get("ksf")?;
    let kp: Option<Vec<u8>> = row.get("key_proof_hash")?;
    Ok(Record {
        password_file: row.get("password_file")?,
        envelope: row.get("envelope")?,
        ksf: ksf_parse(&ksf)?,
        guess_limit: row.get("guess_limit")?,
        guesses_left: row.get("guesses_left")?,
        key_proof_hash: kp.and_then(|v| v.try_into().ok()),
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| VaultError::Store(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    pub fn in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;",
        )?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {m} PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))?;
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&mut c)?)
    }

    fn destroy_in(tx: &rusqlite::Transaction<'_>, account: &str) -> rusqlite::Result<()> {
        // Overwrite first, then delete: with secure_delete, the freed pages are zeroed too.
        tx.execute(
            "UPDATE records SET password_file = zeroblob(length(password_file)), envelope = zeroblob(length(envelope)), key_proof_hash = NULL WHERE account = ?1",
            params![account],
        )?;
        tx.execute("DELETE FROM records WHERE account = ?1", params![account])?;
        tx.execute("DELETE FROM logins WHERE account = ?1", params![account])?;
        tx.execute("DELETE FROM tickets WHERE account = ?1", params![account])?;
        tx.execute("DELETE FROM phantoms WHERE account = ?1", params![account])?;
        tx.execute(
            "INSERT OR REPLACE INTO tombstones (account, destroyed) VALUES (?1, ?2)",
            params![account, now()],
        )?;
        tx.execute(
            "INSERT INTO audit (time, account, event, detail) VALUES (?1, ?2, 'destroyed', 'guesses used up')",
            params![now(), account],
        )?;
        Ok(())
    }
}

impl RecordStore for SqliteStore {
    fn server_setup(&self) -> Result<Option<Vec<u8>>> {
        self.with(|c| {
            c.query_row("SELECT sealed FROM server_setup WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    fn init_server_setup(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO server_setup (id, sealed) VALUES (1, ?1)",
                params![sealed],
            )?;
            c.query_row("SELECT sealed FROM server_setup WHERE id = 1", [], |r| {
                r.get(0)
            })
        })
    }

    fn status(&self, account: &str) -> Result<Status> {
        self.with(|c| {
            if let Some((limit, left)) = c
                .query_row(
                    "SELECT guess_limit, guesses_left FROM records WHERE account = ?1",
                    params![account],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
            {
                return Ok(Status::Active {
                    guess_limit: limit,
                    guesses_left: left,
                });
            }
            let gone: bool = c
                .query_row(
                    "SELECT 1 FROM tombstones WHERE account = ?1",
                    params![account],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if gone {
                return Ok(Status::Gone);
            }
            let phantom_left = c
                .query_row(
                    "SELECT guesses_left FROM phantoms WHERE account = ?1",
                    params![account],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(Status::Unknown { phantom_left })
        })
    }

    fn insert(&self, account: &str, r: &Record) -> Result<()> {
        let inserted = self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "INSERT OR IGNORE INTO records (account, password_file, envelope, ksf, guess_limit, guesses_left, key_proof_hash, created, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?7)",
                params![account, r.password_file, r.envelope, ksf_text(&r.ksf), r.guess_limit, r.key_proof_hash.map(|h| h.to_vec()), now()],
            )?;
            if n == 1 {
                tx.execute("DELETE FROM tombstones WHERE account = ?1", params![account])?;
                tx.execute("DELETE FROM phantoms WHERE account = ?1", params![account])?;
                tx.execute(
                    "INSERT INTO audit (time, account, event, detail) VALUES (?1, ?2, 'registered', ?3)",
                    params![now(), account, format!("guess limit {}", r.guess_limit)],
                )?;
            }
            tx.commit()?;
            Ok(n == 1)
        })?;
        if inserted {
            Ok(())
        } else {
            Err(VaultError::AlreadyRegistered)
        }
    }

    fn replace(&self, account: &str, r: &Record) -> Result<()> {
        let n = self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE records SET password_file = ?2, envelope = ?3, ksf = ?4, guess_limit = ?5, guesses_left = ?5, key_proof_hash = ?6, updated = ?7 WHERE account = ?1",
                params![account, r.password_file, r.envelope, ksf_text(&r.ksf), r.guess_limit, r.key_proof_hash.map(|h| h.to_vec()), now()],
            )?;
            if n == 1 {
                tx.execute("DELETE FROM logins WHERE account = ?1", params![account])?;
                tx.execute(
                    "INSERT INTO audit (time, account, event, detail) VALUES (?1, ?2, 'password changed', '')",
                    params![now(), account],
                )?;
            }
            tx.commit()?;
            Ok(n)
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err(VaultError::NotRegistered)
        }
    }

    fn record(&self, account: &str) -> Result<Option<Record>> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM records WHERE account = ?1",
                params![account],
                read_record,
            )
            .optional()
        })
    }

    fn charge(&self, account: &str, phantom_limit: u32) -> Result<Charge> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let charged = tx
                .query_row(
                    "UPDATE records SET guesses_left = guesses_left - 1, updated = ?2 WHERE account = ?1 AND guesses_left > 0 RETURNING *",
                    params![account, now()],
                    read_record,
                )
                .optional()?;
            let outcome = if let Some(record) = charged {
                tx.execute(
                    "INSERT INTO audit (time, account, event, detail) VALUES (?1, ?2, 'login start', ?3)",
                    params![now(), account, format!("{} guesses left", record.guesses_left)],
                )?;
                Charge::Charged {
                    left: record.guesses_left,
                    record,
                }
            } else if tx
                .query_row("SELECT 1 FROM records WHERE account = ?1", params![account], |_| Ok(()))
                .optional()?
                .is_some()
            {
                Self::destroy_in(&tx, account)?;
                Charge::Exhausted
            } else if tx
                .query_row("SELECT 1 FROM tombstones WHERE account = ?1", params![account], |_| Ok(()))
                .optional()?
                .is_some()
            {
                Charge::Gone
            } else {
                let left: u32 = tx.query_row(
                    "INSERT INTO phantoms (account, guesses_left) VALUES (?1, ?2)
                     ON CONFLICT (account) DO UPDATE SET guesses_left = guesses_left - 1
                     RETURNING guesses_left",
                    params![account, phantom_limit.saturating_sub(1)],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO audit (time, account, event, detail) VALUES (?1, ?2, 'login start', 'unregistered account')",
                    params![now(), account],
                )?;
                if left == 0 {
                    // Look exactly like a record whose guesses ran out.
                    tx.execute("DELETE FROM phantoms WHERE account = ?1", params![account])?;
                    tx.execute(
                        "INSERT OR REPLACE INTO tombstones (account, destroyed) VALUES (?1, ?2)",
                        params![account, now()],
                    )?;
                }
                Charge::Unknown { left }
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn reset(&self, account: &str) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE records SET guesses_left = guess_limit, updated = ?2 WHERE account = ?1",
                params![account, now()],
            )?;
            tx.execute(
                "INSERT INTO audit (time, account, event, detail) VALUES (?1, ?2, 'login finish', 'success')",
                params![now(), account],
            )?;
            tx.commit()
        })
    }

    fn destroy(&self, account: &str) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            Self::destroy_in(&tx, account)?;
            tx.commit()
        })
    }

    fn delete(&self, account: &str) -> Result<bool> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE records SET password_file = zeroblob(length(password_file)), envelope = zeroblob(length(envelope)) WHERE account = ?1",
                params![account],
            )?;
            let n = tx.execute("DELETE FROM records WHERE account = ?1", params![account])?;
            for t in ["logins", "tickets", "heads", "phantoms", "tombstones"] {
                tx.execute(&format!("DELETE FROM {t} WHERE account = ?1"), params![account])?;
            }
            tx.execute(
                "INSERT INTO audit (time, account, event, detail) VALUES (?1, ?2, 'deleted', 'by the account holder')",
                params![now(), account],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn destroy_if_exhausted(&self, account: &str) -> Result<bool> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exhausted = tx
                .query_row(
                    "SELECT 1 FROM records WHERE account = ?1 AND guesses_left = 0",
                    params![account],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if exhausted {
                Self::destroy_in(&tx, account)?;
            }
            tx.commit()?;
            Ok(exhausted)
        })
    }

    fn put_login(&self, id: &[u8], l: &PendingLogin) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM logins WHERE expires < ?1", params![now() - 3600])?;
            c.execute(
                "INSERT INTO logins (id, account, state, expires, known) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, l.account, l.state, l.expires, l.known],
            )?;
            Ok(())
        })
    }

    fn take_login(&self, id: &[u8], account: &str) -> Result<Option<PendingLogin>> {
        self.with(|c| {
            c.query_row(
                "DELETE FROM logins WHERE id = ?1 AND account = ?2 RETURNING account, state, expires, known",
                params![id, account],
                |r| {
                    Ok(PendingLogin {
                        account: r.get(0)?,
                        state: r.get(1)?,
                        expires: r.get(2)?,
                        known: r.get(3)?,
                    })
                },
            )
            .optional()
        })
    }

    fn put_ticket(&self, hash: &[u8; 32], account: &str, expires: i64) -> Result<()> {
        self.with(|c| {
            // Expired tickets are useless; sweep them so the table does not grow with logins.
            c.execute("DELETE FROM tickets WHERE expires < ?1", params![now()])?;
            c.execute(
                "INSERT INTO tickets (hash, account, expires) VALUES (?1, ?2, ?3)",
                params![hash.to_vec(), account, expires],
            )?;
            Ok(())
        })
    }

    fn take_ticket(&self, hash: &[u8; 32], account: &str, now: i64) -> Result<bool> {
        self.with(|c| {
            let found: Option<(String, i64)> = c
                .query_row(
                    "DELETE FROM tickets WHERE hash = ?1 RETURNING account, expires",
                    params![hash.to_vec()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(matches!(found, Some((a, e)) if a == account && e >= now))
        })
    }

    fn head(&self, account: &str) -> Result<Option<Head>> {
        self.with(|c| {
            c.query_row(
                "SELECT seq, mac FROM heads WHERE account = ?1",
                params![account],
                |r| {
                    Ok(Head {
                        seq: r.get::<_, i64>(0)? as u64,
                        mac: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    fn set_head(&self, account: &str, head: &Head) -> Result<()> {
        let current = self.with(|c| {
            let n = c.execute(
                "INSERT INTO heads (account, seq, mac) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account) DO UPDATE SET seq = excluded.seq, mac = excluded.mac
                 WHERE excluded.seq > heads.seq OR (excluded.seq = heads.seq AND excluded.mac = heads.mac)",
                params![account, head.seq as i64, head.mac],
            )?;
            if n == 1 {
                return Ok(None);
            }
            c.query_row(
                "SELECT seq FROM heads WHERE account = ?1",
                params![account],
                |r| r.get::<_, i64>(0),
            )
            .map(|s| Some(s as u64))
        })?;
        match current {
            None => Ok(()),
            Some(current) => Err(VaultError::HeadBehind { current }),
        }
    }

    fn audit(&self, account: &str, event: &str, detail: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO audit (time, account, event, detail) VALUES (?1, ?2, ?3, ?4)",
                params![now(), account, event, detail],
            )?;
            Ok(())
        })
    }

    fn ping(&self) -> Result<()> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(())))
    }
}
