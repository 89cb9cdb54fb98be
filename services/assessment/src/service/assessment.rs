//! `chiso.assessment.v1.AssessmentService`: values, review, history and
//! the event stream.

use chiso_auth::{Caller, Role, caller};
use chiso_domain::GsoCode;
use chiso_proto::assessment::v1::{self as pb, assessment_service_server::AssessmentService};
use chiso_server::{
    ApiError, PageToken, RequestHasher, Violations, WatchStream, follow, page_size, request_hash,
};
use futures::StreamExt;
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::{unit_year, value_write};
use crate::assessments::{
    AssessmentQuery, Assessments, IngestOptions, IngestRow, ReviewCall, SetChoice, Upsert,
};
use crate::convert::{assessment_to_pb, history_to_pb, summary_scorecard};
use crate::workflow::{Action, Review, Status as AssessmentStatus, authorize};

/// Most rows one ingest call takes.
const MAX_INGEST_ROWS: usize = 100_000;

/// A request for one review step: which step, and its fields.
trait ReviewRequest: Message + Sized {
    const REVIEW: Review;
    fn unit_code(&self) -> &str;
    fn year(&self) -> i32;
    fn reason(&self) -> &str {
        ""
    }
    fn etag(&self) -> &str;
    fn request_id(&self) -> &str;
}

macro_rules! review_request {
    ($message:ty, $review:expr $(, $reason:ident)?) => {
        impl ReviewRequest for $message {
            const REVIEW: Review = $review;
            fn unit_code(&self) -> &str {
                &self.unit_code
            }
            fn year(&self) -> i32 {
                self.year
            }
            $(fn reason(&self) -> &str {
                &self.$reason
            })?
            fn etag(&self) -> &str {
                &self.etag
            }
            fn request_id(&self) -> &str {
                &self.request_id
            }
        }
    };
}

review_request!(pb::SubmitAssessmentRequest, Review::Submit);
review_request!(pb::VerifyAssessmentRequest, Review::Verify);
review_request!(pb::ApproveAssessmentRequest, Review::Approve);
review_request!(pb::ReturnAssessmentRequest, Review::Return, reason);
review_request!(pb::ReopenAssessmentRequest, Review::Reopen, reason);

impl Assessments {
    /// Parses, authorizes and takes one review step.
    async fn take_review<R: ReviewRequest>(
        &self,
        request: Request<R>,
    ) -> Result<Option<pb::Assessment>, Status> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let review = R::REVIEW;
        let hash = request_hash(review.method(), &r);
        if review.needs_reason() && r.reason().trim().is_empty() {
            let mut v = Violations::new();
            if let Err(ApiError::InvalidArgument(found)) =
                self.locate(r.unit_code(), r.year()).await
            {
                v.extend(found);
            }
            v.add("reason", "required: say what must change");
            return Err(ApiError::InvalidArgument(v).into());
        }
        let (unit, year) = self.locate(r.unit_code(), r.year()).await?;
        authorize(&who, &unit, review.action()).map_err(ApiError::PermissionDenied)?;
        let assessment = self
            .review(
                &who,
                ReviewCall {
                    review,
                    unit,
                    year,
                    reason: r.reason().trim().to_owned(),
                    etag: r.etag().to_owned(),
                    request_id: r.request_id().to_owned(),
                    request_hash: hash,
                },
            )
            .await?;
        Ok(Some(assessment))
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
        let mut writes = Vec::new();
        for (i, value) in req.values.iter().enumerate() {
            match value_write(value, &format!("values[{i}]"), i) {
                Ok(write) => writes.push(write),
                Err(found) => v.extend(found),
            }
        }
        let (unit, year) = match self.locate(&req.unit_code, req.year).await {
            Ok(found) => found,
            Err(ApiError::InvalidArgument(found)) => {
                v.extend(found);
                return Err(ApiError::InvalidArgument(v).into());
            }
            Err(e) => return Err(e.into()),
        };
        authorize(&who, &unit, Action::Edit).map_err(ApiError::PermissionDenied)?;
        let assessment = self
            .upsert(
                &who,
                Upsert {
                    unit,
                    year,
                    set: SetChoice {
                        id: req.criteria_set_id.trim().to_owned(),
                        version: req.criteria_set_version.max(0) as u32,
                    },
                    writes,
                    etag: req.etag,
                    request_id: req.request_id,
                    request_hash: hash,
                    validate_only: req.validate_only,
                    invalid: v,
                },
            )
            .await?;
        Ok(Response::new(pb::UpsertIndicatorValuesResponse {
            assessment: Some(assessment),
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
        // A stream's retry is told apart by every message it sent.
        let mut hasher = RequestHasher::new();
        while let Some(message) = stream.next().await {
            let message = message?;
            hasher.message(&message);
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
        let rows = rows
            .iter()
            .enumerate()
            .map(|(i, row)| IngestRow {
                unit: unit_year(&row.unit_code, row.year),
                value: match &row.value {
                    Some(value) => value_write(value, "value", i),
                    None => {
                        let mut v = Violations::new();
                        v.add("value", "missing");
                        Err(v)
                    }
                },
            })
            .collect();
        let answer = self
            .ingest(
                &who,
                IngestOptions {
                    request_id: options.request_id,
                    atomic: options.atomic,
                    validate_only: options.validate_only,
                },
                rows,
                &hasher.finish(),
            )
            .await?;
        Ok(Response::new(answer))
    }

    async fn get_assessment(
        &self,
        request: Request<pb::GetAssessmentRequest>,
    ) -> Result<Response<pb::GetAssessmentResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let (unit, year) = self.locate(&req.unit_code, req.year).await?;
        authorize(&who, &unit, Action::Read).map_err(ApiError::PermissionDenied)?;
        let assessment = self.read(&unit, year).await?;
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
        let scope_text = req.scope_code.trim();
        let scope = if scope_text.is_empty() {
            None
        } else {
            GsoCode::parse(scope_text)
                .map_err(|e| v.add("scope_code", e))
                .ok()
        };
        let year = if req.year == 0 {
            None
        } else {
            chiso_domain::Year::new(req.year)
                .map_err(|e| v.add("year", e))
                .ok()
        };
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
        let tokens = PageToken::for_query(format!(
            "assessments|{scope_text}|{}|{}",
            req.year, req.status
        ));
        let after = tokens.position(&req.page_token, &mut v);
        v.check()?;
        let query = AssessmentQuery {
            scope,
            year,
            status,
            after_id: after.and_then(|p| p.parse::<i64>().ok()).unwrap_or(0),
            limit: size + 1,
        };
        let mut rows = self.list(&who, &query).await?;
        let more = rows.len() > size;
        rows.truncate(size);
        let next_page_token = tokens.next(more, rows.last().map(|last| last.id.to_string()));
        Ok(Response::new(pb::ListAssessmentsResponse {
            assessments: rows
                .iter()
                .map(|row| assessment_to_pb(row, &[], summary_scorecard(row)))
                .collect(),
            next_page_token,
        }))
    }

    async fn submit_assessment(
        &self,
        request: Request<pb::SubmitAssessmentRequest>,
    ) -> Result<Response<pb::SubmitAssessmentResponse>, Status> {
        let assessment = self.take_review(request).await?;
        Ok(Response::new(pb::SubmitAssessmentResponse { assessment }))
    }

    async fn verify_assessment(
        &self,
        request: Request<pb::VerifyAssessmentRequest>,
    ) -> Result<Response<pb::VerifyAssessmentResponse>, Status> {
        let assessment = self.take_review(request).await?;
        Ok(Response::new(pb::VerifyAssessmentResponse { assessment }))
    }

    async fn approve_assessment(
        &self,
        request: Request<pb::ApproveAssessmentRequest>,
    ) -> Result<Response<pb::ApproveAssessmentResponse>, Status> {
        let assessment = self.take_review(request).await?;
        Ok(Response::new(pb::ApproveAssessmentResponse { assessment }))
    }

    async fn return_assessment(
        &self,
        request: Request<pb::ReturnAssessmentRequest>,
    ) -> Result<Response<pb::ReturnAssessmentResponse>, Status> {
        let assessment = self.take_review(request).await?;
        Ok(Response::new(pb::ReturnAssessmentResponse { assessment }))
    }

    async fn reopen_assessment(
        &self,
        request: Request<pb::ReopenAssessmentRequest>,
    ) -> Result<Response<pb::ReopenAssessmentResponse>, Status> {
        let assessment = self.take_review(request).await?;
        Ok(Response::new(pb::ReopenAssessmentResponse { assessment }))
    }

    async fn list_assessment_history(
        &self,
        request: Request<pb::ListAssessmentHistoryRequest>,
    ) -> Result<Response<pb::ListAssessmentHistoryResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let size = page_size(req.page_size, &mut v);
        let tokens = PageToken::for_query(format!("history|{}|{}", req.unit_code.trim(), req.year));
        let after = tokens.position(&req.page_token, &mut v);
        v.check()?;
        let (unit, year) = self.locate(&req.unit_code, req.year).await?;
        authorize(&who, &unit, Action::Read).map_err(ApiError::PermissionDenied)?;
        let after = after.and_then(|p| p.parse::<i64>().ok()).unwrap_or(0);
        let mut entries = self.history(&unit, year, after, size + 1).await?;
        let more = entries.len() > size;
        entries.truncate(size);
        let next_page_token = tokens.next(more, entries.last().map(|e| e.sequence.to_string()));
        Ok(Response::new(pb::ListAssessmentHistoryResponse {
            entries: entries.into_iter().map(history_to_pb).collect(),
            next_page_token,
        }))
    }

    type WatchAssessmentEventsStream = WatchStream<pb::WatchAssessmentEventsResponse>;

    async fn watch_assessment_events(
        &self,
        request: Request<pb::WatchAssessmentEventsRequest>,
    ) -> Result<Response<Self::WatchAssessmentEventsStream>, Status> {
        let who: Caller = caller(&request)?;
        if !(who.has_role(Role::Service) || who.has_role(Role::Admin)) {
            return Err(ApiError::PermissionDenied(format!(
                "{} needs the service role to follow assessment events",
                who.subject
            ))
            .into());
        }
        let req = request.into_inner();
        let stream = follow(
            req.after_sequence,
            self.repo.clone(),
            &self.committed,
            self.shutdown.clone(),
            |event| pb::WatchAssessmentEventsResponse { event: Some(event) },
        )?;
        Ok(Response::new(stream))
    }
}
