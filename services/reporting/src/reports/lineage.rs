//! The one walk through lineage: restating follows successors forward to a
//! later hierarchy, the trend follows predecessors back to earlier years.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use time::Date;

use crate::hierarchy::Lineage;

/// How many links a walk follows at most; real histories need two or three,
/// and the bound keeps a cyclic or corrupt lineage from running away.
const MAX_DEPTH: usize = 8;

/// The lineages fetched so far for one answer.
#[derive(Default)]
pub struct Lineages(HashMap<i64, Arc<Lineage>>);

/// The lineages a walk needed and did not have: fetch them and walk again.
#[derive(Debug, PartialEq, Eq)]
pub struct Missing(pub Vec<i64>);

impl Lineages {
    pub fn insert(&mut self, id: i64, lineage: Arc<Lineage>) {
        self.0.insert(id, lineage);
    }

    pub fn get(&self, id: i64) -> Result<&Lineage, Missing> {
        self.0.get(&id).map(|l| &**l).ok_or(Missing(vec![id]))
    }
}

/// What a walk does at one unit.
pub enum Step {
    /// The unit is where the walk was going.
    Arrive,
    /// Go on to these units.
    Follow(Vec<i64>),
}

/// Walks depth-first from `start`, visiting each unit once and going at most
/// [`MAX_DEPTH`] links away; gives each unit arrived at with its distance
/// from `start`.
pub fn walk(
    start: i64,
    mut step: impl FnMut(i64) -> Result<Step, Missing>,
) -> Result<Vec<(i64, usize)>, Missing> {
    let mut arrived = Vec::new();
    let mut todo = vec![(start, 0)];
    let mut seen = HashSet::new();
    while let Some((id, depth)) = todo.pop() {
        if !seen.insert(id) || depth > MAX_DEPTH {
            continue;
        }
        match step(id)? {
            Step::Arrive => arrived.push((id, depth)),
            Step::Follow(next) => todo.extend(next.into_iter().map(|n| (n, depth + 1))),
        }
    }
    Ok(arrived)
}

fn effective(link: &chiso_proto::units::v1::LineageLink) -> Option<Date> {
    link.effective_date
        .as_ref()
        .and_then(|d| chiso_proto::to_date(d).ok())
}

/// The units existing on `date` that `id` is, or went into.
pub fn successors_on(lineages: &Lineages, id: i64, date: Date) -> Result<Vec<i64>, Missing> {
    let found = walk(id, |unit| {
        let lineage = lineages.get(unit)?;
        let ends = lineage
            .unit
            .valid_to
            .as_ref()
            .and_then(|d| chiso_proto::to_date(d).ok());
        if ends.is_none_or(|end| end > date) {
            return Ok(Step::Arrive);
        }
        Ok(Step::Follow(
            lineage
                .successors
                .iter()
                .filter(|link| effective(link).is_some_and(|e| e <= date))
                .filter_map(|link| link.unit.as_ref().map(|u| u.id))
                .collect(),
        ))
    })?;
    Ok(found.into_iter().map(|(unit, _)| unit).collect())
}

/// The units `id` came from that were split or merged away after `date`.
pub fn predecessors_after(lineage: &Lineage, date: Date) -> Vec<i64> {
    lineage
        .predecessors
        .iter()
        .filter(|link| effective(link).is_some_and(|e| e > date))
        .filter_map(|link| link.unit.as_ref().map(|u| u.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use chiso_proto::units::v1::{LineageLink, Unit};

    use super::*;

    fn day(year: i32, month: u8, d: u8) -> Date {
        Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), d).unwrap()
    }

    fn unit(id: i64, valid_to: Option<Date>) -> Unit {
        Unit {
            id,
            valid_to: valid_to.map(chiso_proto::from_date),
            ..Default::default()
        }
    }

    fn link(to: i64, on: Date) -> LineageLink {
        LineageLink {
            unit: Some(unit(to, None)),
            effective_date: Some(chiso_proto::from_date(on)),
            ..Default::default()
        }
    }

    /// 1 and 2 merged into 3 on 1/1/2020; 3 split into 4 and 5 on 1/7/2025.
    fn history() -> Lineages {
        let merge = day(2020, 1, 1);
        let split = day(2025, 7, 1);
        let mut l = Lineages::default();
        for (id, ends, predecessors, successors) in [
            (1, Some(merge), vec![], vec![link(3, merge)]),
            (2, Some(merge), vec![], vec![link(3, merge)]),
            (
                3,
                Some(split),
                vec![link(1, merge), link(2, merge)],
                vec![link(4, split), link(5, split)],
            ),
            (4, None, vec![link(3, split)], vec![]),
            (5, None, vec![link(3, split)], vec![]),
        ] {
            l.insert(
                id,
                Arc::new(Lineage {
                    unit: unit(id, ends),
                    predecessors,
                    successors,
                }),
            );
        }
        l
    }

    #[test]
    fn successors_are_the_units_alive_on_the_date() {
        let l = history();
        assert_eq!(successors_on(&l, 1, day(2019, 6, 1)), Ok(vec![1]));
        assert_eq!(successors_on(&l, 1, day(2024, 12, 31)), Ok(vec![3]));
        let mut later = successors_on(&l, 1, day(2025, 12, 31)).unwrap();
        later.sort();
        assert_eq!(later, [4, 5]);
    }

    #[test]
    fn a_walk_names_the_lineage_it_lacks() {
        let l = Lineages::default();
        assert_eq!(successors_on(&l, 7, day(2025, 1, 1)), Err(Missing(vec![7])));
    }

    #[test]
    fn predecessors_after_a_date_are_those_merged_away_later() {
        let l = history();
        let three = l.get(3).unwrap();
        assert_eq!(predecessors_after(three, day(2019, 12, 31)), [1, 2]);
        assert!(predecessors_after(three, day(2020, 12, 31)).is_empty());
    }

    #[test]
    fn a_walk_stops_at_its_depth_bound() {
        // A chain 0 → 1 → 2 → …: only the first MAX_DEPTH links are followed.
        let reached = walk(0, |id| {
            Ok(if id == 100 {
                Step::Arrive
            } else {
                Step::Follow(vec![id + 1])
            })
        })
        .unwrap();
        assert!(reached.is_empty());
        let reached = walk(0, |id| {
            Ok(if id as usize == MAX_DEPTH {
                Step::Arrive
            } else {
                Step::Follow(vec![id + 1])
            })
        })
        .unwrap();
        assert_eq!(reached, [(MAX_DEPTH as i64, MAX_DEPTH)]);
    }
}
