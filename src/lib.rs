//! desiccant: an ACME client that keeps certificates in dehydrated's layout.
//!
//! The program is `src/main.rs`; this library holds all of it so that the fuzz targets in
//! `fuzz/` can reach the parsers (through `fuzzing`, compiled only with `--cfg fuzzing`). It is
//! not a stable API: only what `main` and the fuzz targets use is public.

mod account;
mod acme;
mod ari;
mod challenge;
pub mod cli;
pub mod commands;
mod config;
mod config_file;
mod deploy;
mod dns;
mod dns01;
mod domains;
mod error;
mod failpoint;
// Only in fuzz builds (`cargo fuzz` sets `--cfg fuzzing`), and in the unit tests, which keep
// the fuzz targets' entry points compiling and reading good inputs between fuzz runs.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
mod hooks;
mod import;
mod issue;
mod keys;
pub mod logging;
mod metrics;
mod parallel;
mod persist;
mod pkcs12;
mod processes;
mod renewal;
mod responder;
mod state;
pub mod stop;
mod store;
mod trust;
pub mod values;
mod x509;
