//! Composing the services into servers, one wiring per service: `chiso up`
//! runs them all in one process, `chiso <service> serve` runs one.

mod assessment;
pub mod config;
mod database;
pub mod demo;
mod embedded;
mod reporting;
mod standalone;
mod units;

pub use database::{Service, open_database, sqlite_url};
pub use embedded::{Embedded, open_embedded};
pub use standalone::{configured_verifier, database_url, serve};

/// How one service reaches another: its URL and the service token it
/// presents there.
pub struct Link {
    pub url: String,
    pub token: String,
}
