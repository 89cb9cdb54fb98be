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
