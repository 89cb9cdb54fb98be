//! The units service, wired once for `chiso up` and `chiso units serve`.

use chiso_auth::AuthInterceptor;
use chiso_proto::units::v1::units_service_server::UnitsServiceServer;
use chiso_server::Server;
use chiso_storage::Db;
use chiso_units::Units;
use tokio_util::sync::CancellationToken;

use super::database::{Service, open_database};

/// The units service over its database, ready to mount.
pub struct UnitsWiring {
    service: Units,
    db: Db,
}

impl UnitsWiring {
    pub async fn open(url: &str, shutdown: &CancellationToken) -> anyhow::Result<UnitsWiring> {
        let db = open_database(Service::Units, url).await?;
        Ok(UnitsWiring {
            service: Units::new(db.clone(), shutdown.clone()),
            db,
        })
    }

    pub fn service(&self) -> &Units {
        &self.service
    }

    pub fn mount(self, server: Server, auth: &AuthInterceptor) -> Server {
        server
            .add_service(UnitsServiceServer::with_interceptor(
                self.service,
                auth.clone(),
            ))
            .follow_database(self.db)
    }
}
