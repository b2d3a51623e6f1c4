//! desiccant: an ACME client that keeps certificates in dehydrated's layout.

use std::process::ExitCode;

use desiccant::{cli, commands, logging, stop};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match cli::parse(args.iter().cloned()) {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(commands::refused(&e, &args)),
    };
    let level = if cli.quiet {
        logging::Level::Quiet
    } else if cli.verbose {
        logging::Level::Verbose
    } else {
        logging::Level::Normal
    };
    logging::init(level, logging::Sinks::detect(cli.syslog, cli.json));
    stop::install();
    match commands::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logging::error(&e);
            ExitCode::from(e.status().code())
        }
    }
}
