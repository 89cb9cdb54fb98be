//! `chiso.units.v1.UnitsService`: parses requests into checked values, asks
//! the repository, and shapes answers.

use std::collections::HashSet;

use chiso_auth::{Role, caller};
use chiso_proto::units::v1::{self as pb, units_service_server::UnitsService};
use chiso_proto::{from_date, to_date};
use chiso_server::{
    Committed, PageToken, RequestHasher, Violations, WatchStream, follow, page_size, replay,
};
use chiso_storage::Db;
use prost::Message;
use time::Date;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use chiso_domain::{GsoCode, today};

use crate::domain::{Kind, Level, Part};
use crate::error::UnitsError;
use crate::plan::{LineageIn, RowIn, plan};
use crate::repo::{ChangeRow, ImportMeta, Repo, UnitView, VersionView};

/// The units service.
#[derive(Clone)]
pub struct Units {
    repo: Repo,
    committed: Committed,
    shutdown: CancellationToken,
}

impl Units {
    /// A service over `db` (migrated); change streams end when `shutdown` is
    /// cancelled.
    pub fn new(db: Db, shutdown: CancellationToken) -> Units {
        Units {
            repo: Repo::new(db),
            committed: Committed::new(),
            shutdown,
        }
    }

    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// Imports a snapshot on behalf of `imported_by`; the gRPC call and the
    /// reference-data loader both come through here.
    pub async fn import_snapshot_as(
        &self,
        request: &pb::ImportSnapshotRequest,
        imported_by: &str,
    ) -> Result<pb::ImportSnapshotResponse, UnitsError> {
        let mut violations = Violations::new();
        let date = match request.effective_date.as_ref().map(to_date) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                violations.add("effective_date", e.to_string());
                None
            }
            None => {
                violations.add("effective_date", "missing");
                None
            }
        };
        if request.rows.is_empty() {
            violations.add("rows", "a snapshot needs at least one row");
        }
        if request.request_id.len() > 200 {
            violations.add("request_id", "longer than 200 characters");
        }
        let (Some(date), true) = (date, violations.is_empty()) else {
            return Err(UnitsError::InvalidArgument(violations));
        };
        let rows: Vec<RowIn> = request
            .rows
            .iter()
            .map(|r| RowIn {
                code: r.code.trim().to_owned(),
                name: r.name.trim().to_owned(),
                kind: pb::UnitKind::try_from(r.kind).ok().and_then(Kind::from_pb),
                parent_code: r.parent_code.trim().to_owned(),
            })
            .collect();
        let lineage: Vec<LineageIn> = request
            .lineage
            .iter()
            .map(|l| LineageIn {
                old_code: l.old_code.trim().to_owned(),
                new_code: l.new_code.trim().to_owned(),
                part: pb::LineagePart::try_from(l.part)
                    .ok()
                    .and_then(Part::from_pb),
            })
            .collect();
        // A dry run and the real import are the same request: the import
        // answers a dry run's retry too.
        let request_hash = {
            let mut canonical = request.clone();
            canonical.validate_only = false;
            let mut hasher = RequestHasher::new();
            hasher.message(&canonical);
            hasher.finish()
        };

        let mut tx = self.repo.begin_import().await?;
        if !request.request_id.is_empty() {
            let stored = Repo::stored_import(&mut tx, &request.request_id).await?;
            if let Some(answer) = replay(stored, &request.request_id, &request_hash, "snapshot")? {
                return Ok(answer);
            }
        }

        let history = Repo::history(&mut tx).await?;
        let (next_unit, import_id, first_seq) = Repo::next_ids(&mut tx).await?;
        let plan = plan(&history, date, &rows, &lineage, next_unit);
        let summary = pb::ImportSummary {
            established: plan.count(crate::domain::Change::Establish) as i32,
            dissolved: plan.count(crate::domain::Change::Dissolve) as i32,
            merged: plan.count(crate::domain::Change::Merge) as i32,
            split: plan.count(crate::domain::Change::Split) as i32,
            renamed: plan.count(crate::domain::Change::Rename) as i32,
            reparented: plan.count(crate::domain::Change::Reparent) as i32,
            reclassified: plan.count(crate::domain::Change::Reclassify) as i32,
            recoded: plan.count(crate::domain::Change::Recode) as i32,
            unchanged: plan.unchanged as i32,
            lineage_links: plan.links.len() as i32,
        };
        let rejected: Vec<pb::RejectedRow> = plan
            .rejected
            .iter()
            .map(|r| pb::RejectedRow {
                list: r.list.as_str().to_owned(),
                index: r.index as i32,
                code: r.code.clone(),
                field: r.field.to_owned(),
                reason: r.reason.clone(),
            })
            .collect();
        let mut response = pb::ImportSnapshotResponse {
            import_id: 0,
            applied: false,
            summary: Some(summary),
            rejected,
            last_sequence: 0,
        };
        if request.validate_only {
            return Ok(response);
        }
        if !plan.rejected.is_empty() && !request.partial {
            let mut violations = Violations::new();
            for r in &plan.rejected {
                violations.add(r.path(), format!("{} ({})", r.reason, r.code));
            }
            return Err(UnitsError::InvalidArgument(violations));
        }
        if let Some(latest) = Repo::latest_import_date(&mut tx, &plan.provinces).await?
            && (latest > date || (latest == date && !plan.is_noop()))
        {
            return Err(UnitsError::FailedPrecondition(format!(
                "provinces {} already have an import effective {latest}; snapshots must be imported in date order",
                plan.provinces.join(", ")
            )));
        }
        // Another province's later import may have dated facts of a unit this
        // snapshot would end or change (through lineage): ending its
        // current facts on an earlier date would corrupt them.
        let rewritten: HashSet<i64> = plan
            .ended
            .iter()
            .chain(&plan.updated)
            .map(|f| f.unit_id)
            .collect();
        if let Some(later) = history
            .iter()
            .find(|v| v.valid_from > date && rewritten.contains(&v.unit_id))
        {
            return Err(UnitsError::FailedPrecondition(format!(
                "{} {} has facts recorded from {}, after this snapshot's date {date}; snapshots must be imported in date order",
                later.code, later.name, later.valid_from
            )));
        }
        response.import_id = import_id;
        response.applied = true;
        response.last_sequence = if plan.changes.is_empty() {
            0
        } else {
            first_seq + plan.changes.len() as i64 - 1
        };
        let meta = ImportMeta {
            request_id: &request.request_id,
            request_hash: &request_hash,
            source: &request.source,
            imported_by,
        };
        let applied = self
            .repo
            .apply(
                &mut tx,
                &plan,
                date,
                import_id,
                first_seq,
                &meta,
                &response.encode_to_vec(),
            )
            .await?;
        tx.commit().await?;
        tracing::info!(
            import_id,
            effective_date = %date,
            provinces = %plan.provinces.join(","),
            changes = plan.changes.len(),
            rejected = plan.rejected.len(),
            by = imported_by,
            "snapshot imported"
        );
        self.committed.notify(applied.last_sequence);
        Ok(response)
    }

    async fn resolve(
        &self,
        unit: Option<&pb::UnitRef>,
        as_of: Option<Date>,
    ) -> Result<UnitView, UnitsError> {
        match unit.and_then(|u| u.r#ref.as_ref()) {
            Some(pb::unit_ref::Ref::Code(code)) => {
                let code = code.trim();
                GsoCode::parse(code).map_err(|e| UnitsError::invalid("unit.code", e))?;
                let as_of = as_of.unwrap_or_else(today);
                self.repo.by_code(code, as_of).await?.ok_or_else(|| {
                    UnitsError::NotFound(format!("no unit has code {code} on {as_of}"))
                })
            }
            Some(pb::unit_ref::Ref::Id(id)) => {
                if *id <= 0 {
                    return Err(UnitsError::invalid(
                        "unit.id",
                        format!("{id} is not a unit id"),
                    ));
                }
                let found = match as_of {
                    Some(d) => self.repo.by_id(*id, d).await?,
                    None => self.repo.latest(*id).await?,
                };
                found.ok_or_else(|| match as_of {
                    Some(d) => UnitsError::NotFound(format!("unit {id} did not exist on {d}")),
                    None => UnitsError::NotFound(format!("no unit has id {id}")),
                })
            }
            None => Err(UnitsError::invalid("unit", "set unit.code or unit.id")),
        }
    }
}

fn parse_as_of(
    as_of: Option<&chiso_proto::google::r#type::Date>,
) -> Result<Option<Date>, UnitsError> {
    as_of
        .map(|d| to_date(d).map_err(|e| UnitsError::invalid("as_of", e.to_string())))
        .transpose()
}

fn unit_to_pb(u: &UnitView) -> pb::Unit {
    pb::Unit {
        id: u.id,
        code: u.code.clone(),
        name: u.name.clone(),
        kind: u.kind.to_pb() as i32,
        level: u.kind.level().to_pb() as i32,
        parent_id: u.parent_id.unwrap_or(0),
        parent_code: u.parent_code.clone().unwrap_or_default(),
        valid_from: Some(from_date(u.valid_from)),
        valid_to: u.valid_to.map(from_date),
    }
}

fn version_to_pb(v: &VersionView) -> pb::UnitVersion {
    pb::UnitVersion {
        code: v.code.clone(),
        name: v.name.clone(),
        kind: v.kind.to_pb() as i32,
        level: v.kind.level().to_pb() as i32,
        parent_id: v.parent_id.unwrap_or(0),
        parent_code: v.parent_code.clone().unwrap_or_default(),
        valid_from: Some(from_date(v.valid_from)),
        valid_to: v.valid_to.map(from_date),
    }
}

fn change_to_pb(c: &ChangeRow) -> pb::UnitChange {
    pb::UnitChange {
        sequence: c.seq,
        change: c.change.to_pb() as i32,
        effective_date: Some(from_date(c.effective_date)),
        unit_id: c.unit_id,
        code: c.code.clone(),
        name: c.name.clone(),
        kind: c.kind.to_pb() as i32,
        parent_id: c.parent_id.unwrap_or(0),
        previous_code: c.prev_code.clone().unwrap_or_default(),
        previous_name: c.prev_name.clone().unwrap_or_default(),
        previous_kind: c.prev_kind.map_or(0, |k| k.to_pb() as i32),
        previous_parent_id: c.prev_parent_id.unwrap_or(0),
        related_unit_id: c.related_unit_id.unwrap_or(0),
        part: c.part.map_or(0, |p| p.to_pb() as i32),
        import_id: c.import_id,
        source: c.source.clone(),
    }
}

#[tonic::async_trait]
impl UnitsService for Units {
    async fn get_unit(
        &self,
        request: Request<pb::GetUnitRequest>,
    ) -> Result<Response<pb::GetUnitResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let as_of = parse_as_of(req.as_of.as_ref())?;
        let unit = self.resolve(req.unit.as_ref(), as_of).await?;
        let versions = self
            .repo
            .versions(unit.id)
            .await
            .map_err(UnitsError::from)?;
        Ok(Response::new(pb::GetUnitResponse {
            unit: Some(unit_to_pb(&unit)),
            versions: versions.iter().map(version_to_pb).collect(),
        }))
    }

    async fn list_units(
        &self,
        request: Request<pb::ListUnitsRequest>,
    ) -> Result<Response<pb::ListUnitsResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let mut violations = Violations::new();
        let as_of = match parse_as_of(req.as_of.as_ref()) {
            Ok(d) => d.unwrap_or_else(today),
            Err(UnitsError::InvalidArgument(v)) => {
                violations.extend(v);
                today()
            }
            Err(e) => return Err(e.into()),
        };
        let parent_code = req.parent_code.trim();
        if !parent_code.is_empty()
            && let Err(e) = GsoCode::parse(parent_code)
        {
            violations.add("parent_code", e);
        }
        let level = match pb::UnitLevel::try_from(req.level) {
            Ok(l) => Level::from_pb(l),
            Err(_) => {
                violations.add("level", format!("{} is not a UnitLevel", req.level));
                None
            }
        };
        let page_size = page_size(req.page_size, &mut violations);
        let tokens = PageToken::for_query(format!("{as_of}|{parent_code}|{}", req.level));
        let after = tokens
            .position(&req.page_token, &mut violations)
            .unwrap_or_default();
        violations.check()?;
        let parent = if parent_code.is_empty() {
            None
        } else {
            let unit = self
                .repo
                .by_code(parent_code, as_of)
                .await
                .map_err(UnitsError::from)?
                .ok_or_else(|| {
                    UnitsError::NotFound(format!("no unit has code {parent_code} on {as_of}"))
                })?;
            Some(unit.id)
        };
        let (units, total) = self
            .repo
            .list(parent, level, as_of, &after, page_size as i64 + 1)
            .await
            .map_err(UnitsError::from)?;
        let more = units.len() > page_size;
        let units: Vec<_> = units.into_iter().take(page_size).collect();
        let next_page_token = tokens.next(more, units.last().map(|u| u.code.clone()));
        Ok(Response::new(pb::ListUnitsResponse {
            units: units.iter().map(unit_to_pb).collect(),
            next_page_token,
            total_size: total as i32,
        }))
    }

    async fn list_ancestors(
        &self,
        request: Request<pb::ListAncestorsRequest>,
    ) -> Result<Response<pb::ListAncestorsResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let as_of = parse_as_of(req.as_of.as_ref())?;
        let unit = self.resolve(req.unit.as_ref(), as_of).await?;
        // For an id without a date, walk the tree as it was in the unit's
        // last known version.
        let date = as_of.unwrap_or(match unit.valid_to {
            Some(_) => self
                .repo
                .versions(unit.id)
                .await
                .map_err(UnitsError::from)?
                .last()
                .map_or(unit.valid_from, |v| v.valid_from),
            None => today(),
        });
        let mut ancestors = Vec::new();
        let mut next = unit.parent_id;
        while let Some(id) = next {
            let parent = self
                .repo
                .by_id(id, date)
                .await
                .map_err(UnitsError::from)?
                .ok_or_else(|| {
                    UnitsError::Internal(format!("parent {id} of a unit is missing on {date}"))
                })?;
            next = parent.parent_id;
            ancestors.push(unit_to_pb(&parent));
            if ancestors.len() > 8 {
                return Err(UnitsError::Internal("the hierarchy has a cycle".to_owned()).into());
            }
        }
        Ok(Response::new(pb::ListAncestorsResponse {
            unit: Some(unit_to_pb(&unit)),
            ancestors,
        }))
    }

    async fn list_lineage(
        &self,
        request: Request<pb::ListLineageRequest>,
    ) -> Result<Response<pb::ListLineageResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let as_of = parse_as_of(req.as_of.as_ref())?;
        let unit = self.resolve(req.unit.as_ref(), as_of).await?;
        let link_kind = |part: Part| match part {
            Part::Full => pb::ChangeKind::Merge,
            Part::Partial => pb::ChangeKind::Split,
        };
        let mut predecessors = Vec::new();
        for link in self
            .repo
            .links(unit.id, true)
            .await
            .map_err(UnitsError::from)?
        {
            let day_before = link
                .effective_date
                .previous_day()
                .unwrap_or(link.effective_date);
            let other = self
                .repo
                .by_id(link.old_unit_id, day_before)
                .await
                .map_err(UnitsError::from)?;
            predecessors.push(pb::LineageLink {
                unit: other.as_ref().map(unit_to_pb),
                change: link_kind(link.part) as i32,
                part: link.part.to_pb() as i32,
                effective_date: Some(from_date(link.effective_date)),
                source: link.source,
            });
        }
        let mut successors = Vec::new();
        for link in self
            .repo
            .links(unit.id, false)
            .await
            .map_err(UnitsError::from)?
        {
            let other = self
                .repo
                .by_id(link.new_unit_id, link.effective_date)
                .await
                .map_err(UnitsError::from)?;
            successors.push(pb::LineageLink {
                unit: other.as_ref().map(unit_to_pb),
                change: link_kind(link.part) as i32,
                part: link.part.to_pb() as i32,
                effective_date: Some(from_date(link.effective_date)),
                source: link.source,
            });
        }
        let changes = self
            .repo
            .changes_of(unit.id)
            .await
            .map_err(UnitsError::from)?;
        Ok(Response::new(pb::ListLineageResponse {
            unit: Some(unit_to_pb(&unit)),
            predecessors,
            successors,
            changes: changes.iter().map(change_to_pb).collect(),
        }))
    }

    async fn import_snapshot(
        &self,
        request: Request<pb::ImportSnapshotRequest>,
    ) -> Result<Response<pb::ImportSnapshotResponse>, Status> {
        let who = caller(&request)?;
        who.require(Role::Admin)?;
        let req = request.into_inner();
        if !who.is_national() {
            for (i, row) in req.rows.iter().enumerate() {
                if row.parent_code.trim().is_empty() && row.code.trim() != who.scope.as_str() {
                    return Err(UnitsError::PermissionDenied(format!(
                        "{} may import only province {}, and rows[{i}] is province {}",
                        who.subject,
                        who.scope,
                        row.code.trim()
                    ))
                    .into());
                }
            }
        }
        Ok(Response::new(
            self.import_snapshot_as(&req, &who.subject).await?,
        ))
    }

    type WatchUnitChangesStream = WatchStream<pb::WatchUnitChangesResponse>;

    async fn watch_unit_changes(
        &self,
        request: Request<pb::WatchUnitChangesRequest>,
    ) -> Result<Response<Self::WatchUnitChangesStream>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let stream = follow(
            req.after_sequence,
            self.repo.clone(),
            &self.committed,
            self.shutdown.clone(),
            |change| pb::WatchUnitChangesResponse {
                change: Some(change_to_pb(&change)),
            },
        )?;
        Ok(Response::new(stream))
    }
}
