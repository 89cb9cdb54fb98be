//! What the test suites share: one conformance macro that runs each test on
//! every storage backend, the test databases it runs them on, a real units
//! server for the services that call one, and the requests the suites send.

pub mod requests;

use std::sync::Arc;
use std::time::Duration;

use chiso_auth::{AuthInterceptor, Verifier};
use chiso_proto::units::v1::units_service_server::UnitsServiceServer;
use chiso_server::{ServeOptions, Server};
use chiso_units::Units;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use chiso_storage::testing::{POSTGRES_ENV, TestDb};

/// Expands each named `async fn(Fixture)` into a module with a `sqlite` and
/// a `postgres` test. `Fixture` has `async fn sqlite() -> Fixture` and
/// `async fn postgres() -> Option<Fixture>` (`None` when
/// `CHISO_TEST_DATABASE_URL` is unset: the test says so and passes).
///
/// ```ignore
/// chiso_testkit::on_every_backend!(Env: a_retry_gets_the_first_answer, …);
/// ```
#[macro_export]
macro_rules! on_every_backend {
    ($fixture:ident: $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::$fixture::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match super::$fixture::postgres().await {
                    Some(fixture) => super::$name(fixture).await,
                    None => eprintln!(
                        "{}::postgres not run: {} is not set",
                        stringify!($name),
                        $crate::POSTGRES_ENV
                    ),
                }
            }
        }
    )*};
}

/// A new, empty SQLite database.
pub async fn sqlite_db() -> TestDb {
    TestDb::sqlite().await.expect("a SQLite test database")
}

/// A new, empty PostgreSQL database; `None` when `CHISO_TEST_DATABASE_URL`
/// is unset, a panic (a failed test, not a silent pass) when it is set and
/// the server cannot be used.
pub async fn postgres_db() -> Option<TestDb> {
    TestDb::postgres().await.unwrap_or_else(|e| {
        panic!("{POSTGRES_ENV} is set, but no test database could be created there: {e}")
    })
}

/// A real units service: a migrated SQLite test database with the Thanh Hóa
/// history, served as `chiso units serve` serves it (the auth interceptor in
/// front, verifying tokens signed with `secret`) on 127.0.0.1 port 0.
pub struct UnitsServer {
    pub url: String,
    units: Units,
    shutdown: CancellationToken,
    // Dropped last: the database goes away with it.
    _db: TestDb,
}

impl UnitsServer {
    pub async fn start(secret: &[u8]) -> UnitsServer {
        let db = sqlite_db().await;
        db.db
            .migrate(&chiso_units::MIGRATIONS)
            .await
            .expect("units migrations");
        let shutdown = CancellationToken::new();
        let units = Units::new(db.db.clone(), shutdown.clone());
        chiso_units::reference::load_thanh_hoa(&units)
            .await
            .expect("the Thanh Hóa history loads");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let auth = AuthInterceptor::new(Arc::new(Verifier::hs256(secret)));
        tokio::spawn(
            Server::new()
                .add_service(UnitsServiceServer::with_interceptor(units.clone(), auth))
                .serve(
                    listener,
                    shutdown.clone(),
                    ServeOptions {
                        grace: Duration::from_secs(1),
                    },
                ),
        );
        UnitsServer {
            url,
            units,
            shutdown,
            _db: db,
        }
    }

    /// The service itself, for calls that skip the network and the
    /// interceptor.
    pub fn units(&self) -> &Units {
        &self.units
    }
}

impl Drop for UnitsServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
