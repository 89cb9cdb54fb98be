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

/// An ordered log a stream follows: entries after a sequence number, in
/// order, each with its own.
pub trait OrderedLog: Send + Sync + 'static {
    type Entry: Send + 'static;

    fn after(
        &self,
        sequence: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(i64, Self::Entry)>, ApiError>> + Send;
}

/// Streams the entries of `log` after `after_sequence` (which a caller
/// sent, so it is checked here), in order, until `shutdown`; `answer` turns
/// an entry into the stream's message.
pub fn follow<L: OrderedLog, T: Send + 'static>(
    after_sequence: i64,
    log: L,
    committed: &Committed,
    shutdown: CancellationToken,
    answer: fn(L::Entry) -> T,
) -> Result<WatchStream<T>, ApiError> {
    if after_sequence < 0 {
        return Err(ApiError::invalid(
            "after_sequence",
            format!("{after_sequence} is negative"),
        ));
    }
    let mut committed = committed.subscribe();
    Ok(Box::pin(async_stream::try_stream! {
        let mut cursor = after_sequence;
        loop {
            let batch = log.after(cursor, WATCH_BATCH).await.map_err(Status::from)?;
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
    }))
}
