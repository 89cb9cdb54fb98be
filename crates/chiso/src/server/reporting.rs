//! The reporting service, wired once for `chiso up` and
//! `chiso reporting serve`.

use chiso_auth::AuthInterceptor;
use chiso_proto::reporting::v1::reporting_service_server::ReportingServiceServer;
use chiso_proto::reporting::v1::targets_service_server::TargetsServiceServer;
use chiso_reporting::hierarchy::Hierarchy;
use chiso_reporting::{Projection, Projector, Reporting};
use chiso_server::Server;
use chiso_storage::Db;
use tokio_util::sync::CancellationToken;

use super::Link;
use super::database::{Service, open_database};

/// Where the reporting service reads from: the hierarchy from the units
/// service, the event stream from the assessment service at
/// `assessment_url`, both called with the units link's service token.
pub struct Sources<'a> {
    pub units: &'a Link,
    pub assessment_url: &'a str,
}

/// The reporting service over its database, with the Thanh Hóa plan
/// loaded, and the projector and hierarchy cache that feed it.
pub struct ReportingWiring {
    service: Reporting,
    db: Db,
    projector: Projector,
    hierarchy: Hierarchy,
}

impl ReportingWiring {
    pub async fn open(url: &str, sources: &Sources<'_>) -> anyhow::Result<ReportingWiring> {
        let db = open_database(Service::Reporting, url).await?;
        let projection = Projection::new(db.clone());
        let token = &sources.units.token;
        let hierarchy = Hierarchy::new(&sources.units.url, token).map_err(anyhow::Error::msg)?;
        let projector = Projector::new(projection.clone(), sources.assessment_url, token)
            .map_err(anyhow::Error::msg)?;
        let service = Reporting::new(projection, hierarchy.clone());
        let targets = service
            .load_plan()
            .await
            .map_err(|e| anyhow::anyhow!("loading the Thanh Hóa plan: {e}"))?;
        if targets > 0 {
            tracing::info!(targets, "loaded the Thanh Hóa targets");
        }
        Ok(ReportingWiring {
            service,
            db,
            projector,
            hierarchy,
        })
    }

    /// Mounts the services and starts following the streams that feed
    /// them; the followers retry until their sources answer (under `chiso
    /// up`, this same server once it listens). On PostgreSQL the replicas
    /// elect one projector among themselves.
    pub fn mount(
        self,
        server: Server,
        auth: &AuthInterceptor,
        shutdown: &CancellationToken,
    ) -> Server {
        tokio::spawn(self.projector.run(shutdown.clone()));
        tokio::spawn(self.hierarchy.follow_changes(shutdown.clone()));
        server
            .add_service(TargetsServiceServer::with_interceptor(
                self.service.clone(),
                auth.clone(),
            ))
            .add_service(ReportingServiceServer::with_interceptor(
                self.service,
                auth.clone(),
            ))
            .follow_database(self.db)
    }
}
