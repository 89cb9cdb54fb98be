//! `ReportingService`: progress, target progress, scorecards, rankings, the
//! indicator breakdown, trends, and each of them as CSV.

use std::collections::HashMap;

use chiso_auth::{Caller, NATIONAL_SCOPE, caller};
use chiso_proto::reporting::v1::{
    self as pb, export_report_request::Report, reporting_service_server::ReportingService,
};
use chiso_proto::units::v1::UnitLevel;
use chiso_server::ApiError;
use tonic::{Request, Response, Status};

use super::Reporting;
use super::query::{ScopeQuery, TrendQuery, UnitYear, checked, code, restate_date};
use crate::authorize;
use crate::reports::csv;
use crate::reports::ranking::{RankingQuery, rank};
use crate::reports::rollup::{self, UnitFacts};
use crate::reports::shares::indicator_shares;
use crate::reports::trend::{TrendStates, trend};
use crate::targets as rules;

/// Export chunks end at a line break after about this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;

#[tonic::async_trait]
impl ReportingService for Reporting {
    async fn get_progress(
        &self,
        request: Request<pb::GetProgressRequest>,
    ) -> Result<Response<pb::GetProgressResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.progress(&who, request.into_inner()).await?,
        ))
    }

    async fn list_target_progress(
        &self,
        request: Request<pb::ListTargetProgressRequest>,
    ) -> Result<Response<pb::ListTargetProgressResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.target_progress(&who, request.into_inner()).await?,
        ))
    }

    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::GetScorecardResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.scorecard(&who, request.into_inner()).await?,
        ))
    }

    async fn list_rankings(
        &self,
        request: Request<pb::ListRankingsRequest>,
    ) -> Result<Response<pb::ListRankingsResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.rankings(&who, request.into_inner()).await?,
        ))
    }

    async fn get_indicator_breakdown(
        &self,
        request: Request<pb::GetIndicatorBreakdownRequest>,
    ) -> Result<Response<pb::GetIndicatorBreakdownResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.indicator_breakdown(&who, request.into_inner()).await?,
        ))
    }

    async fn get_trend(
        &self,
        request: Request<pb::GetTrendRequest>,
    ) -> Result<Response<pb::GetTrendResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(self.trend(&who, request.into_inner()).await?))
    }

    type ExportReportStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<pb::ExportReportResponse, Status>> + Send>,
    >;

    async fn export_report(
        &self,
        request: Request<pb::ExportReportRequest>,
    ) -> Result<Response<Self::ExportReportStream>, Status> {
        let who = caller(&request)?;
        let chunks = self.export(&who, request.into_inner()).await?;
        let stream = futures::stream::iter(chunks.into_iter().map(|c| {
            Ok(pb::ExportReportResponse {
                chunk: c.into_bytes(),
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }
}

impl Reporting {
    async fn progress(
        &self,
        who: &Caller,
        req: pb::GetProgressRequest,
    ) -> Result<pb::GetProgressResponse, ApiError> {
        let q = ScopeQuery::parse(&req.scope_code, req.year, req.level)?;
        let restate = restate_date(req.restate_as_of.as_ref(), q.year)?;
        let reflects = self.projection.cursor().await?;
        let as_of = restate.unwrap_or(q.as_of());
        let scope = self.readable(who, q.scope.as_str(), as_of).await?;
        let year = q.year.get();
        let first = self.projection.first_completions().await?;
        let states = self.projection.states(year).await?;
        let mut facts = UnitFacts::new(first, &states);
        if let Some(date) = restate {
            facts = self
                .hierarchy
                .with_lineages(|lineages| facts.restated(lineages, date))
                .await?;
        }
        let mut children = Vec::new();
        for child in self
            .hierarchy
            .units_under(&scope.unit.code, UnitLevel::Unspecified, as_of)
            .await?
            .iter()
        {
            let counted = self.hierarchy.counted(child, q.level, as_of).await?;
            children.push((child.clone(), counted));
        }
        let (rows, totals) = rollup::progress(children, &facts, year);
        let mut cache = HashMap::from([(year, states)]);
        let mut statuses = Vec::new();
        for t in self.projection.targets(&scope.unit.code).await? {
            // Targets are judged in their own hierarchy, not a restated one.
            if t.year == year && restate.is_none() {
                statuses.push(
                    self.target_status(&t, &facts.first_completion, &mut cache)
                        .await?,
                );
            }
        }
        Ok(pb::GetProgressResponse {
            rows,
            totals: Some(totals),
            targets: statuses,
            reflects_sequence: reflects,
        })
    }

    async fn target_progress(
        &self,
        who: &Caller,
        req: pb::ListTargetProgressRequest,
    ) -> Result<pb::ListTargetProgressResponse, ApiError> {
        let scope = req.scope_code.trim().to_owned();
        let mut v = chiso_server::Violations::new();
        if !scope.is_empty() {
            code("scope_code", &scope, &mut v);
        }
        checked(v)?;
        let scope = if scope.is_empty() && !who.is_national() {
            who.scope.to_string()
        } else {
            scope
        };
        let reflects = self.projection.cursor().await?;
        let first = self.projection.first_completions().await?;
        let mut cache = HashMap::new();
        let mut statuses = Vec::new();
        for t in self.projection.targets("").await? {
            let placed = self
                .hierarchy
                .place(&t.scope_code, rules::as_of(&t))
                .await?;
            let Some(placed) = placed else { continue };
            let wanted = scope.is_empty() || scope == NATIONAL_SCOPE || placed.is_within(&scope);
            if wanted && authorize::sees(who, &placed) {
                statuses.push(self.target_status(&t, &first, &mut cache).await?);
            }
        }
        Ok(pb::ListTargetProgressResponse {
            targets: statuses,
            reflects_sequence: reflects,
        })
    }

    async fn scorecard(
        &self,
        who: &Caller,
        req: pb::GetScorecardRequest,
    ) -> Result<pb::GetScorecardResponse, ApiError> {
        let q = UnitYear::parse(&req.unit_code, req.year)?;
        let reflects = self.projection.cursor().await?;
        let unit = self
            .readable(who, q.unit.as_str(), q.year.last_day())
            .await?;
        let state = self
            .projection
            .states(q.year.get())
            .await?
            .into_iter()
            .find(|s| s.event.unit_id == unit.unit.id)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no assessment of {} for {}",
                    unit.unit.code, q.year
                ))
            })?;
        let e = state.event;
        Ok(pb::GetScorecardResponse {
            unit_code: e.unit_code,
            unit_name: e.unit_name,
            year: e.year,
            status: e.status,
            criteria_set_id: e.criteria_set_id,
            criteria_set_version: e.criteria_set_version,
            scorecard: e.scorecard,
            reflects_sequence: reflects,
        })
    }

    async fn rankings(
        &self,
        who: &Caller,
        req: pb::ListRankingsRequest,
    ) -> Result<pb::ListRankingsResponse, ApiError> {
        let q = ScopeQuery::parse(&req.scope_code, req.year, req.level)?;
        let (reflects, units) = self.units_in_scope(who, &q).await?;
        let entries = rank(
            self.projection.states(q.year.get()).await?,
            &RankingQuery {
                units: &units,
                group: req.group_code.trim(),
                approved_only: req.approved_only,
            },
        );
        Ok(pb::ListRankingsResponse {
            entries,
            reflects_sequence: reflects,
        })
    }

    async fn indicator_breakdown(
        &self,
        who: &Caller,
        req: pb::GetIndicatorBreakdownRequest,
    ) -> Result<pb::GetIndicatorBreakdownResponse, ApiError> {
        let q = ScopeQuery::parse(&req.scope_code, req.year, req.level)?;
        let (reflects, units) = self.units_in_scope(who, &q).await?;
        let indicators = indicator_shares(self.projection.states(q.year.get()).await?, &units);
        Ok(pb::GetIndicatorBreakdownResponse {
            indicators,
            reflects_sequence: reflects,
        })
    }

    async fn trend(
        &self,
        who: &Caller,
        req: pb::GetTrendRequest,
    ) -> Result<pb::GetTrendResponse, ApiError> {
        let q = TrendQuery::parse(
            &req.unit_code,
            req.from_year,
            req.to_year,
            req.as_of.as_ref(),
        )?;
        let reflects = self.projection.cursor().await?;
        let unit = self.readable(who, q.unit.as_str(), q.as_of).await?;
        let states = TrendStates::new(self.projection.states(0).await?, &q.years);
        let points = self
            .hierarchy
            .with_lineages(|lineages| trend(unit.unit.id, q.years.clone(), &states, lineages))
            .await?;
        Ok(pb::GetTrendResponse {
            points,
            reflects_sequence: reflects,
        })
    }

    /// The report as CSV, in chunks that each end at a line break.
    async fn export(
        &self,
        who: &Caller,
        req: pb::ExportReportRequest,
    ) -> Result<Vec<String>, ApiError> {
        let report = req
            .report
            .ok_or_else(|| ApiError::invalid("report", "name the report to export"))?;
        let lines = match report {
            Report::Progress(r) => {
                let p = self.progress(who, r).await?;
                csv::PROGRESS.lines(p.rows.iter().chain(p.totals.iter()))
            }
            Report::TargetProgress(r) => {
                csv::TARGET_PROGRESS.lines(&self.target_progress(who, r).await?.targets)
            }
            Report::Scorecard(r) => {
                let card = self.scorecard(who, r).await?.scorecard.unwrap_or_default();
                csv::SCORECARD.lines(&card.indicators)
            }
            Report::Rankings(r) => csv::RANKINGS.lines(&self.rankings(who, r).await?.entries),
            Report::IndicatorBreakdown(r) => {
                let shares = self.indicator_breakdown(who, r).await?.indicators;
                csv::INDICATOR_BREAKDOWN.lines(&shares)
            }
            Report::Trend(r) => csv::TREND.lines(&self.trend(who, r).await?.points),
        };
        Ok(csv::chunks(lines, CHUNK_BYTES))
    }
}
