//! The device side of password mode: OPAQUE with the key vault, the key envelope that carries K,
//! and the backup head register, over any [`Transport`] (the embedded vault in-process, or an
//! `arca-vault` server over HTTP).

mod envelope;
mod http;
mod protocol;
mod transport;

pub use envelope::{key_proof, open_envelope, seal_envelope};
#[doc(hidden)]
pub use http::error_from;
pub use http::{Http, token_account};
pub use protocol::{
    ClientError, Recovered, change_password_with_key, change_password_with_ticket, head_mac,
    recover, register, verify_head,
};
pub use transport::{Embedded, Transport};
