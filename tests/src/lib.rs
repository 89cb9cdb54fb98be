//! `TestApp`: a real `chiso up` server (every service, SQLite files in a
//! temporary data directory, reference data loaded) on an ephemeral port.

use std::net::SocketAddr;
use std::time::Duration;

use chiso::cli::common::client::AuthedChannel;
use chiso_auth::{Issuer, Role};
use chiso_proto::units::v1::units_service_client::UnitsServiceClient;
use chiso_server::BearerInterceptor;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub struct TestApp {
    pub addr: SocketAddr,
    pub data_dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    issuer: Issuer,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        chiso_telemetry::init_for_tests();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let embedded = chiso::server::open_embedded(data_dir.path(), &listener, shutdown.clone())
            .await
            .expect("open the embedded services");
        let addr = listener.local_addr().expect("local addr");
        let server =
            tokio::spawn(embedded.serve(listener, shutdown.clone(), Duration::from_secs(5)));
        let secret = chiso_auth::dev_secret(data_dir.path()).expect("dev key");
        TestApp {
            addr,
            data_dir,
            shutdown,
            server: Some(server),
            issuer: Issuer::hs256(&secret),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token from the server's development key.
    pub fn token(&self, roles: &[Role], scope: &str) -> String {
        self.issuer
            .issue("test-system", roles, scope, Duration::from_secs(600))
            .expect("issue token")
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect to the test server")
    }

    pub async fn authed(&self, token: &str) -> AuthedChannel {
        InterceptedService::new(
            self.channel().await,
            BearerInterceptor::new(token).expect("token"),
        )
    }

    /// A units client presenting `token`.
    pub async fn units(&self, token: &str) -> UnitsServiceClient<AuthedChannel> {
        UnitsServiceClient::new(self.authed(token).await)
    }

    /// A units client for a national reader.
    pub async fn reader(&self) -> UnitsServiceClient<AuthedChannel> {
        self.units(&self.token(&[Role::Reader], "VN")).await
    }

    /// Starts shutdown and waits for the server to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.server.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub use chiso_testkit::requests::evidence;

/// A value that meets `ind`, with evidence.
pub fn meeting(
    ind: &chiso_proto::assessment::v1::Indicator,
) -> chiso_proto::assessment::v1::IndicatorValue {
    chiso_proto::assessment::v1::IndicatorValue {
        indicator_code: ind.code.clone(),
        value: Some(chiso::server::demo::value_for(ind, false, 0)),
        evidence: evidence(),
    }
}
