//! RFC 8555 and nothing else: it knows no files, hooks or configuration.
//!
//! It imports nothing else of this crate. The one key it holds, the account key
//! ([`AccountKey`]), comes in as PKCS#8 DER bytes and gives out only signatures, its JWK and
//! its thumbprint; reading key files of any other form (PEM, PKCS#1, SEC1) is `keys.rs`'s,
//! which the caller (`account.rs`) runs first. So the key formats live in one place and
//! neither module imports the other.

pub mod client;
pub mod error;
pub mod headers;
pub mod jws;
pub mod nonce;
pub mod order;
pub mod pace;
pub mod poll;
pub mod text;
pub mod transport;
pub mod wire;

pub use client::Client;
pub use error::Error;
pub use jws::{AccountKey, Eab, KeyId};
pub use order::Ordered;
pub use transport::{Deadlines, Response, Transport, Trust};
pub use wire::Problem;
