//! The units database: reads as of a date, and imports written in one
//! transaction each.

use chiso_server::{ApiError, OrderedLog, StoredAnswer};
use chiso_storage::sqlx::{self, Any, Row, Transaction, any::AnyRow};
use chiso_storage::{Db, Migrations, StorageError};
use time::Date;

use crate::domain::{Change, Kind, Level, Part, date_from_sql, date_to_sql};
use crate::plan::{Plan, Version};

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
};

/// Advisory lock key serialising imports (and so change sequence numbers).
const IMPORT_LOCK: i64 = 0x6368_6973_6f75_6e01;

/// A unit's facts as of a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitView {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: Kind,
    pub parent_id: Option<i64>,
    pub parent_code: Option<String>,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
}

/// One period of a unit's facts, with the parent's code at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionView {
    pub code: String,
    pub name: String,
    pub kind: Kind,
    pub parent_id: Option<i64>,
    pub parent_code: Option<String>,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub old_unit_id: i64,
    pub new_unit_id: i64,
    pub effective_date: Date,
    pub part: Part,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub seq: i64,
    pub import_id: i64,
    pub effective_date: Date,
    pub change: Change,
    pub unit_id: i64,
    pub code: String,
    pub name: String,
    pub kind: Kind,
    pub parent_id: Option<i64>,
    pub prev_code: Option<String>,
    pub prev_name: Option<String>,
    pub prev_kind: Option<Kind>,
    pub prev_parent_id: Option<i64>,
    pub related_unit_id: Option<i64>,
    pub part: Option<Part>,
    pub source: String,
}

/// What an applied import wrote.
pub struct Applied {
    pub import_id: i64,
    pub last_sequence: i64,
}

#[derive(Clone, Debug)]
pub struct Repo {
    db: Db,
}

const VIEW_COLUMNS: &str =
    "v.unit_id, v.code, v.name, v.kind, v.parent_id, p.code, u.valid_from, u.valid_to";

/// Selects unit views as of `$1`; `filter` adds conditions on `v` with
/// parameters from `$2` on.
fn view_sql(filter: &str, tail: &str) -> String {
    format!(
        "SELECT {VIEW_COLUMNS} FROM unit_versions v \
         JOIN units u ON u.id = v.unit_id \
         LEFT JOIN unit_versions p ON p.unit_id = v.parent_id AND p.valid_from <= $1 AND (p.valid_to IS NULL OR p.valid_to > $1) \
         WHERE v.valid_from <= $1 AND (v.valid_to IS NULL OR v.valid_to > $1) AND {filter} {tail}"
    )
}

fn bad_row(what: &'static str, detail: impl std::fmt::Display) -> StorageError {
    StorageError::record(what, detail)
}

fn get_date(row: &AnyRow, i: usize) -> Result<Date, StorageError> {
    let s: String = row.try_get(i)?;
    date_from_sql(&s).map_err(|e| bad_row("date", e))
}

fn get_opt_date(row: &AnyRow, i: usize) -> Result<Option<Date>, StorageError> {
    let s: Option<String> = row.try_get(i)?;
    s.map(|s| date_from_sql(&s).map_err(|e| bad_row("date", e)))
        .transpose()
}

fn get_kind(row: &AnyRow, i: usize) -> Result<Kind, StorageError> {
    let s: String = row.try_get(i)?;
    Kind::parse(&s).ok_or_else(|| bad_row("kind", s))
}

fn view_from_row(row: &AnyRow) -> Result<UnitView, StorageError> {
    Ok(UnitView {
        id: row.try_get(0)?,
        code: row.try_get(1)?,
        name: row.try_get(2)?,
        kind: get_kind(row, 3)?,
        parent_id: row.try_get(4)?,
        parent_code: row.try_get(5)?,
        valid_from: get_date(row, 6)?,
        valid_to: get_opt_date(row, 7)?,
    })
}

impl Repo {
    pub fn new(db: Db) -> Repo {
        Repo { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn by_code(&self, code: &str, as_of: Date) -> Result<Option<UnitView>, StorageError> {
        let row = sqlx::query(&view_sql("v.code = $2", ""))
            .bind(date_to_sql(as_of))
            .bind(code)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(view_from_row).transpose()
    }

    pub async fn by_id(&self, id: i64, as_of: Date) -> Result<Option<UnitView>, StorageError> {
        let row = sqlx::query(&view_sql("v.unit_id = $2", ""))
            .bind(date_to_sql(as_of))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(view_from_row).transpose()
    }

    /// The unit's last known facts, whether or not it still exists.
    pub async fn latest(&self, id: i64) -> Result<Option<UnitView>, StorageError> {
        let last: Option<String> =
            sqlx::query_scalar("SELECT MAX(valid_from) FROM unit_versions WHERE unit_id = $1")
                .bind(id)
                .fetch_one(self.db.pool())
                .await?;
        match last {
            Some(d) => {
                self.by_id(id, date_from_sql(&d).map_err(|e| bad_row("date", e))?)
                    .await
            }
            None => Ok(None),
        }
    }

    pub async fn versions(&self, id: i64) -> Result<Vec<VersionView>, StorageError> {
        let rows = sqlx::query(
            "SELECT v.code, v.name, v.kind, v.parent_id, p.code, v.valid_from, v.valid_to \
             FROM unit_versions v \
             LEFT JOIN unit_versions p ON p.unit_id = v.parent_id AND p.valid_from <= v.valid_from \
                AND (p.valid_to IS NULL OR p.valid_to > v.valid_from) \
             WHERE v.unit_id = $1 ORDER BY v.valid_from",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(VersionView {
                    code: row.try_get(0)?,
                    name: row.try_get(1)?,
                    kind: get_kind(row, 2)?,
                    parent_id: row.try_get(3)?,
                    parent_code: row.try_get(4)?,
                    valid_from: get_date(row, 5)?,
                    valid_to: get_opt_date(row, 6)?,
                })
            })
            .collect()
    }

    /// Units under `parent` (or the provinces) as of a date: the direct
    /// children, or with `level` every descendant at that level. Ordered by
    /// code, after `after_code`; returns the page and the total count.
    pub async fn list(
        &self,
        parent: Option<i64>,
        level: Option<Level>,
        as_of: Date,
        after_code: &str,
        limit: i64,
    ) -> Result<(Vec<UnitView>, i64), StorageError> {
        let d = date_to_sql(as_of);
        let (rows, total) = match (parent, level) {
            (None, None) => {
                let sql = view_sql(
                    "v.parent_id IS NULL AND v.code > $2",
                    "ORDER BY v.code LIMIT $3",
                );
                let rows = sqlx::query(&sql)
                    .bind(&d)
                    .bind(after_code)
                    .bind(limit)
                    .fetch_all(self.db.pool())
                    .await?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM unit_versions v WHERE v.parent_id IS NULL \
                     AND v.valid_from <= $1 AND (v.valid_to IS NULL OR v.valid_to > $1)",
                )
                .bind(&d)
                .fetch_one(self.db.pool())
                .await?;
                (rows, total)
            }
            (None, Some(level)) => {
                let sql = view_sql("v.level = $2 AND v.code > $3", "ORDER BY v.code LIMIT $4");
                let rows = sqlx::query(&sql)
                    .bind(&d)
                    .bind(level as i64)
                    .bind(after_code)
                    .bind(limit)
                    .fetch_all(self.db.pool())
                    .await?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM unit_versions v WHERE v.level = $2 \
                     AND v.valid_from <= $1 AND (v.valid_to IS NULL OR v.valid_to > $1)",
                )
                .bind(&d)
                .bind(level as i64)
                .fetch_one(self.db.pool())
                .await?;
                (rows, total)
            }
            (Some(parent), None) => {
                let sql = view_sql(
                    "v.parent_id = $2 AND v.code > $3",
                    "ORDER BY v.code LIMIT $4",
                );
                let rows = sqlx::query(&sql)
                    .bind(&d)
                    .bind(parent)
                    .bind(after_code)
                    .bind(limit)
                    .fetch_all(self.db.pool())
                    .await?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM unit_versions v WHERE v.parent_id = $2 \
                     AND v.valid_from <= $1 AND (v.valid_to IS NULL OR v.valid_to > $1)",
                )
                .bind(&d)
                .bind(parent)
                .fetch_one(self.db.pool())
                .await?;
                (rows, total)
            }
            (Some(parent), Some(level)) => {
                // Descendants as of the date; the tree is at most three deep.
                let subtree = "WITH RECURSIVE sub(id) AS ( \
                       SELECT CAST($2 AS BIGINT) \
                       UNION ALL \
                       SELECT c.unit_id FROM unit_versions c JOIN sub ON c.parent_id = sub.id \
                       WHERE c.valid_from <= $1 AND (c.valid_to IS NULL OR c.valid_to > $1)) ";
                let sql = format!(
                    "{subtree}{}",
                    view_sql(
                        "v.unit_id IN (SELECT id FROM sub) AND v.level = $3 AND v.code > $4",
                        "ORDER BY v.code LIMIT $5"
                    )
                );
                let rows = sqlx::query(&sql)
                    .bind(&d)
                    .bind(parent)
                    .bind(level as i64)
                    .bind(after_code)
                    .bind(limit)
                    .fetch_all(self.db.pool())
                    .await?;
                let count_sql = format!(
                    "{subtree}SELECT COUNT(*) FROM unit_versions v WHERE v.unit_id IN (SELECT id FROM sub) \
                     AND v.level = $3 AND v.valid_from <= $1 AND (v.valid_to IS NULL OR v.valid_to > $1)"
                );
                let total: i64 = sqlx::query_scalar(&count_sql)
                    .bind(&d)
                    .bind(parent)
                    .bind(level as i64)
                    .fetch_one(self.db.pool())
                    .await?;
                (rows, total)
            }
        };
        let units = rows.iter().map(view_from_row).collect::<Result<_, _>>()?;
        Ok((units, total))
    }

    /// Lineage links where the unit is the successor (`as_new`) or the
    /// predecessor.
    pub async fn links(&self, id: i64, as_new: bool) -> Result<Vec<LinkRow>, StorageError> {
        let column = if as_new {
            "l.new_unit_id"
        } else {
            "l.old_unit_id"
        };
        let rows = sqlx::query(&format!(
            "SELECT l.old_unit_id, l.new_unit_id, l.effective_date, l.part, i.source \
             FROM lineage l JOIN imports i ON i.id = l.import_id \
             WHERE {column} = $1 ORDER BY l.effective_date, l.old_unit_id, l.new_unit_id"
        ))
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let part: String = row.try_get(3)?;
                Ok(LinkRow {
                    old_unit_id: row.try_get(0)?,
                    new_unit_id: row.try_get(1)?,
                    effective_date: get_date(row, 2)?,
                    part: Part::parse(&part).ok_or_else(|| bad_row("part", part))?,
                    source: row.try_get(4)?,
                })
            })
            .collect()
    }

    const CHANGE_COLUMNS: &str = "c.seq, c.import_id, c.effective_date, c.change, c.unit_id, c.code, c.name, c.kind, \
         c.parent_id, c.prev_code, c.prev_name, c.prev_kind, c.prev_parent_id, c.related_unit_id, c.part, i.source";

    fn change_from_row(row: &AnyRow) -> Result<ChangeRow, StorageError> {
        let change: String = row.try_get(3)?;
        let prev_kind: Option<String> = row.try_get(11)?;
        let part: Option<String> = row.try_get(14)?;
        Ok(ChangeRow {
            seq: row.try_get(0)?,
            import_id: row.try_get(1)?,
            effective_date: get_date(row, 2)?,
            change: Change::parse(&change).ok_or_else(|| bad_row("change", &change))?,
            unit_id: row.try_get(4)?,
            code: row.try_get(5)?,
            name: row.try_get(6)?,
            kind: get_kind(row, 7)?,
            parent_id: row.try_get(8)?,
            prev_code: row.try_get(9)?,
            prev_name: row.try_get(10)?,
            prev_kind: prev_kind
                .map(|k| Kind::parse(&k).ok_or_else(|| bad_row("kind", k)))
                .transpose()?,
            prev_parent_id: row.try_get(12)?,
            related_unit_id: row.try_get(13)?,
            part: part
                .map(|p| Part::parse(&p).ok_or_else(|| bad_row("part", p)))
                .transpose()?,
            source: row.try_get(15)?,
        })
    }

    /// The changes of one unit's own facts (and its endings), oldest first.
    pub async fn changes_of(&self, id: i64) -> Result<Vec<ChangeRow>, StorageError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM unit_changes c JOIN imports i ON i.id = c.import_id WHERE c.unit_id = $1 ORDER BY c.seq",
            Self::CHANGE_COLUMNS
        ))
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(Self::change_from_row).collect()
    }

    pub async fn changes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChangeRow>, StorageError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM unit_changes c JOIN imports i ON i.id = c.import_id WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
            Self::CHANGE_COLUMNS
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(Self::change_from_row).collect()
    }

    pub async fn last_sequence(&self) -> Result<i64, StorageError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM unit_changes")
            .fetch_one(self.db.pool())
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Starts an import: the transaction holds the import lock until it ends.
    pub async fn begin_import(&self) -> Result<Transaction<'static, Any>, StorageError> {
        let mut tx = self.db.begin_write().await?;
        self.db.lock_exclusive(&mut tx, IMPORT_LOCK).await?;
        Ok(tx)
    }

    pub async fn stored_import(
        tx: &mut Transaction<'static, Any>,
        request_id: &str,
    ) -> Result<Option<StoredAnswer>, StorageError> {
        let row = sqlx::query("SELECT request_hash, response FROM imports WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&mut **tx)
            .await?;
        row.map(|r| {
            Ok(StoredAnswer {
                request_hash: r.try_get(0)?,
                response: r.try_get(1)?,
            })
        })
        .transpose()
    }

    /// Every stored version: the planner's view of history.
    pub async fn history(tx: &mut Transaction<'static, Any>) -> Result<Vec<Version>, StorageError> {
        let rows = sqlx::query(
            "SELECT unit_id, code, name, kind, parent_id, valid_from, valid_to FROM unit_versions",
        )
        .fetch_all(&mut **tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Version {
                    unit_id: row.try_get(0)?,
                    code: row.try_get(1)?,
                    name: row.try_get(2)?,
                    kind: get_kind(row, 3)?,
                    parent_id: row.try_get(4)?,
                    valid_from: get_date(row, 5)?,
                    valid_to: get_opt_date(row, 6)?,
                })
            })
            .collect()
    }

    /// Ids to allocate next: (unit id, import id, change sequence).
    pub async fn next_ids(
        tx: &mut Transaction<'static, Any>,
    ) -> Result<(i64, i64, i64), StorageError> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM units), (SELECT COALESCE(MAX(id), 0) FROM imports), \
             (SELECT COALESCE(MAX(seq), 0) FROM unit_changes)",
        )
        .fetch_one(&mut **tx)
        .await?;
        Ok((
            row.try_get::<i64, _>(0)? + 1,
            row.try_get::<i64, _>(1)? + 1,
            row.try_get::<i64, _>(2)? + 1,
        ))
    }

    /// The latest effective date of an import covering any of `provinces`.
    pub async fn latest_import_date(
        tx: &mut Transaction<'static, Any>,
        provinces: &[String],
    ) -> Result<Option<Date>, StorageError> {
        let mut latest = None;
        for code in provinces {
            let d: Option<String> = sqlx::query_scalar(
                "SELECT MAX(effective_date) FROM import_provinces WHERE province_code = $1",
            )
            .bind(code)
            .fetch_one(&mut **tx)
            .await?;
            if let Some(d) = d {
                let d = date_from_sql(&d).map_err(|e| bad_row("date", e))?;
                latest = latest.max(Some(d));
            }
        }
        Ok(latest)
    }

    /// Writes a planned import. `ids` are those from [`Repo::next_ids`];
    /// `response` is what a retry with the same request id gets back.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &self,
        tx: &mut Transaction<'static, Any>,
        plan: &Plan,
        date: Date,
        import_id: i64,
        first_seq: i64,
        meta: &ImportMeta<'_>,
        response: &[u8],
    ) -> Result<Applied, StorageError> {
        let d = date_to_sql(date);
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StorageError::record("time", e))?;
        sqlx::query(
            "INSERT INTO imports (id, request_id, request_hash, effective_date, source, imported_by, imported_at, response) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(import_id)
        .bind((!meta.request_id.is_empty()).then_some(meta.request_id))
        .bind(meta.request_hash)
        .bind(&d)
        .bind(meta.source)
        .bind(meta.imported_by)
        .bind(&now)
        .bind(response)
        .execute(&mut **tx)
        .await?;
        for code in &plan.provinces {
            sqlx::query("INSERT INTO import_provinces (import_id, province_code, effective_date) VALUES ($1, $2, $3)")
                .bind(import_id)
                .bind(code)
                .bind(&d)
                .execute(&mut **tx)
                .await?;
        }

        // End what ends or changes.
        for facts in plan.ended.iter().chain(&plan.updated) {
            sqlx::query(
                "UPDATE unit_versions SET valid_to = $1 WHERE unit_id = $2 AND valid_to IS NULL",
            )
            .bind(&d)
            .bind(facts.unit_id)
            .execute(&mut **tx)
            .await?;
        }
        for facts in &plan.ended {
            sqlx::query("UPDATE units SET valid_to = $1 WHERE id = $2")
                .bind(&d)
                .bind(facts.unit_id)
                .execute(&mut **tx)
                .await?;
        }

        // New units, parents first (the plan lists them in level order).
        insert_batched(
            self.db.backend(),
            tx,
            "INSERT INTO units (id, valid_from) VALUES ",
            2,
            &plan.established,
            |q, f| q.bind(f.unit_id).bind(d.clone()),
        )
        .await?;
        let new_versions: Vec<_> = plan.established.iter().chain(&plan.updated).collect();
        insert_batched(
            self.db.backend(),
            tx,
            "INSERT INTO unit_versions (unit_id, valid_from, code, name, kind, level, parent_id) VALUES ",
            7,
            &new_versions,
            |q, f| {
                q.bind(f.unit_id)
                    .bind(d.clone())
                    .bind(f.code.clone())
                    .bind(f.name.clone())
                    .bind(f.kind.as_str())
                    .bind(f.kind.level() as i64)
                    .bind(f.parent_id)
            },
        )
        .await?;
        insert_batched(
            self.db.backend(),
            tx,
            "INSERT INTO lineage (old_unit_id, new_unit_id, effective_date, part, import_id) VALUES ",
            5,
            &plan.links,
            |q, l| q.bind(l.old_unit_id).bind(l.new_unit_id).bind(d.clone()).bind(l.part.as_str()).bind(import_id),
        )
        .await?;
        let numbered: Vec<_> = plan.changes.iter().zip(first_seq..).collect();
        insert_batched(
            self.db.backend(),
            tx,
            "INSERT INTO unit_changes (seq, import_id, effective_date, change, unit_id, code, name, kind, parent_id, \
             prev_code, prev_name, prev_kind, prev_parent_id, related_unit_id, part) VALUES ",
            15,
            &numbered,
            |q, (c, seq)| {
                let prev = c.previous.as_ref();
                q.bind(*seq)
                    .bind(import_id)
                    .bind(d.clone())
                    .bind(c.change.as_str())
                    .bind(c.facts.unit_id)
                    .bind(c.facts.code.clone())
                    .bind(c.facts.name.clone())
                    .bind(c.facts.kind.as_str())
                    .bind(c.facts.parent_id)
                    .bind(prev.map(|p| p.code.clone()))
                    .bind(prev.map(|p| p.name.clone()))
                    .bind(prev.map(|p| p.kind.as_str()))
                    .bind(prev.and_then(|p| p.parent_id))
                    .bind(c.related_unit_id)
                    .bind(c.part.map(|p| p.as_str()))
            },
        )
        .await?;
        let last_sequence = if plan.changes.is_empty() {
            0
        } else {
            first_seq + plan.changes.len() as i64 - 1
        };
        Ok(Applied {
            import_id,
            last_sequence,
        })
    }
}

/// Who imported what, for the import record.
pub struct ImportMeta<'a> {
    pub request_id: &'a str,
    pub request_hash: &'a str,
    pub source: &'a str,
    pub imported_by: &'a str,
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// Multi-row inserts, so a national snapshot is a few hundred statements
/// rather than tens of thousands of round trips.
async fn insert_batched<T>(
    backend: chiso_storage::Backend,
    tx: &mut Transaction<'static, Any>,
    head: &str,
    columns: usize,
    items: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &T) -> AnyQuery<'q>,
) -> Result<(), StorageError> {
    let per_batch = (backend.batch_params() / columns).max(1);
    for chunk in items.chunks(per_batch) {
        let mut sql = String::with_capacity(head.len() + chunk.len() * columns * 6);
        sql.push_str(head);
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..columns {
                if c > 0 {
                    sql.push(',');
                }
                n += 1;
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(&sql);
        for item in chunk {
            query = bind(query, item);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// `WatchUnitChanges` follows the change log.
impl OrderedLog for Repo {
    type Entry = ChangeRow;

    async fn after(&self, sequence: i64, limit: i64) -> Result<Vec<(i64, ChangeRow)>, ApiError> {
        let changes = self.changes_after(sequence, limit).await?;
        Ok(changes.into_iter().map(|c| (c.seq, c)).collect())
    }
}
