//! The core of the assessment service: writing values, moving assessments
//! through review, ingesting rows, and reading them back. Every call that
//! writes runs in one transaction that takes the assessment's lock, answers
//! a retry from its stored answer, writes, stores the answer and appends
//! its event to the outbox last. Callers come authorized for the unit; the
//! core checks what depends on the stored state.

mod error;
mod ingest;
mod review;
mod sets;
mod write;

use std::collections::BTreeMap;

use chiso_auth::Caller;
use chiso_domain::{GsoCode, Year};
use chiso_proto::assessment::v1 as pb;
use chiso_server::{AnswerTable, Committed};
use chiso_storage::Db;
use tokio_util::sync::CancellationToken;

pub use error::AssessmentError;
pub use ingest::{IngestOptions, IngestRow};
pub use review::ReviewCall;
pub use sets::{SetChoice, draft_set, publish_set};
pub use write::{Upsert, ValueWrite, WriteValues, Written};

use crate::convert::{assessment_to_pb, scorecard_to_pb};
use crate::repo::{AssessmentRow, HistoryRecord, Repo, StoredValue};
use crate::units_client::{ResolvedUnit, UnitsDirectory};
use crate::workflow::Status;
use chiso_criteria::{self as criteria, CriteriaSet, Value};
use sets::PublishedSets;

/// Where answers to requests with a `request_id` are kept for retries.
const ANSWERS: AnswerTable = AnswerTable("requests");

/// The assessment service's state: its database, the units service, and
/// the latest committed event for streams to wake on.
#[derive(Clone)]
pub struct Assessments {
    pub(crate) repo: Repo,
    pub(crate) units: UnitsDirectory,
    pub(crate) committed: Committed,
    pub(crate) shutdown: CancellationToken,
    published: PublishedSets,
}

/// A page of assessments: those under `scope` (empty: everywhere), for a
/// year and a status when given, after an id.
pub struct AssessmentQuery {
    pub scope: Option<GsoCode>,
    pub year: Option<Year>,
    pub status: Option<Status>,
    pub after_id: i64,
    pub limit: usize,
}

fn has_evidence(e: &pb::Evidence) -> bool {
    !(e.document_number.trim().is_empty() && e.link.trim().is_empty() && e.note.trim().is_empty())
}

impl Assessments {
    pub fn new(db: Db, units: UnitsDirectory, shutdown: CancellationToken) -> Assessments {
        Assessments {
            repo: Repo::new(db),
            units,
            committed: Committed::new(),
            shutdown,
            published: PublishedSets::default(),
        }
    }

    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// Asks the units service which unit the code named at the end of the
    /// year.
    pub async fn resolve_unit(
        &self,
        code: &GsoCode,
        year: Year,
    ) -> Result<ResolvedUnit, AssessmentError> {
        let (code, year) = (code.as_str(), year.get());
        self.units.resolve(code, year).await?.ok_or_else(|| {
            AssessmentError::invalid(
                "unit_code",
                format!("no unit had code {code} at the end of {year}"),
            )
        })
    }

    /// Scores `values` with `set`.
    pub fn score(
        set: &CriteriaSet,
        values: &[StoredValue],
    ) -> Result<pb::Scorecard, AssessmentError> {
        let map: BTreeMap<String, Value> = values
            .iter()
            .map(|v| (v.code.clone(), v.value.clone()))
            .collect();
        let card = criteria::score(set, &map).map_err(|v| {
            AssessmentError::internal(format!(
                "stored values no longer fit {} v{}: {} problems",
                set.id,
                set.version,
                v.len()
            ))
        })?;
        Ok(scorecard_to_pb(set, &card))
    }

    /// The assessment of a unit the caller was authorized to read.
    pub async fn read(
        &self,
        unit: &ResolvedUnit,
        year: Year,
    ) -> Result<pb::Assessment, AssessmentError> {
        let row = self.find(unit, year).await?;
        let values = self.repo.values(None, row.id).await?;
        let set = self
            .set(None, &row.criteria_set_id, row.criteria_set_version)
            .await?;
        let card = Self::score(&set, &values)?;
        Ok(assessment_to_pb(&row, &values, card))
    }

    async fn find(
        &self,
        unit: &ResolvedUnit,
        year: Year,
    ) -> Result<AssessmentRow, AssessmentError> {
        self.repo
            .find(None, unit.id, year.get())
            .await?
            .ok_or_else(|| {
                AssessmentError::NotFound(format!("no assessment of {} for {year}", unit.code))
            })
    }

    /// Assessments that match `query` and lie within the caller's own scope,
    /// whatever is asked.
    pub async fn list(
        &self,
        caller: &Caller,
        query: &AssessmentQuery,
    ) -> Result<Vec<AssessmentRow>, AssessmentError> {
        let own = if caller.is_national() {
            ""
        } else {
            caller.scope.as_str()
        };
        let scope = query.scope.as_ref().map_or("", GsoCode::as_str);
        Ok(self
            .repo
            .list(
                scope,
                query.year.map_or(0, Year::get),
                query.status,
                query.after_id,
                query.limit as i64,
                own,
            )
            .await?)
    }

    /// The audit log of a unit's assessment the caller was authorized to
    /// read, after a sequence number.
    pub async fn history(
        &self,
        unit: &ResolvedUnit,
        year: Year,
        after: i64,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>, AssessmentError> {
        let row = self.find(unit, year).await?;
        Ok(self.repo.history(row.id, after, limit as i64).await?)
    }
}
