//! Moving an assessment through review (submit, verify, approve, return,
//! reopen), each step in one transaction with its audit entry and event.

use chiso_auth::Caller;
use chiso_domain::Year;
use chiso_proto::assessment::v1 as pb;
use chiso_server::ApiError;

use super::{ANSWERS, AssessmentError, Assessments, has_evidence};
use crate::convert::{assessment_to_pb, event_kind, event_to_pb};
use crate::repo::{HistoryRow, Repo};
use crate::units_client::ResolvedUnit;
use crate::workflow::{Review, transition};

/// One review step asked for, by a caller already authorized for it.
pub struct ReviewCall {
    pub review: Review,
    pub unit: ResolvedUnit,
    pub year: Year,
    /// Trimmed; required by the steps that send work back.
    pub reason: String,
    pub etag: String,
    pub request_id: String,
    pub request_hash: String,
}

impl Assessments {
    /// Takes a review step and returns the assessment after it.
    pub async fn review(
        &self,
        caller: &Caller,
        call: ReviewCall,
    ) -> Result<pb::Assessment, AssessmentError> {
        let ReviewCall {
            review,
            unit,
            year,
            reason,
            etag,
            request_id,
            request_hash,
        } = call;
        let year = year.get();
        let mut tx = self.repo.begin().await?;
        self.repo.lock_assessment(&mut tx, unit.id, year).await?;
        if !request_id.is_empty()
            && let Some(answer) = ANSWERS
                .replay(&mut tx, &caller.subject, &request_id, &request_hash)
                .await?
        {
            return Ok(answer);
        }
        let row = self
            .repo
            .find(Some(&mut tx), unit.id, year)
            .await?
            .ok_or_else(|| {
                AssessmentError::NotFound(format!("no assessment of {} for {year}", unit.code))
            })?;
        if !etag.is_empty() && etag != row.etag() {
            return Err(AssessmentError::Stale(format!(
                "the assessment changed since it was read (etag {etag}, now {})",
                row.etag()
            )));
        }
        let next = transition(row.status, review, &unit).map_err(AssessmentError::WrongState)?;
        let set = self
            .set(
                Some(&mut tx),
                &row.criteria_set_id,
                row.criteria_set_version,
            )
            .await?;
        let values = self.repo.values(Some(&mut tx), row.id).await?;
        if review == Review::Submit {
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
                return Err(AssessmentError::WrongState(format!(
                    "cannot submit: mandatory values or required evidence missing for {}",
                    missing.join(", ")
                )));
            }
        }
        let card = Self::score(&set, &values)?;
        let new_reason = if review.needs_reason() {
            reason.clone()
        } else {
            row.reason.clone()
        };
        Repo::update_assessment(&mut tx, row.id, next, &new_reason, &card).await?;
        Repo::append_history(
            &mut tx,
            row.id,
            &HistoryRow {
                actor: caller.subject.clone(),
                action: review.as_str().to_owned(),
                from_status: row.status.as_str().to_owned(),
                to_status: next.as_str().to_owned(),
                reason,
                request_id: request_id.clone(),
                ..HistoryRow::default()
            },
        )
        .await?;
        let row = self
            .repo
            .find(Some(&mut tx), unit.id, year)
            .await?
            .ok_or_else(|| AssessmentError::internal("the assessment vanished while written"))?;
        let event = event_to_pb(&row, event_kind(review), &card, &caller.subject);
        let answer = assessment_to_pb(&row, &values, card);
        if !request_id.is_empty() {
            ANSWERS
                .store(
                    &mut tx,
                    &caller.subject,
                    &request_id,
                    review.method(),
                    &request_hash,
                    &answer,
                )
                .await?;
        }
        // The outbox lock comes last (see `Repo::append_event`).
        let seq = self.repo.append_event(&mut tx, &event).await?;
        tx.commit().await.map_err(ApiError::from)?;
        self.committed.notify(seq);
        tracing::info!(unit = %row.unit_code, year, action = review.as_str(), status = next.as_str(), by = %caller.subject, "assessment moved");
        Ok(answer)
    }
}
