//! Server streams that follow an ordered log (unit changes, assessment
//! events): read what is there, then wait for a commit of this replica, a
//! poll for those of other replicas, or shutdown.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::ApiError;

/// How often a stream looks for entries committed by other replicas.
pub const WATCH_POLL: Duration = Duration::from_secs(1);
/// Most entries read from the log at once.
pub const WATCH_BATCH: i64 = 500;

/// A boxed stream of answers, as tonic's server-streaming methods return.
pub type WatchStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The latest sequence this replica committed, for streams to wake on.
#[derive(Debug, Clone)]
pub struct Committed(watch::Sender<i64>);

impl Default for Committed {
    fn default() -> Self {
        Committed(watch::channel(0).0)
    }
}

impl Committed {
    pub fn new() -> Committed {
        Committed::default()
    }

    /// Wakes the streams; 0 (nothing committed) wakes nobody.
    pub fn notify(&self, sequence: i64) {
        if sequence > 0 {
            self.0.send_replace(sequence);
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.0.subscribe()
    }
}

/// Streams the entries after `after`, in order, until `shutdown`.
/// `read(cursor, limit)` returns entries after `cursor` with their
/// sequences; `answer` turns one into the stream's message.
pub fn follow<E, T, R, Fut>(
    after: i64,
    committed: &Committed,
    shutdown: CancellationToken,
    mut read: R,
    answer: fn(E) -> T,
) -> WatchStream<T>
where
    E: Send + 'static,
    T: Send + 'static,
    R: FnMut(i64, i64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<(i64, E)>, ApiError>> + Send,
{
    let mut committed = committed.subscribe();
    Box::pin(async_stream::try_stream! {
        let mut cursor = after;
        loop {
            let batch = read(cursor, WATCH_BATCH).await.map_err(Status::from)?;
            if batch.is_empty() {
                tokio::select! {
                    _ = committed.changed() => {}
                    () = tokio::time::sleep(WATCH_POLL) => {}
                    () = shutdown.cancelled() => break,
                }
                continue;
            }
            for (sequence, entry) in batch {
                cursor = sequence;
                yield answer(entry);
            }
        }
    })
}
