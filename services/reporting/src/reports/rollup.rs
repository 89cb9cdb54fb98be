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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chiso_proto::units::v1::LineageLink;

    use super::*;
    use crate::hierarchy::Lineage;

    fn unit(id: i64, code: &str) -> Unit {
        Unit {
            id,
            code: code.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rows_count_each_childs_units_and_totals_add_them_up() {
        let facts = UnitFacts {
            first_completion: [(1, 2022), (2, 2023), (3, 2023)].into(),
            statuses: [
                (1, vec![AssessmentStatus::Approved as i32]),
                (2, vec![AssessmentStatus::Approved as i32]),
                (4, vec![AssessmentStatus::Draft as i32]),
            ]
            .into(),
        };
        let (rows, totals) = progress(
            vec![(unit(10, "395"), vec![1, 2]), (unit(11, "396"), vec![3, 4])],
            &facts,
            2023,
        );
        let counts: Vec<_> = rows
            .iter()
            .map(|r| (r.units, r.completed_in_year, r.completed_cumulative))
            .collect();
        assert_eq!(counts, [(2, 1, 2), (2, 1, 1)]);
        assert_eq!(rows[1].statuses.unwrap().draft, 1);
        assert_eq!(
            (
                totals.units,
                totals.completed_in_year,
                totals.completed_cumulative
            ),
            (4, 2, 3)
        );
        let all = totals.statuses.unwrap();
        assert_eq!((all.approved, all.draft), (2, 1));
        assert!(totals.unit.is_none());
    }

    #[test]
    fn restating_carries_facts_to_the_unit_merged_into_with_the_earliest_year() {
        let merge = Date::from_calendar_date(2024, time::Month::January, 1).unwrap();
        let into_3 = LineageLink {
            unit: Some(unit(3, "")),
            effective_date: Some(chiso_proto::from_date(merge)),
            ..Default::default()
        };
        let mut lineages = Lineages::default();
        for id in [1, 2] {
            let mut gone = unit(id, "");
            gone.valid_to = Some(chiso_proto::from_date(merge));
            lineages.insert(
                id,
                Arc::new(Lineage {
                    unit: gone,
                    predecessors: vec![],
                    successors: vec![into_3.clone()],
                }),
            );
        }
        let facts = UnitFacts {
            first_completion: [(1, 2023), (2, 2022)].into(),
            statuses: [(1, vec![4]), (2, vec![1])].into(),
        };
        let later = Date::from_calendar_date(2025, time::Month::June, 30).unwrap();
        assert_eq!(
            facts
                .restated(&Lineages::default(), later)
                .unwrap_err()
                .0
                .len(),
            4,
            "each walk names what it lacks"
        );
        lineages.insert(
            3,
            Arc::new(Lineage {
                unit: unit(3, ""),
                predecessors: vec![],
                successors: vec![],
            }),
        );
        let restated = facts.restated(&lineages, later).unwrap();
        assert_eq!(restated.first_completion, [(3, 2022)].into());
        let mut statuses = restated.statuses[&3].clone();
        statuses.sort();
        assert_eq!(statuses, [1, 4]);
    }
}
