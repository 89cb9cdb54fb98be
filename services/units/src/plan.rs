//! Turning a snapshot into changes: a pure function from the recorded history,
//! a snapshot and its lineage rows to the rows it rejects and the changes it
//! makes. The repository writes the result in one transaction.
//!
//! Identity rules, in order:
//! 1. A row named as the successor in lineage rows is a new unit, unless its
//!    only predecessor is the unit holding the same code, wholly, with no other
//!    successor (then the unit simply continues).
//! 2. Otherwise a row is the unit that holds its code as of the date.
//! 3. Otherwise, if a unit that leaves the snapshot has the same name, kind
//!    and parent, GSO gave that unit a new code (a recode: same unit).
//! 4. Otherwise the row is a new unit. Where the province is already
//!    recorded, a new unit must name its predecessors in lineage rows (rule 1):
//!    a unit does not appear out of nothing, so one that does is a bad row
//!    (like the ghost 16411 Xã Đông Xuân of GSO's list of 01/03/2025). Only a
//!    province's first snapshot establishes units without lineage.
//!
//! Units under the snapshot's provinces (and under lineage predecessors) that
//! no row matches cease to exist on the date. A unit whose row was rejected
//! is still listed, so it is left as it is (a partial import applies the
//! accepted rows and nothing else).

use std::collections::{HashMap, HashSet};

use time::Date;

use crate::domain::{Change, Kind, Level, Part, check_code};

/// One stored period of a unit's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub unit_id: i64,
    pub code: String,
    pub name: String,
    pub kind: Kind,
    pub parent_id: Option<i64>,
    pub valid_from: Date,
    /// Exclusive; `None` while current.
    pub valid_to: Option<Date>,
}

impl Version {
    pub fn covers(&self, date: Date) -> bool {
        self.valid_from <= date && self.valid_to.is_none_or(|to| to > date)
    }
}

/// A snapshot row as received; `kind` is `None` when it was not recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowIn {
    pub code: String,
    pub name: String,
    pub kind: Option<Kind>,
    pub parent_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageIn {
    pub old_code: String,
    pub new_code: String,
    pub part: Option<Part>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Rows,
    Lineage,
}

impl List {
    pub fn as_str(self) -> &'static str {
        match self {
            List::Rows => "rows",
            List::Lineage => "lineage",
        }
    }
}

/// A row the snapshot cannot take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub list: List,
    pub index: usize,
    pub code: String,
    pub field: &'static str,
    pub reason: String,
}

impl Rejection {
    /// The request field path, e.g. `rows[3].parent_code`.
    pub fn path(&self) -> String {
        format!("{}[{}].{}", self.list.as_str(), self.index, self.field)
    }
}

/// A unit's facts from the date on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub unit_id: i64,
    pub code: String,
    pub name: String,
    pub kind: Kind,
    pub parent_id: Option<i64>,
}

/// One change to record, in the order it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub change: Change,
    /// The unit's facts after the change (before it, for an ending).
    pub facts: Facts,
    /// The facts before a rename, recode, reparent or reclassify.
    pub previous: Option<Facts>,
    /// The successor, for a merge or split.
    pub related_unit_id: Option<i64>,
    pub part: Option<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub old_unit_id: i64,
    pub new_unit_id: i64,
    pub part: Part,
}

/// What a snapshot does to the hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub rejected: Vec<Rejection>,
    /// Codes of the provinces the snapshot lists (accepted rows).
    pub provinces: Vec<String>,
    pub established: Vec<Facts>,
    /// Units whose facts change (their new facts).
    pub updated: Vec<Facts>,
    pub ended: Vec<Facts>,
    pub links: Vec<Link>,
    pub changes: Vec<ChangeRecord>,
    pub unchanged: usize,
}

impl Plan {
    /// Whether applying the plan would write nothing.
    pub fn is_noop(&self) -> bool {
        self.established.is_empty()
            && self.updated.is_empty()
            && self.ended.is_empty()
            && self.links.is_empty()
    }

    pub fn count(&self, change: Change) -> usize {
        self.changes.iter().filter(|c| c.change == change).count()
    }
}

/// Plans a snapshot effective on `date` against `history` (every stored
/// version). New units get ids from `next_id` on.
pub fn plan(
    history: &[Version],
    date: Date,
    rows: &[RowIn],
    lineage: &[LineageIn],
    next_id: i64,
) -> Plan {
    let state = State::new(history, date);
    let mut rejected: Vec<Rejection> = Vec::new();
    let mut bad_row = vec![false; rows.len()];
    let reject_row =
        |rejected: &mut Vec<Rejection>, bad: &mut Vec<bool>, i: usize, field, reason: String| {
            if !bad[i] {
                bad[i] = true;
                rejected.push(Rejection {
                    list: List::Rows,
                    index: i,
                    code: rows[i].code.clone(),
                    field,
                    reason,
                });
            }
        };

    let successors_named: HashSet<&str> = lineage.iter().map(|l| l.new_code.as_str()).collect();
    // Every code a row lists, accepted or not.
    let listed: HashSet<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    let predecessors_named: HashSet<&str> = lineage.iter().map(|l| l.old_code.as_str()).collect();
    // (name, kind) of the units whose codes the snapshot does not list: a row
    // with one of them may be that unit under another code (rule 3), even a
    // code it held before.
    let unlisted: HashSet<(&str, Kind)> = state
        .current_by_id
        .values()
        .filter(|v| !listed.contains(v.code.as_str()))
        .map(|v| (v.name.as_str(), v.kind))
        .collect();
    let retired_reason = |row: &RowIn, until: &Date| {
        format!(
            "{} {} is a unit that no longer exists (its code ended on {until}); a snapshot cannot bring it back without a lineage row",
            row.code, row.name
        )
    };

    // Checks each row can fail on its own.
    let mut first_at: HashMap<&str, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let Some(kind) = row.kind else {
            reject_row(
                &mut rejected,
                &mut bad_row,
                i,
                "kind",
                "unknown kind".to_owned(),
            );
            continue;
        };
        if let Err(reason) = check_code(&row.code, kind.level()) {
            reject_row(&mut rejected, &mut bad_row, i, "code", reason);
            continue;
        }
        if row.name.trim().is_empty() {
            reject_row(
                &mut rejected,
                &mut bad_row,
                i,
                "name",
                "name is empty".to_owned(),
            );
            continue;
        }
        if let Some(&j) = first_at.get(row.code.as_str()) {
            reject_row(
                &mut rejected,
                &mut bad_row,
                i,
                "code",
                format!("code {} is listed twice (first at rows[{j}])", row.code),
            );
            continue;
        }
        first_at.insert(&row.code, i);
        if kind.level() == Level::Province && !row.parent_code.is_empty() {
            reject_row(
                &mut rejected,
                &mut bad_row,
                i,
                "parent_code",
                format!("a province has no parent, got {:?}", row.parent_code),
            );
            continue;
        }
        if kind.level() != Level::Province && row.parent_code.is_empty() {
            reject_row(
                &mut rejected,
                &mut bad_row,
                i,
                "parent_code",
                "missing: only a province has no parent".to_owned(),
            );
            continue;
        }
        if !successors_named.contains(row.code.as_str())
            && !state.current_by_code.contains_key(row.code.as_str())
            && !unlisted.contains(&(row.name.as_str(), kind))
            && let Some(until) = state.retired.get(&(row.code.as_str(), row.name.as_str()))
        {
            reject_row(
                &mut rejected,
                &mut bad_row,
                i,
                "code",
                retired_reason(row, until),
            );
        }
    }

    // Parents: present, accepted and of a higher tier. Repeat until no
    // rejection cascades further (the tree is at most three deep).
    loop {
        let mut changed = false;
        for (i, row) in rows.iter().enumerate() {
            if bad_row[i] || row.parent_code.is_empty() {
                continue;
            }
            let kind = row.kind.expect("checked above");
            let reason = match first_at.get(row.parent_code.as_str()) {
                None if listed.contains(row.parent_code.as_str()) => {
                    Some(format!("parent {} was rejected", row.parent_code))
                }
                None => Some(format!("parent {} is not in the snapshot", row.parent_code)),
                Some(&p) if bad_row[p] => Some(format!("parent {} was rejected", row.parent_code)),
                Some(&p) => {
                    let parent_level = rows[p].kind.expect("accepted rows have a kind").level();
                    let fits = match kind.level() {
                        Level::Province => false,
                        Level::District => parent_level == Level::Province,
                        Level::Commune => parent_level < Level::Commune,
                    };
                    (!fits).then(|| {
                        format!(
                            "a {:?} cannot sit under {} ({:?})",
                            kind.level(),
                            row.parent_code,
                            parent_level
                        )
                        .to_lowercase()
                    })
                }
            };
            if let Some(reason) = reason {
                reject_row(&mut rejected, &mut bad_row, i, "parent_code", reason);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    // Scope: the current subtrees of the listed provinces, and of the lineage
    // predecessors that go wholly or that the snapshot lists (a predecessor
    // elsewhere that gives only part of itself goes on where it is).
    let mut scope: HashSet<i64> = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        if !bad_row[i]
            && row.parent_code.is_empty()
            && let Some(v) = state.current_by_code.get(row.code.as_str())
        {
            state.collect_subtree(v.unit_id, &mut scope);
        }
    }
    for l in lineage {
        if let Some(v) = state.current_by_code.get(l.old_code.as_str())
            && (l.part == Some(Part::Full) || listed.contains(l.old_code.as_str()))
        {
            state.collect_subtree(v.unit_id, &mut scope);
        }
    }

    // A code held outside the scope cannot be taken.
    for (i, row) in rows.iter().enumerate() {
        if bad_row[i] {
            continue;
        }
        if let Some(v) = state.current_by_code.get(row.code.as_str())
            && !scope.contains(&v.unit_id)
            && !predecessors_named.contains(row.code.as_str())
        {
            reject_row(
                &mut rejected,
                &mut bad_row,
                i,
                "code",
                format!(
                    "code {} is held by {} outside the provinces this snapshot lists",
                    row.code, v.name
                ),
            );
        }
    }

    // Two units of one kind and name under one parent is a duplicate.
    let mut by_name: HashMap<(&str, &str, Kind), usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if bad_row[i] {
            continue;
        }
        let key = (
            row.parent_code.as_str(),
            row.name.as_str(),
            row.kind.expect("accepted"),
        );
        if let Some(&j) = by_name.get(&key) {
            reject_row(
                &mut rejected,
                &mut bad_row,
                i,
                "name",
                format!(
                    "{} duplicates rows[{j}] ({}): same name and kind under {}",
                    row.name, rows[j].code, row.parent_code
                ),
            );
        } else {
            by_name.insert(key, i);
        }
    }
    // Children of rows rejected just above.
    loop {
        let mut changed = false;
        for (i, row) in rows.iter().enumerate() {
            if !bad_row[i]
                && !row.parent_code.is_empty()
                && bad_row[first_at[row.parent_code.as_str()]]
            {
                reject_row(
                    &mut rejected,
                    &mut bad_row,
                    i,
                    "parent_code",
                    format!("parent {} was rejected", row.parent_code),
                );
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    // Lineage rows.
    let accepted_code = |code: &str| first_at.get(code).is_some_and(|&i| !bad_row[i]);
    let mut predecessors: HashMap<&str, Vec<(i64, Part)>> = HashMap::new();
    let mut successor_count: HashMap<i64, usize> = HashMap::new();
    let mut wholly_into: HashMap<i64, &str> = HashMap::new();
    let mut seen_links: HashSet<(&str, &str)> = HashSet::new();
    for (k, l) in lineage.iter().enumerate() {
        let mut reject = |field, reason: String| {
            rejected.push(Rejection {
                list: List::Lineage,
                index: k,
                code: l.new_code.clone(),
                field,
                reason,
            })
        };
        let Some(part) = l.part else {
            reject("part", "must be full or partial".to_owned());
            continue;
        };
        if !accepted_code(&l.new_code) {
            let why = if listed.contains(l.new_code.as_str()) {
                "was rejected"
            } else {
                "is not in the snapshot"
            };
            reject("new_code", format!("new unit {} {why}", l.new_code));
            continue;
        }
        let Some(old) = state.current_by_code.get(l.old_code.as_str()) else {
            reject(
                "old_code",
                format!("no unit holds code {} on {date}", l.old_code),
            );
            continue;
        };
        if !seen_links.insert((&l.old_code, &l.new_code)) {
            reject(
                "new_code",
                format!("{} → {} is listed twice", l.old_code, l.new_code),
            );
            continue;
        }
        if part == Part::Full {
            if l.old_code != l.new_code
                && accepted_code(&l.old_code)
                && !successors_named.contains(l.old_code.as_str())
            {
                reject(
                    "part",
                    format!(
                        "{} went wholly into {} but is still listed in the snapshot",
                        l.old_code, l.new_code
                    ),
                );
                continue;
            }
            if let Some(other) = wholly_into.insert(old.unit_id, &l.new_code) {
                reject(
                    "part",
                    format!("{} already went wholly into {other}", l.old_code),
                );
                continue;
            }
        }
        predecessors
            .entry(l.new_code.as_str())
            .or_default()
            .push((old.unit_id, part));
        *successor_count.entry(old.unit_id).or_default() += 1;
    }

    let provinces = rows
        .iter()
        .enumerate()
        .filter(|(i, r)| !bad_row[*i] && r.parent_code.is_empty())
        .map(|(_, r)| r.code.clone())
        .collect();
    let mut plan = Plan {
        rejected,
        provinces,
        ..Plan::default()
    };

    // Identity: parents before children, so a row's parent id is known.
    let mut order: Vec<usize> = (0..rows.len()).filter(|&i| !bad_row[i]).collect();
    order.sort_by_key(|&i| (rows[i].kind.expect("accepted").level(), i));

    // Codes whose holders leave: not listed at all (a rejected row still
    // lists its unit), or taken by a new unit.
    let leaving_codes: HashSet<&str> = scope
        .iter()
        .map(|id| state.current_by_id[id].code.as_str())
        .filter(|code| !listed.contains(code) || predecessors.contains_key(code))
        .collect();
    let mut recode_candidates: HashMap<(Option<i64>, &str, Kind), Vec<i64>> = HashMap::new();
    for id in &scope {
        let v = state.current_by_id[id];
        if leaving_codes.contains(v.code.as_str()) && !successor_count.contains_key(id) {
            recode_candidates
                .entry((v.parent_id, v.name.as_str(), v.kind))
                .or_default()
                .push(*id);
        }
    }
    for ids in recode_candidates.values_mut() {
        ids.sort_unstable();
    }

    let mut next_id = next_id;
    let mut resolved: HashMap<&str, i64> = HashMap::new();
    // Whether a resolved row belongs to a province the records do not know
    // yet (its first snapshot), where units may be new without lineage.
    let mut first_seen: HashMap<&str, bool> = HashMap::new();
    let mut matched: HashSet<i64> = HashSet::new();
    for i in order {
        let row = &rows[i];
        let kind = row.kind.expect("accepted");
        let (parent_id, parent_first_seen) = if row.parent_code.is_empty() {
            (None, None)
        } else {
            match resolved.get(row.parent_code.as_str()) {
                Some(&id) => (Some(id), Some(first_seen[row.parent_code.as_str()])),
                // Rejected below (rows come parents first).
                None => {
                    reject_row(
                        &mut plan.rejected,
                        &mut bad_row,
                        i,
                        "parent_code",
                        format!("parent {} was rejected", row.parent_code),
                    );
                    continue;
                }
            }
        };
        let holder = state.current_by_code.get(row.code.as_str()).copied();
        let existing = match predecessors.get(row.code.as_str()) {
            Some(preds) => match (preds.as_slice(), holder) {
                ([(old, Part::Full)], Some(h))
                    if h.unit_id == *old && successor_count[old] == 1 =>
                {
                    Some(h.unit_id)
                }
                _ => None,
            },
            None => match holder {
                Some(h) if scope.contains(&h.unit_id) && !matched.contains(&h.unit_id) => {
                    Some(h.unit_id)
                }
                _ => recode_candidates
                    .get_mut(&(parent_id, row.name.as_str(), kind))
                    .and_then(|ids| (!ids.is_empty()).then(|| ids.remove(0))),
            },
        };
        let from_nothing = existing.is_none() && !predecessors.contains_key(row.code.as_str());
        if from_nothing && parent_first_seen == Some(false) {
            let reason = match state.retired.get(&(row.code.as_str(), row.name.as_str())) {
                Some(until) => retired_reason(row, until),
                None => format!(
                    "{} {} would be a new unit, but no lineage row names the units it was formed from; \
                     a unit cannot appear out of nothing in a province already recorded",
                    row.code, row.name
                ),
            };
            reject_row(&mut plan.rejected, &mut bad_row, i, "code", reason);
            continue;
        }
        first_seen.insert(&row.code, parent_first_seen.unwrap_or(from_nothing));
        let facts = Facts {
            unit_id: existing.unwrap_or(next_id),
            code: row.code.clone(),
            name: row.name.clone(),
            kind,
            parent_id,
        };
        resolved.insert(&row.code, facts.unit_id);
        match existing {
            Some(id) => {
                matched.insert(id);
                let before = state.current_by_id[&id];
                let previous = Facts {
                    unit_id: id,
                    code: before.code.clone(),
                    name: before.name.clone(),
                    kind: before.kind,
                    parent_id: before.parent_id,
                };
                let mut diffs = Vec::new();
                if previous.code != facts.code {
                    diffs.push(Change::Recode);
                }
                if previous.name != facts.name {
                    diffs.push(Change::Rename);
                }
                if previous.kind != facts.kind {
                    diffs.push(Change::Reclassify);
                }
                if previous.parent_id != facts.parent_id {
                    diffs.push(Change::Reparent);
                }
                if diffs.is_empty() {
                    plan.unchanged += 1;
                } else {
                    for change in diffs {
                        plan.changes.push(ChangeRecord {
                            change,
                            facts: facts.clone(),
                            previous: Some(previous.clone()),
                            related_unit_id: None,
                            part: None,
                        });
                    }
                    plan.updated.push(facts);
                }
            }
            None => {
                next_id += 1;
                plan.changes.push(ChangeRecord {
                    change: Change::Establish,
                    facts: facts.clone(),
                    previous: None,
                    related_unit_id: None,
                    part: None,
                });
                for &(old, part) in predecessors.get(row.code.as_str()).into_iter().flatten() {
                    plan.links.push(Link {
                        old_unit_id: old,
                        new_unit_id: facts.unit_id,
                        part,
                    });
                }
                plan.established.push(facts);
            }
        }
    }

    // Units that leave: merged, split up or dissolved. A predecessor that
    // continues (a partial split) records its split too. A unit listed only by
    // rejected rows stays as it is, unless it went wholly into another or its
    // parent ends (it keeps its old parent).
    let accepted_codes: HashSet<&str> = (0..rows.len())
        .filter(|&i| !bad_row[i])
        .map(|i| rows[i].code.as_str())
        .collect();
    let went_wholly: HashSet<i64> = plan
        .links
        .iter()
        .filter(|l| l.part == Part::Full)
        .map(|l| l.old_unit_id)
        .collect();
    let mut ending: HashSet<i64> = scope
        .iter()
        .copied()
        .filter(|id| {
            let code = state.current_by_id[id].code.as_str();
            let kept = listed.contains(code)
                && !accepted_codes.contains(code)
                && !went_wholly.contains(id);
            !matched.contains(id) && !kept
        })
        .collect();
    loop {
        let orphans: Vec<i64> = scope
            .iter()
            .copied()
            .filter(|id| {
                !matched.contains(id)
                    && !ending.contains(id)
                    && state.current_by_id[id]
                        .parent_id
                        .is_some_and(|p| ending.contains(&p))
            })
            .collect();
        if orphans.is_empty() {
            break;
        }
        ending.extend(orphans);
    }
    // Predecessors outside the scope only record their splits.
    let mut scope_sorted: Vec<i64> = scope
        .iter()
        .copied()
        .chain(plan.links.iter().map(|l| l.old_unit_id))
        .collect::<HashSet<i64>>()
        .into_iter()
        .collect();
    scope_sorted.sort_unstable();
    for id in scope_sorted {
        let v = state.current_by_id[&id];
        let facts = Facts {
            unit_id: id,
            code: v.code.clone(),
            name: v.name.clone(),
            kind: v.kind,
            parent_id: v.parent_id,
        };
        let links: Vec<&Link> = plan.links.iter().filter(|l| l.old_unit_id == id).collect();
        let ends = ending.contains(&id);
        for link in &links {
            plan.changes.push(ChangeRecord {
                change: if link.part == Part::Full {
                    Change::Merge
                } else {
                    Change::Split
                },
                facts: facts.clone(),
                previous: None,
                related_unit_id: Some(link.new_unit_id),
                part: Some(link.part),
            });
        }
        if ends {
            if links.is_empty() {
                plan.changes.push(ChangeRecord {
                    change: Change::Dissolve,
                    facts: facts.clone(),
                    previous: None,
                    related_unit_id: None,
                    part: None,
                });
            }
            plan.ended.push(facts);
        }
    }
    plan
}

/// The hierarchy as of one date, indexed.
struct State<'a> {
    current_by_code: HashMap<&'a str, &'a Version>,
    current_by_id: HashMap<i64, &'a Version>,
    children: HashMap<i64, Vec<i64>>,
    /// (code, name) pairs that existed once and do not now, with the date
    /// they ended.
    retired: HashMap<(&'a str, &'a str), Date>,
}

impl<'a> State<'a> {
    fn new(history: &'a [Version], date: Date) -> State<'a> {
        let mut current_by_code = HashMap::new();
        let mut current_by_id = HashMap::new();
        let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut retired = HashMap::new();
        for v in history {
            if v.covers(date) {
                current_by_code.insert(v.code.as_str(), v);
                current_by_id.insert(v.unit_id, v);
                if let Some(p) = v.parent_id {
                    children.entry(p).or_default().push(v.unit_id);
                }
            } else if let Some(to) = v.valid_to
                && to <= date
            {
                let e = retired
                    .entry((v.code.as_str(), v.name.as_str()))
                    .or_insert(to);
                if to > *e {
                    *e = to;
                }
            }
        }
        State {
            current_by_code,
            current_by_id,
            children,
            retired,
        }
    }

    fn collect_subtree(&self, root: i64, into: &mut HashSet<i64>) {
        if !into.insert(root) {
            return;
        }
        for &child in self.children.get(&root).into_iter().flatten() {
            self.collect_subtree(child, into);
        }
    }
}

#[cfg(test)]
mod tests;
