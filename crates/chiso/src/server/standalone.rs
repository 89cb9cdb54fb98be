//! `chiso <service> serve`: one service, any database, its peers and its
//! token key from the configuration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chiso_auth::{Algorithm, AuthInterceptor, Verifier};
use chiso_server::{ServeOptions, Server};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Link;
use super::assessment::AssessmentWiring;
use super::config::Config;
use super::database::{Service, sqlite_url};
use super::reporting::{ReportingWiring, Sources};
use super::units::UnitsWiring;

/// Serves `service` alone until `shutdown`. The assessment and reporting
/// services reach the units service at `units.url` with the service token in
/// `units.token_file`; reporting follows the assessment service's event
/// stream at `assessment.url` with the same token.
pub async fn serve(
    service: Service,
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let url = database_url(config, service);
    let server = match service {
        Service::Units => {
            let units = UnitsWiring::open(&url, &shutdown).await?;
            units.mount(Server::new(), &interceptor(config)?)
        }
        Service::Assessment => {
            let link = units_link(config)?;
            let assessment = AssessmentWiring::open(&url, &link, &shutdown).await?;
            assessment.mount(Server::new(), &interceptor(config)?)
        }
        Service::Reporting => {
            let link = units_link(config)?;
            let assessment_url = config.assessment.url.as_deref().context(
                "assessment.url (CHISO_ASSESSMENT__URL) must name the assessment service",
            )?;
            let sources = Sources {
                units: &link,
                assessment_url,
            };
            let reporting = ReportingWiring::open(&url, &sources).await?;
            reporting.mount(Server::new(), &interceptor(config)?, &shutdown)
        }
    };
    let options = ServeOptions {
        grace: Duration::from_secs(config.shutdown_grace_secs),
    };
    server.serve(listener, shutdown, options).await
}

/// The service's database: `database_url`, else its SQLite file in the
/// data directory.
pub fn database_url(config: &Config, service: Service) -> String {
    config
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(&config.data_dir, service))
}

fn interceptor(config: &Config) -> anyhow::Result<AuthInterceptor> {
    Ok(AuthInterceptor::new(configured_verifier(config)?))
}

/// The token verifier a standalone server is configured with.
pub fn configured_verifier(config: &Config) -> anyhow::Result<Arc<Verifier>> {
    let auth = &config.auth;
    let verifier = match (&auth.public_key_file, &auth.hs256_secret_file) {
        (Some(key), _) => {
            let pem = std::fs::read(key)
                .with_context(|| format!("cannot read auth.public_key_file {}", key.display()))?;
            Verifier::from_public_pem(auth.algorithm.unwrap_or(Algorithm::RS256), &pem)?
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

/// The units service's URL and the service token presented to it (and, by
/// the reporting service, to the assessment service).
fn units_link(config: &Config) -> anyhow::Result<Link> {
    let url = config
        .units
        .url
        .clone()
        .context("units.url (CHISO_UNITS__URL) must name the units service")?;
    let token_file = config
        .units
        .token_file
        .as_ref()
        .context("units.token_file (CHISO_UNITS__TOKEN_FILE) must hold a service token")?;
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("cannot read units.token_file {}", token_file.display()))?;
    Ok(Link {
        url,
        token: token.trim().to_owned(),
    })
}
