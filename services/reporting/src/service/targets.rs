//! `TargetsService`: creating, listing and deleting targets.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chiso_auth::{Caller, Role, caller};
use chiso_proto::reporting::v1::{self as pb, targets_service_server::TargetsService};
use chiso_server::{ApiError, Violations};
use tonic::{Request, Response, Status};

use super::Reporting;
use super::query::{checked, code};
use crate::authorize::{self, TargetChange};
use crate::targets as rules;

#[tonic::async_trait]
impl TargetsService for Reporting {
    async fn create_target(
        &self,
        request: Request<pb::CreateTargetRequest>,
    ) -> Result<Response<pb::CreateTargetResponse>, Status> {
        let who = caller(&request)?;
        who.require(Role::Admin)?;
        Ok(Response::new(
            self.create_target(&who, request.into_inner()).await?,
        ))
    }

    async fn list_targets(
        &self,
        request: Request<pb::ListTargetsRequest>,
    ) -> Result<Response<pb::ListTargetsResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(
            self.list_targets(&who, request.into_inner()).await?,
        ))
    }

    async fn delete_target(
        &self,
        request: Request<pb::DeleteTargetRequest>,
    ) -> Result<Response<pb::DeleteTargetResponse>, Status> {
        let who = caller(&request)?;
        who.require(Role::Admin)?;
        self.delete_target(&who, &request.into_inner().id).await?;
        Ok(Response::new(pb::DeleteTargetResponse {}))
    }
}

fn taken(id: &str) -> ApiError {
    ApiError::invalid("target.id", format!("{id} exists already"))
}

impl Reporting {
    async fn create_target(
        &self,
        who: &Caller,
        req: pb::CreateTargetRequest,
    ) -> Result<pb::CreateTargetResponse, ApiError> {
        authorize::may_change_targets(who, TargetChange::Create)?;
        let mut target = req.target.unwrap_or_default();
        target.scope_code = target.scope_code.trim().to_owned();
        checked(rules::check(&target))?;
        self.readable(who, &target.scope_code, rules::as_of(&target))
            .await?;
        if target.id.trim().is_empty() {
            target.id = format!(
                "{}-{}-{:08x}",
                target.scope_code,
                target.year,
                rand::random::<u32>()
            );
        } else if self.projection.target(&target.id).await?.is_some() {
            return Err(taken(&target.id));
        }
        if !req.validate_only && !self.projection.put_target(&target, &who.subject).await? {
            return Err(taken(&target.id));
        }
        Ok(pb::CreateTargetResponse {
            target: Some(target),
        })
    }

    async fn list_targets(
        &self,
        who: &Caller,
        req: pb::ListTargetsRequest,
    ) -> Result<pb::ListTargetsResponse, ApiError> {
        let mut v = Violations::new();
        let scope = req.scope_code.trim();
        if !scope.is_empty() {
            code("scope_code", scope, &mut v);
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
        checked(v)?;
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
                    .place(&t.scope_code, rules::as_of(&t))
                    .await?
                    .is_some_and(|p| authorize::sees(who, &p));
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
        Ok(pb::ListTargetsResponse {
            targets,
            next_page_token,
        })
    }

    async fn delete_target(&self, who: &Caller, id: &str) -> Result<(), ApiError> {
        let target = self
            .projection
            .target(id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no target {id}")))?;
        authorize::may_change_targets(who, TargetChange::Delete)?;
        self.readable(who, &target.scope_code, rules::as_of(&target))
            .await?;
        self.projection.delete_target(id).await?;
        Ok(())
    }
}
