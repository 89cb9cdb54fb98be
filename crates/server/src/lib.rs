//! What every chiso gRPC server shares: serving with health that follows the
//! databases, reflection, W3C trace context, graceful shutdown, and
//! `InvalidArgument` errors that name each bad field, page tokens, safe
//! retries and the watch-stream loop.

mod client;
mod error;
mod idempotency;
mod names;
mod page_token;
mod serve;
mod violations;
mod watch;

pub use client::BearerInterceptor;
pub use error::ApiError;
pub use idempotency::{AnswerTable, RequestHasher, StoredAnswer, replay, request_hash};
pub use names::enum_name;
pub use page_token::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageToken, page_size};
pub use serve::{ServeOptions, Server, shutdown_on_signal};
pub use violations::{Violations, field_violations};
pub use watch::{Committed, OrderedLog, WATCH_BATCH, WATCH_POLL, WatchStream, follow};
