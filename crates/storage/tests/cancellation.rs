//! A write transaction whose caller is dropped while it begins (a cancelled
//! request, a stopped task) leaves nothing behind: the next writer gets
//! through. SQLite always; PostgreSQL when `CHISO_TEST_DATABASE_URL` is set
//! (and a failure, not a pass, when it is set but unusable).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chiso_storage::sqlx;
use chiso_storage::testing::{POSTGRES_ENV, TestDb};

/// Polls a future at most `polls` times, then drops it.
struct PollLimit<F: Future> {
    future: Pin<Box<F>>,
    polls: usize,
}

impl<F: Future> Future for PollLimit<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls == 0 {
            return Poll::Ready(None);
        }
        self.polls -= 1;
        self.future.as_mut().poll(cx).map(Some)
    }
}

async fn writers_get_through_after_cancelled_begins(db: TestDb) {
    sqlx::query("CREATE TABLE t (x BIGINT NOT NULL)")
        .execute(db.db.pool())
        .await
        .expect("a table");
    let mut written = 0;
    for polls in 0..12 {
        for _ in 0..10 {
            let cancelled = PollLimit {
                future: Box::pin(db.db.begin_write()),
                polls,
            };
            if let Some(tx) = cancelled.await {
                drop(tx.expect("a transaction"));
            }
            let write = async {
                let mut tx = db.db.begin_write().await?;
                sqlx::query("INSERT INTO t (x) VALUES (1)")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            };
            tokio::time::timeout(Duration::from_secs(20), write)
                .await
                .unwrap_or_else(|_| panic!("a begin dropped after {polls} polls: writers wait"))
                .unwrap_or_else(|e| panic!("a begin dropped after {polls} polls: {e}"));
            written += 1;
        }
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(db.db.pool())
        .await
        .expect("a count");
    assert_eq!(rows, written, "only the writes that committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writers_get_through_after_cancelled_begins() {
    writers_get_through_after_cancelled_begins(TestDb::sqlite().await.expect("a SQLite database"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writers_get_through_after_cancelled_begins() {
    let db = TestDb::postgres().await.unwrap_or_else(|e| {
        panic!("{POSTGRES_ENV} is set, but no test database could be created there: {e}")
    });
    match db {
        Some(db) => writers_get_through_after_cancelled_begins(db).await,
        None => eprintln!("not run: {POSTGRES_ENV} is not set"),
    }
}
