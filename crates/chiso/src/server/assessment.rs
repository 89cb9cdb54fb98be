//! The assessment service, wired once for `chiso up` and
//! `chiso assessment serve`.

use chiso_assessment::Assessments;
use chiso_assessment::units_client::UnitsDirectory;
use chiso_auth::AuthInterceptor;
use chiso_proto::assessment::v1::assessment_service_server::AssessmentServiceServer;
use chiso_proto::assessment::v1::criteria_service_server::CriteriaServiceServer;
use chiso_server::Server;
use chiso_storage::Db;
use tokio_util::sync::CancellationToken;

use super::Link;
use super::database::{Service, open_database};

/// The assessment service over its database, with the shipped criteria
/// sets published, ready to mount.
pub struct AssessmentWiring {
    service: Assessments,
    db: Db,
}

impl AssessmentWiring {
    /// Opens the database at `url`; the service resolves units through the
    /// units service at `units`.
    pub async fn open(
        url: &str,
        units: &Link,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<AssessmentWiring> {
        let directory =
            UnitsDirectory::new(&units.url, &units.token).map_err(anyhow::Error::msg)?;
        let db = open_database(Service::Assessment, url).await?;
        let service = Assessments::new(db.clone(), directory, shutdown.clone());
        let published = chiso_assessment::publish_defaults(service.repo())
            .await
            .map_err(|e| anyhow::anyhow!("publishing the shipped criteria sets: {e}"))?;
        if published > 0 {
            tracing::info!(published, "published the shipped criteria sets");
        }
        Ok(AssessmentWiring { service, db })
    }

    pub fn mount(self, server: Server, auth: &AuthInterceptor) -> Server {
        server
            .add_service(CriteriaServiceServer::with_interceptor(
                self.service.clone(),
                auth.clone(),
            ))
            .add_service(AssessmentServiceServer::with_interceptor(
                self.service,
                auth.clone(),
            ))
            .follow_database(self.db)
    }
}
