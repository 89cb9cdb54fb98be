//! The reporting service: progress against targets, scorecards, rankings and
//! the weakest indicators, answered from projections of the assessment event
//! stream (current within moments of each approval) and stamped with the
//! event sequence they reflect.

pub mod authorize;
pub mod hierarchy;
pub mod projection;
pub mod projector;
pub mod reports;
mod service;
pub mod targets;

pub use projection::{MIGRATIONS, Projection};
pub use projector::Projector;
pub use service::Reporting;
