//! The units service: Vietnam's administrative hierarchy as of any date, with
//! lineage across merges, splits and reused codes.

pub mod domain;
mod error;
pub mod plan;
pub mod reference;
pub mod repo;
mod service;

pub use error::UnitsError;
pub use repo::{MIGRATIONS, Repo};
pub use service::Units;
