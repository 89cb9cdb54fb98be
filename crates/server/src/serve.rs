use std::time::Duration;

use chiso_storage::Db;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// How often health re-checks the databases.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long in-flight calls may run after shutdown starts.
    pub grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            grace: Duration::from_secs(20),
        }
    }
}

/// A gRPC server under construction: the services, the fully qualified names
/// health reports for, and the databases health follows.
pub struct Server {
    routes: Routes,
    names: Vec<&'static str>,
    databases: Vec<Db>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    pub fn new() -> Server {
        Server {
            routes: Routes::default(),
            names: Vec::new(),
            databases: Vec::new(),
        }
    }

    /// Mounts a service; health reports for it under its gRPC name.
    pub fn add_service<S>(mut self, service: S) -> Server
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.routes = self.routes.add_service(service);
        self.names.push(S::NAME);
        self
    }

    /// Health turns NOT_SERVING while this database does not answer.
    pub fn follow_database(mut self, db: Db) -> Server {
        self.databases.push(db);
        self
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, reports
    /// NOT_SERVING, and lets in-flight calls finish within the grace period.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
        options: ServeOptions,
    ) -> anyhow::Result<()> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(chiso_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(chiso_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let names = self.names.clone();
        let health_task = tokio::spawn(follow_databases(
            reporter.clone(),
            names.clone(),
            self.databases,
            shutdown.clone(),
        ));

        let routes = self
            .routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        let addr = listener.local_addr()?;
        tracing::info!(%addr, services = ?names, "serving");

        let stop = shutdown.clone();
        let stop_reporter = reporter.clone();
        let stop_names = names.clone();
        let server = tonic::transport::Server::builder()
            .trace_fn(chiso_telemetry::server_span)
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                stop.cancelled().await;
                set_all(&stop_reporter, &stop_names, ServingStatus::NotServing).await;
                tracing::info!("shutting down: no new calls accepted");
            });
        tokio::pin!(server);

        let result = tokio::select! {
            result = &mut server => result.map_err(anyhow::Error::from),
            () = shutdown.cancelled() => {
                match tokio::time::timeout(options.grace, &mut server).await {
                    Ok(result) => result.map_err(anyhow::Error::from),
                    Err(_) => {
                        tracing::warn!(grace_secs = options.grace.as_secs(), "grace period over; dropping calls still in flight");
                        Ok(())
                    }
                }
            }
        };
        health_task.abort();
        tracing::info!(%addr, "stopped");
        result
    }
}

async fn set_all(reporter: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}

/// Keeps health in step with the databases: SERVING only while every one of
/// them answers.
async fn follow_databases(
    reporter: HealthReporter,
    names: Vec<&'static str>,
    databases: Vec<Db>,
    shutdown: CancellationToken,
) {
    let mut last = None;
    loop {
        let mut healthy = true;
        for db in &databases {
            let ping = tokio::time::timeout(HEALTH_INTERVAL, db.ping()).await;
            if !matches!(ping, Ok(Ok(()))) {
                healthy = false;
            }
        }
        let status = if healthy {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if shutdown.is_cancelled() {
            return;
        }
        if last != Some(healthy) {
            if healthy {
                tracing::info!("databases reachable: serving");
            } else {
                tracing::warn!("a database does not answer: not serving");
            }
            set_all(&reporter, &names, status).await;
            last = Some(healthy);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(HEALTH_INTERVAL) => {}
        }
    }
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub fn shutdown_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(err) => {
                        tracing::error!(%err, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => tracing::info!(signal = "SIGINT", "shutdown requested"),
                _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
            tracing::info!(signal = "ctrl-c", "shutdown requested");
        }
        token.cancel();
    });
}
