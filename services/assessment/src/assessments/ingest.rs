//! Ingesting many rows of values at once (a district's spreadsheet): each
//! unit-year resolved and authorized once, every assessment locked in
//! order, and the atomic or partial rule deciding what is committed.

use std::collections::{BTreeMap, HashMap};

use chiso_auth::Caller;
use chiso_domain::{GsoCode, Year};
use chiso_proto::assessment::v1 as pb;
use chiso_server::{ApiError, Violations};

use super::{ANSWERS, AssessmentError, Assessments, SetChoice, ValueWrite, WriteValues};
use crate::units_client::ResolvedUnit;
use crate::workflow::{Action, authorize};

/// How an ingest is committed.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    pub request_id: String,
    /// Commit nothing when any row is rejected; otherwise commit the rows
    /// that were accepted.
    pub atomic: bool,
    pub validate_only: bool,
}

/// One row as the edge parsed it; what did not parse carries the row's
/// violations (paths of an `IngestRow`: `unit_code`, `value.count`, …).
pub struct IngestRow {
    pub unit: Result<(GsoCode, Year), Violations>,
    pub value: Result<ValueWrite, Violations>,
}

/// Violations as the text of one row violation.
fn joined(v: &Violations) -> String {
    v.iter()
        .map(|(f, d)| format!("{f}: {d}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn reject(results: &mut [pb::RowResult], i: usize, field: String, description: String) {
    results[i].accepted = false;
    results[i]
        .violations
        .push(pb::RowViolation { field, description });
}

impl Assessments {
    /// Writes the rows that may be written and answers row by row.
    pub async fn ingest(
        &self,
        who: &Caller,
        options: IngestOptions,
        rows: Vec<IngestRow>,
        request_hash: &str,
    ) -> Result<pb::IngestIndicatorValuesResponse, AssessmentError> {
        let mut results: Vec<pb::RowResult> = (0..rows.len())
            .map(|i| pb::RowResult {
                index: i as i32,
                accepted: true,
                violations: Vec::new(),
            })
            .collect();

        // Resolve each unit-year once, and check who may write it.
        let mut units: HashMap<(String, i32), Result<ResolvedUnit, String>> = HashMap::new();
        let mut groups: BTreeMap<(i64, i32), (ResolvedUnit, Vec<ValueWrite>)> = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            let (code, year) = match &row.unit {
                Ok(unit) => unit,
                Err(v) => {
                    reject(&mut results, i, "unit_code".to_owned(), joined(v));
                    continue;
                }
            };
            let key = (code.as_str().to_owned(), year.get());
            if !units.contains_key(&key) {
                let resolved = match self.resolve_unit(code, *year).await {
                    Ok(unit) => authorize(who, &unit, Action::Edit).map(|()| unit),
                    Err(AssessmentError::Invalid(v)) => Err(joined(&v)),
                    Err(e) => return Err(e),
                };
                units.insert(key.clone(), resolved);
            }
            let unit = match &units[&key] {
                Ok(unit) => unit.clone(),
                Err(why) => {
                    reject(&mut results, i, "unit_code".to_owned(), why.clone());
                    continue;
                }
            };
            let mut write = match &row.value {
                Ok(write) => write.clone(),
                Err(v) => {
                    for (field, description) in v.iter() {
                        reject(&mut results, i, field.to_owned(), description.to_owned());
                    }
                    continue;
                }
            };
            write.index = i;
            groups
                .entry((unit.id, year.get()))
                .or_insert_with(|| (unit, Vec::new()))
                .1
                .push(write);
        }

        let mut tx = self.repo.begin().await?;
        // Every assessment written, locked in (unit, year) order before the
        // retry check (see `upsert`).
        for (unit_id, year) in groups.keys() {
            self.repo.lock_assessment(&mut tx, *unit_id, *year).await?;
        }
        if !options.request_id.is_empty()
            && let Some(answer) = ANSWERS
                .replay(&mut tx, &who.subject, &options.request_id, request_hash)
                .await?
        {
            return Ok(answer);
        }
        let mut wrote = false;
        // Assessments are locked in (unit, year) order, and the events are
        // appended after all of them, so that concurrent writers never wait
        // for each other in a circle.
        let mut events = Vec::new();
        let any_set = SetChoice::default();
        for ((_, year), (unit, writes)) in &groups {
            let written = self
                .write_values(
                    &mut tx,
                    &WriteValues {
                        actor: &who.subject,
                        unit,
                        year: *year,
                        set: &any_set,
                        writes,
                        etag: "",
                        request_id: &options.request_id,
                        validate_only: options.validate_only,
                        all_or_nothing: false,
                    },
                )
                .await;
            match written {
                Ok(written) => {
                    wrote |= written.wrote;
                    events.extend(written.event);
                    for (field, description) in written.problems.iter() {
                        for w in writes {
                            reject(
                                &mut results,
                                w.index,
                                field.to_owned(),
                                description.to_owned(),
                            );
                        }
                    }
                    for (i, found) in written.rejected {
                        for (field, description) in found.iter() {
                            reject(
                                &mut results,
                                i,
                                format!("value.{field}"),
                                description.to_owned(),
                            );
                        }
                    }
                }
                // Nothing is known about the rows when the database or a
                // stored record fails: the whole call fails.
                Err(e @ AssessmentError::Service(_)) => return Err(e),
                Err(e) => {
                    let why = e.caller_text();
                    for w in writes {
                        reject(&mut results, w.index, "assessment".to_owned(), why.clone());
                    }
                }
            }
        }
        let rejected = results.iter().filter(|r| !r.accepted).count() as i32;
        let accepted = results.len() as i32 - rejected;
        let commit = wrote && !options.validate_only && (rejected == 0 || !options.atomic);
        let answer = pb::IngestIndicatorValuesResponse {
            rows: results,
            accepted: if options.atomic && rejected > 0 {
                0
            } else {
                accepted
            },
            rejected,
            committed: commit,
        };
        if commit {
            if !options.request_id.is_empty() {
                ANSWERS
                    .store(
                        &mut tx,
                        &who.subject,
                        &options.request_id,
                        "IngestIndicatorValues",
                        request_hash,
                        &answer,
                    )
                    .await?;
            }
            let mut seq = 0;
            for event in &events {
                seq = self.repo.append_event(&mut tx, event).await?;
            }
            tx.commit().await.map_err(ApiError::from)?;
            self.committed.notify(seq);
            tracing::info!(rows = rows.len(), accepted, rejected, by = %who.subject, "indicator values ingested");
        } else {
            tx.rollback().await.map_err(ApiError::from)?;
        }
        Ok(answer)
    }
}
