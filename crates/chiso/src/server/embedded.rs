//! `chiso up`: every service in one process on one address, SQLite files in
//! a data directory, the shipped reference data loaded.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chiso_auth::{AuthInterceptor, Issuer, Role, Verifier};
use chiso_server::{ServeOptions, Server};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Link;
use super::assessment::AssessmentWiring;
use super::database::{Service, sqlite_url};
use super::reporting::{ReportingWiring, Sources};
use super::units::UnitsWiring;

/// How long the service tokens the services present to each other last.
const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// Every service of `chiso up`, ready to serve.
pub struct Embedded {
    units: UnitsWiring,
    assessment: AssessmentWiring,
    reporting: ReportingWiring,
    verifier: Arc<Verifier>,
}

/// Opens everything `chiso up` runs from `data_dir`, for a server that will
/// listen on `listener`, and loads the shipped reference data and criteria
/// sets (a no-op once loaded).
pub async fn open_embedded(
    data_dir: &Path,
    listener: &TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<Embedded> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let units = UnitsWiring::open(&sqlite_url(data_dir, Service::Units), &shutdown).await?;
    let changes = chiso_units::reference::load_thanh_hoa(units.service())
        .await
        .map_err(|e| anyhow::anyhow!("loading Thanh Hóa reference data: {e}"))?;
    if changes > 0 {
        tracing::info!(changes, "loaded Thanh Hóa reference history");
    }

    // The other services call each other over gRPC, here on the same
    // address, each with a service token of its own.
    let secret = chiso_auth::dev_secret(data_dir)?;
    let own_url = format!("http://{}", listener.local_addr()?);
    let link = |subject: &str| -> anyhow::Result<Link> {
        let token = Issuer::hs256(&secret).issue(
            subject,
            &[Role::Service],
            chiso_auth::NATIONAL_SCOPE,
            SERVICE_TOKEN_TTL,
        )?;
        Ok(Link {
            url: own_url.clone(),
            token,
        })
    };
    let assessment = AssessmentWiring::open(
        &sqlite_url(data_dir, Service::Assessment),
        &link("chiso-assessment")?,
        &shutdown,
    )
    .await?;
    let reporting = ReportingWiring::open(
        &sqlite_url(data_dir, Service::Reporting),
        &Sources {
            units: &link("chiso-reporting")?,
            assessment_url: &own_url,
        },
    )
    .await?;
    Ok(Embedded {
        units,
        assessment,
        reporting,
        verifier: Arc::new(Verifier::hs256(&secret)),
    })
}

impl Embedded {
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let auth = AuthInterceptor::new(self.verifier);
        let server = self.units.mount(Server::new(), &auth);
        let server = self.reporting.mount(server, &auth, &shutdown);
        let server = self.assessment.mount(server, &auth);
        server
            .serve(listener, shutdown, ServeOptions { grace })
            .await
    }
}
