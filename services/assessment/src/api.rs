//! `chiso.assessment.v1.CriteriaService` and `AssessmentService` on the wire.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chiso_auth::{Caller, Role, caller};
use chiso_proto::assessment::v1::{
    self as pb, assessment_service_server::AssessmentService,
    criteria_service_server::CriteriaService,
};
use chiso_proto::units::v1::UnitLevel;
use chiso_server::{ApiError, Violations};
use futures::{Stream, StreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::assessments::{Assessments, ValueWrite, request_hash};
use crate::convert::{level_from_pb, set_to_pb, value_from_pb};
use crate::repo::{Repo, StoredValue};
use crate::units_client::ResolvedUnit;
use crate::workflow::{Action, Status as AssessmentStatus, authorize};
use chiso_criteria as criteria;

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;
/// Most rows one ingest call takes.
const MAX_INGEST_ROWS: usize = 100_000;
/// How often an event stream looks for events committed by other replicas.
const WATCH_POLL: Duration = Duration::from_secs(1);

fn page_size(n: i32, v: &mut Violations) -> i64 {
    if n < 0 {
        v.add("page_size", format!("{n} is negative"));
    }
    match i64::from(n) {
        0 => DEFAULT_PAGE_SIZE,
        n => n.clamp(1, MAX_PAGE_SIZE),
    }
}

/// Page tokens carry the query they belong to and the last position.
fn encode_token(query: &str, position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{query}|{position}"))
}

fn decode_token(token: &str, query: &str, v: &mut Violations) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let text = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    match text
        .as_deref()
        .and_then(|t| t.strip_prefix(&format!("{query}|")))
    {
        Some(position) => Some(position.to_owned()),
        None => {
            v.add(
                "page_token",
                format!("{token:?} is not a token from this query"),
            );
            None
        }
    }
}

fn evidence(e: Option<&pb::Evidence>) -> pb::Evidence {
    let e = e.cloned().unwrap_or_default();
    pb::Evidence {
        document_number: e.document_number.trim().to_owned(),
        link: e.link.trim().to_owned(),
        note: e.note.trim().to_owned(),
    }
}

/// Values from the wire, with the violations of those that carry none.
fn writes_from(values: &[pb::IndicatorValue], prefix: &str, v: &mut Violations) -> Vec<ValueWrite> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, value)| {
            let code = value.indicator_code.trim();
            if code.is_empty() {
                v.add(format!("{prefix}[{i}].indicator_code"), "missing");
                return None;
            }
            match value_from_pb(value) {
                Some(val) => Some(ValueWrite {
                    index: i,
                    value: StoredValue {
                        code: code.to_owned(),
                        value: val,
                        evidence: evidence(value.evidence.as_ref()),
                    },
                }),
                None => {
                    v.add(
                        format!("{prefix}[{i}].value"),
                        format!("no value given for {code}"),
                    );
                    None
                }
            }
        })
        .collect()
}

fn reject_paths(into: &mut Violations, prefix: &str, found: Violations) {
    for (field, description) in found.iter() {
        into.add(format!("{prefix}.{field}"), description);
    }
}

type EventStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchAssessmentEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl CriteriaService for Assessments {
    async fn create_criteria_set(
        &self,
        request: Request<pb::CreateCriteriaSetRequest>,
    ) -> Result<Response<pb::CreateCriteriaSetResponse>, Status> {
        let who = caller(&request)?;
        who.require(Role::Admin)?;
        let req = request.into_inner();
        let set = criteria::load_toml(&req.definition_toml).map_err(|found| {
            let mut v = Violations::new();
            for p in &found {
                let (field, description) = p.to_field_violation("definition_toml");
                v.add(field, description);
            }
            ApiError::InvalidArgument(v)
        })?;
        if req.validate_only {
            let stored = crate::repo::StoredSet {
                toml: req.definition_toml.clone(),
                set,
                state: crate::repo::SetState::Draft,
                revision: 0,
            };
            return Ok(Response::new(pb::CreateCriteriaSetResponse {
                criteria_set: Some(set_to_pb(&stored, true)),
            }));
        }
        let stored = self
            .repo
            .put_draft(&set, &req.definition_toml, &who.subject)
            .await?;
        tracing::info!(id = %set.id, version = set.version, by = %who.subject, "criteria set drafted");
        Ok(Response::new(pb::CreateCriteriaSetResponse {
            criteria_set: Some(set_to_pb(&stored, true)),
        }))
    }

    async fn publish_criteria_set(
        &self,
        request: Request<pb::PublishCriteriaSetRequest>,
    ) -> Result<Response<pb::PublishCriteriaSetResponse>, Status> {
        let who = caller(&request)?;
        who.require(Role::Admin)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        if req.id.trim().is_empty() {
            v.add("id", "missing");
        }
        if req.version < 1 {
            v.add(
                "version",
                format!("{} is not a version (1 or more)", req.version),
            );
        }
        v.check()?;
        let stored = self
            .repo
            .publish(req.id.trim(), req.version as u32, &req.etag)
            .await?;
        tracing::info!(id = %req.id, version = req.version, by = %who.subject, "criteria set published");
        Ok(Response::new(pb::PublishCriteriaSetResponse {
            criteria_set: Some(set_to_pb(&stored, true)),
        }))
    }

    async fn get_criteria_set(
        &self,
        request: Request<pb::GetCriteriaSetRequest>,
    ) -> Result<Response<pb::GetCriteriaSetResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        if req.id.trim().is_empty() {
            v.add("id", "missing");
        }
        if req.version < 0 {
            v.add("version", format!("{} is negative", req.version));
        }
        v.check()?;
        let found = if req.version == 0 {
            self.repo.latest_published(None, req.id.trim()).await?
        } else {
            self.repo
                .get_set(None, req.id.trim(), req.version as u32)
                .await?
        };
        let stored = found.ok_or_else(|| {
            Status::not_found(format!(
                "no criteria set {} version {}",
                req.id, req.version
            ))
        })?;
        Ok(Response::new(pb::GetCriteriaSetResponse {
            criteria_set: Some(set_to_pb(&stored, true)),
        }))
    }

    async fn list_criteria_sets(
        &self,
        request: Request<pb::ListCriteriaSetsRequest>,
    ) -> Result<Response<pb::ListCriteriaSetsResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let level = match UnitLevel::try_from(req.level) {
            Ok(l) => level_from_pb(l),
            Err(_) => {
                v.add("level", format!("{} is not a UnitLevel", req.level));
                None
            }
        };
        if req.year != 0
            && let Err(e) = chiso_domain::Year::new(req.year)
        {
            v.add("year", e);
        }
        let size = page_size(req.page_size, &mut v);
        let query = format!("sets|{}|{}|{}", req.level, req.year, req.include_drafts);
        let after = decode_token(&req.page_token, &query, &mut v);
        v.check()?;
        let after = after.and_then(|p| {
            let (id, version) = p.rsplit_once('@')?;
            Some((id.to_owned(), version.parse::<u32>().ok()?))
        });
        let mut sets = Vec::new();
        let mut cursor = after;
        // Year filtering happens here, so read on until the page is full.
        loop {
            let page = self
                .repo
                .list_sets(
                    None,
                    level,
                    req.include_drafts,
                    cursor.as_ref().map(|(i, v)| (i.as_str(), *v)),
                    size + 1,
                )
                .await?;
            let done = page.len() as i64 <= size;
            for s in page {
                cursor = Some((s.set.id.clone(), s.set.version));
                if req.year == 0 || s.set.years.contains(&req.year) {
                    sets.push(s);
                }
                if sets.len() as i64 > size {
                    break;
                }
            }
            if done || sets.len() as i64 > size {
                break;
            }
        }
        let more = sets.len() as i64 > size;
        sets.truncate(size as usize);
        let next_page_token = match (more, sets.last()) {
            (true, Some(last)) => {
                encode_token(&query, &format!("{}@{}", last.set.id, last.set.version))
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListCriteriaSetsResponse {
            criteria_sets: sets.iter().map(|s| set_to_pb(s, false)).collect(),
            next_page_token,
        }))
    }
}

#[tonic::async_trait]
impl AssessmentService for Assessments {
    async fn upsert_indicator_values(
        &self,
        request: Request<pb::UpsertIndicatorValuesRequest>,
    ) -> Result<Response<pb::UpsertIndicatorValuesResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let hash = request_hash("UpsertIndicatorValues", &req);
        let mut v = Violations::new();
        if req.values.is_empty() {
            v.add("values", "no values given");
        }
        if req.criteria_set_version < 0 {
            v.add(
                "criteria_set_version",
                format!("{} is negative", req.criteria_set_version),
            );
        }
        let writes = writes_from(&req.values, "values", &mut v);
        let unit = match self.resolve_unit(&req.unit_code, req.year).await {
            Ok(unit) => Some(unit),
            Err(ApiError::InvalidArgument(found)) => {
                v.extend(found);
                None
            }
            Err(e) => return Err(e.into()),
        };
        let Some(unit) = unit else {
            return Err(ApiError::InvalidArgument(v).into());
        };
        authorize(&who, &unit, Action::Edit).map_err(ApiError::PermissionDenied)?;

        let mut tx = self.repo.begin().await?;
        // Locked before the retry check, so a retry that overlaps the first
        // call waits for it and gets its answer.
        self.repo
            .lock_assessment(&mut tx, unit.id, req.year)
            .await?;
        if !req.request_id.is_empty()
            && let Some(answer) = self.replay(&mut tx, &who, &req.request_id, &hash).await?
        {
            let assessment = pb::Assessment::decode(answer.as_slice())
                .map_err(|e| Status::internal(e.to_string()))?;
            return Ok(Response::new(pb::UpsertIndicatorValuesResponse {
                assessment: Some(assessment),
            }));
        }
        // The values that came are checked against the set even when others
        // were malformed, so that one answer names every bad value.
        let written = match self
            .write_values(
                &mut tx,
                &who.subject,
                &unit,
                req.year,
                (
                    req.criteria_set_id.trim(),
                    req.criteria_set_version.max(0) as u32,
                ),
                &writes,
                &req.etag,
                &req.request_id,
                req.validate_only || !v.is_empty(),
                true,
            )
            .await
        {
            Ok(written) => written,
            Err(ApiError::InvalidArgument(found)) => {
                v.extend(found);
                return Err(ApiError::InvalidArgument(v).into());
            }
            Err(_) if !v.is_empty() => return Err(ApiError::InvalidArgument(v).into()),
            Err(e) => return Err(e.into()),
        };
        v.extend(written.problems);
        for (index, found) in written.rejected {
            reject_paths(&mut v, &format!("values[{index}]"), found);
        }
        v.check()?;
        if req.validate_only {
            return Ok(Response::new(pb::UpsertIndicatorValuesResponse {
                assessment: Some(written.assessment),
            }));
        }
        if !req.request_id.is_empty() {
            Repo::store_answer(
                &mut tx,
                &who.subject,
                &req.request_id,
                "UpsertIndicatorValues",
                &hash,
                &written.assessment.encode_to_vec(),
            )
            .await?;
        }
        let seq = match &written.event {
            Some(event) => self.repo.append_event(&mut tx, event).await?,
            None => 0,
        };
        tx.commit().await.map_err(ApiError::from)?;
        self.notify(seq);
        Ok(Response::new(pb::UpsertIndicatorValuesResponse {
            assessment: Some(written.assessment),
        }))
    }

    async fn ingest_indicator_values(
        &self,
        request: Request<Streaming<pb::IngestIndicatorValuesRequest>>,
    ) -> Result<Response<pb::IngestIndicatorValuesResponse>, Status> {
        let who = caller(&request)?;
        let mut stream = request.into_inner();
        let mut options: Option<pb::IngestOptions> = None;
        let mut rows: Vec<pb::IngestRow> = Vec::new();
        let mut hasher_input: Vec<u8> = Vec::new();
        while let Some(message) = stream.next().await {
            let message = message?;
            hasher_input.extend(message.encode_to_vec());
            match message.item {
                Some(pb::ingest_indicator_values_request::Item::Options(o)) => {
                    if options.is_some() || !rows.is_empty() {
                        return Err(ApiError::invalid(
                            "options",
                            "options come once, in the first message",
                        )
                        .into());
                    }
                    options = Some(o);
                }
                Some(pb::ingest_indicator_values_request::Item::Row(r)) => {
                    if rows.len() >= MAX_INGEST_ROWS {
                        return Err(ApiError::invalid(
                            "rows",
                            format!("more than {MAX_INGEST_ROWS} rows in one call"),
                        )
                        .into());
                    }
                    rows.push(r);
                }
                None => {
                    return Err(ApiError::invalid(
                        "item",
                        "a message with neither options nor a row",
                    )
                    .into());
                }
            }
        }
        let options = options.unwrap_or(pb::IngestOptions {
            atomic: true,
            ..Default::default()
        });
        let hash = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(&hasher_input))
        };

        let mut results: Vec<pb::RowResult> = (0..rows.len())
            .map(|i| pb::RowResult {
                index: i as i32,
                accepted: true,
                violations: Vec::new(),
            })
            .collect();
        let reject =
            |results: &mut Vec<pb::RowResult>, i: usize, field: String, description: String| {
                results[i].accepted = false;
                results[i]
                    .violations
                    .push(pb::RowViolation { field, description });
            };

        // Resolve each unit-year once, and check who may write it.
        let mut units: HashMap<(String, i32), Result<ResolvedUnit, String>> = HashMap::new();
        let mut groups: BTreeMap<(i64, i32), (ResolvedUnit, Vec<ValueWrite>)> = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            let key = (row.unit_code.trim().to_owned(), row.year);
            if !units.contains_key(&key) {
                let resolved = match self.resolve_unit(&key.0, key.1).await {
                    Ok(unit) => match authorize(&who, &unit, Action::Edit) {
                        Ok(()) => Ok(unit),
                        Err(why) => Err(why),
                    },
                    Err(ApiError::InvalidArgument(v)) => Err(v
                        .iter()
                        .map(|(f, d)| format!("{f}: {d}"))
                        .collect::<Vec<_>>()
                        .join("; ")),
                    Err(e) => return Err(e.into()),
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
            let Some(value) = &row.value else {
                reject(&mut results, i, "value".to_owned(), "missing".to_owned());
                continue;
            };
            let mut v = Violations::new();
            let writes = writes_from(std::slice::from_ref(value), "value", &mut v);
            if !v.is_empty() {
                for (field, description) in v.iter() {
                    reject(
                        &mut results,
                        i,
                        field.replace("value[0]", "value"),
                        description.to_owned(),
                    );
                }
                continue;
            }
            let mut write = writes.into_iter().next().expect("one value, no violation");
            write.index = i;
            groups
                .entry((unit.id, row.year))
                .or_insert_with(|| (unit, Vec::new()))
                .1
                .push(write);
        }

        let mut tx = self.repo.begin().await?;
        // Every assessment written, locked in (unit, year) order before the
        // retry check (see UpsertIndicatorValues).
        for (unit_id, year) in groups.keys() {
            self.repo.lock_assessment(&mut tx, *unit_id, *year).await?;
        }
        if !options.request_id.is_empty()
            && let Some(answer) = self
                .replay(&mut tx, &who, &options.request_id, &hash)
                .await?
        {
            let answer = pb::IngestIndicatorValuesResponse::decode(answer.as_slice())
                .map_err(|e| Status::internal(e.to_string()))?;
            return Ok(Response::new(answer));
        }
        let mut wrote = false;
        // Assessments are locked in (unit, year) order, and the events are
        // appended after all of them, so that concurrent writers never wait
        // for each other in a circle.
        let mut events = Vec::new();
        for ((_, year), (unit, writes)) in &groups {
            match self
                .write_values(
                    &mut tx,
                    &who.subject,
                    unit,
                    *year,
                    ("", 0),
                    writes,
                    "",
                    &options.request_id,
                    options.validate_only,
                    false,
                )
                .await
            {
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
                Err(ApiError::Unavailable(m)) => return Err(ApiError::Unavailable(m).into()),
                Err(ApiError::Internal(m)) => return Err(ApiError::Internal(m).into()),
                Err(e) => {
                    let status: Status = e.into();
                    for w in writes {
                        reject(
                            &mut results,
                            w.index,
                            "assessment".to_owned(),
                            status.message().to_owned(),
                        );
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
                Repo::store_answer(
                    &mut tx,
                    &who.subject,
                    &options.request_id,
                    "IngestIndicatorValues",
                    &hash,
                    &answer.encode_to_vec(),
                )
                .await?;
            }
            let mut seq = 0;
            for event in &events {
                seq = self.repo.append_event(&mut tx, event).await?;
            }
            tx.commit().await.map_err(ApiError::from)?;
            self.notify(seq);
            tracing::info!(rows = rows.len(), accepted, rejected, by = %who.subject, "indicator values ingested");
        } else {
            tx.rollback().await.map_err(ApiError::from)?;
        }
        Ok(Response::new(answer))
    }

    async fn get_assessment(
        &self,
        request: Request<pb::GetAssessmentRequest>,
    ) -> Result<Response<pb::GetAssessmentResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let assessment = self.read(&who, &req.unit_code, req.year).await?;
        Ok(Response::new(pb::GetAssessmentResponse {
            assessment: Some(assessment),
        }))
    }

    async fn list_assessments(
        &self,
        request: Request<pb::ListAssessmentsRequest>,
    ) -> Result<Response<pb::ListAssessmentsResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let scope = req.scope_code.trim();
        if !scope.is_empty()
            && let Err(e) = chiso_domain::GsoCode::parse(scope)
        {
            v.add("scope_code", e);
        }
        if req.year != 0
            && let Err(e) = chiso_domain::Year::new(req.year)
        {
            v.add("year", e);
        }
        let status = match pb::AssessmentStatus::try_from(req.status) {
            Ok(s) => AssessmentStatus::from_pb(s),
            Err(_) => {
                v.add(
                    "status",
                    format!("{} is not an AssessmentStatus", req.status),
                );
                None
            }
        };
        let size = page_size(req.page_size, &mut v);
        let query = format!("assessments|{scope}|{}|{}", req.year, req.status);
        let after = decode_token(&req.page_token, &query, &mut v);
        v.check()?;
        let after_id = after.and_then(|p| p.parse::<i64>().ok()).unwrap_or(0);
        // Only what lies within the caller's own scope, whatever is asked.
        let own = if who.is_national() {
            String::new()
        } else {
            who.scope.to_string()
        };
        let rows = self
            .repo
            .list(scope, req.year, status, after_id, size + 1, &own)
            .await?;
        let more = rows.len() as i64 > size;
        let rows: Vec<_> = rows.into_iter().take(size as usize).collect();
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => encode_token(&query, &last.id.to_string()),
            _ => String::new(),
        };
        let assessments = rows
            .iter()
            .map(|row| pb::Assessment {
                id: row.id,
                unit_id: row.unit_id,
                unit_code: row.unit_code.clone(),
                unit_name: row.unit_name.clone(),
                level: row.level as i32,
                year: row.year,
                criteria_set_id: row.criteria_set_id.clone(),
                criteria_set_version: row.criteria_set_version as i32,
                status: row.status.to_pb() as i32,
                values: Vec::new(),
                scorecard: Some(pb::Scorecard {
                    total_points: row.total_points,
                    max_points: row.max_points,
                    complete: row.complete,
                    ..Default::default()
                }),
                etag: row.etag(),
                reason: row.reason.clone(),
                updated_at: crate::repo::timestamp(&row.updated_at),
            })
            .collect();
        Ok(Response::new(pb::ListAssessmentsResponse {
            assessments,
            next_page_token,
        }))
    }

    async fn submit_assessment(
        &self,
        request: Request<pb::SubmitAssessmentRequest>,
    ) -> Result<Response<pb::SubmitAssessmentResponse>, Status> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let hash = request_hash("SubmitAssessment", &r);
        let a = self
            .act(
                &who,
                "SubmitAssessment",
                &hash,
                &r.unit_code,
                r.year,
                Action::Submit,
                "",
                &r.etag,
                &r.request_id,
            )
            .await?;
        Ok(Response::new(pb::SubmitAssessmentResponse {
            assessment: Some(a),
        }))
    }

    async fn verify_assessment(
        &self,
        request: Request<pb::VerifyAssessmentRequest>,
    ) -> Result<Response<pb::VerifyAssessmentResponse>, Status> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let hash = request_hash("VerifyAssessment", &r);
        let a = self
            .act(
                &who,
                "VerifyAssessment",
                &hash,
                &r.unit_code,
                r.year,
                Action::Verify,
                "",
                &r.etag,
                &r.request_id,
            )
            .await?;
        Ok(Response::new(pb::VerifyAssessmentResponse {
            assessment: Some(a),
        }))
    }

    async fn approve_assessment(
        &self,
        request: Request<pb::ApproveAssessmentRequest>,
    ) -> Result<Response<pb::ApproveAssessmentResponse>, Status> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let hash = request_hash("ApproveAssessment", &r);
        let a = self
            .act(
                &who,
                "ApproveAssessment",
                &hash,
                &r.unit_code,
                r.year,
                Action::Approve,
                "",
                &r.etag,
                &r.request_id,
            )
            .await?;
        Ok(Response::new(pb::ApproveAssessmentResponse {
            assessment: Some(a),
        }))
    }

    async fn return_assessment(
        &self,
        request: Request<pb::ReturnAssessmentRequest>,
    ) -> Result<Response<pb::ReturnAssessmentResponse>, Status> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let hash = request_hash("ReturnAssessment", &r);
        let a = self
            .act(
                &who,
                "ReturnAssessment",
                &hash,
                &r.unit_code,
                r.year,
                Action::Return,
                &r.reason,
                &r.etag,
                &r.request_id,
            )
            .await?;
        Ok(Response::new(pb::ReturnAssessmentResponse {
            assessment: Some(a),
        }))
    }

    async fn reopen_assessment(
        &self,
        request: Request<pb::ReopenAssessmentRequest>,
    ) -> Result<Response<pb::ReopenAssessmentResponse>, Status> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let hash = request_hash("ReopenAssessment", &r);
        let a = self
            .act(
                &who,
                "ReopenAssessment",
                &hash,
                &r.unit_code,
                r.year,
                Action::Reopen,
                &r.reason,
                &r.etag,
                &r.request_id,
            )
            .await?;
        Ok(Response::new(pb::ReopenAssessmentResponse {
            assessment: Some(a),
        }))
    }

    async fn list_assessment_history(
        &self,
        request: Request<pb::ListAssessmentHistoryRequest>,
    ) -> Result<Response<pb::ListAssessmentHistoryResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let size = page_size(req.page_size, &mut v);
        let query = format!("history|{}|{}", req.unit_code.trim(), req.year);
        let after = decode_token(&req.page_token, &query, &mut v);
        v.check()?;
        let unit = self.resolve_unit(&req.unit_code, req.year).await?;
        authorize(&who, &unit, Action::Read).map_err(ApiError::PermissionDenied)?;
        let row = self
            .repo
            .find(None, unit.id, req.year)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("no assessment of {} for {}", unit.code, req.year))
            })?;
        let after = after.and_then(|p| p.parse::<i64>().ok()).unwrap_or(0);
        let mut entries = self.repo.history(row.id, after, size + 1).await?;
        let more = entries.len() as i64 > size;
        entries.truncate(size as usize);
        let next_page_token = match (more, entries.last()) {
            (true, Some(last)) => encode_token(&query, &last.sequence.to_string()),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListAssessmentHistoryResponse {
            entries,
            next_page_token,
        }))
    }

    type WatchAssessmentEventsStream = EventStream;

    async fn watch_assessment_events(
        &self,
        request: Request<pb::WatchAssessmentEventsRequest>,
    ) -> Result<Response<Self::WatchAssessmentEventsStream>, Status> {
        let who: Caller = caller(&request)?;
        if !(who.has_role(Role::Service) || who.has_role(Role::Admin)) {
            return Err(Status::permission_denied(format!(
                "{} needs the service role to follow assessment events",
                who.subject
            )));
        }
        let req = request.into_inner();
        if req.after_sequence < 0 {
            return Err(ApiError::invalid(
                "after_sequence",
                format!("{} is negative", req.after_sequence),
            )
            .into());
        }
        let repo = self.repo.clone();
        let mut committed = self.committed.subscribe();
        let shutdown = self.shutdown.clone();
        let stream = async_stream::try_stream! {
            let mut cursor = req.after_sequence;
            loop {
                let batch = repo.events_after(cursor, 500).await.map_err(Status::from)?;
                if batch.is_empty() {
                    tokio::select! {
                        _ = committed.changed() => {}
                        () = tokio::time::sleep(WATCH_POLL) => {}
                        () = shutdown.cancelled() => break,
                    }
                    continue;
                }
                for event in batch {
                    cursor = event.sequence;
                    yield pb::WatchAssessmentEventsResponse { event: Some(event) };
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }
}
