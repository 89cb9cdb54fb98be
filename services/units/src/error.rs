/// The units service fails with the errors every chiso service shares; the
/// one mapping to gRPC codes lives with [`chiso_server::ApiError`].
pub use chiso_server::ApiError as UnitsError;
