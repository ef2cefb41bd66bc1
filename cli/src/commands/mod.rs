//! One module per subcommand.

pub mod config;
pub mod run;
pub mod send_test_event;
