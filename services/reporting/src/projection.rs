//! The reporting database: the latest state of every assessment, projected
//! from the event stream together with the stream's cursor, and the targets.

use std::collections::HashMap;

use chiso_proto::assessment::v1 as apb;
use chiso_proto::reporting::v1 as pb;
use chiso_server::ApiError;
use chiso_storage::sqlx::{self, Any, AnyConnection, Connection, Row, Transaction};
use chiso_storage::{Db, Migrations};
use prost::Message;

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
};

/// The cursor of the assessment event stream.
const ASSESSMENT_EVENTS: &str = "assessment-events";

/// How a status is stored: its proto name without the prefix, lowercase
/// (`draft`, `approved`, …), which queries compare against.
fn status_name(status: i32) -> String {
    let status =
        apb::AssessmentStatus::try_from(status).unwrap_or(apb::AssessmentStatus::Unspecified);
    status
        .as_str_name()
        .trim_start_matches("ASSESSMENT_STATUS_")
        .to_ascii_lowercase()
}

/// One assessment as the projection holds it: its last event.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessmentState {
    pub event: apb::AssessmentEvent,
}

impl AssessmentState {
    pub fn completed(&self) -> bool {
        self.event.status == apb::AssessmentStatus::Approved as i32
            && self.event.scorecard.as_ref().is_some_and(|s| s.complete)
    }
}

#[derive(Clone, Debug)]
pub struct Projection {
    db: Db,
}

impl Projection {
    pub fn new(db: Db) -> Projection {
        Projection { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The last event applied.
    pub async fn cursor(&self) -> Result<i64, ApiError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM cursors WHERE name = $1")
            .bind(ASSESSMENT_EVENTS)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Applies one event and moves the cursor, in one transaction. An event
    /// at or before the cursor was applied already and changes nothing, so
    /// replays and duplicates are harmless. Returns whether it was applied.
    pub async fn apply(&self, event: &apb::AssessmentEvent) -> Result<bool, ApiError> {
        let tx = self.db.begin_write().await?;
        self.apply_in(tx, event).await
    }

    /// [`Projection::apply`] on one connection rather than the pool: the
    /// projector's leader applies through the session that holds its lock,
    /// so a leader whose session has ended (and the lock with it) cannot
    /// write.
    pub(crate) async fn apply_on(
        &self,
        conn: &mut AnyConnection,
        event: &apb::AssessmentEvent,
    ) -> Result<bool, ApiError> {
        let tx = conn.begin().await?;
        self.apply_in(tx, event).await
    }

    async fn apply_in(
        &self,
        mut tx: Transaction<'_, Any>,
        event: &apb::AssessmentEvent,
    ) -> Result<bool, ApiError> {
        let cursor: Option<i64> = sqlx::query_scalar("SELECT seq FROM cursors WHERE name = $1")
            .bind(ASSESSMENT_EVENTS)
            .fetch_optional(&mut *tx)
            .await?;
        if event.sequence <= cursor.unwrap_or(0) {
            return Ok(false);
        }
        let card = event.scorecard.clone().unwrap_or_default();
        sqlx::query("DELETE FROM indicator_state WHERE assessment_id = $1")
            .bind(event.assessment_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM assessment_state WHERE assessment_id = $1")
            .bind(event.assessment_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO assessment_state (assessment_id, unit_id, unit_code, unit_name, level, year, status, \
             complete, total_points, max_points, criteria_set_id, criteria_set_version, event, seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(event.assessment_id)
        .bind(event.unit_id)
        .bind(&event.unit_code)
        .bind(&event.unit_name)
        .bind(i64::from(event.level))
        .bind(i64::from(event.year))
        .bind(status_name(event.status))
        .bind(i64::from(card.complete))
        .bind(card.total_points)
        .bind(card.max_points)
        .bind(&event.criteria_set_id)
        .bind(i64::from(event.criteria_set_version))
        .bind(event.encode_to_vec())
        .bind(event.sequence)
        .execute(&mut *tx)
        .await?;
        for ind in &card.indicators {
            sqlx::query(
                "INSERT INTO indicator_state (assessment_id, code, name, group_code, mandatory, met) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(event.assessment_id)
            .bind(&ind.code)
            .bind(&ind.name)
            .bind(&ind.group_code)
            .bind(i64::from(ind.mandatory))
            .bind(i64::from(ind.met))
            .execute(&mut *tx)
            .await?;
        }
        let updated = sqlx::query("UPDATE cursors SET seq = $2 WHERE name = $1")
            .bind(ASSESSMENT_EVENTS)
            .bind(event.sequence)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            sqlx::query("INSERT INTO cursors (name, seq) VALUES ($1, $2)")
                .bind(ASSESSMENT_EVENTS)
                .bind(event.sequence)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Every assessment of `year` (or every year when 0), by unit id.
    pub async fn states(&self, year: i32) -> Result<Vec<AssessmentState>, ApiError> {
        let rows =
            sqlx::query("SELECT event, seq FROM assessment_state WHERE ($1 = 0 OR year = $1)")
                .bind(i64::from(year))
                .fetch_all(self.db.pool())
                .await?;
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = row.try_get(0)?;
                let mut event = apb::AssessmentEvent::decode(bytes.as_slice())
                    .map_err(|e| ApiError::Internal(format!("stored event: {e}")))?;
                event.sequence = row.try_get(1)?;
                Ok(AssessmentState { event })
            })
            .collect()
    }

    /// The first year each unit completed CĐS (approved as complete).
    pub async fn first_completions(&self) -> Result<HashMap<i64, i32>, ApiError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT unit_id, MIN(year) FROM assessment_state WHERE status = 'approved' AND complete = 1 \
             GROUP BY unit_id",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(unit, year)| (unit, year as i32))
            .collect())
    }

    // ---- targets

    /// Stores a target; `false` when one with its id exists already.
    pub async fn put_target(&self, target: &pb::Target, by: &str) -> Result<bool, ApiError> {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO targets (id, scope_code, year, definition, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&target.id)
        .bind(&target.scope_code)
        .bind(i64::from(target.year))
        .bind(target.encode_to_vec())
        .bind(by)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    pub async fn delete_target(&self, id: &str) -> Result<Option<pb::Target>, ApiError> {
        let found = self.target(id).await?;
        if found.is_some() {
            sqlx::query("DELETE FROM targets WHERE id = $1")
                .bind(id)
                .execute(self.db.pool())
                .await?;
        }
        Ok(found)
    }

    pub async fn target(&self, id: &str) -> Result<Option<pb::Target>, ApiError> {
        let bytes: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT definition FROM targets WHERE id = $1")
                .bind(id)
                .fetch_optional(self.db.pool())
                .await?;
        bytes
            .map(|b| {
                pb::Target::decode(b.as_slice())
                    .map_err(|e| ApiError::Internal(format!("stored target: {e}")))
            })
            .transpose()
    }

    /// Targets ordered by (scope, year, id), optionally of one scope.
    pub async fn targets(&self, scope_code: &str) -> Result<Vec<pb::Target>, ApiError> {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT definition FROM targets WHERE ($1 = '' OR scope_code = $1) ORDER BY scope_code, year, id",
        )
        .bind(scope_code)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|b| {
                pb::Target::decode(b.as_slice())
                    .map_err(|e| ApiError::Internal(format!("stored target: {e}")))
            })
            .collect()
    }

    pub async fn has_targets(&self) -> Result<bool, ApiError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM targets")
            .fetch_one(self.db.pool())
            .await?;
        Ok(n > 0)
    }
}
