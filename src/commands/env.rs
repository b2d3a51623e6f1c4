//! `--env`: the configuration as dehydrated's variables, for scripts that source it.

use crate::config::Config;
use crate::error::Status;
use crate::logging;

/// Prints the variables of [`Config::dehydrated_vars`] (what every hook finds in its
/// environment) as `declare --` lines, as dehydrated's `--env` does.
pub fn print_env(config: &Config) -> Status {
    logging::data_line(format_args!("# desiccant configuration"));
    for (name, value) in config.dehydrated_vars(&config.defaults) {
        logging::data_line(format_args!(
            "declare -- {name}=\"{}\"",
            shell_escape(&value)
        ));
    }
    Status::Ok
}

/// A value inside double quotes, as bash's `declare -p` writes it.
fn shell_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
