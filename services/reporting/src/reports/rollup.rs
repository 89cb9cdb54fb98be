//! Progress rolled up the hierarchy: statuses and first completions of the
//! counted units under each child of a scope, and restating them onto the
//! units of a later hierarchy.

use std::collections::HashMap;

use chiso_proto::assessment::v1::AssessmentStatus;
use chiso_proto::reporting::v1 as pb;
use chiso_proto::units::v1::Unit;
use time::Date;

use super::lineage::{Lineages, Missing, successors_on};
use crate::projection::AssessmentState;

/// What the roll-up counts, by unit id: the first year each unit completed
/// CĐS, and the status of each of its assessments of the reported year.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UnitFacts {
    pub first_completion: HashMap<i64, i32>,
    pub statuses: HashMap<i64, Vec<i32>>,
}

impl UnitFacts {
    pub fn new(first_completion: HashMap<i64, i32>, states: &[AssessmentState]) -> UnitFacts {
        let mut statuses: HashMap<i64, Vec<i32>> = HashMap::new();
        for s in states {
            statuses
                .entry(s.event.unit_id)
                .or_default()
                .push(s.event.status);
        }
        UnitFacts {
            first_completion,
            statuses,
        }
    }

    /// The same facts carried over to the units existing on `date`: a unit
    /// merged into another counts for it, with its earliest completion.
    pub fn restated(&self, lineages: &Lineages, date: Date) -> Result<UnitFacts, Missing> {
        let mut missing = Vec::new();
        let mut restated = UnitFacts::default();
        for (unit, year) in &self.first_completion {
            match successors_on(lineages, *unit, date) {
                Ok(later) => {
                    for later in later {
                        let e = restated.first_completion.entry(later).or_insert(*year);
                        *e = (*e).min(*year);
                    }
                }
                Err(Missing(ids)) => missing.extend(ids),
            }
        }
        for (unit, list) in &self.statuses {
            match successors_on(lineages, *unit, date) {
                Ok(later) => {
                    for later in later {
                        restated.statuses.entry(later).or_default().extend(list);
                    }
                }
                Err(Missing(ids)) => missing.extend(ids),
            }
        }
        if missing.is_empty() {
            Ok(restated)
        } else {
            Err(Missing(missing))
        }
    }
}

fn count_status(counts: &mut pb::StatusCounts, status: i32) {
    match AssessmentStatus::try_from(status).unwrap_or(AssessmentStatus::Unspecified) {
        AssessmentStatus::Draft => counts.draft += 1,
        AssessmentStatus::Submitted => counts.submitted += 1,
        AssessmentStatus::Verified => counts.verified += 1,
        AssessmentStatus::Approved => counts.approved += 1,
        AssessmentStatus::Returned => counts.returned += 1,
        AssessmentStatus::Unspecified => {}
    }
}

fn add_counts(into: &mut pb::StatusCounts, from: &pb::StatusCounts) {
    into.draft += from.draft;
    into.submitted += from.submitted;
    into.verified += from.verified;
    into.approved += from.approved;
    into.returned += from.returned;
}

/// One row per child of the scope, counting the units given for it, and the
/// totals over all rows.
pub fn progress(
    children: Vec<(Unit, Vec<i64>)>,
    facts: &UnitFacts,
    year: i32,
) -> (Vec<pb::ProgressRow>, pb::ProgressRow) {
    let mut rows = Vec::new();
    let mut totals = pb::ProgressRow {
        statuses: Some(pb::StatusCounts::default()),
        ..Default::default()
    };
    let first = &facts.first_completion;
    for (child, counted) in children {
        let mut statuses = pb::StatusCounts::default();
        for id in &counted {
            for &s in facts.statuses.get(id).into_iter().flatten() {
                count_status(&mut statuses, s);
            }
        }
        let row = pb::ProgressRow {
            unit: Some(child),
            units: counted.len() as i32,
            completed_in_year: counted
                .iter()
                .filter(|u| first.get(u) == Some(&year))
                .count() as i32,
            completed_cumulative: counted
                .iter()
                .filter(|u| first.get(u).is_some_and(|&y| y <= year))
                .count() as i32,
            statuses: Some(statuses),
        };
        totals.units += row.units;
        totals.completed_in_year += row.completed_in_year;
        totals.completed_cumulative += row.completed_cumulative;
        add_counts(
            totals.statuses.as_mut().expect("set above"),
            row.statuses.as_ref().expect("set above"),
        );
        rows.push(row);
    }
    (rows, totals)
}
