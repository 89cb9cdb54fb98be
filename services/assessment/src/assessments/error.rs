use chiso_server::{ApiError, Violations};
use tonic::Status;

/// What the assessment core fails with. `From<AssessmentError> for
/// ApiError` is the one place these become the errors every chiso service
/// shares.
#[derive(Debug, thiserror::Error)]
pub enum AssessmentError {
    /// Bad values, or a criteria set that does not fit, field by field.
    #[error("invalid argument")]
    Invalid(Violations),
    #[error("{0}")]
    NotFound(String),
    /// The caller's roles or scope do not reach the unit.
    #[error("{0}")]
    Forbidden(String),
    /// The assessment is in the wrong state for the call, or no criteria set
    /// applies.
    #[error("{0}")]
    WrongState(String),
    /// Someone else wrote first: a stale etag, or a concurrent call that
    /// answered the same request id.
    #[error("{0}")]
    Stale(String),
    /// Storage or the units service failed, or a stored record does not
    /// read; nothing was written.
    #[error(transparent)]
    Service(ApiError),
}

impl AssessmentError {
    /// `Invalid` naming one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> AssessmentError {
        let mut v = Violations::new();
        v.add(field, description);
        AssessmentError::Invalid(v)
    }

    pub fn internal(message: impl Into<String>) -> AssessmentError {
        AssessmentError::Service(ApiError::Internal(message.into()))
    }

    /// The text a caller is shown for this error, e.g. in an ingest row.
    pub fn caller_text(self) -> String {
        Status::from(ApiError::from(self)).message().to_owned()
    }
}

impl From<Violations> for AssessmentError {
    fn from(v: Violations) -> Self {
        AssessmentError::Invalid(v)
    }
}

/// The repository, the units client and the server kit speak `ApiError`.
impl From<ApiError> for AssessmentError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::InvalidArgument(v) => AssessmentError::Invalid(v),
            ApiError::NotFound(m) => AssessmentError::NotFound(m),
            ApiError::PermissionDenied(m) => AssessmentError::Forbidden(m),
            ApiError::FailedPrecondition(m) => AssessmentError::WrongState(m),
            ApiError::Aborted(m) => AssessmentError::Stale(m),
            other @ (ApiError::Unavailable(_) | ApiError::Internal(_)) => {
                AssessmentError::Service(other)
            }
        }
    }
}

impl From<chiso_storage::StorageError> for AssessmentError {
    fn from(err: chiso_storage::StorageError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<AssessmentError> for ApiError {
    fn from(err: AssessmentError) -> Self {
        match err {
            AssessmentError::Invalid(v) => ApiError::InvalidArgument(v),
            AssessmentError::NotFound(m) => ApiError::NotFound(m),
            AssessmentError::Forbidden(m) => ApiError::PermissionDenied(m),
            AssessmentError::WrongState(m) => ApiError::FailedPrecondition(m),
            AssessmentError::Stale(m) => ApiError::Aborted(m),
            AssessmentError::Service(e) => e,
        }
    }
}

impl From<AssessmentError> for Status {
    fn from(err: AssessmentError) -> Self {
        ApiError::from(err).into()
    }
}
