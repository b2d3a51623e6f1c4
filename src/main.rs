//! desiccant: an ACME client that keeps certificates in dehydrated's layout.

mod account;
mod acme;
mod ari;
mod challenge;
mod check;
mod cli;
mod commands;
mod config;
mod config_file;
mod cron;
mod dns;
mod dns01;
mod domains;
mod error;
mod hooks;
mod import;
mod issue;
mod keys;
mod logging;
mod parallel;
mod pkcs12;
mod renewal;
mod responder;
mod state;
mod store;
mod x509;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let level = if cli.quiet {
        logging::Level::Quiet
    } else if cli.verbose {
        logging::Level::Verbose
    } else {
        logging::Level::Normal
    };
    logging::init(level, logging::Sinks::detect(cli.syslog, cli.json));
    match commands::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logging::error(&e);
            ExitCode::from(e.status().code())
        }
    }
}
