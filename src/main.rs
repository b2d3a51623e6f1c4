//! desiccant: an ACME client that keeps certificates in dehydrated's layout.

use std::process::ExitCode;

use desiccant::{cli, commands, logging, stop};

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
    stop::install();
    match commands::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logging::error(&e);
            ExitCode::from(e.status().code())
        }
    }
}
