//! The assessment database: criteria sets, assessments, values, the audit
//! log and the event outbox. Stored answers for retries are in `requests`,
//! read and written through the server kit's `AnswerTable`.

use chiso_proto::assessment::v1 as pb;
use chiso_server::{ApiError, OrderedLog};
use chiso_storage::sqlx::{self, Any, Row, Transaction, any::AnyRow};
use chiso_storage::{Db, Migrations, StorageError};
use prost::Message;

use crate::workflow::Status;
use chiso_criteria::{CriteriaSet, Level, Value};

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
};

/// Advisory lock key serialising event sequence allocation.
const EVENTS_LOCK: i64 = 0x6368_6973_6f61_7301;

/// The advisory lock key of one assessment (unit × year). The top byte
/// keeps these apart from `EVENTS_LOCK`; the unit id's low 40 bits and the
/// year fill the rest (a collision would only make two writers wait).
fn assessment_lock(unit_id: i64, year: i32) -> i64 {
    (0x61 << 56) | ((unit_id & 0xFF_FFFF_FFFF) << 16) | i64::from(year as u16)
}

pub type Tx = Transaction<'static, Any>;

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats")
}

fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StorageError {
    StorageError::record(what, detail)
}

pub fn level_to_i64(level: Level) -> i64 {
    match level {
        Level::Province => 1,
        Level::District => 2,
        Level::Commune => 3,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetState {
    Draft,
    Published,
}

impl SetState {
    fn as_str(self) -> &'static str {
        match self {
            SetState::Draft => "draft",
            SetState::Published => "published",
        }
    }
}

/// What a publish found.
#[derive(Debug)]
pub enum Publish {
    Published(StoredSet),
    Missing,
    /// The set changed since the etag was read; nothing was written.
    Stale(StoredSet),
}

/// A stored criteria set.
#[derive(Debug, Clone)]
pub struct StoredSet {
    pub set: CriteriaSet,
    pub toml: String,
    pub state: SetState,
    pub revision: i64,
}

impl StoredSet {
    pub fn etag(&self) -> String {
        format!("{}.{}.{}", self.set.id, self.set.version, self.revision)
    }
}

/// An assessment row.
#[derive(Debug, Clone)]
pub struct AssessmentRow {
    pub id: i64,
    pub unit_id: i64,
    pub unit_code: String,
    pub unit_name: String,
    pub level: i64,
    pub year: i32,
    pub ancestors: Vec<pb::AncestorRef>,
    pub criteria_set_id: String,
    pub criteria_set_version: u32,
    pub status: Status,
    pub revision: i64,
    pub reason: String,
    pub total_points: f64,
    pub max_points: f64,
    pub complete: bool,
    pub updated_at: String,
}

impl AssessmentRow {
    pub fn etag(&self) -> String {
        format!("{}.{}", self.id, self.revision)
    }
}

/// A stored value with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredValue {
    pub code: String,
    pub value: Value,
    pub evidence: pb::Evidence,
}

/// An audit-log entry to append.
#[derive(Debug, Clone, Default)]
pub struct HistoryRow {
    pub actor: String,
    pub action: String,
    pub indicator_code: String,
    /// For a value change: the value before (none for a first value) and
    /// after.
    pub old_value: Option<StoredValue>,
    pub new_value: Option<StoredValue>,
    pub from_status: String,
    pub to_status: String,
    pub reason: String,
    pub request_id: String,
}

/// A stored audit-log entry.
#[derive(Debug, Clone)]
pub struct HistoryRecord {
    pub sequence: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub indicator_code: String,
    /// The values as stored: JSON of the value and its evidence, or empty.
    pub old_json: String,
    pub new_json: String,
    pub old_value: Option<StoredValue>,
    pub new_value: Option<StoredValue>,
    pub from_status: Option<Status>,
    pub to_status: Option<Status>,
    pub reason: String,
    pub request_id: String,
}

/// How the audit log stores a value: the value and its evidence, as JSON
/// with its keys sorted at every depth (as the log has always held them:
/// written through `serde_json::Value`).
#[derive(serde::Serialize, serde::Deserialize)]
struct HistoryValue {
    evidence: HistoryEvidence,
    value: Value,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HistoryEvidence {
    document_number: String,
    link: String,
    note: String,
}

fn history_json(v: Option<&StoredValue>) -> String {
    v.map(|v| {
        serde_json::to_value(HistoryValue {
            evidence: HistoryEvidence {
                document_number: v.evidence.document_number.clone(),
                link: v.evidence.link.clone(),
                note: v.evidence.note.clone(),
            },
            value: v.value.clone(),
        })
        .map(|json| json.to_string())
        .unwrap_or_default()
    })
    .unwrap_or_default()
}

/// The value an audit-log text holds, for the code it names; `None` for an
/// empty text (and for one written before values were typed that no longer
/// reads).
fn history_value(code: &str, json: &str) -> Option<StoredValue> {
    let h: HistoryValue = serde_json::from_str(json).ok()?;
    Some(StoredValue {
        code: code.to_owned(),
        value: h.value,
        evidence: pb::Evidence {
            document_number: h.evidence.document_number,
            link: h.evidence.link,
            note: h.evidence.note,
        },
    })
}

#[derive(Clone, Debug)]
pub struct Repo {
    db: Db,
}

const ASSESSMENT_COLUMNS: &str = "id, unit_id, unit_code, unit_name, level, year, ancestors, criteria_set_id, \
     criteria_set_version, status, revision, reason, total_points, max_points, complete, updated_at";

fn assessment_from_row(row: &AnyRow) -> Result<AssessmentRow, StorageError> {
    let ancestors: String = row.try_get(6)?;
    let ancestors: Vec<(i64, String, String, i32)> =
        serde_json::from_str(&ancestors).map_err(|e| corrupt("ancestors", e))?;
    let status: String = row.try_get(9)?;
    let year: i64 = row.try_get(5)?;
    let version: i64 = row.try_get(8)?;
    Ok(AssessmentRow {
        id: row.try_get(0)?,
        unit_id: row.try_get(1)?,
        unit_code: row.try_get(2)?,
        unit_name: row.try_get(3)?,
        level: row.try_get(4)?,
        year: year as i32,
        ancestors: ancestors
            .into_iter()
            .map(|(unit_id, code, name, level)| pb::AncestorRef {
                unit_id,
                code,
                name,
                level,
            })
            .collect(),
        criteria_set_id: row.try_get(7)?,
        criteria_set_version: version as u32,
        status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        revision: row.try_get(10)?,
        reason: row.try_get(11)?,
        total_points: row.try_get(12)?,
        max_points: row.try_get(13)?,
        complete: row.try_get::<i64, _>(14)? != 0,
        updated_at: row.try_get(15)?,
    })
}

fn set_from_row(row: &AnyRow) -> Result<StoredSet, StorageError> {
    let json: String = row.try_get(0)?;
    let state: String = row.try_get(2)?;
    Ok(StoredSet {
        set: serde_json::from_str(&json).map_err(|e| corrupt("criteria set", e))?,
        toml: row.try_get(1)?,
        state: match state.as_str() {
            "draft" => SetState::Draft,
            "published" => SetState::Published,
            other => return Err(corrupt("criteria set state", other)),
        },
        revision: row.try_get(3)?,
    })
}

const SET_COLUMNS: &str = "definition_json, definition_toml, state, revision, id, version";

impl Repo {
    pub fn new(db: Db) -> Repo {
        Repo { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn begin(&self) -> Result<Tx, StorageError> {
        self.db.begin_write().await
    }

    // ---- criteria sets

    // Reads that a write transaction needs go through it (`tx`): on SQLite,
    // a writer that waited for a second pooled connection while other
    // connections wait for its write lock would stall every writer.

    pub async fn get_set(
        &self,
        tx: Option<&mut Tx>,
        id: &str,
        version: u32,
    ) -> Result<Option<StoredSet>, StorageError> {
        let sql = format!("SELECT {SET_COLUMNS} FROM criteria_sets WHERE id = $1 AND version = $2");
        let query = sqlx::query(&sql).bind(id).bind(i64::from(version));
        let row = match tx {
            Some(tx) => query.fetch_optional(&mut **tx).await?,
            None => query.fetch_optional(self.db.pool()).await?,
        };
        row.as_ref().map(set_from_row).transpose()
    }

    /// The latest published version of a set.
    pub async fn latest_published(
        &self,
        tx: Option<&mut Tx>,
        id: &str,
    ) -> Result<Option<StoredSet>, StorageError> {
        let sql = format!(
            "SELECT {SET_COLUMNS} FROM criteria_sets WHERE id = $1 AND state = 'published' \
             ORDER BY version DESC LIMIT 1"
        );
        let query = sqlx::query(&sql).bind(id);
        let row = match tx {
            Some(tx) => query.fetch_optional(&mut **tx).await?,
            None => query.fetch_optional(self.db.pool()).await?,
        };
        row.as_ref().map(set_from_row).transpose()
    }

    /// Sets ordered by (id, version) after the given position.
    pub async fn list_sets(
        &self,
        tx: Option<&mut Tx>,
        level: Option<Level>,
        include_drafts: bool,
        after: Option<(&str, u32)>,
        limit: i64,
    ) -> Result<Vec<StoredSet>, StorageError> {
        let (after_id, after_version) = after.map_or(("", 0), |(i, v)| (i, i64::from(v)));
        let sql = format!(
            "SELECT {SET_COLUMNS} FROM criteria_sets \
             WHERE ($1 = 0 OR level = $1) AND ($2 = 1 OR state = 'published') \
             AND (id > $3 OR (id = $3 AND version > $4)) ORDER BY id, version LIMIT $5"
        );
        let query = sqlx::query(&sql)
            .bind(level.map_or(0, level_to_i64))
            .bind(i64::from(include_drafts))
            .bind(after_id)
            .bind(after_version)
            .bind(limit);
        let rows = match tx {
            Some(tx) => query.fetch_all(&mut **tx).await?,
            None => query.fetch_all(self.db.pool()).await?,
        };
        rows.iter().map(set_from_row).collect()
    }

    /// Stores a draft, replacing an earlier draft of the same id and
    /// version. A published set of that id and version is never replaced:
    /// then nothing is written and the answer is `None`.
    pub async fn put_draft(
        &self,
        set: &CriteriaSet,
        toml: &str,
        by: &str,
    ) -> Result<Option<StoredSet>, StorageError> {
        let mut tx = self.begin().await?;
        let existing: Option<(String, i64)> = sqlx::query_as(
            "SELECT state, revision FROM criteria_sets WHERE id = $1 AND version = $2",
        )
        .bind(&set.id)
        .bind(i64::from(set.version))
        .fetch_optional(&mut *tx)
        .await?;
        let json = serde_json::to_string(set).map_err(|e| corrupt("criteria set", e))?;
        let years = serde_json::to_string(&set.years).map_err(|e| corrupt("years", e))?;
        let revision = match existing {
            Some((state, _)) if state == SetState::Published.as_str() => return Ok(None),
            Some((_, revision)) => {
                sqlx::query(
                    "UPDATE criteria_sets SET level = $3, years = $4, title = $5, definition_json = $6, \
                     definition_toml = $7, revision = $8, created_by = $9, created_at = $10 \
                     WHERE id = $1 AND version = $2",
                )
                .bind(&set.id)
                .bind(i64::from(set.version))
                .bind(level_to_i64(set.level))
                .bind(&years)
                .bind(&set.title)
                .bind(&json)
                .bind(toml)
                .bind(revision + 1)
                .bind(by)
                .bind(now())
                .execute(&mut *tx)
                .await?;
                revision + 1
            }
            None => {
                sqlx::query(
                    "INSERT INTO criteria_sets (id, version, state, level, years, title, definition_json, \
                     definition_toml, revision, created_by, created_at) \
                     VALUES ($1, $2, 'draft', $3, $4, $5, $6, $7, 1, $8, $9)",
                )
                .bind(&set.id)
                .bind(i64::from(set.version))
                .bind(level_to_i64(set.level))
                .bind(&years)
                .bind(&set.title)
                .bind(&json)
                .bind(toml)
                .bind(by)
                .bind(now())
                .execute(&mut *tx)
                .await?;
                1
            }
        };
        tx.commit().await?;
        Ok(Some(StoredSet {
            set: set.clone(),
            toml: toml.to_owned(),
            state: SetState::Draft,
            revision,
        }))
    }

    /// Publishes a draft (a no-op for a published set), if its etag is
    /// still `etag` (any, when empty).
    pub async fn publish(
        &self,
        id: &str,
        version: u32,
        etag: &str,
    ) -> Result<Publish, StorageError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {SET_COLUMNS} FROM criteria_sets WHERE id = $1 AND version = $2"
        ))
        .bind(id)
        .bind(i64::from(version))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(mut stored) = row.as_ref().map(set_from_row).transpose()? else {
            return Ok(Publish::Missing);
        };
        if !etag.is_empty() && etag != stored.etag() {
            return Ok(Publish::Stale(stored));
        }
        if stored.state == SetState::Draft {
            sqlx::query(
                "UPDATE criteria_sets SET state = 'published', published_at = $3 WHERE id = $1 AND version = $2",
            )
            .bind(id)
            .bind(i64::from(version))
            .bind(now())
            .execute(&mut *tx)
            .await?;
            stored.state = SetState::Published;
        }
        tx.commit().await?;
        Ok(Publish::Published(stored))
    }

    // ---- assessments

    /// Makes this transaction the only writer of one assessment (unit ×
    /// year) until it ends. Every write reads the assessment after taking
    /// it, so on PostgreSQL concurrent writers see each other's commits:
    /// no lost values or scores, no second creation, and etag and state
    /// checks that hold until commit. (SQLite has one writer at a time.)
    pub async fn lock_assessment(
        &self,
        tx: &mut Tx,
        unit_id: i64,
        year: i32,
    ) -> Result<(), StorageError> {
        self.db
            .lock_exclusive(tx, assessment_lock(unit_id, year))
            .await?;
        Ok(())
    }

    pub async fn find(
        &self,
        tx: Option<&mut Tx>,
        unit_id: i64,
        year: i32,
    ) -> Result<Option<AssessmentRow>, StorageError> {
        let sql = format!(
            "SELECT {ASSESSMENT_COLUMNS} FROM assessments WHERE unit_id = $1 AND year = $2"
        );
        let query = sqlx::query(&sql).bind(unit_id).bind(i64::from(year));
        let row = match tx {
            Some(tx) => query.fetch_optional(&mut **tx).await?,
            None => query.fetch_optional(self.db.pool()).await?,
        };
        row.as_ref().map(assessment_from_row).transpose()
    }

    pub async fn values(
        &self,
        tx: Option<&mut Tx>,
        assessment_id: i64,
    ) -> Result<Vec<StoredValue>, StorageError> {
        let sql = "SELECT indicator_code, value, evidence_document, evidence_link, evidence_note \
                   FROM indicator_values WHERE assessment_id = $1 ORDER BY indicator_code";
        let query = sqlx::query(sql).bind(assessment_id);
        let rows = match tx {
            Some(tx) => query.fetch_all(&mut **tx).await?,
            None => query.fetch_all(self.db.pool()).await?,
        };
        rows.iter()
            .map(|row| {
                let value: String = row.try_get(1)?;
                Ok(StoredValue {
                    code: row.try_get(0)?,
                    value: serde_json::from_str(&value).map_err(|e| corrupt("value", e))?,
                    evidence: pb::Evidence {
                        document_number: row.try_get(2)?,
                        link: row.try_get(3)?,
                        note: row.try_get(4)?,
                    },
                })
            })
            .collect()
    }

    /// Creates an assessment row; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_assessment(
        tx: &mut Tx,
        unit: &crate::units_client::ResolvedUnit,
        level: i64,
        year: i32,
        set_id: &str,
        set_version: u32,
    ) -> Result<i64, StorageError> {
        let ancestors: Vec<(i64, &str, &str, i32)> = unit
            .ancestors
            .iter()
            .map(|a| (a.unit_id, a.code.as_str(), a.name.as_str(), a.level))
            .collect();
        let ancestors = serde_json::to_string(&ancestors).map_err(|e| corrupt("ancestors", e))?;
        let at = now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO assessments (unit_id, unit_code, unit_name, level, year, ancestors, scope_path, \
             criteria_set_id, criteria_set_version, status, revision, reason, total_points, max_points, complete, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'draft', 0, '', 0, 0, 0, $10, $10) RETURNING id",
        )
        .bind(unit.id)
        .bind(&unit.code)
        .bind(&unit.name)
        .bind(level)
        .bind(i64::from(year))
        .bind(ancestors)
        .bind(unit.scope_path())
        .bind(set_id)
        .bind(i64::from(set_version))
        .bind(at)
        .fetch_one(&mut **tx)
        .await?;
        Ok(id)
    }

    pub async fn put_value(
        tx: &mut Tx,
        assessment_id: i64,
        value: &StoredValue,
        by: &str,
    ) -> Result<(), StorageError> {
        let json = serde_json::to_string(&value.value).map_err(|e| corrupt("value", e))?;
        sqlx::query(
            "INSERT INTO indicator_values (assessment_id, indicator_code, value, evidence_document, evidence_link, \
             evidence_note, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (assessment_id, indicator_code) DO UPDATE SET value = excluded.value, \
             evidence_document = excluded.evidence_document, evidence_link = excluded.evidence_link, \
             evidence_note = excluded.evidence_note, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(assessment_id)
        .bind(&value.code)
        .bind(json)
        .bind(&value.evidence.document_number)
        .bind(&value.evidence.link)
        .bind(&value.evidence.note)
        .bind(by)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Saves the state and score of an assessment and bumps its revision.
    pub async fn update_assessment(
        tx: &mut Tx,
        id: i64,
        status: Status,
        reason: &str,
        score: &pb::Scorecard,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE assessments SET status = $2, reason = $3, total_points = $4, max_points = $5, complete = $6, \
             revision = revision + 1, updated_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(reason)
        .bind(score.total_points)
        .bind(score.max_points)
        .bind(i64::from(score.complete))
        .bind(now())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn append_history(
        tx: &mut Tx,
        assessment_id: i64,
        entry: &HistoryRow,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO history (assessment_id, at, actor, action, indicator_code, old_value, new_value, \
             from_status, to_status, reason, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(assessment_id)
        .bind(now())
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.indicator_code)
        .bind(history_json(entry.old_value.as_ref()))
        .bind(history_json(entry.new_value.as_ref()))
        .bind(&entry.from_status)
        .bind(&entry.to_status)
        .bind(&entry.reason)
        .bind(&entry.request_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Appends an event to the outbox. The lock it takes is held until the
    /// transaction ends, so sequence numbers commit in order. Take it last:
    /// a writer holding it must not wait for any other lock.
    pub async fn append_event(
        &self,
        tx: &mut Tx,
        event: &pb::AssessmentEvent,
    ) -> Result<i64, StorageError> {
        self.db.lock_exclusive(tx, EVENTS_LOCK).await?;
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM events")
            .fetch_one(&mut **tx)
            .await?;
        let kind = pb::EventKind::try_from(event.kind).unwrap_or(pb::EventKind::Unspecified);
        sqlx::query("INSERT INTO events (seq, assessment_id, kind, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(seq)
            .bind(event.assessment_id)
            .bind(kind.as_str_name())
            .bind(event.encode_to_vec())
            .bind(now())
            .execute(&mut **tx)
            .await?;
        Ok(seq)
    }

    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<pb::AssessmentEvent>, StorageError> {
        let rows =
            sqlx::query("SELECT seq, payload FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(self.db.pool())
                .await?;
        rows.iter()
            .map(|row| {
                let payload: Vec<u8> = row.try_get(1)?;
                let mut event = pb::AssessmentEvent::decode(payload.as_slice())
                    .map_err(|e| corrupt("event", e))?;
                event.sequence = row.try_get(0)?;
                Ok(event)
            })
            .collect()
    }

    pub async fn last_event(&self) -> Result<i64, StorageError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(self.db.pool())
            .await?;
        Ok(seq.unwrap_or(0))
    }

    pub async fn history(
        &self,
        assessment_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, indicator_code, old_value, new_value, from_status, to_status, reason, \
             request_id FROM history WHERE assessment_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(assessment_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let code: String = row.try_get(4)?;
                let old_json: String = row.try_get(5)?;
                let new_json: String = row.try_get(6)?;
                Ok(HistoryRecord {
                    sequence: row.try_get(0)?,
                    at: row.try_get(1)?,
                    actor: row.try_get(2)?,
                    action: row.try_get(3)?,
                    old_value: history_value(&code, &old_json),
                    new_value: history_value(&code, &new_json),
                    indicator_code: code,
                    old_json,
                    new_json,
                    from_status: Status::parse(&row.try_get::<String, _>(7)?),
                    to_status: Status::parse(&row.try_get::<String, _>(8)?),
                    reason: row.try_get(9)?,
                    request_id: row.try_get(10)?,
                })
            })
            .collect()
    }

    /// Assessments under `scope_code` (as of each year's end) and within
    /// `within` (the caller's scope; empty = everywhere), after an id, for a
    /// year and status when given.
    pub async fn list(
        &self,
        scope_code: &str,
        year: i32,
        status: Option<Status>,
        after_id: i64,
        limit: i64,
        within: &str,
    ) -> Result<Vec<AssessmentRow>, StorageError> {
        let rows = sqlx::query(&format!(
            "SELECT {ASSESSMENT_COLUMNS} FROM assessments WHERE ($1 = '' OR scope_path LIKE $2) \
             AND ($3 = 0 OR year = $3) AND ($4 = '' OR status = $4) AND id > $5 \
             AND ($7 = '' OR scope_path LIKE $8) ORDER BY id LIMIT $6"
        ))
        .bind(scope_code)
        .bind(format!("%/{scope_code}/%"))
        .bind(i64::from(year))
        .bind(status.map_or("", Status::as_str))
        .bind(after_id)
        .bind(limit)
        .bind(within)
        .bind(format!("%/{within}/%"))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(assessment_from_row).collect()
    }
}

/// `WatchAssessmentEvents` follows the outbox.
impl OrderedLog for Repo {
    type Entry = pb::AssessmentEvent;

    async fn after(
        &self,
        sequence: i64,
        limit: i64,
    ) -> Result<Vec<(i64, pb::AssessmentEvent)>, ApiError> {
        let events = self.events_after(sequence, limit).await?;
        Ok(events.into_iter().map(|e| (e.sequence, e)).collect())
    }
}

/// An RFC 3339 text as a protobuf timestamp.
pub fn timestamp(text: &str) -> Option<prost_types::Timestamp> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_values_keep_their_stored_text_and_read_back() {
        let value = StoredValue {
            code: "CQS-01".into(),
            value: Value::Ratio {
                numerator: 61.0,
                denominator: 100.0,
            },
            evidence: pb::Evidence {
                document_number: "12/QĐ".into(),
                link: String::new(),
                note: "n".into(),
            },
        };
        let text = history_json(Some(&value));
        let before = serde_json::json!({
            "value": value.value,
            "evidence": {
                "document_number": value.evidence.document_number,
                "link": value.evidence.link,
                "note": value.evidence.note,
            }
        })
        .to_string();
        assert_eq!(text, before);
        assert_eq!(history_value("CQS-01", &text), Some(value));
        assert_eq!(history_json(None), "");
        assert_eq!(history_value("CQS-01", ""), None);
    }
}
