//! A unit's results over the years, reaching back through lineage to the
//! units it came from for the years before it existed.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use chiso_proto::reporting::v1 as pb;

use super::lineage::{Lineages, Missing, Step, predecessors_after, walk};
use crate::projection::AssessmentState;
use crate::targets::year_end;

/// The assessments of the trend's years, by unit and year.
pub struct TrendStates(HashMap<(i64, i32), AssessmentState>);

impl TrendStates {
    pub fn new(states: Vec<AssessmentState>, years: &RangeInclusive<i32>) -> TrendStates {
        let mut by_unit_year = HashMap::new();
        for s in states {
            if years.contains(&s.event.year) {
                by_unit_year.insert((s.event.unit_id, s.event.year), s);
            }
        }
        TrendStates(by_unit_year)
    }
}

/// For each year: the unit's own result, or else those of the units it came
/// from that existed in that year; ordered by year, then code.
pub fn trend(
    unit: i64,
    years: RangeInclusive<i32>,
    states: &TrendStates,
    lineages: &Lineages,
) -> Result<Vec<pb::TrendPoint>, Missing> {
    let mut points = Vec::new();
    for year in years {
        let reached = walk(unit, |id| {
            if states.0.contains_key(&(id, year)) {
                return Ok(Step::Arrive);
            }
            Ok(Step::Follow(predecessors_after(
                lineages.get(id)?,
                year_end(year),
            )))
        })?;
        let mut rows: Vec<pb::TrendPoint> = reached
            .into_iter()
            .map(|(id, depth)| {
                let s = &states.0[&(id, year)];
                let card = s.event.scorecard.clone().unwrap_or_default();
                pb::TrendPoint {
                    year,
                    unit_code: s.event.unit_code.clone(),
                    unit_name: s.event.unit_name.clone(),
                    predecessor: depth > 0,
                    status: s.event.status,
                    total_points: card.total_points,
                    max_points: card.max_points,
                    complete: card.complete,
                }
            })
            .collect();
        rows.sort_by(|a, b| a.unit_code.cmp(&b.unit_code));
        points.extend(rows);
    }
    Ok(points)
}
