use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;

/// Adds a bearer token and the current trace context to every outgoing call:
/// what one chiso service presents to another, and what the CLI presents.
#[derive(Clone)]
pub struct BearerInterceptor {
    authorization: MetadataValue<Ascii>,
}

impl BearerInterceptor {
    pub fn new(token: &str) -> Result<BearerInterceptor, String> {
        let authorization = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| "the token is not valid header text".to_owned())?;
        Ok(BearerInterceptor { authorization })
    }
}

impl Interceptor for BearerInterceptor {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut request = chiso_telemetry::TraceContextInterceptor.call(request)?;
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        Ok(request)
    }
}
