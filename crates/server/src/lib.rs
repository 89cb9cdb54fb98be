//! What every chiso gRPC server shares: serving with health that follows the
//! databases, reflection, W3C trace context, graceful shutdown, and
//! `InvalidArgument` errors that name each bad field.

mod client;
mod error;
mod serve;
mod violations;

pub use client::BearerInterceptor;
pub use error::ApiError;
pub use serve::{ServeOptions, Server, shutdown_on_signal};
pub use violations::{Violations, field_violations};
