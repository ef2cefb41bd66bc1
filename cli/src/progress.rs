//! Progress of long CLI work (`dlq redrive --all`, `github redeliver`): a bar on a terminal
//! (stderr), nothing when the output goes to a file or a CI log, where only the one-line summary
//! at the end belongs.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar labelled `what`, hidden when stderr is not a terminal.
pub fn bar(what: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{msg} {pos}/{len} {wide_bar} {eta}") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}
