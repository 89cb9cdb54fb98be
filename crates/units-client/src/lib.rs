//! The one client other chiso services use to ask the units service where a
//! unit sits on a date, what lies under it, where it came from and went, and
//! when any of that changes. It holds no cache: what to remember, and for how
//! long, is the caller's choice.

use std::time::Duration;

use chiso_proto::units::v1::{self as pb, units_service_client::UnitsServiceClient};
use chiso_server::{ApiError, BearerInterceptor};
use time::Date;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Units asked for per page when listing; the service's own maximum.
const PAGE_SIZE: i32 = 1000;

/// A unit as of a date, with its ancestors (parent first, province last).
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub unit: pb::Unit,
    pub ancestors: Vec<pb::Unit>,
}

impl Placed {
    /// Whether `code` is the unit or one of its ancestors: the one test of
    /// "inside a scope" every service applies.
    pub fn is_within(&self, code: &str) -> bool {
        self.unit.code == code || self.ancestors.iter().any(|a| a.code == code)
    }

    pub fn level(&self) -> pb::UnitLevel {
        pb::UnitLevel::try_from(self.unit.level).unwrap_or(pb::UnitLevel::Unspecified)
    }

    /// `/38/395/15499/`: the codes from the province down to the unit.
    pub fn scope_path(&self) -> String {
        let mut path = String::from("/");
        for code in self
            .ancestors
            .iter()
            .rev()
            .map(|a| a.code.as_str())
            .chain([self.unit.code.as_str()])
        {
            path.push_str(code);
            path.push('/');
        }
        path
    }

    /// The ancestor at `level`, if any.
    pub fn ancestor_at(&self, level: pb::UnitLevel) -> Option<&pb::Unit> {
        self.ancestors.iter().find(|a| a.level == level as i32)
    }
}

/// A unit's lineage: its last known facts, and the links to the units it
/// came from and went into.
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    pub unit: pb::Unit,
    pub predecessors: Vec<pb::LineageLink>,
    pub successors: Vec<pb::LineageLink>,
}

/// Why the units service gave no answer. Callers decide what a refusal means
/// for their own request (which field was wrong); everything else is the
/// dependency being unavailable.
#[derive(Debug)]
pub enum UnitsError {
    /// The service answered with an error status.
    Status(tonic::Status),
    /// The service answered without the unit asked about.
    NoUnit,
}

impl UnitsError {
    /// The service's own words when it refused the value asked about.
    pub fn refused(&self) -> Option<&str> {
        match self {
            UnitsError::Status(s) if s.code() == Code::InvalidArgument => Some(s.message()),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, UnitsError::Status(s) if s.code() == Code::NotFound)
    }
}

impl From<UnitsError> for ApiError {
    fn from(err: UnitsError) -> ApiError {
        match err {
            UnitsError::Status(s) => {
                ApiError::Unavailable(format!("units service: {:?}: {}", s.code(), s.message()))
            }
            UnitsError::NoUnit => ApiError::Unavailable("units service sent no unit".to_owned()),
        }
    }
}

type Client = UnitsServiceClient<InterceptedService<Channel, BearerInterceptor>>;

/// A client of the units service, presenting a bearer token on every call.
#[derive(Clone)]
pub struct UnitsClient {
    client: Client,
}

fn code_ref(code: &str) -> Option<pb::UnitRef> {
    Some(pb::UnitRef {
        r#ref: Some(pb::unit_ref::Ref::Code(code.to_owned())),
    })
}

impl UnitsClient {
    /// Connects lazily to `url`; each call may take `call_timeout` before it
    /// counts as unavailable.
    pub fn new(url: &str, token: &str, call_timeout: Duration) -> Result<UnitsClient, String> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("units url {url:?}: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(call_timeout)
            .connect_lazy();
        Ok(UnitsClient {
            client: UnitsServiceClient::new(InterceptedService::new(
                channel,
                BearerInterceptor::new(token)?,
            )),
        })
    }

    /// The unit holding `code` on `as_of`, with its ancestors; `None` when no
    /// unit held it.
    pub async fn place(&self, code: &str, as_of: Date) -> Result<Option<Placed>, UnitsError> {
        let answer = self
            .client
            .clone()
            .list_ancestors(pb::ListAncestorsRequest {
                unit: code_ref(code),
                as_of: Some(chiso_proto::from_date(as_of)),
            })
            .await;
        match answer {
            Ok(a) => {
                let a = a.into_inner();
                let unit = a.unit.ok_or(UnitsError::NoUnit)?;
                Ok(Some(Placed {
                    unit,
                    ancestors: a.ancestors,
                }))
            }
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(UnitsError::Status(s)),
        }
    }

    /// Units under `parent` on `as_of`: the direct children (`level`
    /// unspecified) or every descendant at `level`, all pages.
    pub async fn units_under(
        &self,
        parent: &str,
        level: pb::UnitLevel,
        as_of: Date,
    ) -> Result<Vec<pb::Unit>, UnitsError> {
        let mut units = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .client
                .clone()
                .list_units(pb::ListUnitsRequest {
                    parent_code: parent.to_owned(),
                    level: level as i32,
                    as_of: Some(chiso_proto::from_date(as_of)),
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await
                .map_err(UnitsError::Status)?
                .into_inner();
            units.extend(page.units);
            if page.next_page_token.is_empty() {
                return Ok(units);
            }
            page_token = page.next_page_token;
        }
    }

    /// A unit's lineage, by id.
    pub async fn lineage(&self, id: i64) -> Result<Lineage, UnitsError> {
        let answer = self
            .client
            .clone()
            .list_lineage(pb::ListLineageRequest {
                unit: Some(pb::UnitRef {
                    r#ref: Some(pb::unit_ref::Ref::Id(id)),
                }),
                as_of: None,
            })
            .await
            .map_err(UnitsError::Status)?
            .into_inner();
        Ok(Lineage {
            unit: answer.unit.ok_or(UnitsError::NoUnit)?,
            predecessors: answer.predecessors,
            successors: answer.successors,
        })
    }

    /// Calls `changed` after each change to the hierarchy, following the
    /// watch through dropped streams (with a growing pause between tries)
    /// until `shutdown`.
    pub async fn watch_changes(&self, shutdown: CancellationToken, mut changed: impl FnMut()) {
        let mut after = 0;
        let mut backoff = Duration::from_millis(200);
        loop {
            let stream = self
                .client
                .clone()
                .watch_unit_changes(pb::WatchUnitChangesRequest {
                    after_sequence: after,
                })
                .await;
            if let Ok(stream) = stream {
                let mut stream = stream.into_inner();
                backoff = Duration::from_millis(200);
                loop {
                    let message = tokio::select! {
                        () = shutdown.cancelled() => return,
                        m = stream.message() => m,
                    };
                    match message {
                        Ok(Some(m)) => {
                            if let Some(change) = m.change {
                                after = change.sequence;
                            }
                            changed();
                        }
                        _ => break,
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: i64, code: &str, level: pb::UnitLevel) -> pb::Unit {
        pb::Unit {
            id,
            code: code.into(),
            level: level as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_placed_unit_is_within_itself_and_its_ancestors_only() {
        let placed = Placed {
            unit: unit(3, "15499", pb::UnitLevel::Commune),
            ancestors: vec![
                unit(2, "395", pb::UnitLevel::District),
                unit(1, "38", pb::UnitLevel::Province),
            ],
        };
        for code in ["15499", "395", "38"] {
            assert!(placed.is_within(code), "{code}");
        }
        for code in ["15500", "396", "01", "VN"] {
            assert!(!placed.is_within(code), "{code}");
        }
        assert_eq!(placed.scope_path(), "/38/395/15499/");
        assert_eq!(placed.level(), pb::UnitLevel::Commune);
        assert_eq!(
            placed.ancestor_at(pb::UnitLevel::District).map(|a| a.id),
            Some(2)
        );
    }
}
