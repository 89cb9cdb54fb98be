//! The core of the assessment service: writing values, moving assessments
//! through review, and recording every change with its event — each call in
//! one transaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chiso_auth::Caller;
use chiso_proto::assessment::v1 as pb;
use chiso_proto::units::v1::UnitLevel;
use chiso_server::{ApiError, Violations};
use chiso_storage::Db;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::convert::{level_from_pb, level_to_pb, scorecard_to_pb, value_to_pb};
use crate::repo::{
    AssessmentRow, HistoryRow, Repo, SetState, StoredSet, StoredValue, Tx, level_to_i64, timestamp,
};
use crate::units_client::{ResolvedUnit, UnitsDirectory};
use crate::workflow::{Action, Status, authorize, transition};
use chiso_criteria::{self as criteria, CriteriaSet, Value};

/// One value to write, with its position in the request.
#[derive(Debug, Clone)]
pub struct ValueWrite {
    pub index: usize,
    pub value: StoredValue,
}

/// What a write of values did.
pub struct Written {
    pub assessment: pb::Assessment,
    /// Rejected writes (by index) and why; empty when all were taken. Paths
    /// are fields of an `IndicatorValue` (`indicator_code`, `ratio.numerator`).
    pub rejected: Vec<(usize, Violations)>,
    /// Problems of the request as a whole (the criteria set named does not
    /// fit the unit or the year); nothing is written when there are any.
    pub problems: Violations,
    pub wrote: bool,
    /// The event of the change, for the caller to append once every write of
    /// its transaction is done (the outbox lock is taken last).
    pub event: Option<pb::AssessmentEvent>,
}

/// Published sets by (id, version).
type PublishedSets = HashMap<(String, u32), Arc<CriteriaSet>>;

/// The assessment service's state: its database, the units service, and
/// the latest committed event for streams to wake on.
#[derive(Clone)]
pub struct Assessments {
    pub(crate) repo: Repo,
    pub(crate) units: UnitsDirectory,
    pub(crate) committed: watch::Sender<i64>,
    pub(crate) shutdown: CancellationToken,
    /// Published sets never change, so they are kept once read.
    published: Arc<Mutex<PublishedSets>>,
}

/// A hash of a request, to tell a retry from a different request that
/// reuses its id.
pub fn request_hash<M: Message>(method: &str, request: &M) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(request.encode_to_vec());
    hex::encode(hasher.finalize())
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn value_json(v: &StoredValue) -> String {
    json(&serde_json::json!({
        "value": v.value,
        "evidence": {
            "document_number": v.evidence.document_number,
            "link": v.evidence.link,
            "note": v.evidence.note,
        }
    }))
}

/// The field of an `IndicatorValue` that a path of a value check names:
/// `code` is `indicator_code`, and `value` the member of the oneof the value
/// came in (`ratio`, `count`, …).
fn value_field(path: &str, value: &Value) -> String {
    let member = match value {
        Value::Bool(_) => "yes",
        Value::Choice(_) => "choice",
        Value::Ratio { .. } => "ratio",
        Value::Count(_) => "count",
        Value::Number(_) => "number",
    };
    match path {
        "code" => "indicator_code".to_owned(),
        "value" => member.to_owned(),
        _ => match path.strip_prefix("value.") {
            Some(rest) => format!("{member}.{rest}"),
            None => path.to_owned(),
        },
    }
}

fn has_evidence(e: &pb::Evidence) -> bool {
    !(e.document_number.trim().is_empty() && e.link.trim().is_empty() && e.note.trim().is_empty())
}

impl Assessments {
    pub fn new(db: Db, units: UnitsDirectory, shutdown: CancellationToken) -> Assessments {
        let (committed, _) = watch::channel(0);
        Assessments {
            repo: Repo::new(db),
            units,
            committed,
            shutdown,
            published: Arc::default(),
        }
    }

    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    pub(crate) fn notify(&self, seq: i64) {
        if seq > 0 {
            self.committed.send_replace(seq);
        }
    }

    /// Checks a code and year, then asks the units service which unit the
    /// code named at the end of that year.
    pub async fn resolve_unit(&self, code: &str, year: i32) -> Result<ResolvedUnit, ApiError> {
        let mut v = Violations::new();
        let code = code.trim();
        if let Err(e) = chiso_domain::GsoCode::parse(code) {
            v.add("unit_code", e);
        }
        if let Err(e) = chiso_domain::Year::new(year) {
            v.add("year", e);
        }
        if !v.is_empty() {
            return Err(ApiError::InvalidArgument(v));
        }
        self.units.resolve(code, year).await?.ok_or_else(|| {
            ApiError::invalid(
                "unit_code",
                format!("no unit had code {code} at the end of {year}"),
            )
        })
    }

    /// A criteria set; published ones come from memory after the first read.
    /// A write transaction passes itself as `tx`.
    pub async fn set(
        &self,
        tx: Option<&mut Tx>,
        id: &str,
        version: u32,
    ) -> Result<Arc<CriteriaSet>, ApiError> {
        if let Some(set) = self
            .published
            .lock()
            .expect("cache lock")
            .get(&(id.to_owned(), version))
        {
            return Ok(set.clone());
        }
        let stored = self.repo.get_set(tx, id, version).await?.ok_or_else(|| {
            ApiError::Internal(format!("criteria set {id} v{version} is missing"))
        })?;
        let set = Arc::new(stored.set);
        if stored.state == SetState::Published {
            self.published
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
    async fn choose_set(
        &self,
        tx: &mut Tx,
        level: UnitLevel,
        year: i32,
        id: &str,
        version: u32,
    ) -> Result<(Arc<CriteriaSet>, Violations), ApiError> {
        let stored: StoredSet = if !id.is_empty() {
            let found = if version == 0 {
                self.repo.latest_published(Some(&mut *tx), id).await?
            } else {
                self.repo.get_set(Some(&mut *tx), id, version).await?
            };
            match found {
                Some(s) if s.state == SetState::Published => s,
                Some(_) => {
                    return Err(ApiError::invalid(
                        "criteria_set_id",
                        format!(
                            "{id} version {version} is a draft; only published sets score assessments"
                        ),
                    ));
                }
                None => {
                    return Err(ApiError::invalid(
                        "criteria_set_id",
                        format!("no published criteria set {id}"),
                    ));
                }
            }
        } else {
            let level = level_from_pb(level).ok_or_else(|| {
                ApiError::Internal("the units service sent a unit without a level".to_owned())
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
                    return Err(ApiError::FailedPrecondition(format!(
                        "no published criteria set applies to {} units in {year}",
                        level_name(level_to_pb(level))
                    )));
                }
                _ => {
                    let ids: Vec<_> = sets.iter().map(|s| s.set.id.as_str()).collect();
                    return Err(ApiError::invalid(
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

    /// The wire form of an assessment with its current score.
    pub fn to_pb(
        row: &AssessmentRow,
        values: &[StoredValue],
        card: &pb::Scorecard,
    ) -> pb::Assessment {
        pb::Assessment {
            id: row.id,
            unit_id: row.unit_id,
            unit_code: row.unit_code.clone(),
            unit_name: row.unit_name.clone(),
            level: row.level as i32,
            year: row.year,
            criteria_set_id: row.criteria_set_id.clone(),
            criteria_set_version: row.criteria_set_version as i32,
            status: row.status.to_pb() as i32,
            values: values.iter().map(value_to_pb).collect(),
            scorecard: Some(card.clone()),
            etag: row.etag(),
            reason: row.reason.clone(),
            updated_at: timestamp(&row.updated_at),
        }
    }

    /// Scores `values` with `set`.
    pub fn score(set: &CriteriaSet, values: &[StoredValue]) -> Result<pb::Scorecard, ApiError> {
        let map: BTreeMap<String, Value> = values
            .iter()
            .map(|v| (v.code.clone(), v.value.clone()))
            .collect();
        let card = criteria::score(set, &map).map_err(|v| {
            ApiError::Internal(format!(
                "stored values no longer fit {} v{}: {} problems",
                set.id,
                set.version,
                v.len()
            ))
        })?;
        Ok(scorecard_to_pb(set, &card))
    }

    /// Reads an assessment the caller may see.
    pub async fn read(
        &self,
        caller: &Caller,
        code: &str,
        year: i32,
    ) -> Result<pb::Assessment, ApiError> {
        let unit = self.resolve_unit(code, year).await?;
        authorize(caller, &unit, Action::Read).map_err(ApiError::PermissionDenied)?;
        let row = self.repo.find(None, unit.id, year).await?.ok_or_else(|| {
            ApiError::NotFound(format!("no assessment of {} for {year}", unit.code))
        })?;
        let values = self.repo.values(None, row.id).await?;
        let set = self
            .set(None, &row.criteria_set_id, row.criteria_set_version)
            .await?;
        let card = Self::score(&set, &values)?;
        Ok(Self::to_pb(&row, &values, &card))
    }

    fn event(
        &self,
        row: &AssessmentRow,
        kind: pb::EventKind,
        card: &pb::Scorecard,
        actor: &str,
    ) -> pb::AssessmentEvent {
        pb::AssessmentEvent {
            sequence: 0,
            kind: kind as i32,
            assessment_id: row.id,
            unit_id: row.unit_id,
            unit_code: row.unit_code.clone(),
            unit_name: row.unit_name.clone(),
            level: row.level as i32,
            ancestors: row.ancestors.clone(),
            year: row.year,
            status: row.status.to_pb() as i32,
            criteria_set_id: row.criteria_set_id.clone(),
            criteria_set_version: row.criteria_set_version as i32,
            scorecard: Some(card.clone()),
            occurred_at: timestamp(&row.updated_at),
            actor: actor.to_owned(),
        }
    }

    /// Writes values to one unit-year inside `tx`. Bad values are reported
    /// by index; with `all_or_nothing` one bad value writes nothing; a set
    /// named that does not fit is reported with them and writes nothing.
    /// Problems of the whole assessment (wrong state, stale etag, no set)
    /// are errors. The event of the change is returned, not appended.
    #[allow(clippy::too_many_arguments)]
    pub async fn write_values(
        &self,
        tx: &mut Tx,
        actor: &str,
        unit: &ResolvedUnit,
        year: i32,
        set_hint: (&str, u32),
        writes: &[ValueWrite],
        etag: &str,
        request_id: &str,
        validate_only: bool,
        all_or_nothing: bool,
    ) -> Result<Written, ApiError> {
        self.repo.lock_assessment(tx, unit.id, year).await?;
        let existing = self.repo.find(Some(tx), unit.id, year).await?;
        let mut problems = Violations::new();
        let set = match &existing {
            Some(row) => {
                if !set_hint.0.is_empty()
                    && (set_hint.0 != row.criteria_set_id
                        || (set_hint.1 != 0 && set_hint.1 != row.criteria_set_version))
                {
                    problems.add(
                        "criteria_set_id",
                        format!(
                            "the {year} assessment of {} is scored with {} v{}",
                            unit.code, row.criteria_set_id, row.criteria_set_version
                        ),
                    );
                }
                self.set(Some(tx), &row.criteria_set_id, row.criteria_set_version)
                    .await?
            }
            None => {
                let (set, found) = self
                    .choose_set(tx, unit.level, year, set_hint.0, set_hint.1)
                    .await?;
                problems.extend(found);
                set
            }
        };
        match &existing {
            Some(row) if !etag.is_empty() && etag != row.etag() => {
                return Err(ApiError::Aborted(format!(
                    "the assessment changed since it was read (etag {etag}, now {})",
                    row.etag()
                )));
            }
            None if !etag.is_empty() => {
                return Err(ApiError::Aborted(format!(
                    "etag {etag} given, but there is no assessment yet"
                )));
            }
            Some(row) if !row.status.is_editable() => {
                return Err(ApiError::FailedPrecondition(format!(
                    "the {year} assessment of {} is {}; values can change only while it is a draft or returned",
                    unit.code,
                    row.status.as_str()
                )));
            }
            _ => {}
        }

        let mut rejected = Vec::new();
        for w in writes {
            let mut v = Violations::new();
            if let Err(found) = criteria::validate_value(&set, &w.value.code, &w.value.value) {
                for p in found.iter() {
                    v.add(value_field(&p.path, &w.value.value), p.message.clone());
                }
            }
            if set.requires_evidence(&w.value.code) == Some(true)
                && !has_evidence(&w.value.evidence)
            {
                v.add(
                    "evidence",
                    format!(
                        "{} requires evidence (document number, link or note)",
                        w.value.code
                    ),
                );
            }
            if !v.is_empty() {
                rejected.push((w.index, v));
            }
        }
        let accepted: Vec<&ValueWrite> = writes
            .iter()
            .filter(|w| !rejected.iter().any(|(i, _)| *i == w.index))
            .collect();

        let current = match &existing {
            Some(row) => self.repo.values(Some(tx), row.id).await?,
            None => Vec::new(),
        };
        let mut merged: BTreeMap<String, StoredValue> = current
            .iter()
            .map(|v| (v.code.clone(), v.clone()))
            .collect();
        let take = problems.is_empty() && (!all_or_nothing || rejected.is_empty());
        if take {
            for w in &accepted {
                merged.insert(w.value.code.clone(), w.value.clone());
            }
        }
        let values: Vec<StoredValue> = merged.into_values().collect();
        let card = Self::score(&set, &values)?;
        let placeholder = || AssessmentRow {
            id: 0,
            unit_id: unit.id,
            unit_code: unit.code.clone(),
            unit_name: unit.name.clone(),
            level: level_to_i64(set.level),
            year,
            ancestors: unit.ancestors.clone(),
            criteria_set_id: set.id.clone(),
            criteria_set_version: set.version,
            status: Status::Draft,
            revision: 0,
            reason: String::new(),
            total_points: card.total_points,
            max_points: card.max_points,
            complete: card.complete,
            updated_at: String::new(),
        };
        let changed: Vec<&&ValueWrite> = accepted
            .iter()
            .filter(|w| current.iter().find(|c| c.code == w.value.code) != Some(&w.value))
            .collect();
        if validate_only || !take || changed.is_empty() {
            let row = existing.unwrap_or_else(placeholder);
            return Ok(Written {
                assessment: Self::to_pb(&row, &values, &card),
                rejected,
                problems,
                wrote: false,
                event: None,
            });
        }

        let id = match &existing {
            Some(row) => row.id,
            None => {
                Repo::insert_assessment(
                    tx,
                    unit,
                    level_to_i64(set.level),
                    year,
                    &set.id,
                    set.version,
                )
                .await?
            }
        };
        let status = existing.as_ref().map_or(Status::Draft, |r| r.status);
        for w in &changed {
            let old = current.iter().find(|c| c.code == w.value.code);
            Repo::put_value(tx, id, &w.value, actor).await?;
            Repo::append_history(
                tx,
                id,
                &HistoryRow {
                    actor: actor.to_owned(),
                    action: Action::Edit.as_str().to_owned(),
                    indicator_code: w.value.code.clone(),
                    old_value: old.map(value_json).unwrap_or_default(),
                    new_value: value_json(&w.value),
                    from_status: status.as_str().to_owned(),
                    to_status: status.as_str().to_owned(),
                    reason: String::new(),
                    request_id: request_id.to_owned(),
                },
            )
            .await?;
        }
        let reason = existing
            .as_ref()
            .map(|r| r.reason.clone())
            .unwrap_or_default();
        Repo::update_assessment(tx, id, status, &reason, &card).await?;
        let row = self
            .repo
            .find(Some(tx), unit.id, year)
            .await?
            .ok_or_else(|| {
                ApiError::Internal("the assessment vanished while written".to_owned())
            })?;
        Ok(Written {
            assessment: Self::to_pb(&row, &values, &card),
            rejected,
            problems,
            wrote: true,
            event: Some(self.event(&row, pb::EventKind::ValuesChanged, &card, actor)),
        })
    }

    /// Moves an assessment through review.
    #[allow(clippy::too_many_arguments)]
    pub async fn act(
        &self,
        caller: &Caller,
        method: &str,
        request_hash: &str,
        code: &str,
        year: i32,
        action: Action,
        reason: &str,
        etag: &str,
        request_id: &str,
    ) -> Result<pb::Assessment, ApiError> {
        if matches!(action, Action::Return | Action::Reopen) && reason.trim().is_empty() {
            let unit_check = self.resolve_unit(code, year).await.err();
            let mut v = Violations::new();
            if let Some(ApiError::InvalidArgument(found)) = unit_check {
                v.extend(found);
            }
            v.add("reason", "required: say what must change");
            return Err(ApiError::InvalidArgument(v));
        }
        let unit = self.resolve_unit(code, year).await?;
        authorize(caller, &unit, action).map_err(ApiError::PermissionDenied)?;

        let mut tx = self.repo.begin().await?;
        self.repo.lock_assessment(&mut tx, unit.id, year).await?;
        if !request_id.is_empty()
            && let Some(answer) = self
                .replay(&mut tx, caller, request_id, request_hash)
                .await?
        {
            return pb::Assessment::decode(answer.as_slice())
                .map_err(|e| ApiError::Internal(e.to_string()));
        }
        let row = self
            .repo
            .find(Some(&mut tx), unit.id, year)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("no assessment of {} for {year}", unit.code))
            })?;
        if !etag.is_empty() && etag != row.etag() {
            return Err(ApiError::Aborted(format!(
                "the assessment changed since it was read (etag {etag}, now {})",
                row.etag()
            )));
        }
        let next = transition(row.status, action, &unit).map_err(ApiError::FailedPrecondition)?;
        let set = self
            .set(
                Some(&mut tx),
                &row.criteria_set_id,
                row.criteria_set_version,
            )
            .await?;
        let values = self.repo.values(Some(&mut tx), row.id).await?;
        if action == Action::Submit {
            let missing: Vec<String> = set
                .indicators()
                .filter(|(_, ind)| {
                    let value = values.iter().find(|v| v.code == ind.code);
                    (ind.mandatory && value.is_none())
                        || (ind.evidence_required
                            && value.is_some_and(|v| !has_evidence(&v.evidence)))
                })
                .map(|(_, ind)| ind.code.clone())
                .collect();
            if !missing.is_empty() {
                return Err(ApiError::FailedPrecondition(format!(
                    "cannot submit: mandatory values or required evidence missing for {}",
                    missing.join(", ")
                )));
            }
        }
        let card = Self::score(&set, &values)?;
        let new_reason = if matches!(action, Action::Return | Action::Reopen) {
            reason.trim().to_owned()
        } else {
            row.reason.clone()
        };
        Repo::update_assessment(&mut tx, row.id, next, &new_reason, &card).await?;
        Repo::append_history(
            &mut tx,
            row.id,
            &HistoryRow {
                actor: caller.subject.clone(),
                action: action.as_str().to_owned(),
                from_status: row.status.as_str().to_owned(),
                to_status: next.as_str().to_owned(),
                reason: reason.trim().to_owned(),
                request_id: request_id.to_owned(),
                ..HistoryRow::default()
            },
        )
        .await?;
        let row = self
            .repo
            .find(Some(&mut tx), unit.id, year)
            .await?
            .ok_or_else(|| {
                ApiError::Internal("the assessment vanished while written".to_owned())
            })?;
        let kind = match action {
            Action::Submit => pb::EventKind::Submitted,
            Action::Verify => pb::EventKind::Verified,
            Action::Approve => pb::EventKind::Approved,
            Action::Return => pb::EventKind::Returned,
            Action::Reopen => pb::EventKind::Reopened,
            Action::Read | Action::Edit => pb::EventKind::ValuesChanged,
        };
        let answer = Self::to_pb(&row, &values, &card);
        if !request_id.is_empty() {
            Repo::store_answer(
                &mut tx,
                &caller.subject,
                request_id,
                method,
                request_hash,
                &answer.encode_to_vec(),
            )
            .await?;
        }
        // The outbox lock comes last (see `Repo::append_event`).
        let seq = self
            .repo
            .append_event(&mut tx, &self.event(&row, kind, &card, &caller.subject))
            .await?;
        tx.commit().await?;
        self.notify(seq);
        tracing::info!(unit = %row.unit_code, year, action = action.as_str(), status = next.as_str(), by = %caller.subject, "assessment moved");
        Ok(answer)
    }

    /// The stored answer to a retried request, or `None` for a new one.
    pub async fn replay(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        request_id: &str,
        hash: &str,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        match Repo::stored_answer(tx, &caller.subject, request_id).await? {
            Some((stored_hash, answer)) if stored_hash == hash => Ok(Some(answer)),
            Some(_) => Err(ApiError::invalid(
                "request_id",
                format!("{request_id:?} was already used for a different request"),
            )),
            None => Ok(None),
        }
    }
}

fn level_name(level: UnitLevel) -> &'static str {
    match level {
        UnitLevel::Province => "province",
        UnitLevel::District => "district",
        UnitLevel::Commune => "commune",
        UnitLevel::Unspecified => "unknown",
    }
}
