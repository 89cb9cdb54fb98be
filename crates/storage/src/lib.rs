//! One database handle over SQLite (the embedded default) and PostgreSQL
//! (production).
//!
//! Services write portable SQL: `$N` placeholders, `WITH RECURSIVE`,
//! `ON CONFLICT`, dates as ISO-8601 `TEXT` (which sorts as dates do) and
//! integers for ids. What genuinely differs between the engines — how a write
//! transaction starts, how writers are serialised, the migrations — lives here
//! and in each service's per-backend migration folder.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use sqlx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// How many parameters one multi-row statement should bind. SQLite runs
    /// in-process, so statements are cheap, while binding through sqlx slows
    /// down more than linearly with the parameter count (a 10,599-commune
    /// import: 15 s at 30,000 parameters a statement, 0.2–0.3 s at 100–300;
    /// `chiso-bench`). PostgreSQL pays a round trip per statement instead.
    pub fn batch_params(self) -> usize {
        match self {
            Backend::Sqlite => 200,
            Backend::Postgres => 20_000,
        }
    }
}

/// What storage fails with; each service maps it to its own errors (through
/// `chiso_server::ApiError`), so no database error reaches a caller.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database url {0:?}: expected sqlite:// or postgres://")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored record does not read back, or a value does not encode.
    #[error("stored {what} is invalid: {detail}")]
    Record { what: &'static str, detail: String },
}

impl StorageError {
    /// A stored `what` that does not read (or encode) as it should.
    pub fn record(what: &'static str, detail: impl std::fmt::Display) -> StorageError {
        StorageError::Record {
            what,
            detail: detail.to_string(),
        }
    }

    /// Whether the database could not be reached (the pool, the network,
    /// TLS), as opposed to a statement that failed: the caller may retry,
    /// and nothing was written.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StorageError::Sqlx(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            )
        )
    }

    /// Whether a statement broke a unique constraint (e.g. a concurrent
    /// insert of the same request id).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StorageError::Sqlx(e) if is_unique_violation(e))
    }
}

/// The migrations of one service, one set per backend.
pub struct Migrations {
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

/// A pooled connection to one service's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects to `url` (`sqlite://path` creates the file if missing,
    /// `postgres://…`).
    pub async fn connect(url: &str) -> Result<Db, StorageError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StorageError::UnsupportedUrl(url.to_owned()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the one writer;
                            // synchronous=FULL makes a commit durable before
                            // it is acknowledged; the busy timeout makes a
                            // second writer wait instead of failing.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        Ok(Db { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), StorageError> {
        let migrator = match self.backend {
            Backend::Sqlite => &migrations.sqlite,
            Backend::Postgres => &migrations.postgres,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Starts a transaction that will write. On SQLite it takes the write
    /// lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first cannot upgrade once another connection has committed.
    ///
    /// The begin runs in a task of its own, so that a caller dropped while
    /// it is under way (a cancelled request, a stopped task) still ends with
    /// a `Transaction` that rolls back when dropped. Awaited in place, sqlx
    /// 0.8 can hand the connection back to the pool inside the transaction:
    /// on SQLite still holding the write lock, so every later writer fails
    /// with "database is locked" until the process restarts.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, StorageError> {
        let (pool, backend) = (self.pool.clone(), self.backend);
        let begin = tokio::spawn(async move {
            match backend {
                Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => pool.begin().await,
            }
        });
        match begin.await {
            Ok(tx) => Ok(tx?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the runtime itself is shutting down.
            Err(e) => Err(StorageError::Sqlx(sqlx::Error::Io(std::io::Error::other(
                e.to_string(),
            )))),
        }
    }

    /// Makes this transaction the only one holding `key` until it ends.
    ///
    /// Writers that append to an ordered log take this lock before they
    /// allocate sequence numbers, so numbers are committed in order and a
    /// reader that resumes after N can never skip a late commit. SQLite
    /// already has a single writer (`begin_write`).
    pub async fn lock_exclusive(
        &self,
        tx: &mut Transaction<'static, Any>,
        key: i64,
    ) -> Result<(), StorageError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Whether the database answers; health checks follow this.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether an error is a unique-constraint violation (e.g. a concurrent
/// insert of the same request id).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// Throwaway databases for tests: a SQLite file in a temporary directory, or
/// a fresh PostgreSQL database on the server named by
/// `CHISO_TEST_DATABASE_URL`, dropped when the handle is dropped.
pub mod testing {
    use super::{Db, StorageError};

    /// The environment variable naming the PostgreSQL server tests use.
    pub const POSTGRES_ENV: &str = "CHISO_TEST_DATABASE_URL";

    pub struct TestDb {
        pub db: Db,
        pub url: String,
        cleanup: Cleanup,
    }

    enum Cleanup {
        Dir(#[allow(dead_code)] tempdir::TempDir),
        Postgres { admin_url: String, name: String },
    }

    mod tempdir {
        /// A directory removed on drop.
        pub struct TempDir(pub std::path::PathBuf);

        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn unique(prefix: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000,
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    impl TestDb {
        /// A new, empty SQLite database.
        pub async fn sqlite() -> Result<TestDb, StorageError> {
            let dir = std::env::temp_dir().join(unique("chiso_test"));
            std::fs::create_dir_all(&dir).map_err(|e| StorageError::Sqlx(e.into()))?;
            let url = format!("sqlite://{}", dir.join("test.db").display());
            let db = Db::connect(&url).await?;
            Ok(TestDb {
                db,
                url,
                cleanup: Cleanup::Dir(tempdir::TempDir(dir)),
            })
        }

        /// A new, empty PostgreSQL database, or `None` when
        /// `CHISO_TEST_DATABASE_URL` is not set.
        pub async fn postgres() -> Result<Option<TestDb>, StorageError> {
            match std::env::var(POSTGRES_ENV) {
                Ok(admin_url) => TestDb::postgres_on(&admin_url).await.map(Some),
                Err(_) => Ok(None),
            }
        }

        /// A new, empty database on the PostgreSQL server at `admin_url`.
        pub async fn postgres_on(admin_url: &str) -> Result<TestDb, StorageError> {
            let admin_url = admin_url.to_owned();
            let name = unique("chiso_test");
            let admin = Db::connect(&admin_url).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(admin.pool())
                .await?;
            admin.close().await;
            let url = with_database(&admin_url, &name);
            let db = Db::connect(&url).await?;
            Ok(TestDb {
                db,
                url,
                cleanup: Cleanup::Postgres { admin_url, name },
            })
        }
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
                // Drop runs outside async code: use a short-lived runtime on
                // its own thread.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let pool = self.db.pool().clone();
                let _ = std::thread::spawn(move || {
                    let rt = tokio_runtime();
                    rt.block_on(async move {
                        pool.close().await;
                        if let Ok(admin) = Db::connect(&admin_url).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(admin.pool())
                            .await;
                            admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }

    /// `admin_url` with its database name replaced by `name`.
    fn with_database(admin_url: &str, name: &str) -> String {
        let (scheme, rest) = admin_url
            .split_once("://")
            .unwrap_or(("postgres", admin_url));
        let (rest, query) = rest.split_once('?').map_or((rest, ""), |(r, q)| (r, q));
        let host = rest.split_once('/').map_or(rest, |(h, _)| h);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{scheme}://{host}/{name}{query}")
    }

    fn tokio_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a test runtime")
    }
}
