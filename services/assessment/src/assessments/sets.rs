//! Criteria sets: drafting and publishing them, which one scores an
//! assessment, and the published ones kept in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chiso_proto::units::v1::UnitLevel;
use chiso_server::Violations;

use super::{AssessmentError, Assessments};
use crate::convert::{level_from_pb, level_name, level_to_pb};
use crate::repo::{Publish, Repo, SetState, StoredSet, Tx};
use chiso_criteria::{CriteriaSet, Level};

type ById = HashMap<(String, u32), Arc<CriteriaSet>>;

/// Published sets by (id, version); they never change, so they are kept
/// once read.
#[derive(Clone, Default)]
pub(crate) struct PublishedSets(Arc<Mutex<ById>>);

/// The criteria set a write names: an empty `id` lets the core choose the
/// one that applies, version 0 is the latest published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetChoice {
    pub id: String,
    pub version: u32,
}

/// Stores a draft of `set`; a published version never changes.
pub async fn draft_set(
    repo: &Repo,
    set: &CriteriaSet,
    toml: &str,
    by: &str,
) -> Result<StoredSet, AssessmentError> {
    repo.put_draft(set, toml, by).await?.ok_or_else(|| {
        AssessmentError::WrongState(format!(
            "{} version {} is published and cannot change; create version {}",
            set.id,
            set.version,
            set.version + 1
        ))
    })
}

/// Publishes a draft, if it is still as read at `etag` (when given).
pub async fn publish_set(
    repo: &Repo,
    id: &str,
    version: u32,
    etag: &str,
) -> Result<StoredSet, AssessmentError> {
    match repo.publish(id, version, etag).await? {
        Publish::Published(stored) => Ok(stored),
        Publish::Missing => Err(AssessmentError::NotFound(format!(
            "no criteria set {id} version {version}"
        ))),
        Publish::Stale(stored) => Err(AssessmentError::Stale(format!(
            "{id} version {version} changed since it was read (etag {etag}, now {})",
            stored.etag()
        ))),
    }
}

impl Assessments {
    /// A stored set by id and version; version 0 is the latest published.
    pub async fn find_set(
        &self,
        id: &str,
        version: u32,
    ) -> Result<Option<StoredSet>, AssessmentError> {
        Ok(if version == 0 {
            self.repo.latest_published(None, id).await?
        } else {
            self.repo.get_set(None, id, version).await?
        })
    }

    /// Up to `limit` sets in (id, version) order after `after`, of a level
    /// and for a year when given.
    pub async fn list_sets(
        &self,
        level: Option<Level>,
        year: Option<i32>,
        include_drafts: bool,
        after: Option<(String, u32)>,
        limit: usize,
    ) -> Result<Vec<StoredSet>, AssessmentError> {
        let mut sets = Vec::new();
        let mut cursor = after;
        // Year filtering happens here, so read on until the page is full.
        loop {
            let page = self
                .repo
                .list_sets(
                    None,
                    level,
                    include_drafts,
                    cursor.as_ref().map(|(i, v)| (i.as_str(), *v)),
                    limit as i64,
                )
                .await?;
            let done = page.len() < limit;
            for s in page {
                cursor = Some((s.set.id.clone(), s.set.version));
                if year.is_none_or(|y| s.set.years.contains(&y)) {
                    sets.push(s);
                }
                if sets.len() >= limit {
                    break;
                }
            }
            if done || sets.len() >= limit {
                break;
            }
        }
        Ok(sets)
    }

    /// A criteria set; published ones come from memory after the first read.
    /// A write transaction passes itself as `tx`.
    pub async fn set(
        &self,
        tx: Option<&mut Tx>,
        id: &str,
        version: u32,
    ) -> Result<Arc<CriteriaSet>, AssessmentError> {
        if let Some(set) = self
            .published
            .0
            .lock()
            .expect("cache lock")
            .get(&(id.to_owned(), version))
        {
            return Ok(set.clone());
        }
        let stored = self.repo.get_set(tx, id, version).await?.ok_or_else(|| {
            AssessmentError::internal(format!("criteria set {id} v{version} is missing"))
        })?;
        let set = Arc::new(stored.set);
        if stored.state == SetState::Published {
            self.published
                .0
                .lock()
                .expect("cache lock")
                .insert((id.to_owned(), version), set.clone());
        }
        Ok(set)
    }

    /// The published set a new assessment of `level` for `year` is scored
    /// with: the one asked for, or the only one that applies. A set asked
    /// for that does not fit the level or the year comes with those
    /// problems, so that the values can still be checked against it.
    pub(super) async fn choose_set(
        &self,
        tx: &mut Tx,
        level: UnitLevel,
        year: i32,
        choice: &SetChoice,
    ) -> Result<(Arc<CriteriaSet>, Violations), AssessmentError> {
        let (id, version) = (choice.id.as_str(), choice.version);
        let stored: StoredSet = if !id.is_empty() {
            let found = if version == 0 {
                self.repo.latest_published(Some(&mut *tx), id).await?
            } else {
                self.repo.get_set(Some(&mut *tx), id, version).await?
            };
            match found {
                Some(s) if s.state == SetState::Published => s,
                Some(_) => {
                    return Err(AssessmentError::invalid(
                        "criteria_set_id",
                        format!(
                            "{id} version {version} is a draft; only published sets score assessments"
                        ),
                    ));
                }
                None => {
                    return Err(AssessmentError::invalid(
                        "criteria_set_id",
                        format!("no published criteria set {id}"),
                    ));
                }
            }
        } else {
            let level = level_from_pb(level).ok_or_else(|| {
                AssessmentError::internal("the units service sent a unit without a level")
            })?;
            let mut candidates: Vec<StoredSet> = Vec::new();
            let mut after: Option<(String, u32)> = None;
            loop {
                let page = self
                    .repo
                    .list_sets(
                        Some(&mut *tx),
                        Some(level),
                        false,
                        after.as_ref().map(|(i, v)| (i.as_str(), *v)),
                        200,
                    )
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some((last.set.id.clone(), last.set.version));
                candidates.extend(page.into_iter().filter(|s| s.set.years.contains(&year)));
            }
            // The latest version of each set that applies.
            let mut latest: BTreeMap<String, StoredSet> = BTreeMap::new();
            for s in candidates {
                match latest.get(&s.set.id) {
                    Some(have) if have.set.version >= s.set.version => {}
                    _ => {
                        latest.insert(s.set.id.clone(), s);
                    }
                }
            }
            let mut sets: Vec<StoredSet> = latest.into_values().collect();
            match sets.len() {
                1 => sets.remove(0),
                0 => {
                    return Err(AssessmentError::WrongState(format!(
                        "no published criteria set applies to {} units in {year}",
                        level_name(level_to_pb(level))
                    )));
                }
                _ => {
                    let ids: Vec<_> = sets.iter().map(|s| s.set.id.as_str()).collect();
                    return Err(AssessmentError::invalid(
                        "criteria_set_id",
                        format!(
                            "several published sets apply ({}); name one",
                            ids.join(", ")
                        ),
                    ));
                }
            }
        };
        let mut v = Violations::new();
        if level_to_pb(stored.set.level) != level {
            v.add(
                "criteria_set_id",
                format!(
                    "{} is a set for {} units, and this unit is a {}",
                    stored.set.id,
                    level_name(level_to_pb(stored.set.level)),
                    level_name(level)
                ),
            );
        }
        if !stored.set.years.contains(&year) {
            v.add(
                "year",
                format!(
                    "{} applies to {:?}, not {year}",
                    stored.set.id, stored.set.years
                ),
            );
        }
        let set = self
            .set(Some(tx), &stored.set.id, stored.set.version)
            .await?;
        Ok((set, v))
    }
}
