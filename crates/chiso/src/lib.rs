//! The `chiso` binary's library: the servers it composes and the command
//! line, shared with the end-to-end tests.

pub mod cli;
pub mod server;
