//! `chiso.reporting.v1.TargetsService` and `ReportingService`.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chiso_auth::{Caller, NATIONAL_SCOPE, Role, caller};
use chiso_domain::{GsoCode, Year};
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
    if let Err(e) = Year::new(year) {
        v.add("year", e);
    }
}

fn check_code(field: &str, code: &str, v: &mut Violations) {
    if let Err(e) = GsoCode::parse(code) {
        v.add(field, e);
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
        if !who.is_national() && !placed.is_within(who.scope.as_str()) {
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

    /// The units existing on `date` that `id` is, or went into (following
    /// successors through lineage).
    async fn successors_on(&self, id: i64, date: time::Date) -> Result<Vec<i64>, ApiError> {
        let mut found = Vec::new();
        let mut todo = vec![(id, 0)];
        let mut seen = HashSet::new();
        while let Some((unit, depth)) = todo.pop() {
            if !seen.insert(unit) || depth > 8 {
                continue;
            }
            let lineage = self.hierarchy.lineage(unit).await?;
            let ends = lineage
                .unit
                .valid_to
                .as_ref()
                .and_then(|d| chiso_proto::to_date(d).ok());
            if ends.is_none_or(|end| end > date) {
                found.push(unit);
                continue;
            }
            for link in &lineage.successors {
                let effective = link
                    .effective_date
                    .as_ref()
                    .and_then(|d| chiso_proto::to_date(d).ok());
                if let (Some(next), Some(effective)) = (link.unit.as_ref(), effective)
                    && effective <= date
                {
                    todo.push((next.id, depth + 1));
                }
            }
        }
        Ok(found)
    }

    /// Checks a (scope, year, level) query, then gives the event the answer
    /// will reflect and the ids of the counted units under the scope at the
    /// end of the year.
    async fn units_in_scope(
        &self,
        who: &Caller,
        scope_code: &str,
        year: i32,
        level: i32,
    ) -> Result<(i64, HashSet<i64>), Status> {
        let mut v = Violations::new();
        check_code("scope_code", scope_code.trim(), &mut v);
        check_year(year, &mut v);
        let level = level_or(level, UnitLevel::Commune, &mut v);
        v.check()?;
        let reflects = self.projection.cursor().await?;
        let as_of = year_end(year);
        let scope = self.scope(who, scope_code.trim(), as_of).await?;
        let units = self
            .counted(&scope.unit, level, as_of)
            .await?
            .into_iter()
            .collect();
        Ok((reflects, units))
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
        if !(who.is_national() || who.scope.is_province()) {
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
        if !req.validate_only && !self.projection.put_target(&target, &who.subject).await? {
            return Err(
                ApiError::invalid("target.id", format!("{} exists already", target.id)).into(),
            );
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
        let mut v = Violations::new();
        let scope = req.scope_code.trim();
        if !scope.is_empty() {
            check_code("scope_code", scope, &mut v);
        }
        if req.page_size < 0 {
            v.add("page_size", format!("{} is negative", req.page_size));
        }
        let size = match req.page_size {
            0 => 100,
            n => n.clamp(1, 1000) as usize,
        };
        // Targets are listed by (scope, year, id); the token holds the last.
        let query = format!("targets|{scope}|");
        let after = if req.page_token.is_empty() {
            None
        } else {
            let text = URL_SAFE_NO_PAD
                .decode(&req.page_token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| t.strip_prefix(&query).map(str::to_owned));
            if text.is_none() {
                v.add(
                    "page_token",
                    format!("{:?} is not a token from this query", req.page_token),
                );
            }
            text
        };
        v.check()?;
        let key = |t: &pb::Target| format!("{}|{:04}|{}", t.scope_code, t.year, t.id);
        let mut targets = Vec::new();
        let mut more = false;
        // Ordered here, byte-wise, so the token means the same on every
        // database collation.
        let mut all = self.projection.targets(scope).await?;
        all.sort_by_key(key);
        for t in all {
            if after.as_ref().is_some_and(|a| key(&t) <= *a) {
                continue;
            }
            let visible = who.is_national()
                || self
                    .hierarchy
                    .place(&t.scope_code, targets::as_of(&t))
                    .await?
                    .is_some_and(|p| p.is_within(who.scope.as_str()));
            if visible {
                if targets.len() == size {
                    more = true;
                    break;
                }
                targets.push(t);
            }
        }
        let next_page_token = match (more, targets.last()) {
            (true, Some(last)) => URL_SAFE_NO_PAD.encode(format!("{query}{}", key(last))),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListTargetsResponse {
            targets,
            next_page_token,
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
        if !(who.is_national() || who.scope.is_province()) {
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
        let restate = match &req.restate_as_of {
            None => None,
            Some(d) => {
                match chiso_proto::to_date(d) {
                    Ok(d) if d >= year_end(req.year) => Some(d),
                    Ok(d) => {
                        return Err(ApiError::invalid(
                        "restate_as_of",
                        format!("{d} is before the end of {}; restating maps onto a later hierarchy", req.year),
                    )
                    .into());
                    }
                    Err(e) => return Err(ApiError::invalid("restate_as_of", e.to_string()).into()),
                }
            }
        };
        let reflects = self.projection.cursor().await?;
        let as_of = restate.unwrap_or_else(|| year_end(req.year));
        let scope = self.scope(&who, req.scope_code.trim(), as_of).await?;
        let mut first = self.projection.first_completions().await?;
        let states = self.projection.states(req.year).await?;
        let mut statuses_by_unit: HashMap<i64, Vec<i32>> = HashMap::new();
        for s in &states {
            statuses_by_unit
                .entry(s.event.unit_id)
                .or_default()
                .push(s.event.status);
        }
        if let Some(date) = restate {
            // Carry completions and statuses over to the units of `date`.
            let mut restated_first: HashMap<i64, i32> = HashMap::new();
            for (unit, year) in &first {
                for later in self.successors_on(*unit, date).await? {
                    let e = restated_first.entry(later).or_insert(*year);
                    *e = (*e).min(*year);
                }
            }
            let mut restated_statuses: HashMap<i64, Vec<i32>> = HashMap::new();
            for (unit, list) in &statuses_by_unit {
                for later in self.successors_on(*unit, date).await? {
                    restated_statuses.entry(later).or_default().extend(list);
                }
            }
            first = restated_first;
            statuses_by_unit = restated_statuses;
        }

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
                for &s in statuses_by_unit.get(id).into_iter().flatten() {
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
            // Targets are judged in their own hierarchy, not a restated one.
            if t.year == req.year && restate.is_none() {
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
                .place(&t.scope_code, targets::as_of(&t))
                .await?;
            let Some(placed) = placed else { continue };
            let wanted = scope.is_empty() || scope == NATIONAL_SCOPE || placed.is_within(&scope);
            let visible = who.is_national() || placed.is_within(who.scope.as_str());
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
        let (reflects, units) = self
            .units_in_scope(&who, &req.scope_code, req.year, req.level)
            .await?;
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
        let (reflects, units) = self
            .units_in_scope(&who, &req.scope_code, req.year, req.level)
            .await?;
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
    async fn get_trend(
        &self,
        request: Request<pb::GetTrendRequest>,
    ) -> Result<Response<pb::GetTrendResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        check_code("unit_code", req.unit_code.trim(), &mut v);
        check_year(req.from_year, &mut v);
        check_year(req.to_year, &mut v);
        if req.from_year > req.to_year {
            v.add(
                "to_year",
                format!("{} is before from_year {}", req.to_year, req.from_year),
            );
        }
        let as_of = match req.as_of.as_ref().map(chiso_proto::to_date) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                v.add("as_of", e.to_string());
                year_end(req.to_year.clamp(Year::FIRST, Year::LAST))
            }
            None => chiso_domain::today(),
        };
        v.check()?;
        let reflects = self.projection.cursor().await?;
        let unit = self.scope(&who, req.unit_code.trim(), as_of).await?;
        let mut by_unit_year: HashMap<(i64, i32), AssessmentState> = HashMap::new();
        for s in self.projection.states(0).await? {
            if (req.from_year..=req.to_year).contains(&s.event.year) {
                by_unit_year.insert((s.event.unit_id, s.event.year), s);
            }
        }
        let mut points = Vec::new();
        for year in req.from_year..=req.to_year {
            // The unit itself, or else the units it came from that existed
            // in that year, back through lineage.
            let mut todo = vec![(unit.unit.id, false, 0)];
            let mut seen = HashSet::new();
            let mut rows = Vec::new();
            while let Some((id, predecessor, depth)) = todo.pop() {
                if !seen.insert(id) || depth > 8 {
                    continue;
                }
                if let Some(s) = by_unit_year.get(&(id, year)) {
                    let card = s.event.scorecard.clone().unwrap_or_default();
                    rows.push(pb::TrendPoint {
                        year,
                        unit_code: s.event.unit_code.clone(),
                        unit_name: s.event.unit_name.clone(),
                        predecessor,
                        status: s.event.status,
                        total_points: card.total_points,
                        max_points: card.max_points,
                        complete: card.complete,
                    });
                    continue;
                }
                for link in &self.hierarchy.lineage(id).await?.predecessors {
                    let effective = link
                        .effective_date
                        .as_ref()
                        .and_then(|d| chiso_proto::to_date(d).ok());
                    if let (Some(prev), Some(effective)) = (link.unit.as_ref(), effective)
                        && effective > year_end(year)
                    {
                        todo.push((prev.id, true, depth + 1));
                    }
                }
            }
            rows.sort_by(|a, b| a.unit_code.cmp(&b.unit_code));
            points.extend(rows);
        }
        Ok(Response::new(pb::GetTrendResponse {
            points,
            reflects_sequence: reflects,
        }))
    }

    type ExportReportStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<pb::ExportReportResponse, Status>> + Send>,
    >;

    async fn export_report(
        &self,
        request: Request<pb::ExportReportRequest>,
    ) -> Result<Response<Self::ExportReportStream>, Status> {
        let who = caller(&request)?;
        let report = request
            .into_inner()
            .report
            .ok_or_else(|| ApiError::invalid("report", "name the report to export"))?;
        use pb::export_report_request::Report;
        let table: Vec<Vec<String>> = match report {
            Report::Progress(r) => {
                let p = self.get_progress(on_behalf(&who, r)).await?.into_inner();
                let mut rows = vec![csv_header(&[
                    "code",
                    "name",
                    "units",
                    "completed_in_year",
                    "completed_cumulative",
                    "draft",
                    "submitted",
                    "verified",
                    "approved",
                    "returned",
                ])];
                for row in p.rows.iter().chain(p.totals.iter()) {
                    let s = row.statuses.unwrap_or_default();
                    let (code, name) = row
                        .unit
                        .as_ref()
                        .map_or(("", "total"), |u| (u.code.as_str(), u.name.as_str()));
                    rows.push(vec![
                        code.to_owned(),
                        name.to_owned(),
                        row.units.to_string(),
                        row.completed_in_year.to_string(),
                        row.completed_cumulative.to_string(),
                        s.draft.to_string(),
                        s.submitted.to_string(),
                        s.verified.to_string(),
                        s.approved.to_string(),
                        s.returned.to_string(),
                    ]);
                }
                rows
            }
            Report::TargetProgress(r) => {
                let p = self
                    .list_target_progress(on_behalf(&who, r))
                    .await?
                    .into_inner();
                let mut rows = vec![csv_header(&[
                    "id", "title", "scope", "year", "current", "goal", "met", "gap", "source",
                ])];
                for t in p.targets {
                    let target = t.target.unwrap_or_default();
                    rows.push(vec![
                        target.id,
                        target.title,
                        target.scope_code,
                        target.year.to_string(),
                        t.current.to_string(),
                        t.goal.to_string(),
                        t.met.to_string(),
                        t.gap.to_string(),
                        target.source,
                    ]);
                }
                rows
            }
            Report::Scorecard(r) => {
                let p = self.get_scorecard(on_behalf(&who, r)).await?.into_inner();
                let mut rows = vec![csv_header(&[
                    "code",
                    "name",
                    "group",
                    "mandatory",
                    "met",
                    "points",
                    "max_points",
                    "shortfall",
                ])];
                for i in p.scorecard.unwrap_or_default().indicators {
                    rows.push(vec![
                        i.code,
                        i.name,
                        i.group_code,
                        i.mandatory.to_string(),
                        i.met.to_string(),
                        i.points.to_string(),
                        i.max_points.to_string(),
                        i.shortfall,
                    ]);
                }
                rows
            }
            Report::Rankings(r) => {
                let p = self.list_rankings(on_behalf(&who, r)).await?.into_inner();
                let mut rows = vec![csv_header(&[
                    "rank",
                    "code",
                    "name",
                    "points",
                    "max_points",
                    "complete",
                ])];
                for e in p.entries {
                    rows.push(vec![
                        e.rank.to_string(),
                        e.unit_code,
                        e.unit_name,
                        e.points.to_string(),
                        e.max_points.to_string(),
                        e.complete.to_string(),
                    ]);
                }
                rows
            }
            Report::IndicatorBreakdown(r) => {
                let p = self
                    .get_indicator_breakdown(on_behalf(&who, r))
                    .await?
                    .into_inner();
                let mut rows = vec![csv_header(&[
                    "code",
                    "name",
                    "group",
                    "mandatory",
                    "units",
                    "met",
                    "share_percent",
                ])];
                for i in p.indicators {
                    rows.push(vec![
                        i.code,
                        i.name,
                        i.group_code,
                        i.mandatory.to_string(),
                        i.units.to_string(),
                        i.met.to_string(),
                        format!("{:.1}", i.share_percent),
                    ]);
                }
                rows
            }
            Report::Trend(r) => {
                let p = self.get_trend(on_behalf(&who, r)).await?.into_inner();
                let mut rows = vec![csv_header(&[
                    "year",
                    "code",
                    "name",
                    "predecessor",
                    "points",
                    "max_points",
                    "complete",
                ])];
                for t in p.points {
                    rows.push(vec![
                        t.year.to_string(),
                        t.unit_code,
                        t.unit_name,
                        t.predecessor.to_string(),
                        t.total_points.to_string(),
                        t.max_points.to_string(),
                        t.complete.to_string(),
                    ]);
                }
                rows
            }
        };
        // Chunks of about 64 KiB, each ending at a line break.
        let mut chunks = Vec::new();
        let mut chunk = String::new();
        for row in &table {
            chunk.push_str(&csv_line(row));
            if chunk.len() >= 64 * 1024 {
                chunks.push(std::mem::take(&mut chunk));
            }
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        let stream = futures::stream::iter(chunks.into_iter().map(|c| {
            Ok(pb::ExportReportResponse {
                chunk: c.into_bytes(),
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A request made for `who`, as the auth interceptor would have passed it.
fn on_behalf<T>(who: &Caller, inner: T) -> Request<T> {
    let mut request = Request::new(inner);
    request.extensions_mut().insert(who.clone());
    request
}

fn csv_header(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// One CSV line, quoting fields that need it.
fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}
