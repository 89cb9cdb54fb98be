use chiso_storage::{StorageError, sqlx};
use tonic::Status;

use crate::Violations;

/// What a chiso service call can fail with. `From<ApiError> for Status` is
/// the one place these become gRPC codes.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid argument")]
    InvalidArgument(Violations),
    #[error("{0}")]
    NotFound(String),
    /// The target is in the wrong state for the call.
    #[error("{0}")]
    FailedPrecondition(String),
    /// An etag did not match: someone else wrote first.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A database or another service did not answer; nothing was written.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// `InvalidArgument` naming one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> ApiError {
        let mut v = Violations::new();
        v.add(field, description);
        ApiError::InvalidArgument(v)
    }
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        ApiError::InvalidArgument(v)
    }
}

/// Kept for callers that still run statements themselves: a database error
/// is a storage error.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        StorageError::from(err).into()
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        if err.is_unavailable() {
            ApiError::Unavailable(format!("database: {err}"))
        } else {
            ApiError::Internal(err.to_string())
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::InvalidArgument(v) => v.into_status(),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::Aborted(m) => Status::aborted(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::Unavailable(m) => {
                tracing::warn!(error = %m, "dependency unavailable");
                Status::unavailable(format!("{m}; nothing was written"))
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
