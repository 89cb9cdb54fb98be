//! Follows the assessment event stream into the projection.
//!
//! Exactly one projector runs per database: on PostgreSQL, replicas elect it
//! with a session advisory lock held on a dedicated connection, through which
//! the leader also applies every event (when that connection drops, the lock
//! is released, the old leader can write no more, and another replica takes
//! over); SQLite files have one process. Each event is applied with the cursor in
//! one transaction, and the stream resumes after the cursor, so a crash,
//! restart or dropped stream loses and double-counts nothing.

use std::time::Duration;

use chiso_proto::assessment::v1::{
    self as apb, assessment_service_client::AssessmentServiceClient,
};
use chiso_server::BearerInterceptor;
use chiso_storage::Backend;
use chiso_storage::sqlx::{self, AnyConnection, Connection};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::projection::Projection;

/// Advisory lock key of the projector's leadership.
const LEADER_LOCK: i64 = 0x6368_6973_6f72_7001;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

type Client = AssessmentServiceClient<InterceptedService<Channel, BearerInterceptor>>;

/// The projector: where to read events from and where to write them.
#[derive(Clone)]
pub struct Projector {
    projection: Projection,
    client: Client,
    /// The cursor after each applied event, for readers waiting on it.
    applied: watch::Sender<i64>,
}

impl Projector {
    pub fn new(
        projection: Projection,
        assessment_url: &str,
        token: &str,
    ) -> Result<Projector, String> {
        let channel = Endpoint::from_shared(assessment_url.to_owned())
            .map_err(|e| format!("assessment url {assessment_url:?}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let (applied, _) = watch::channel(0);
        Ok(Projector {
            projection,
            client: AssessmentServiceClient::new(InterceptedService::new(
                channel,
                BearerInterceptor::new(token)?,
            )),
            applied,
        })
    }

    /// Receives the cursor after every applied event.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.applied.subscribe()
    }

    /// Runs until `shutdown`: wins leadership, then follows the stream,
    /// reconnecting with backoff.
    pub async fn run(self, shutdown: CancellationToken) {
        const FIRST_BACKOFF: Duration = Duration::from_millis(100);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let before = *self.applied.borrow();
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                r = self.lead_and_follow(&shutdown) => r,
            };
            match result {
                Ok(()) => return,
                Err(err) => {
                    // A stream that made progress was healthy: start over
                    // with a short wait.
                    if *self.applied.borrow() > before {
                        backoff = FIRST_BACKOFF;
                    }
                    tracing::warn!(error = %err, backoff_ms = backoff.as_millis() as u64, "projector interrupted; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn lead_and_follow(&self, shutdown: &CancellationToken) -> Result<(), String> {
        let db = self.projection.db();
        match db.backend() {
            Backend::Sqlite => self.follow(shutdown, None).await,
            Backend::Postgres => {
                // The lock lives as long as this session: a connection taken
                // out of the pool, so that however this ends (cancelled
                // included) the connection closes and the lock goes with it,
                // instead of staying behind on an idle pooled connection.
                let mut conn = db
                    .pool()
                    .acquire()
                    .await
                    .map_err(|e| e.to_string())?
                    .detach();
                loop {
                    let won: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                        .bind(LEADER_LOCK)
                        .fetch_one(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    if won {
                        break;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(MAX_BACKOFF) => {}
                    }
                }
                tracing::info!("this replica runs the projector");
                // Events are applied through the session holding the lock: if
                // it ends, so does this replica's leadership, and nothing it
                // still reads from the stream can be written.
                let result = self.follow(shutdown, Some(&mut conn)).await;
                let _ = conn.close().await;
                result
            }
        }
    }

    async fn follow(
        &self,
        shutdown: &CancellationToken,
        mut leader: Option<&mut AnyConnection>,
    ) -> Result<(), String> {
        let after = self.projection.cursor().await.map_err(|e| e.to_string())?;
        self.applied.send_replace(after);
        let mut stream = self
            .client
            .clone()
            .watch_assessment_events(apb::WatchAssessmentEventsRequest {
                after_sequence: after,
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                m = stream.message() => m,
            };
            let event = match message {
                Ok(Some(m)) => m.event.ok_or("an event message without an event")?,
                Ok(None) => return Err("the event stream ended".to_owned()),
                Err(s) => return Err(format!("{:?}: {}", s.code(), s.message())),
            };
            match leader.as_deref_mut() {
                Some(conn) => self.projection.apply_on(conn, &event).await,
                None => self.projection.apply(&event).await,
            }
            .map_err(|e| e.to_string())?;
            self.applied.send_replace(event.sequence);
        }
    }
}
