//! Writing indicator values: checking them against the assessment's set,
//! scoring, and recording each change in the audit log.

use std::collections::BTreeMap;

use chiso_auth::Caller;
use chiso_domain::Year;
use chiso_proto::assessment::v1 as pb;
use chiso_server::{ApiError, Violations};

use super::{ANSWERS, AssessmentError, Assessments, SetChoice, has_evidence};
use crate::convert::{assessment_to_pb, event_to_pb};
use crate::repo::{AssessmentRow, HistoryRow, Repo, StoredValue, Tx, level_to_i64};
use crate::units_client::ResolvedUnit;
use crate::workflow::{Action, Status};
use chiso_criteria::{self as criteria, Value};

/// One value to write, with its position in the request.
#[derive(Debug, Clone)]
pub struct ValueWrite {
    pub index: usize,
    pub value: StoredValue,
}

/// A write of values to one unit-year, inside a transaction that holds the
/// assessment's lock.
pub struct WriteValues<'a> {
    pub actor: &'a str,
    pub unit: &'a ResolvedUnit,
    pub year: i32,
    pub set: &'a SetChoice,
    pub writes: &'a [ValueWrite],
    /// The etag the writer read; empty to write whatever is there.
    pub etag: &'a str,
    pub request_id: &'a str,
    /// Check and score, but write nothing.
    pub validate_only: bool,
    /// One bad value writes nothing (`UpsertIndicatorValues`); otherwise
    /// the good ones are written (ingest).
    pub all_or_nothing: bool,
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

/// `UpsertIndicatorValues`: values for one unit-year, all or nothing.
pub struct Upsert {
    pub unit: ResolvedUnit,
    pub year: Year,
    pub set: SetChoice,
    pub writes: Vec<ValueWrite>,
    pub etag: String,
    pub request_id: String,
    pub request_hash: String,
    pub validate_only: bool,
    /// What the edge already found wrong with the request. The values that
    /// parsed are still checked against the set, so that one answer names
    /// every bad value; nothing is written.
    pub invalid: Violations,
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

impl Assessments {
    /// Writes values to one unit-year and returns what it did: the write of
    /// `UpsertIndicatorValues`, in one transaction with the retry check,
    /// the stored answer and the event.
    pub async fn upsert(
        &self,
        who: &Caller,
        req: Upsert,
    ) -> Result<pb::Assessment, AssessmentError> {
        let mut v = req.invalid;
        let year = req.year.get();
        let mut tx = self.repo.begin().await?;
        // Locked before the retry check, so a retry that overlaps the first
        // call waits for it and gets its answer.
        self.repo
            .lock_assessment(&mut tx, req.unit.id, year)
            .await?;
        if !req.request_id.is_empty()
            && let Some(answer) = ANSWERS
                .replay(&mut tx, &who.subject, &req.request_id, &req.request_hash)
                .await?
        {
            return Ok(answer);
        }
        let written = match self
            .write_values(
                &mut tx,
                &WriteValues {
                    actor: &who.subject,
                    unit: &req.unit,
                    year,
                    set: &req.set,
                    writes: &req.writes,
                    etag: &req.etag,
                    request_id: &req.request_id,
                    validate_only: req.validate_only || !v.is_empty(),
                    all_or_nothing: true,
                },
            )
            .await
        {
            Ok(written) => written,
            Err(AssessmentError::Invalid(found)) => {
                v.extend(found);
                return Err(AssessmentError::Invalid(v));
            }
            Err(_) if !v.is_empty() => return Err(AssessmentError::Invalid(v)),
            Err(e) => return Err(e),
        };
        v.extend(written.problems);
        for (index, found) in written.rejected {
            for (field, description) in found.iter() {
                v.add(format!("values[{index}].{field}"), description);
            }
        }
        if !v.is_empty() {
            return Err(AssessmentError::Invalid(v));
        }
        if req.validate_only {
            return Ok(written.assessment);
        }
        if !req.request_id.is_empty() {
            ANSWERS
                .store(
                    &mut tx,
                    &who.subject,
                    &req.request_id,
                    "UpsertIndicatorValues",
                    &req.request_hash,
                    &written.assessment,
                )
                .await?;
        }
        let seq = match &written.event {
            Some(event) => self.repo.append_event(&mut tx, event).await?,
            None => 0,
        };
        tx.commit().await.map_err(ApiError::from)?;
        self.committed.notify(seq);
        Ok(written.assessment)
    }

    /// Writes values to one unit-year inside `tx`. Bad values are reported
    /// by index; with `all_or_nothing` one bad value writes nothing; a set
    /// named that does not fit is reported with them and writes nothing.
    /// Problems of the whole assessment (wrong state, stale etag, no set)
    /// are errors. The event of the change is returned, not appended.
    pub(super) async fn write_values(
        &self,
        tx: &mut Tx,
        w: &WriteValues<'_>,
    ) -> Result<Written, AssessmentError> {
        let (unit, year, etag) = (w.unit, w.year, w.etag);
        self.repo.lock_assessment(tx, unit.id, year).await?;
        let existing = self.repo.find(Some(tx), unit.id, year).await?;
        let mut problems = Violations::new();
        let set = match &existing {
            Some(row) => {
                if !w.set.id.is_empty()
                    && (w.set.id != row.criteria_set_id
                        || (w.set.version != 0 && w.set.version != row.criteria_set_version))
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
                let (set, found) = self.choose_set(tx, unit.level, year, w.set).await?;
                problems.extend(found);
                set
            }
        };
        match &existing {
            Some(row) if !etag.is_empty() && etag != row.etag() => {
                return Err(AssessmentError::Stale(format!(
                    "the assessment changed since it was read (etag {etag}, now {})",
                    row.etag()
                )));
            }
            None if !etag.is_empty() => {
                return Err(AssessmentError::Stale(format!(
                    "etag {etag} given, but there is no assessment yet"
                )));
            }
            Some(row) if !row.status.is_editable() => {
                return Err(AssessmentError::WrongState(format!(
                    "the {year} assessment of {} is {}; values can change only while it is a draft or returned",
                    unit.code,
                    row.status.as_str()
                )));
            }
            _ => {}
        }

        let mut rejected = Vec::new();
        for write in w.writes {
            let mut v = Violations::new();
            let value = &write.value;
            if let Err(found) = criteria::validate_value(&set, &value.code, &value.value) {
                for p in found.iter() {
                    v.add(value_field(&p.path, &value.value), p.message.clone());
                }
            }
            if set.requires_evidence(&value.code) == Some(true) && !has_evidence(&value.evidence) {
                v.add(
                    "evidence",
                    format!(
                        "{} requires evidence (document number, link or note)",
                        value.code
                    ),
                );
            }
            if !v.is_empty() {
                rejected.push((write.index, v));
            }
        }
        let accepted: Vec<&ValueWrite> = w
            .writes
            .iter()
            .filter(|x| !rejected.iter().any(|(i, _)| *i == x.index))
            .collect();

        let current = match &existing {
            Some(row) => self.repo.values(Some(tx), row.id).await?,
            None => Vec::new(),
        };
        let mut merged: BTreeMap<String, StoredValue> = current
            .iter()
            .map(|v| (v.code.clone(), v.clone()))
            .collect();
        let take = problems.is_empty() && (!w.all_or_nothing || rejected.is_empty());
        if take {
            for x in &accepted {
                merged.insert(x.value.code.clone(), x.value.clone());
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
            .filter(|x| current.iter().find(|c| c.code == x.value.code) != Some(&x.value))
            .collect();
        if w.validate_only || !take || changed.is_empty() {
            let row = existing.unwrap_or_else(placeholder);
            return Ok(Written {
                assessment: assessment_to_pb(&row, &values, card),
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
        for x in &changed {
            let old = current.iter().find(|c| c.code == x.value.code);
            Repo::put_value(tx, id, &x.value, w.actor).await?;
            Repo::append_history(
                tx,
                id,
                &HistoryRow {
                    actor: w.actor.to_owned(),
                    action: Action::Edit.as_str().to_owned(),
                    indicator_code: x.value.code.clone(),
                    old_value: old.cloned(),
                    new_value: Some(x.value.clone()),
                    from_status: status.as_str().to_owned(),
                    to_status: status.as_str().to_owned(),
                    reason: String::new(),
                    request_id: w.request_id.to_owned(),
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
            .ok_or_else(|| AssessmentError::internal("the assessment vanished while written"))?;
        let event = event_to_pb(&row, pb::EventKind::ValuesChanged, &card, w.actor);
        Ok(Written {
            assessment: assessment_to_pb(&row, &values, card),
            rejected,
            problems,
            wrote: true,
            event: Some(event),
        })
    }
}
