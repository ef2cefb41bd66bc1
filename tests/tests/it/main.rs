//! hookbridge's integration tests: one test binary, one module per area.

mod conformance;
mod store;
