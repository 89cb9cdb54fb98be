//! The hierarchy reporting rolls up, from the units service, as of the end
//! of each reported year. Answers are kept in memory and dropped whenever
//! the units service reports a change (`WatchUnitChanges`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chiso_proto::units::v1::{self as pb, units_service_client::UnitsServiceClient};
use chiso_server::{ApiError, BearerInterceptor};
use time::Date;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

type Client = UnitsServiceClient<InterceptedService<Channel, BearerInterceptor>>;
type Key = (String, i32, Date);

/// A unit's lineage: its last known facts, and the links to the units it
/// came from and went into.
#[derive(Debug, Clone)]
pub struct Lineage {
    pub unit: pb::Unit,
    pub predecessors: Vec<pb::LineageLink>,
    pub successors: Vec<pb::LineageLink>,
}

/// A unit as of a date, with its ancestors (parent first).
#[derive(Debug, Clone)]
pub struct Placed {
    pub unit: pb::Unit,
    pub ancestors: Vec<pb::Unit>,
}

impl Placed {
    /// Whether `code` is the unit or one of its ancestors.
    pub fn is_within(&self, code: &str) -> bool {
        self.unit.code == code || self.ancestors.iter().any(|a| a.code == code)
    }
}

#[derive(Clone)]
pub struct Hierarchy {
    client: Client,
    lists: Arc<Mutex<HashMap<Key, Arc<Vec<pb::Unit>>>>>,
    lineages: Arc<Mutex<HashMap<i64, Arc<Lineage>>>>,
}

fn date_pb(d: Date) -> chiso_proto::google::r#type::Date {
    chiso_proto::from_date(d)
}

fn unavailable(status: tonic::Status) -> ApiError {
    ApiError::Unavailable(format!(
        "units service: {:?}: {}",
        status.code(),
        status.message()
    ))
}

impl Hierarchy {
    pub fn new(url: &str, token: &str) -> Result<Hierarchy, String> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("units url {url:?}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Hierarchy {
            client: UnitsServiceClient::new(InterceptedService::new(
                channel,
                BearerInterceptor::new(token)?,
            )),
            lists: Arc::default(),
            lineages: Arc::default(),
        })
    }

    /// The unit holding `code` on `as_of`, with its ancestors.
    pub async fn place(&self, code: &str, as_of: Date) -> Result<Option<Placed>, ApiError> {
        let answer = self
            .client
            .clone()
            .list_ancestors(pb::ListAncestorsRequest {
                unit: Some(pb::UnitRef {
                    r#ref: Some(pb::unit_ref::Ref::Code(code.to_owned())),
                }),
                as_of: Some(date_pb(as_of)),
            })
            .await;
        match answer {
            Ok(a) => {
                let a = a.into_inner();
                Ok(a.unit.map(|unit| Placed {
                    unit,
                    ancestors: a.ancestors,
                }))
            }
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) if s.code() == Code::InvalidArgument => {
                Err(ApiError::invalid("scope_code", s.message().to_owned()))
            }
            Err(s) => Err(unavailable(s)),
        }
    }

    /// Units under `parent` on `as_of`: the direct children (`level`
    /// unspecified) or every descendant at `level`.
    pub async fn units_under(
        &self,
        parent: &str,
        level: pb::UnitLevel,
        as_of: Date,
    ) -> Result<Arc<Vec<pb::Unit>>, ApiError> {
        let key = (parent.to_owned(), level as i32, as_of);
        if let Some(found) = self.lists.lock().expect("cache lock").get(&key) {
            return Ok(found.clone());
        }
        let mut units = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .client
                .clone()
                .list_units(pb::ListUnitsRequest {
                    parent_code: parent.to_owned(),
                    level: level as i32,
                    as_of: Some(date_pb(as_of)),
                    page_size: 1000,
                    page_token,
                })
                .await
                .map_err(|s| match s.code() {
                    Code::NotFound => {
                        ApiError::NotFound(format!("no unit has code {parent} on {as_of}"))
                    }
                    _ => unavailable(s),
                })?
                .into_inner();
            units.extend(page.units);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let units = Arc::new(units);
        self.lists
            .lock()
            .expect("cache lock")
            .insert(key, units.clone());
        Ok(units)
    }

    /// A unit's lineage, by id.
    pub async fn lineage(&self, id: i64) -> Result<Arc<Lineage>, ApiError> {
        if let Some(found) = self.lineages.lock().expect("cache lock").get(&id) {
            return Ok(found.clone());
        }
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
            .map_err(unavailable)?
            .into_inner();
        let lineage = Arc::new(Lineage {
            unit: answer
                .unit
                .ok_or_else(|| ApiError::Unavailable("units service sent no unit".to_owned()))?,
            predecessors: answer.predecessors,
            successors: answer.successors,
        });
        self.lineages
            .lock()
            .expect("cache lock")
            .insert(id, lineage.clone());
        Ok(lineage)
    }

    /// Drops what is remembered whenever the hierarchy changes, until
    /// `shutdown`.
    pub async fn follow_changes(self, shutdown: CancellationToken) {
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
                            self.lists.lock().expect("cache lock").clear();
                            self.lineages.lock().expect("cache lock").clear();
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
