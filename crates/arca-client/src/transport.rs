//! How the device reaches a vault.

use arca_vault::wire::*;
use arca_vault::{Vault, VaultError};

/// The vault API as the device calls it. Implemented in-process by [`Embedded`] and over HTTP
/// by [`crate::Http`]; each method is one request.
pub trait Transport {
    fn registration_start(
        &self,
        req: &RegistrationStartRequest,
    ) -> Result<RegistrationStartResponse, VaultError>;
    fn registration_finish(
        &self,
        req: &RegistrationFinishRequest,
    ) -> Result<RegistrationFinishResponse, VaultError>;
    fn login_start(&self, req: &LoginStartRequest) -> Result<LoginStartResponse, VaultError>;
    fn login_finish(&self, req: &LoginFinishRequest) -> Result<LoginFinishResponse, VaultError>;
    fn status(&self) -> Result<AccountStatus, VaultError>;
    fn head(&self) -> Result<Option<Head>, VaultError>;
    fn set_head(&self, head: &Head) -> Result<(), VaultError>;
    fn delete(&self) -> Result<bool, VaultError>;
}

/// The vault code itself, in this process, over a local SQLite file: the same rules as a
/// server, so the README's main job needs no server.
pub struct Embedded {
    pub vault: Vault,
    pub account: String,
}

impl Transport for Embedded {
    fn registration_start(
        &self,
        req: &RegistrationStartRequest,
    ) -> Result<RegistrationStartResponse, VaultError> {
        self.vault.registration_start(&self.account, req)
    }
    fn registration_finish(
        &self,
        req: &RegistrationFinishRequest,
    ) -> Result<RegistrationFinishResponse, VaultError> {
        self.vault.registration_finish(&self.account, req)
    }
    fn login_start(&self, req: &LoginStartRequest) -> Result<LoginStartResponse, VaultError> {
        self.vault.login_start(&self.account, req)
    }
    fn login_finish(&self, req: &LoginFinishRequest) -> Result<LoginFinishResponse, VaultError> {
        self.vault.login_finish(&self.account, req)
    }
    fn status(&self) -> Result<AccountStatus, VaultError> {
        self.vault.status(&self.account)
    }
    fn head(&self) -> Result<Option<Head>, VaultError> {
        self.vault.head(&self.account)
    }
    fn set_head(&self, head: &Head) -> Result<(), VaultError> {
        self.vault.set_head(&self.account, head)
    }
    fn delete(&self) -> Result<bool, VaultError> {
        self.vault.delete(&self.account)
    }
}
