//! The gRPC edge of reporting, `chiso.reporting.v1.TargetsService` and
//! `ReportingService`: each call is parsed ([`query`]), authorized
//! ([`crate::authorize`]), its data fetched from the projection and the
//! hierarchy, computed by [`crate::reports`] or [`crate::targets`], and
//! answered. Every error leaves as an [`ApiError`].

mod query;
mod reports;
mod targets;

use std::collections::HashMap;

use chiso_auth::Caller;
use chiso_proto::reporting::v1 as pb;
use chiso_proto::units::v1::UnitLevel;
use chiso_server::ApiError;
use time::Date;

use crate::authorize;
use crate::hierarchy::{Hierarchy, Placed};
use crate::projection::{AssessmentState, Projection};
use crate::targets::{self as rules, Facts};

/// The reporting service: answers from the projection, rolled up the
/// hierarchy as of the end of each reported year.
#[derive(Clone)]
pub struct Reporting {
    projection: Projection,
    hierarchy: Hierarchy,
}

impl Reporting {
    pub fn new(projection: Projection, hierarchy: Hierarchy) -> Reporting {
        Reporting {
            projection,
            hierarchy,
        }
    }

    /// Stores the shipped Thanh Hóa plan when no target exists yet.
    pub async fn load_plan(&self) -> Result<usize, ApiError> {
        if self.projection.has_targets().await? {
            return Ok(0);
        }
        let plan = rules::thanh_hoa_plan();
        for t in &plan {
            self.projection.put_target(t, "chiso plan").await?;
        }
        Ok(plan.len())
    }

    /// The unit holding `code` on `as_of`, if the caller may see it.
    async fn readable(&self, who: &Caller, code: &str, as_of: Date) -> Result<Placed, ApiError> {
        let placed = self
            .hierarchy
            .place(code, as_of)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no unit has code {code} on {as_of}")))?;
        authorize::may_read(who, &placed)?;
        Ok(placed)
    }

    /// The event the answer will reflect, and the ids of the units of the
    /// query's level under its scope at the end of the year.
    async fn units_in_scope(
        &self,
        who: &Caller,
        q: &query::ScopeQuery,
    ) -> Result<(i64, std::collections::HashSet<i64>), ApiError> {
        let reflects = self.projection.cursor().await?;
        let scope = self.readable(who, q.scope.as_str(), q.as_of()).await?;
        let units = self
            .hierarchy
            .counted(&scope.unit, q.level, q.as_of())
            .await?
            .into_iter()
            .collect();
        Ok((reflects, units))
    }

    /// Gathers what target `t` is judged on, then judges it.
    async fn target_status(
        &self,
        t: &pb::Target,
        first: &HashMap<i64, i32>,
        states: &mut HashMap<i32, Vec<AssessmentState>>,
    ) -> Result<pb::TargetStatus, ApiError> {
        let as_of = rules::as_of(t);
        let kind = pb::TargetKind::try_from(t.kind).unwrap_or(pb::TargetKind::Unspecified);
        let level = UnitLevel::try_from(t.level).unwrap_or(UnitLevel::Unspecified);
        let mut units = Vec::new();
        let mut measured = None;
        match kind {
            pb::TargetKind::NamedUnits => {
                for code in &t.unit_codes {
                    if let Some(p) = self.hierarchy.place(code, as_of).await? {
                        units.push(p.unit.id);
                    }
                }
            }
            pb::TargetKind::Kpi => {
                if let Some(p) = self.hierarchy.place(&t.scope_code, as_of).await? {
                    if let std::collections::hash_map::Entry::Vacant(slot) = states.entry(t.year) {
                        slot.insert(self.projection.states(t.year).await?);
                    }
                    measured = rules::measured(&states[&t.year], p.unit.id, &t.indicator_code);
                }
            }
            _ => {
                if let Some(p) = self.hierarchy.place(&t.scope_code, as_of).await? {
                    units = self.hierarchy.counted(&p.unit, level, as_of).await?;
                }
            }
        }
        Ok(rules::evaluate(
            t,
            &Facts {
                units: &units,
                first_completion: first,
                measured,
            },
        ))
    }
}
