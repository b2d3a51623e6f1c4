//! RFC 8555 and nothing else: it knows no files, hooks or configuration.

pub mod client;
pub mod der;
pub mod jws;
pub mod wire;

pub use client::{Client, Error, Transport, Trust};
pub use jws::{AccountKey, Eab, KeyId};
