//! The reporting service: progress against targets, scorecards, rankings and
//! the weakest indicators, answered from projections of the assessment event
//! stream (current within moments of each approval) and stamped with the
//! event sequence they reflect.

mod api;
pub mod hierarchy;
pub mod projection;
pub mod projector;
pub mod targets;

pub use api::Reporting;
pub use projection::{MIGRATIONS, Projection};
pub use projector::Projector;
