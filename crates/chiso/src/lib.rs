//! The `chiso` binary's library: server assembly, configuration and the
//! command line, shared with the end-to-end tests.

pub mod app;
pub mod assess_cli;
pub mod cli;
pub mod client;
pub mod config;
pub mod criteria_cli;
pub mod demo;
pub mod output;
pub mod report_cli;
pub mod units_cli;
