//! What reporting computes, as pure functions over data the service has
//! already fetched (states from the projection, units and lineage from the
//! hierarchy): no database and no other service is called in here.

pub mod csv;
pub mod lineage;
pub mod ranking;
pub mod rollup;
pub mod shares;
pub mod trend;
