//! The backup head register: after each backup the device tells the key vault the new
//! snapshot's sequence number with a MAC made from K; before a restore it reads it back, so a
//! storage provider cannot pass an older state of the backup off as the latest.

use anyhow::Result;
use arca_client::{ClientError, head_mac, verify_head};
use arca_crypto::BackupKey;
use arca_engine::Repository;
use arca_vault::VaultError;
use arca_vault::wire::Head;

use crate::device::{Device, DeviceState};
use crate::exit::RolledBack;
use crate::vault;

/// Records `seq` as this backup's newest snapshot, if this device uses a key vault. Returns a
/// warning when the vault could not be told (the backup itself is safe either way).
pub fn record(
    device: &Device,
    state: &DeviceState,
    repo: &Repository,
    key: &BackupKey,
    seq: u64,
) -> Option<String> {
    state.vault.as_ref()?;
    let repo_id = repo.config().repo_id;
    let result = (|| -> Result<()> {
        let location = vault::select(None, state)?;
        let Some(conn) = vault::connect(&location, &repo_id, device, false)? else {
            anyhow::bail!("the key vault {} does not exist", location.to_text());
        };
        let head = Head {
            seq,
            mac: head_mac(key, &repo_id, seq),
        };
        match conn.transport.set_head(&head) {
            Ok(()) => Ok(()),
            Err(VaultError::HeadBehind { current }) => anyhow::bail!(
                "the key vault has already recorded backup #{current} as the latest, beyond this backup #{seq}: the storage may be serving an older state of this backup (see `arca snapshots`)"
            ),
            Err(e) => Err(anyhow::Error::new(ClientError::from(e))
                .context(format!("key vault {}", conn.describe()))),
        }
    })();
    result.err().map(|e| {
        format!(
            "the backup is saved, but the key vault's head register was not advanced (rollback protection for this backup is behind until the next backup): {e:#}"
        )
    })
}

/// Checks the repository against the vault's head register. A head whose MAC does not verify
/// is an error; a repository older than the head is refused unless `allow_rollback`. Returns
/// warnings (the vault could not be asked; a rollback was allowed).
pub fn check(
    device: &Device,
    state: &DeviceState,
    repo: &Repository,
    key: &BackupKey,
    allow_rollback: bool,
) -> Result<Vec<String>> {
    let repo_id = repo.config().repo_id;
    let head = match fetch(device, state, &repo_id) {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(Vec::new()),
        Err(e) if configured(state) => {
            return Ok(vec![format!(
                "could not read the key vault's head register, so this backup was not checked for a rollback: {e:#}"
            )]);
        }
        // No vault named anywhere, and the default one unusable: nothing to check against.
        Err(e) => {
            tracing::info!("head register not checked: {e:#}");
            return Ok(Vec::new());
        }
    };
    if !verify_head(key, &repo_id, &head) {
        anyhow::bail!(
            "the key vault's head register for this backup (backup #{}) does not verify with this backup's key: the vault's record was altered or belongs to another backup",
            head.seq
        );
    }
    let newest = repo
        .snapshots()?
        .iter()
        .map(|s| s.snapshot.seq)
        .max()
        .unwrap_or(0);
    if newest >= head.seq {
        return Ok(Vec::new());
    }
    let what = format!(
        "the storage holds backups up to #{newest}, but the key vault recorded backup #{} as the latest: the storage is serving an older state of this backup (rolled back, or newer backups were hidden or lost)",
        head.seq
    );
    if allow_rollback {
        Ok(vec![format!(
            "{what}; going on because of --allow-rollback"
        )])
    } else {
        Err(RolledBack(what).into())
    }
}

/// The vault's head register for this repository, if there is a vault and a head.
fn fetch(device: &Device, state: &DeviceState, repo_id: &[u8; 16]) -> Result<Option<Head>> {
    let location = vault::select(None, state)?;
    let Some(conn) = vault::connect(&location, repo_id, device, false)? else {
        return Ok(None);
    };
    conn.transport.head().map_err(|e| {
        anyhow::Error::new(ClientError::from(e)).context(format!("key vault {}", conn.describe()))
    })
}

/// The lowest sequence number the next snapshot may take: one past the vault's verified head,
/// so a backup into a rolled-back repository still moves the head forward. 0 without a vault.
pub fn next_seq_floor(
    device: &Device,
    state: &DeviceState,
    repo: &Repository,
    key: &BackupKey,
) -> u64 {
    if state.vault.is_none() {
        return 0;
    }
    let repo_id = repo.config().repo_id;
    match fetch(device, state, &repo_id) {
        Ok(Some(h)) if verify_head(key, &repo_id, &h) => h.seq + 1,
        _ => 0,
    }
}

/// A vault is named (by this device's state or ARCA_VAULT), not just the default one.
fn configured(state: &DeviceState) -> bool {
    state.vault.is_some() || std::env::var_os("ARCA_VAULT").is_some_and(|v| !v.is_empty())
}
