//! Assembling services into servers: `chiso up` (everything, SQLite files in
//! a data directory) and `chiso <service> serve` (one service, any database).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chiso_auth::{AuthInterceptor, Verifier};
use chiso_proto::units::v1::units_service_server::UnitsServiceServer;
use chiso_server::{ServeOptions, Server};
use chiso_storage::Db;
use chiso_units::Units;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

pub const UNITS_SERVICE: &str = "chiso.units.v1.UnitsService";

/// The SQLite URL of a service's file in a data directory.
pub fn sqlite_url(data_dir: &Path, service: &str) -> String {
    format!(
        "sqlite://{}",
        data_dir.join(format!("{service}.db")).display()
    )
}

/// Opens (creating and migrating) the units database.
pub async fn open_units(url: &str) -> anyhow::Result<Db> {
    let db = Db::connect(url)
        .await
        .with_context(|| format!("cannot open units database {url}"))?;
    db.migrate(&chiso_units::MIGRATIONS)
        .await
        .context("units migrations failed")?;
    Ok(db)
}

/// Opens everything `chiso up` runs, from `data_dir`, and loads the shipped
/// reference data (a no-op once loaded).
pub async fn open_embedded(
    data_dir: &Path,
    shutdown: CancellationToken,
) -> anyhow::Result<Embedded> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let units_db = open_units(&sqlite_url(data_dir, "units")).await?;
    let units = Units::new(units_db.clone(), shutdown);
    let changes = chiso_units::reference::load_thanh_hoa(&units)
        .await
        .map_err(|e| anyhow::anyhow!("loading Thanh Hóa reference data: {e}"))?;
    if changes > 0 {
        tracing::info!(changes, "loaded Thanh Hóa reference history");
    }
    let secret = chiso_auth::dev_secret(data_dir)?;
    Ok(Embedded {
        units,
        units_db,
        verifier: Arc::new(Verifier::hs256(&secret)),
    })
}

/// Every service of `chiso up`, ready to serve.
pub struct Embedded {
    pub units: Units,
    pub units_db: Db,
    pub verifier: Arc<Verifier>,
}

impl Embedded {
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let auth = AuthInterceptor::new(self.verifier);
        Server::new()
            .add_service(
                UNITS_SERVICE,
                UnitsServiceServer::with_interceptor(self.units, auth),
            )
            .follow_database(self.units_db)
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

/// Serves the units service alone.
pub async fn serve_units(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let url = config
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(&config.data_dir, "units"));
    let db = open_units(&url).await?;
    let verifier = configured_verifier(config)?;
    let units = Units::new(db.clone(), shutdown.clone());
    Server::new()
        .add_service(
            UNITS_SERVICE,
            UnitsServiceServer::with_interceptor(units, AuthInterceptor::new(verifier)),
        )
        .follow_database(db)
        .serve(
            listener,
            shutdown,
            ServeOptions {
                grace: Duration::from_secs(config.shutdown_grace_secs),
            },
        )
        .await
}
