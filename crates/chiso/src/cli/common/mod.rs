//! What the commands share, so that no command imports another: connecting,
//! arguments, names, paging, problems in files, and output.

pub mod args;
pub mod client;
pub mod format;
pub mod names;
pub mod output;
pub mod paging;
pub mod problems;
