//! What every command shares: connecting, output, names, arguments.

pub mod client;
pub mod output;
