//! `chiso.reporting.v1.TargetsService` and `ReportingService`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chiso_auth::{Caller, NATIONAL_SCOPE, Role, caller};
use chiso_proto::assessment::v1 as apb;
use chiso_proto::reporting::v1::{
    self as pb, reporting_service_server::ReportingService, targets_service_server::TargetsService,
};
use chiso_proto::units::v1::UnitLevel;
use chiso_server::{ApiError, Violations};
use tonic::{Request, Response, Status};

use crate::hierarchy::{Hierarchy, Placed};
use crate::projection::{AssessmentState, Projection};
use crate::targets::{self, Facts, year_end};

/// The reporting service: answers from the projection, rolled up the
/// hierarchy as of the end of each reported year.
#[derive(Clone)]
pub struct Reporting {
    projection: Projection,
    hierarchy: Hierarchy,
}

fn check_year(year: i32, v: &mut Violations) {
    if !(2000..=2100).contains(&year) {
        v.add("year", format!("{year} is outside 2000–2100"));
    }
}

fn check_code(field: &str, code: &str, v: &mut Violations) {
    if ![2, 3, 5].contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
        v.add(
            field,
            format!("{code:?} is not a GSO code (2, 3 or 5 digits)"),
        );
    }
}

fn level_or(level: i32, default: UnitLevel, v: &mut Violations) -> UnitLevel {
    match UnitLevel::try_from(level) {
        Ok(UnitLevel::Unspecified) => default,
        Ok(l) => l,
        Err(_) => {
            v.add("level", format!("{level} is not a UnitLevel"));
            default
        }
    }
}

impl Reporting {
    pub fn new(projection: Projection, hierarchy: Hierarchy) -> Reporting {
        Reporting {
            projection,
            hierarchy,
        }
    }

    /// Stores the shipped Thanh Hóa plan when no target exists yet.
    pub async fn load_plan(&self) -> Result<usize, ApiError> {
        if self.projection.has_targets().await? {
            return Ok(0);
        }
        let plan = targets::thanh_hoa_plan();
        for t in &plan {
            self.projection.put_target(t, "chiso plan").await?;
        }
        Ok(plan.len())
    }

    /// The scope unit on `as_of`, if the caller may see it.
    async fn scope(&self, who: &Caller, code: &str, as_of: time::Date) -> Result<Placed, ApiError> {
        let placed = self
            .hierarchy
            .place(code, as_of)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no unit has code {code} on {as_of}")))?;
        if !who.is_national() && !placed.is_within(&who.scope) {
            return Err(ApiError::PermissionDenied(format!(
                "{} (scope {}) may not read {} {}",
                who.subject, who.scope, placed.unit.code, placed.unit.name
            )));
        }
        Ok(placed)
    }

    /// Ids of the units of `level` under `unit` on `as_of` (the unit itself
    /// when it is of that level).
    async fn counted(
        &self,
        unit: &chiso_proto::units::v1::Unit,
        level: UnitLevel,
        as_of: time::Date,
    ) -> Result<Vec<i64>, ApiError> {
        if unit.level == level as i32 {
            return Ok(vec![unit.id]);
        }
        if unit.level > level as i32 {
            return Ok(Vec::new());
        }
        Ok(self
            .hierarchy
            .units_under(&unit.code, level, as_of)
            .await?
            .iter()
            .map(|u| u.id)
            .collect())
    }

    async fn target_status(
        &self,
        t: &pb::Target,
        first: &HashMap<i64, i32>,
        states: &mut HashMap<i32, Vec<AssessmentState>>,
    ) -> Result<pb::TargetStatus, ApiError> {
        let as_of = targets::as_of(t);
        let kind = pb::TargetKind::try_from(t.kind).unwrap_or(pb::TargetKind::Unspecified);
        let level = UnitLevel::try_from(t.level).unwrap_or(UnitLevel::Unspecified);
        let mut units = Vec::new();
        let mut measured = None;
        match kind {
            pb::TargetKind::NamedUnits => {
                for code in &t.unit_codes {
                    if let Some(p) = self.hierarchy.place(code, as_of).await? {
                        units.push(p.unit.id);
                    }
                }
            }
            pb::TargetKind::Kpi => {
                if let Some(p) = self.hierarchy.place(&t.scope_code, as_of).await? {
                    if let std::collections::hash_map::Entry::Vacant(slot) = states.entry(t.year) {
                        slot.insert(self.projection.states(t.year).await?);
                    }
                    measured = states[&t.year]
                        .iter()
                        .find(|s| s.event.unit_id == p.unit.id)
                        .and_then(|s| s.event.scorecard.as_ref())
                        .and_then(|c| c.indicators.iter().find(|i| i.code == t.indicator_code))
                        .and_then(|i| i.measured);
                }
            }
            _ => {
                if let Some(p) = self.hierarchy.place(&t.scope_code, as_of).await? {
                    units = self.counted(&p.unit, level, as_of).await?;
                }
            }
        }
        Ok(targets::evaluate(
            t,
            &Facts {
                units: &units,
                first_completion: first,
                measured,
            },
        ))
    }
}

fn count_status(counts: &mut pb::StatusCounts, status: i32) {
    match apb::AssessmentStatus::try_from(status).unwrap_or(apb::AssessmentStatus::Unspecified) {
        apb::AssessmentStatus::Draft => counts.draft += 1,
        apb::AssessmentStatus::Submitted => counts.submitted += 1,
        apb::AssessmentStatus::Verified => counts.verified += 1,
        apb::AssessmentStatus::Approved => counts.approved += 1,
        apb::AssessmentStatus::Returned => counts.returned += 1,
        apb::AssessmentStatus::Unspecified => {}
    }
}

fn add_counts(into: &mut pb::StatusCounts, from: &pb::StatusCounts) {
    into.draft += from.draft;
    into.submitted += from.submitted;
    into.verified += from.verified;
    into.approved += from.approved;
    into.returned += from.returned;
}

#[tonic::async_trait]
impl TargetsService for Reporting {
    async fn create_target(
        &self,
        request: Request<pb::CreateTargetRequest>,
    ) -> Result<Response<pb::CreateTargetResponse>, Status> {
        let who = caller(&request)?;
        who.require(Role::Admin)?;
        if !(who.is_national() || who.scope.len() == 2) {
            return Err(Status::permission_denied(format!(
                "targets are set by a province admin; {} is scoped to {}",
                who.subject, who.scope
            )));
        }
        let req = request.into_inner();
        let mut target = req.target.unwrap_or_default();
        target.scope_code = target.scope_code.trim().to_owned();
        targets::check(&target).check()?;
        self.scope(&who, &target.scope_code, targets::as_of(&target))
            .await?;
        if target.id.trim().is_empty() {
            target.id = format!(
                "{}-{}-{:08x}",
                target.scope_code,
                target.year,
                rand::random::<u32>()
            );
        } else if self.projection.target(&target.id).await?.is_some() {
            return Err(
                ApiError::invalid("target.id", format!("{} exists already", target.id)).into(),
            );
        }
        if !req.validate_only {
            self.projection.put_target(&target, &who.subject).await?;
        }
        Ok(Response::new(pb::CreateTargetResponse {
            target: Some(target),
        }))
    }

    async fn list_targets(
        &self,
        request: Request<pb::ListTargetsRequest>,
    ) -> Result<Response<pb::ListTargetsResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut targets = Vec::new();
        for t in self.projection.targets(req.scope_code.trim()).await? {
            let visible = who.is_national()
                || self
                    .hierarchy
                    .place(&t.scope_code, targets::as_of(&t))
                    .await?
                    .is_some_and(|p| p.is_within(&who.scope));
            if visible {
                targets.push(t);
            }
        }
        Ok(Response::new(pb::ListTargetsResponse {
            targets,
            next_page_token: String::new(),
        }))
    }

    async fn delete_target(
        &self,
        request: Request<pb::DeleteTargetRequest>,
    ) -> Result<Response<pb::DeleteTargetResponse>, Status> {
        let who = caller(&request)?;
        who.require(Role::Admin)?;
        let id = request.into_inner().id;
        let target = self
            .projection
            .target(&id)
            .await?
            .ok_or_else(|| Status::not_found(format!("no target {id}")))?;
        if !(who.is_national() || who.scope.len() == 2) {
            return Err(Status::permission_denied(
                "targets are deleted by a province admin",
            ));
        }
        self.scope(&who, &target.scope_code, targets::as_of(&target))
            .await?;
        self.projection.delete_target(&id).await?;
        Ok(Response::new(pb::DeleteTargetResponse {}))
    }
}

#[tonic::async_trait]
impl ReportingService for Reporting {
    async fn get_progress(
        &self,
        request: Request<pb::GetProgressRequest>,
    ) -> Result<Response<pb::GetProgressResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        check_code("scope_code", req.scope_code.trim(), &mut v);
        check_year(req.year, &mut v);
        let level = level_or(req.level, UnitLevel::Commune, &mut v);
        v.check()?;
        let reflects = self.projection.cursor().await?;
        let as_of = year_end(req.year);
        let scope = self.scope(&who, req.scope_code.trim(), as_of).await?;
        let first = self.projection.first_completions().await?;
        let states = self.projection.states(req.year).await?;
        let status_by_unit: HashMap<i64, i32> = states
            .iter()
            .map(|s| (s.event.unit_id, s.event.status))
            .collect();

        let children = self
            .hierarchy
            .units_under(&scope.unit.code, UnitLevel::Unspecified, as_of)
            .await?;
        let mut rows = Vec::new();
        let mut totals = pb::ProgressRow {
            statuses: Some(pb::StatusCounts::default()),
            ..Default::default()
        };
        for child in children.iter() {
            let counted = self.counted(child, level, as_of).await?;
            let mut statuses = pb::StatusCounts::default();
            for id in &counted {
                if let Some(&s) = status_by_unit.get(id) {
                    count_status(&mut statuses, s);
                }
            }
            let row = pb::ProgressRow {
                unit: Some(child.clone()),
                units: counted.len() as i32,
                completed_in_year: counted
                    .iter()
                    .filter(|u| first.get(u) == Some(&req.year))
                    .count() as i32,
                completed_cumulative: counted
                    .iter()
                    .filter(|u| first.get(u).is_some_and(|&y| y <= req.year))
                    .count() as i32,
                statuses: Some(statuses),
            };
            totals.units += row.units;
            totals.completed_in_year += row.completed_in_year;
            totals.completed_cumulative += row.completed_cumulative;
            add_counts(
                totals.statuses.as_mut().expect("set above"),
                row.statuses.as_ref().expect("set above"),
            );
            rows.push(row);
        }
        let mut cache = HashMap::from([(req.year, states)]);
        let mut statuses = Vec::new();
        for t in self.projection.targets(&scope.unit.code).await? {
            if t.year == req.year {
                statuses.push(self.target_status(&t, &first, &mut cache).await?);
            }
        }
        Ok(Response::new(pb::GetProgressResponse {
            rows,
            totals: Some(totals),
            targets: statuses,
            reflects_sequence: reflects,
        }))
    }

    async fn list_target_progress(
        &self,
        request: Request<pb::ListTargetProgressRequest>,
    ) -> Result<Response<pb::ListTargetProgressResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let scope = req.scope_code.trim().to_owned();
        let mut v = Violations::new();
        if !scope.is_empty() {
            check_code("scope_code", &scope, &mut v);
        }
        v.check()?;
        let scope = if scope.is_empty() && !who.is_national() {
            who.scope.clone()
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
                .place(&t.scope_code, targets::as_of(&t))
                .await?;
            let Some(placed) = placed else { continue };
            let wanted = scope.is_empty() || scope == NATIONAL_SCOPE || placed.is_within(&scope);
            let visible = who.is_national() || placed.is_within(&who.scope);
            if wanted && visible {
                statuses.push(self.target_status(&t, &first, &mut cache).await?);
            }
        }
        Ok(Response::new(pb::ListTargetProgressResponse {
            targets: statuses,
            reflects_sequence: reflects,
        }))
    }

    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::GetScorecardResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        check_code("unit_code", req.unit_code.trim(), &mut v);
        check_year(req.year, &mut v);
        v.check()?;
        let reflects = self.projection.cursor().await?;
        let unit = self
            .scope(&who, req.unit_code.trim(), year_end(req.year))
            .await?;
        let state = self
            .projection
            .states(req.year)
            .await?
            .into_iter()
            .find(|s| s.event.unit_id == unit.unit.id)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no assessment of {} for {}",
                    unit.unit.code, req.year
                ))
            })?;
        let e = state.event;
        Ok(Response::new(pb::GetScorecardResponse {
            unit_code: e.unit_code,
            unit_name: e.unit_name,
            year: e.year,
            status: e.status,
            criteria_set_id: e.criteria_set_id,
            criteria_set_version: e.criteria_set_version,
            scorecard: e.scorecard,
            reflects_sequence: reflects,
        }))
    }

    async fn list_rankings(
        &self,
        request: Request<pb::ListRankingsRequest>,
    ) -> Result<Response<pb::ListRankingsResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        check_code("scope_code", req.scope_code.trim(), &mut v);
        check_year(req.year, &mut v);
        let level = level_or(req.level, UnitLevel::Commune, &mut v);
        v.check()?;
        let reflects = self.projection.cursor().await?;
        let as_of = year_end(req.year);
        let scope = self.scope(&who, req.scope_code.trim(), as_of).await?;
        let units: HashSet<i64> = self
            .counted(&scope.unit, level, as_of)
            .await?
            .into_iter()
            .collect();
        let group = req.group_code.trim();
        let mut entries: Vec<pb::RankingEntry> = self
            .projection
            .states(req.year)
            .await?
            .into_iter()
            .filter(|s| units.contains(&s.event.unit_id))
            .filter(|s| {
                !req.approved_only || s.event.status == apb::AssessmentStatus::Approved as i32
            })
            .map(|s| {
                let card = s.event.scorecard.clone().unwrap_or_default();
                let (points, max_points) = if group.is_empty() {
                    (card.total_points, card.max_points)
                } else {
                    card.groups
                        .iter()
                        .find(|g| g.code == group)
                        .map_or((0.0, 0.0), |g| (g.points, g.max_points))
                };
                pb::RankingEntry {
                    rank: 0,
                    unit_code: s.event.unit_code.clone(),
                    unit_name: s.event.unit_name.clone(),
                    points,
                    max_points,
                    complete: card.complete,
                    status: s.event.status,
                }
            })
            .collect();
        entries.sort_by(|a, b| {
            b.points
                .total_cmp(&a.points)
                .then_with(|| a.unit_code.cmp(&b.unit_code))
        });
        // Competition ranking: equal points share a rank, the next rank skips.
        for i in 0..entries.len() {
            entries[i].rank = if i > 0 && entries[i].points == entries[i - 1].points {
                entries[i - 1].rank
            } else {
                i as i32 + 1
            };
        }
        Ok(Response::new(pb::ListRankingsResponse {
            entries,
            reflects_sequence: reflects,
        }))
    }

    async fn get_indicator_breakdown(
        &self,
        request: Request<pb::GetIndicatorBreakdownRequest>,
    ) -> Result<Response<pb::GetIndicatorBreakdownResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        check_code("scope_code", req.scope_code.trim(), &mut v);
        check_year(req.year, &mut v);
        let level = level_or(req.level, UnitLevel::Commune, &mut v);
        v.check()?;
        let reflects = self.projection.cursor().await?;
        let as_of = year_end(req.year);
        let scope = self.scope(&who, req.scope_code.trim(), as_of).await?;
        let units: HashSet<i64> = self
            .counted(&scope.unit, level, as_of)
            .await?
            .into_iter()
            .collect();
        let mut shares: BTreeMap<String, pb::IndicatorShare> = BTreeMap::new();
        for s in self.projection.states(req.year).await? {
            if !units.contains(&s.event.unit_id) {
                continue;
            }
            for ind in s.event.scorecard.iter().flat_map(|c| &c.indicators) {
                let share = shares
                    .entry(ind.code.clone())
                    .or_insert_with(|| pb::IndicatorShare {
                        code: ind.code.clone(),
                        name: ind.name.clone(),
                        group_code: ind.group_code.clone(),
                        mandatory: ind.mandatory,
                        ..Default::default()
                    });
                share.units += 1;
                share.met += i32::from(ind.met);
            }
        }
        let mut indicators: Vec<pb::IndicatorShare> = shares
            .into_values()
            .map(|mut s| {
                s.share_percent = 100.0 * f64::from(s.met) / f64::from(s.units.max(1));
                s
            })
            .collect();
        indicators.sort_by(|a, b| {
            a.share_percent
                .total_cmp(&b.share_percent)
                .then_with(|| a.code.cmp(&b.code))
        });
        Ok(Response::new(pb::GetIndicatorBreakdownResponse {
            indicators,
            reflects_sequence: reflects,
        }))
    }
}
