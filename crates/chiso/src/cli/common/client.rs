//! Connecting to a chiso server as a person at a terminal.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chiso_auth::{Issuer, NATIONAL_SCOPE, Role};
use chiso_server::BearerInterceptor;
use clap::Args;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::cli::common::output::Output;

#[derive(Clone, Args)]
pub struct ClientArgs {
    /// Server address.
    #[arg(long, env = "CHISO_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// Bearer token [default: a development token from the data directory's key].
    #[arg(long, env = "CHISO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory whose development key signs a token when --token is not given.
    #[arg(long, default_value = "chiso-data")]
    pub data_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl std::fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientArgs")
            .field("server", &self.server)
            .field("data_dir", &self.data_dir)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

pub type AuthedChannel = InterceptedService<Channel, BearerInterceptor>;

impl ClientArgs {
    /// The token to present: `--token`/`CHISO_TOKEN`, else a short-lived
    /// national admin token signed with the data directory's development key.
    pub fn token(&self) -> anyhow::Result<String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let key = self.data_dir.join(chiso_auth::DEV_KEY_FILE);
        anyhow::ensure!(
            key.exists(),
            "no token: pass --token or set CHISO_TOKEN (or --data-dir of a `chiso up` whose development key signs one)"
        );
        let secret = chiso_auth::dev_secret(&self.data_dir)?;
        Ok(Issuer::hs256(&secret).issue(
            "chiso-cli",
            &[Role::Admin, Role::Reader],
            NATIONAL_SCOPE,
            Duration::from_secs(300),
        )?)
    }

    pub async fn connect(&self) -> anyhow::Result<AuthedChannel> {
        let interceptor = BearerInterceptor::new(&self.token()?).map_err(anyhow::Error::msg)?;
        let channel = Channel::from_shared(self.server.clone())
            .with_context(|| format!("--server {:?} is not a URL", self.server))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot reach chiso at {}", self.server))?;
        Ok(InterceptedService::new(channel, interceptor))
    }
}

/// A readable account of a failed call, with each bad field on its own line.
pub fn explain(status: tonic::Status) -> anyhow::Error {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    for (field, description) in chiso_server::field_violations(&status) {
        text.push_str(&format!("\n  {field}: {description}"));
    }
    anyhow::anyhow!(text)
}
