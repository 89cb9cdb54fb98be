//! The hierarchy reporting rolls up, from the units service, as of the end
//! of each reported year. Answers are kept in memory and dropped whenever
//! the units service reports a change (`WatchUnitChanges`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chiso_proto::units::v1::{self as pb, UnitLevel};
use chiso_server::ApiError;
use chiso_units_client::UnitsClient;
pub use chiso_units_client::{Lineage, Placed};
use time::Date;
use tokio_util::sync::CancellationToken;

use crate::reports::lineage::{Lineages, Missing};

type Key = (String, i32, Date);

/// How long one call to the units service may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Hierarchy {
    client: UnitsClient,
    lists: Arc<Mutex<HashMap<Key, Arc<Vec<pb::Unit>>>>>,
    lineages: Arc<Mutex<HashMap<i64, Arc<Lineage>>>>,
}

impl Hierarchy {
    pub fn new(url: &str, token: &str) -> Result<Hierarchy, String> {
        Ok(Hierarchy {
            client: UnitsClient::new(url, token, CALL_TIMEOUT)?,
            lists: Arc::default(),
            lineages: Arc::default(),
        })
    }

    /// The unit holding `code` on `as_of`, with its ancestors.
    pub async fn place(&self, code: &str, as_of: Date) -> Result<Option<Placed>, ApiError> {
        self.client
            .place(code, as_of)
            .await
            .map_err(|e| match e.refused() {
                Some(message) => ApiError::invalid("scope_code", message),
                None => e.into(),
            })
    }

    /// Units under `parent` on `as_of`: the direct children (`level`
    /// unspecified) or every descendant at `level`.
    pub async fn units_under(
        &self,
        parent: &str,
        level: UnitLevel,
        as_of: Date,
    ) -> Result<Arc<Vec<pb::Unit>>, ApiError> {
        let key = (parent.to_owned(), level as i32, as_of);
        if let Some(found) = self.lists.lock().expect("cache lock").get(&key) {
            return Ok(found.clone());
        }
        let units = self
            .client
            .units_under(parent, level, as_of)
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    ApiError::NotFound(format!("no unit has code {parent} on {as_of}"))
                } else {
                    e.into()
                }
            })?;
        let units = Arc::new(units);
        self.lists
            .lock()
            .expect("cache lock")
            .insert(key, units.clone());
        Ok(units)
    }

    /// Ids of the units of `level` under `unit` on `as_of` (the unit itself
    /// when it is of that level).
    pub async fn counted(
        &self,
        unit: &pb::Unit,
        level: UnitLevel,
        as_of: Date,
    ) -> Result<Vec<i64>, ApiError> {
        if unit.level == level as i32 {
            return Ok(vec![unit.id]);
        }
        if unit.level > level as i32 {
            return Ok(Vec::new());
        }
        Ok(self
            .units_under(&unit.code, level, as_of)
            .await?
            .iter()
            .map(|u| u.id)
            .collect())
    }

    /// A unit's lineage, by id.
    pub async fn lineage(&self, id: i64) -> Result<Arc<Lineage>, ApiError> {
        if let Some(found) = self.lineages.lock().expect("cache lock").get(&id) {
            return Ok(found.clone());
        }
        let lineage = Arc::new(self.client.lineage(id).await?);
        self.lineages
            .lock()
            .expect("cache lock")
            .insert(id, lineage.clone());
        Ok(lineage)
    }

    /// Runs `compute` over lineages, fetching each one it reports missing and
    /// running it again, so the walks themselves stay pure.
    pub async fn with_lineages<T>(
        &self,
        mut compute: impl FnMut(&Lineages) -> Result<T, Missing>,
    ) -> Result<T, ApiError> {
        let mut known = Lineages::default();
        loop {
            match compute(&known) {
                Ok(answer) => return Ok(answer),
                Err(Missing(ids)) => {
                    for id in ids {
                        known.insert(id, self.lineage(id).await?);
                    }
                }
            }
        }
    }

    /// Drops what is remembered whenever the hierarchy changes, until
    /// `shutdown`.
    pub async fn follow_changes(self, shutdown: CancellationToken) {
        self.client
            .watch_changes(shutdown, || {
                self.lists.lock().expect("cache lock").clear();
                self.lineages.lock().expect("cache lock").clear();
            })
            .await;
    }
}
