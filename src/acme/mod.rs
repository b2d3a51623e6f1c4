//! RFC 8555 and nothing else: it knows no files, hooks or configuration.

pub mod client;
pub mod der;
pub mod error;
pub mod headers;
pub mod jws;
pub mod nonce;
pub mod poll;
pub mod transport;
pub mod wire;

pub use client::Client;
pub use error::{Error, Problem};
pub use jws::{AccountKey, Eab, KeyId};
pub use transport::{Deadlines, Response, Transport, Trust};
