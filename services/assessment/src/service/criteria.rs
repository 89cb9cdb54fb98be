//! `chiso.assessment.v1.CriteriaService`: criteria sets as versioned data.

use chiso_auth::{Role, caller};
use chiso_proto::assessment::v1::{self as pb, criteria_service_server::CriteriaService};
use chiso_proto::units::v1::UnitLevel;
use chiso_server::{ApiError, PageToken, Violations, page_size};
use tonic::{Request, Response, Status};

use crate::assessments::{Assessments, draft_set, publish_set};
use crate::convert::{level_from_pb, set_to_pb};
use crate::repo::{SetState, StoredSet};
use chiso_criteria as criteria;

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
            let stored = StoredSet {
                toml: req.definition_toml.clone(),
                set,
                state: SetState::Draft,
                revision: 0,
            };
            return Ok(Response::new(pb::CreateCriteriaSetResponse {
                criteria_set: Some(set_to_pb(&stored, true)),
            }));
        }
        let stored = draft_set(&self.repo, &set, &req.definition_toml, &who.subject).await?;
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
        let stored = publish_set(&self.repo, req.id.trim(), req.version as u32, &req.etag).await?;
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
        let stored = self
            .find_set(req.id.trim(), req.version as u32)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!(
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
        let tokens = PageToken::for_query(format!(
            "sets|{}|{}|{}",
            req.level, req.year, req.include_drafts
        ));
        let after = tokens.position(&req.page_token, &mut v);
        v.check()?;
        let after = after.and_then(|p| {
            let (id, version) = p.rsplit_once('@')?;
            Some((id.to_owned(), version.parse::<u32>().ok()?))
        });
        let year = (req.year != 0).then_some(req.year);
        let mut sets = self
            .list_sets(level, year, req.include_drafts, after, size + 1)
            .await?;
        let more = sets.len() > size;
        sets.truncate(size);
        let next_page_token = tokens.next(
            more,
            sets.last()
                .map(|last| format!("{}@{}", last.set.id, last.set.version)),
        );
        Ok(Response::new(pb::ListCriteriaSetsResponse {
            criteria_sets: sets.iter().map(|s| set_to_pb(s, false)).collect(),
            next_page_token,
        }))
    }
}
