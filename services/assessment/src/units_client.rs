//! Asking the units service which unit a code names in a year, and where it
//! sits. Every answer is as of the end of the assessed year.

use std::time::Duration;

use chiso_proto::assessment::v1 as pb;
use chiso_proto::units::v1::{self as units_pb, units_service_client::UnitsServiceClient};
use chiso_server::BearerInterceptor;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use chiso_server::ApiError;

/// How long one look-up may take before the caller is told `Unavailable`.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A unit as of the end of a year, with its ancestry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUnit {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub level: units_pb::UnitLevel,
    /// Parent first, province last.
    pub ancestors: Vec<pb::AncestorRef>,
}

impl ResolvedUnit {
    /// `/38/395/15499/`: the codes from the province down to the unit.
    pub fn scope_path(&self) -> String {
        let mut path = String::from("/");
        for a in self.ancestors.iter().rev() {
            path.push_str(&a.code);
            path.push('/');
        }
        path.push_str(&self.code);
        path.push('/');
        path
    }

    /// Whether `code` is this unit or one of its ancestors.
    pub fn is_within(&self, code: &str) -> bool {
        self.code == code || self.ancestors.iter().any(|a| a.code == code)
    }

    /// The ancestor at `level`, if any.
    pub fn ancestor_at(&self, level: units_pb::UnitLevel) -> Option<&pb::AncestorRef> {
        self.ancestors.iter().find(|a| a.level == level as i32)
    }
}

/// A client of the units service.
#[derive(Clone)]
pub struct UnitsDirectory {
    client: UnitsServiceClient<InterceptedService<Channel, BearerInterceptor>>,
}

impl UnitsDirectory {
    /// Connects lazily to `url` presenting `token` (a service token).
    pub fn new(url: &str, token: &str) -> Result<UnitsDirectory, String> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("units url {url:?}: {e}"))?
            .connect_timeout(LOOKUP_TIMEOUT)
            .timeout(LOOKUP_TIMEOUT);
        let channel = endpoint.connect_lazy();
        Ok(UnitsDirectory {
            client: UnitsServiceClient::new(InterceptedService::new(
                channel,
                BearerInterceptor::new(token)?,
            )),
        })
    }

    /// The unit holding `code` at the end of `year`, or `None` if no unit
    /// did.
    pub async fn resolve(&self, code: &str, year: i32) -> Result<Option<ResolvedUnit>, ApiError> {
        let as_of = chiso_proto::google::r#type::Date {
            year,
            month: 12,
            day: 31,
        };
        let response = self
            .client
            .clone()
            .list_ancestors(units_pb::ListAncestorsRequest {
                unit: Some(units_pb::UnitRef {
                    r#ref: Some(units_pb::unit_ref::Ref::Code(code.to_owned())),
                }),
                as_of: Some(as_of),
            })
            .await;
        let answer = match response {
            Ok(answer) => answer.into_inner(),
            Err(status) if status.code() == Code::NotFound => return Ok(None),
            Err(status) if status.code() == Code::InvalidArgument => {
                return Err(ApiError::invalid(
                    "unit_code",
                    format!("{code:?}: {}", status.message()),
                ));
            }
            Err(status) => {
                return Err(ApiError::Unavailable(format!(
                    "units service: {:?}: {}",
                    status.code(),
                    status.message()
                )));
            }
        };
        let unit = answer
            .unit
            .ok_or_else(|| ApiError::Unavailable("units service sent no unit".to_owned()))?;
        Ok(Some(ResolvedUnit {
            id: unit.id,
            code: unit.code,
            name: unit.name,
            level: units_pb::UnitLevel::try_from(unit.level)
                .unwrap_or(units_pb::UnitLevel::Unspecified),
            ancestors: answer
                .ancestors
                .into_iter()
                .map(|a| pb::AncestorRef {
                    unit_id: a.id,
                    code: a.code,
                    name: a.name,
                    level: a.level,
                })
                .collect(),
        }))
    }
}
