//! Reading the command line and the environment with clap, with one difference: a value clap
//! refuses that came from an environment variable is reported in one line that names the variable
//! (clap names the flag, `--max-connections <MAX_CONNECTIONS>`, which a service configured through
//! its environment never used; README, "Configuration").

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Command, Parser};

/// `T::parse()`, but an invalid value from the environment exits 2 with
/// `<program>: <VARIABLE>: <clap's reason>`.
pub fn parse<T: Parser>(program: &str) -> T {
    match T::try_parse() {
        Ok(parsed) => parsed,
        Err(error) => {
            let args: Vec<String> = std::env::args().collect();
            let is_set = |variable: &str| std::env::var_os(variable).is_some();
            if let Some(line) = from_environment(&T::command(), &error, &args, is_set) {
                eprintln!("{program}: {line}");
                std::process::exit(2);
            }
            error.exit()
        }
    }
}

/// The one-line reason naming the variable, when `error` is about a value that came from one (the
/// flag is not among `args` and the variable `is_set`).
fn from_environment(
    command: &Command,
    error: &clap::Error,
    args: &[String],
    is_set: impl Fn(&str) -> bool,
) -> Option<String> {
    if !matches!(
        error.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let flag = format!("--{long}");
    if args
        .iter()
        .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
    {
        return None;
    }
    let variable = env_of(command, long)?;
    if !is_set(&variable) {
        return None;
    }
    let reason = error.to_string();
    let reason = reason.lines().next()?.trim_start_matches("error: ");
    Some(format!("{variable}: {reason}"))
}

/// The environment variable of the argument `--long`, in `command` or any of its subcommands.
fn env_of(command: &Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|c| env_of(c, long)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(Parser, Debug)]
    struct Args {
        #[arg(long, env = "HB_TEST_ARGS_LIMIT")]
        limit: Option<u32>,
    }

    #[test]
    fn a_refused_value_from_the_environment_names_the_variable() {
        // clap reads the variable from the process environment; the same error as a flag's.
        let error = Args::try_parse_from(["prog", "--limit", "abc"]).unwrap_err();
        let set = |v: &str| v == "HB_TEST_ARGS_LIMIT";
        let line =
            from_environment(&Args::command(), &error, &["prog".into()], set).expect("named");
        assert!(
            line.starts_with("HB_TEST_ARGS_LIMIT: invalid value 'abc'"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        // Given as a flag: clap's own message stays.
        let args = ["prog".to_owned(), "--limit".to_owned(), "abc".to_owned()];
        assert!(from_environment(&Args::command(), &error, &args, set).is_none());
        // Not from the environment at all.
        assert!(from_environment(&Args::command(), &error, &["prog".into()], |_| false).is_none());
    }
}
