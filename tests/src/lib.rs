//! Test support shared by the black-box tests and the benchmarks: fakes of the services hookbridge
//! talks to, behaving like the real ones.

pub mod github;
pub mod ingest;
pub mod jira_fake;
pub mod process;
