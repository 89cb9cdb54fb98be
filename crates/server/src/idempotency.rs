//! Safe retries: a request that comes again with the same `request_id` gets
//! the answer stored the first time; the same id on a different request is
//! refused.

use chiso_storage::sqlx::{self, Any, Transaction};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::ApiError;

/// A hash of a request, to tell a retry from a different request that
/// reuses its id.
#[derive(Default)]
pub struct RequestHasher(Sha256);

impl RequestHasher {
    pub fn new() -> RequestHasher {
        RequestHasher::default()
    }

    /// Adds the method name, so that one id on two methods never matches.
    pub fn method(mut self, method: &str) -> RequestHasher {
        self.0.update(method.as_bytes());
        self
    }

    /// Adds one message (a stream's messages are added in order).
    pub fn message(&mut self, message: &impl Message) {
        self.0.update(message.encode_to_vec());
    }

    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// The hash of a unary request: its method and its message.
pub fn request_hash(method: &str, request: &impl Message) -> String {
    let mut hasher = RequestHasher::new().method(method);
    hasher.message(request);
    hasher.finish()
}

/// An answer stored for a request id, with the hash of the request that
/// produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub request_hash: String,
    pub response: Vec<u8>,
}

/// What to answer a request that carries `request_id` and hashes to `hash`:
/// the stored answer of the same request, `None` for a new one, and an
/// `InvalidArgument` of `request_id` when the id was used for a different
/// request (a `what`: "request", "snapshot").
pub fn replay<M: Message + Default>(
    stored: Option<StoredAnswer>,
    request_id: &str,
    hash: &str,
    what: &str,
) -> Result<Option<M>, ApiError> {
    match stored {
        Some(stored) if stored.request_hash == hash => M::decode(stored.response.as_slice())
            .map(Some)
            .map_err(|e| ApiError::Internal(format!("stored answer to {request_id:?}: {e}"))),
        Some(_) => Err(ApiError::invalid(
            "request_id",
            format!("{request_id:?} was already used for a different {what}"),
        )),
        None => Ok(None),
    }
}

/// A table of stored answers keyed by (caller, request id), with the columns
/// `request_id, caller, method, request_hash, response, created_at`.
#[derive(Debug, Clone, Copy)]
pub struct AnswerTable(pub &'static str);

impl AnswerTable {
    /// The answer stored for `request_id` from `caller`.
    pub async fn find(
        self,
        tx: &mut Transaction<'static, Any>,
        caller: &str,
        request_id: &str,
    ) -> Result<Option<StoredAnswer>, ApiError> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT request_hash, response FROM {} WHERE caller = $1 AND request_id = $2",
            self.0
        ))
        .bind(caller)
        .bind(request_id)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.map(|(request_hash, response)| StoredAnswer {
            request_hash,
            response,
        }))
    }

    /// Looks up `request_id` from `caller` and decides with [`replay`].
    pub async fn replay<M: Message + Default>(
        self,
        tx: &mut Transaction<'static, Any>,
        caller: &str,
        request_id: &str,
        hash: &str,
    ) -> Result<Option<M>, ApiError> {
        let stored = self.find(tx, caller, request_id).await?;
        replay(stored, request_id, hash, "request")
    }

    /// Stores the answer to a request inside the transaction that wrote it.
    /// A concurrent call that stored first makes this one `Aborted`: its
    /// retry gets that answer.
    pub async fn store(
        self,
        tx: &mut Transaction<'static, Any>,
        caller: &str,
        request_id: &str,
        method: &str,
        hash: &str,
        answer: &impl Message,
    ) -> Result<(), ApiError> {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("the current time formats");
        sqlx::query(&format!(
            "INSERT INTO {} (request_id, caller, method, request_hash, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            self.0
        ))
        .bind(request_id)
        .bind(caller)
        .bind(method)
        .bind(hash)
        .bind(answer.encode_to_vec())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| {
            if chiso_storage::is_unique_violation(&e) {
                ApiError::Aborted(format!(
                    "request {request_id:?} was answered by a concurrent call; retry to get its answer"
                ))
            } else {
                e.into()
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(hash: &str) -> StoredAnswer {
        StoredAnswer {
            request_hash: hash.to_owned(),
            response: "stored".to_owned().encode_to_vec(),
        }
    }

    #[test]
    fn the_same_request_gets_the_stored_answer() {
        let got: Option<String> = replay(Some(answer("h")), "r1", "h", "request").unwrap();
        assert_eq!(got.as_deref(), Some("stored"));
        let new: Option<String> = replay(None, "r1", "h", "request").unwrap();
        assert_eq!(new, None);
    }

    #[test]
    fn another_request_with_the_id_is_refused() {
        match replay::<String>(Some(answer("h")), "r1", "other", "snapshot") {
            Err(ApiError::InvalidArgument(v)) => assert_eq!(
                v.iter().collect::<Vec<_>>(),
                vec![(
                    "request_id",
                    "\"r1\" was already used for a different snapshot"
                )]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_method_is_part_of_the_hash() {
        let m = "same".to_owned();
        assert_ne!(request_hash("A", &m), request_hash("B", &m));
        assert_eq!(request_hash("A", &m), request_hash("A", &m));
        let mut plain = RequestHasher::new();
        plain.message(&m);
        assert_eq!(
            plain.finish(),
            hex::encode(Sha256::digest(m.encode_to_vec()))
        );
    }
}
