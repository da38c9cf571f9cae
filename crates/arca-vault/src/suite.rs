//! The OPAQUE configuration: ristretto255 OPRF and 3DH with SHA-512, Argon2id key stretching.

use opaque_ke::CipherSuite;
use serde::{Deserialize, Serialize};

/// arca's OPAQUE cipher suite.
pub struct Suite;

impl CipherSuite for Suite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}

/// Argon2id parameters the device uses to stretch the password; stored with the record and
/// returned at login so every device stretches alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KsfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KsfParams {
    /// OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        KsfParams {
            m_kib: 19 * 1024,
            t: 2,
            p: 1,
        }
    }
}

impl KsfParams {
    /// The weakest parameters a device accepts unless tests lower the floor explicitly.
    pub const FLOOR: KsfParams = KsfParams {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };

    /// The strongest parameters a device agrees to run (4 GiB, 16 passes, 64 lanes): beyond
    /// them a vault's answer could make the device allocate without bound or stretch forever
    /// before OPAQUE has authenticated the vault.
    pub const CEILING: KsfParams = KsfParams {
        m_kib: 4 * 1024 * 1024,
        t: 16,
        p: 64,
    };

    /// Whether every parameter is at most `ceiling`'s.
    pub fn within(&self, ceiling: &KsfParams) -> bool {
        self.m_kib <= ceiling.m_kib && self.t <= ceiling.t && self.p <= ceiling.p
    }

    pub fn meets_floor(&self, floor: &KsfParams) -> bool {
        self.m_kib >= floor.m_kib && self.t >= floor.t && self.p >= 1
    }

    pub fn argon2(&self) -> Result<argon2::Argon2<'static>, String> {
        let params = argon2::Params::new(self.m_kib, self.t, self.p, None)
            .map_err(|e| format!("invalid Argon2id parameters {self:?}: {e}"))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}
