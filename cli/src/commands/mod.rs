//! One module per subcommand (`governance` holds what the `cr` and `audit` commands share).

pub mod audit;
pub mod config;
pub mod cr;
pub mod dlq;
pub mod gate;
pub mod github;
pub mod governance;
pub mod jira;
pub mod pki;
pub mod run;
pub mod send_test_event;
