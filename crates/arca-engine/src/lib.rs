//! The engine of arca: back up, restore, browse and check a repository.
//!
//! Everything here works on a [`Repository`], which holds the storage, the repository config and
//! the keys derived from K. Every object read is checked against its name or id before use.

mod backup;
mod browse;
mod check;
mod chunks;
mod error;
mod filecache;
mod index;
mod keyruns;
mod pool;
mod progress;
mod repo;
mod restore;
mod salvage;
mod sent;
mod spill;
mod sqlite;
mod stat;
mod streamhash;

pub use backup::{BackupOptions, BackupReport, PACK_MAX_BLOBS, backup, scan_totals};
pub use browse::{Entry, list};
pub use check::{CheckOptions, CheckReport, check};
pub use chunks::FileChunks;
pub use error::EngineError;
pub use index::{Location, MasterIndex};
pub use progress::Counters;
pub use repo::{Repository, SnapshotInfo};
pub use restore::{RestoreOptions, RestoreReport, restore};
pub use spill::Spill;

pub type Result<T> = std::result::Result<T, EngineError>;
