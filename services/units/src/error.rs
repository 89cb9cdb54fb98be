use chiso_server::Violations;
use chiso_storage::{StorageError, sqlx};
use tonic::Status;

/// Everything the units service can fail with; [`From<UnitsError> for Status`]
/// is the one place these become gRPC codes.
#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    #[error("invalid argument")]
    InvalidArgument(Violations),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl UnitsError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> UnitsError {
        let mut v = Violations::new();
        v.add(field, description);
        UnitsError::InvalidArgument(v)
    }
}

impl From<sqlx::Error> for UnitsError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => UnitsError::Unavailable(err.to_string()),
            other => UnitsError::Internal(other.to_string()),
        }
    }
}

impl From<StorageError> for UnitsError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Sqlx(e) => e.into(),
            other => UnitsError::Internal(other.to_string()),
        }
    }
}

impl From<UnitsError> for Status {
    fn from(err: UnitsError) -> Self {
        match err {
            UnitsError::InvalidArgument(v) => v.into_status(),
            UnitsError::NotFound(m) => Status::not_found(m),
            UnitsError::FailedPrecondition(m) => Status::failed_precondition(m),
            UnitsError::PermissionDenied(m) => Status::permission_denied(m),
            UnitsError::Unavailable(m) => {
                tracing::warn!(error = %m, "database unavailable");
                Status::unavailable("the units database is unavailable; nothing was written")
            }
            UnitsError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
