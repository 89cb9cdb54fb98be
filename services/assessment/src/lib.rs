//! The assessment service: criteria sets, unit assessments against them,
//! review, and scores.
//!
//! For now it holds the pure core — criteria sets as versioned data, their
//! checks, and scoring — which the service, the CLI and tests share without
//! touching a database.

pub mod criteria;
