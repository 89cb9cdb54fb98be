//! Assembling services into servers: `chiso up` (everything, SQLite files in
//! a data directory) and `chiso <service> serve` (one service, any database).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chiso_assessment::Assessments;
use chiso_assessment::units_client::UnitsDirectory;
use chiso_auth::{AuthInterceptor, Issuer, Role, Verifier};
use chiso_proto::assessment::v1::assessment_service_server::AssessmentServiceServer;
use chiso_proto::assessment::v1::criteria_service_server::CriteriaServiceServer;
use chiso_proto::reporting::v1::reporting_service_server::ReportingServiceServer;
use chiso_proto::reporting::v1::targets_service_server::TargetsServiceServer;
use chiso_proto::units::v1::units_service_server::UnitsServiceServer;
use chiso_reporting::hierarchy::Hierarchy;
use chiso_reporting::{Projection, Projector, Reporting};
use chiso_server::{ServeOptions, Server};
use chiso_storage::{Db, Migrations};
use chiso_units::Units;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod config;
pub mod demo;

use config::Config;

pub const UNITS_SERVICE: &str = "chiso.units.v1.UnitsService";
pub const CRITERIA_SERVICE: &str = "chiso.assessment.v1.CriteriaService";
pub const ASSESSMENT_SERVICE: &str = "chiso.assessment.v1.AssessmentService";
pub const TARGETS_SERVICE: &str = "chiso.reporting.v1.TargetsService";
pub const REPORTING_SERVICE: &str = "chiso.reporting.v1.ReportingService";

/// The services `chiso migrate` knows.
pub const SERVICES: [&str; 3] = ["units", "assessment", "reporting"];

/// The SQLite URL of a service's file in a data directory.
pub fn sqlite_url(data_dir: &Path, service: &str) -> String {
    format!(
        "sqlite://{}",
        data_dir.join(format!("{service}.db")).display()
    )
}

fn migrations(service: &str) -> anyhow::Result<&'static Migrations> {
    match service {
        "units" => Ok(&chiso_units::MIGRATIONS),
        "assessment" => Ok(&chiso_assessment::MIGRATIONS),
        "reporting" => Ok(&chiso_reporting::MIGRATIONS),
        other => anyhow::bail!(
            "unknown service {other:?} (expected one of {})",
            SERVICES.join(", ")
        ),
    }
}

/// Opens (creating and migrating) a service's database.
pub async fn open_database(service: &str, url: &str) -> anyhow::Result<Db> {
    let db = Db::connect(url)
        .await
        .with_context(|| format!("cannot open the {service} database"))?;
    db.migrate(migrations(service)?)
        .await
        .with_context(|| format!("{service} migrations failed"))?;
    Ok(db)
}

/// Every service of `chiso up`, ready to serve.
pub struct Embedded {
    pub units: Units,
    pub units_db: Db,
    pub assessments: Assessments,
    pub assessment_db: Db,
    pub reporting: Reporting,
    pub reporting_db: Db,
    pub projector: Projector,
    pub hierarchy: Hierarchy,
    pub verifier: Arc<Verifier>,
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
    let units_db = open_database("units", &sqlite_url(data_dir, "units")).await?;
    let units = Units::new(units_db.clone(), shutdown.clone());
    let changes = chiso_units::reference::load_thanh_hoa(&units)
        .await
        .map_err(|e| anyhow::anyhow!("loading Thanh Hóa reference data: {e}"))?;
    if changes > 0 {
        tracing::info!(changes, "loaded Thanh Hóa reference history");
    }

    let secret = chiso_auth::dev_secret(data_dir)?;
    // The assessment service asks the units service over gRPC, here on the
    // same address, as a service.
    let service_token = Issuer::hs256(&secret).issue(
        "chiso-assessment",
        &[Role::Service],
        chiso_auth::NATIONAL_SCOPE,
        Duration::from_secs(366 * 24 * 3600),
    )?;
    let own_url = format!("http://{}", listener.local_addr()?);
    let directory = UnitsDirectory::new(&own_url, &service_token).map_err(anyhow::Error::msg)?;
    let assessment_db = open_database("assessment", &sqlite_url(data_dir, "assessment")).await?;
    let assessments = Assessments::new(assessment_db.clone(), directory, shutdown);
    let published = chiso_assessment::publish_defaults(assessments.repo())
        .await
        .map_err(|e| anyhow::anyhow!("publishing the shipped criteria sets: {e}"))?;
    if published > 0 {
        tracing::info!(published, "published the shipped criteria sets");
    }

    let reporting_token = Issuer::hs256(&secret).issue(
        "chiso-reporting",
        &[Role::Service],
        chiso_auth::NATIONAL_SCOPE,
        Duration::from_secs(366 * 24 * 3600),
    )?;
    let reporting_db = open_database("reporting", &sqlite_url(data_dir, "reporting")).await?;
    let projection = Projection::new(reporting_db.clone());
    let hierarchy = Hierarchy::new(&own_url, &reporting_token).map_err(anyhow::Error::msg)?;
    let projector = Projector::new(projection.clone(), &own_url, &reporting_token)
        .map_err(anyhow::Error::msg)?;
    let reporting = Reporting::new(projection, hierarchy.clone());
    let targets = reporting
        .load_plan()
        .await
        .map_err(|e| anyhow::anyhow!("loading the Thanh Hóa plan: {e}"))?;
    if targets > 0 {
        tracing::info!(targets, "loaded the Thanh Hóa targets");
    }
    Ok(Embedded {
        units,
        units_db,
        assessments,
        assessment_db,
        reporting,
        reporting_db,
        projector,
        hierarchy,
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
        // The projector and the hierarchy cache follow their streams from
        // this same server once it listens; they retry until it does.
        tokio::spawn(self.projector.run(shutdown.clone()));
        tokio::spawn(self.hierarchy.follow_changes(shutdown.clone()));
        Server::new()
            .add_service(
                UNITS_SERVICE,
                UnitsServiceServer::with_interceptor(self.units, auth.clone()),
            )
            .add_service(
                TARGETS_SERVICE,
                TargetsServiceServer::with_interceptor(self.reporting.clone(), auth.clone()),
            )
            .add_service(
                REPORTING_SERVICE,
                ReportingServiceServer::with_interceptor(self.reporting, auth.clone()),
            )
            .add_service(
                CRITERIA_SERVICE,
                CriteriaServiceServer::with_interceptor(self.assessments.clone(), auth.clone()),
            )
            .add_service(
                ASSESSMENT_SERVICE,
                AssessmentServiceServer::with_interceptor(self.assessments, auth),
            )
            .follow_database(self.units_db)
            .follow_database(self.assessment_db)
            .follow_database(self.reporting_db)
            .serve(listener, shutdown, ServeOptions { grace })
            .await
    }
}

/// The token verifier a standalone server is configured with.
pub fn configured_verifier(config: &Config) -> anyhow::Result<Arc<Verifier>> {
    let auth = &config.auth;
    let verifier = match (&auth.public_key_file, &auth.hs256_secret_file) {
        (Some(key), _) => {
            let algorithm = auth.algorithm.as_deref().unwrap_or("RS256");
            let algorithm: chiso_auth::Algorithm = algorithm.parse().map_err(|_| {
                anyhow::anyhow!("auth.algorithm {algorithm:?} is not a JWT algorithm")
            })?;
            let pem = std::fs::read(key)
                .with_context(|| format!("cannot read auth.public_key_file {}", key.display()))?;
            Verifier::from_public_pem(algorithm, &pem)?
        }
        (None, Some(secret_file)) => {
            let text = std::fs::read_to_string(secret_file).with_context(|| {
                format!(
                    "cannot read auth.hs256_secret_file {}",
                    secret_file.display()
                )
            })?;
            let secret = chiso_auth::parse_hex_secret(&text).map_err(|e| {
                anyhow::anyhow!("auth.hs256_secret_file {}: {e}", secret_file.display())
            })?;
            Verifier::hs256(&secret)
        }
        (None, None) => anyhow::bail!(
            "no token key configured: set auth.public_key_file (CHISO_AUTH__PUBLIC_KEY_FILE) or auth.hs256_secret_file"
        ),
    };
    Ok(Arc::new(verifier))
}

fn database_url(config: &Config, service: &str) -> String {
    config
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(&config.data_dir, service))
}

fn options(config: &Config) -> ServeOptions {
    ServeOptions {
        grace: Duration::from_secs(config.shutdown_grace_secs),
    }
}

/// Serves the units service alone.
pub async fn serve_units(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let db = open_database("units", &database_url(config, "units")).await?;
    let verifier = configured_verifier(config)?;
    let units = Units::new(db.clone(), shutdown.clone());
    Server::new()
        .add_service(
            UNITS_SERVICE,
            UnitsServiceServer::with_interceptor(units, AuthInterceptor::new(verifier)),
        )
        .follow_database(db)
        .serve(listener, shutdown, options(config))
        .await
}

/// The units service's URL and the service token presented to it (and, by
/// the reporting service, to the assessment service).
fn units_link(config: &Config) -> anyhow::Result<(&str, String)> {
    let url = config
        .units
        .url
        .as_deref()
        .context("units.url (CHISO_UNITS__URL) must name the units service")?;
    let token_file = config
        .units
        .token_file
        .as_ref()
        .context("units.token_file (CHISO_UNITS__TOKEN_FILE) must hold a service token")?;
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("cannot read units.token_file {}", token_file.display()))?;
    Ok((url, token.trim().to_owned()))
}

/// Serves the assessment service alone; it reaches the units service at
/// `units.url` with the service token in `units.token_file`.
pub async fn serve_assessment(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (url, token) = units_link(config)?;
    let directory = UnitsDirectory::new(url, &token).map_err(anyhow::Error::msg)?;
    let db = open_database("assessment", &database_url(config, "assessment")).await?;
    let verifier = configured_verifier(config)?;
    let assessments = Assessments::new(db.clone(), directory, shutdown.clone());
    chiso_assessment::publish_defaults(assessments.repo())
        .await
        .map_err(|e| anyhow::anyhow!("publishing the shipped criteria sets: {e}"))?;
    let auth = AuthInterceptor::new(verifier);
    Server::new()
        .add_service(
            CRITERIA_SERVICE,
            CriteriaServiceServer::with_interceptor(assessments.clone(), auth.clone()),
        )
        .add_service(
            ASSESSMENT_SERVICE,
            AssessmentServiceServer::with_interceptor(assessments, auth),
        )
        .follow_database(db)
        .serve(listener, shutdown, options(config))
        .await
}

/// Serves the reporting service alone: it follows the assessment service's
/// event stream at `assessment.url` into its own database and reads the
/// hierarchy from the units service at `units.url`, presenting the service
/// token in `units.token_file` to both.
pub async fn serve_reporting(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (units_url, token) = units_link(config)?;
    let assessment_url = config
        .assessment
        .url
        .as_deref()
        .context("assessment.url (CHISO_ASSESSMENT__URL) must name the assessment service")?;
    let verifier = configured_verifier(config)?;
    let db = open_database("reporting", &database_url(config, "reporting")).await?;
    let projection = Projection::new(db.clone());
    let hierarchy = Hierarchy::new(units_url, &token).map_err(anyhow::Error::msg)?;
    let projector =
        Projector::new(projection.clone(), assessment_url, &token).map_err(anyhow::Error::msg)?;
    let reporting = Reporting::new(projection, hierarchy.clone());
    let targets = reporting
        .load_plan()
        .await
        .map_err(|e| anyhow::anyhow!("loading the Thanh Hóa plan: {e}"))?;
    if targets > 0 {
        tracing::info!(targets, "loaded the Thanh Hóa targets");
    }
    // On PostgreSQL the replicas elect one projector among themselves.
    tokio::spawn(projector.run(shutdown.clone()));
    tokio::spawn(hierarchy.follow_changes(shutdown.clone()));
    let auth = AuthInterceptor::new(verifier);
    Server::new()
        .add_service(
            TARGETS_SERVICE,
            TargetsServiceServer::with_interceptor(reporting.clone(), auth.clone()),
        )
        .add_service(
            REPORTING_SERVICE,
            ReportingServiceServer::with_interceptor(reporting, auth),
        )
        .follow_database(db)
        .serve(listener, shutdown, options(config))
        .await
}
