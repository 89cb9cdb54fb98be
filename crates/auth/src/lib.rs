//! Bearer-token authentication.
//!
//! Callers present `authorization: Bearer <JWT>`. The token names the calling
//! system (`sub`), its roles and the unit it may act on (`scope`, a GSO code,
//! or `VN` for the whole country). Tokens are verified locally: HS256 with a
//! shared secret in development, RS256/ES256/EdDSA public keys in production.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};

pub use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The audience every chiso token is minted for.
pub const AUDIENCE: &str = "chiso";
pub use chiso_domain::{NATIONAL_SCOPE, Scope};
/// File in a data directory holding the development signing secret.
pub const DEV_KEY_FILE: &str = "dev-signing-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Enters indicator values for units in scope.
    Submitter,
    /// Verifies the submissions of units under its district.
    Reviewer,
    /// Approves for the province.
    Approver,
    /// Manages reference data and criteria sets.
    Admin,
    /// Reads within scope.
    Reader,
    /// Another chiso service.
    Service,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Submitter,
        Role::Reviewer,
        Role::Approver,
        Role::Admin,
        Role::Reader,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Submitter => "submitter",
            Role::Reviewer => "reviewer",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Reader => "reader",
            Role::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (expected one of submitter, reviewer, approver, admin, reader, service)"))
    }
}

/// The claims of a chiso token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub roles: Vec<Role>,
    pub scope: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    /// Not valid before this time (seconds since the epoch), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// An authenticated caller, attached to each request by [`AuthInterceptor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub roles: BTreeSet<Role>,
    pub scope: Scope,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_national(&self) -> bool {
        self.scope.is_national()
    }

    /// `PermissionDenied` unless the caller holds `role`.
    pub fn require(&self, role: Role) -> Result<(), Status> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "{} lacks the {role} role",
                self.subject
            )))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid key: {0}")]
    Key(jsonwebtoken::errors::Error),
    #[error("cannot sign token: {0}")]
    Sign(jsonwebtoken::errors::Error),
    #[error("cannot sign token: scope {0}")]
    Scope(chiso_domain::Invalid),
    #[error("no public key configured")]
    NoKeys,
    #[error("key id {0:?} is given to two keys")]
    DuplicateKeyId(String),
}

/// How far clocks may disagree: `exp` and `nbf` are judged this many
/// seconds generously, so a token minted on a host a little ahead is not
/// refused, nor one that expired a moment ago on a host behind.
pub const CLOCK_SKEW_LEEWAY_SECS: u64 = 30;

/// Checks tokens against one or more keys. Several public keys are trusted
/// during a key rollover; a token names its key by `kid`.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<TrustedKey>,
}

#[derive(Clone)]
struct TrustedKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// A public key as configured: its id (the `kid` tokens carry), algorithm and
/// PEM text.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub pem: Vec<u8>,
}

impl Verifier {
    pub fn hs256(secret: &[u8]) -> Verifier {
        Verifier {
            keys: vec![TrustedKey {
                kid: None,
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret),
            }],
        }
    }

    /// A verifier for one asymmetric production key, from a PEM public key.
    pub fn from_public_pem(algorithm: Algorithm, pem: &[u8]) -> Result<Verifier, AuthError> {
        Verifier::from_public_keys(&[PublicKey {
            kid: None,
            algorithm,
            pem: pem.to_vec(),
        }])
    }

    /// A verifier trusting every key given (RS256, ES256 or EdDSA; the
    /// RSA-PSS and larger curves too). Key ids must be unique.
    pub fn from_public_keys(keys: &[PublicKey]) -> Result<Verifier, AuthError> {
        if keys.is_empty() {
            return Err(AuthError::NoKeys);
        }
        let mut trusted = Vec::with_capacity(keys.len());
        for k in keys {
            if trusted.iter().any(|t: &TrustedKey| t.kid == k.kid) {
                return Err(AuthError::DuplicateKeyId(k.kid.clone().unwrap_or_default()));
            }
            let key = match k.algorithm {
                Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512 => DecodingKey::from_rsa_pem(&k.pem),
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&k.pem),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&k.pem),
                _ => {
                    return Err(AuthError::Key(
                        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into(),
                    ));
                }
            }
            .map_err(AuthError::Key)?;
            trusted.push(TrustedKey {
                kid: k.kid.clone(),
                algorithm: k.algorithm,
                key,
            });
        }
        Ok(Verifier { keys: trusted })
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Status> {
        let invalid = |e: &dyn fmt::Display| Status::unauthenticated(format!("invalid token: {e}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e))?;
        // A token that names its key is checked against that key alone; one
        // that does not is tried against every key of its algorithm.
        let candidates: Vec<&TrustedKey> = self
            .keys
            .iter()
            .filter(|k| header.kid.is_none() || k.kid == header.kid)
            .filter(|k| k.algorithm == header.alg)
            .collect();
        if candidates.is_empty() {
            return Err(match &header.kid {
                Some(kid) if !self.keys.iter().any(|k| k.kid.as_ref() == Some(kid)) => {
                    invalid(&format_args!("unknown key id {:?}", prefix(kid)))
                }
                _ => invalid(&format_args!("algorithm {:?} is not accepted", header.alg)),
            });
        }
        let mut last = None;
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation(key.algorithm)) {
                Ok(data) => return caller_of(data.claims),
                Err(e) => last = Some(e),
            }
        }
        Err(invalid(&last.expect("at least one key was tried")))
    }
}

fn validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = CLOCK_SKEW_LEEWAY_SECS;
    validation
}

fn caller_of(c: Claims) -> Result<Caller, Status> {
    let scope = Scope::parse(&c.scope)
        .map_err(|e| Status::unauthenticated(format!("invalid token: scope {e}")))?;
    Ok(Caller {
        subject: c.sub,
        roles: c.roles.into_iter().collect(),
        scope,
    })
}

/// At most 32 characters of a value from a token, for messages.
fn prefix(text: &str) -> &str {
    match text.char_indices().nth(32) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Mints HS256 tokens with a development secret.
pub struct Issuer {
    key: EncodingKey,
}

impl Issuer {
    pub fn hs256(secret: &[u8]) -> Issuer {
        Issuer {
            key: EncodingKey::from_secret(secret),
        }
    }

    pub fn issue(
        &self,
        subject: &str,
        roles: &[Role],
        scope: &str,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let scope = Scope::parse(scope).map_err(AuthError::Scope)?;
        let claims = Claims {
            sub: subject.to_owned(),
            roles: roles.to_vec(),
            scope: scope.to_string(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(AuthError::Sign)
    }
}

/// The development secret of a data directory, created on first use
/// (readable by the owner only).
pub fn dev_secret(data_dir: &Path) -> Result<Vec<u8>, AuthError> {
    let path = data_dir.join(DEV_KEY_FILE);
    let io = |source| AuthError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim())
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io)?;
            let secret: [u8; 32] = rand::random();
            write_private(&path, hex::encode(secret).as_bytes()).map_err(io)?;
            Ok(secret.to_vec())
        }
        Err(e) => Err(io(e)),
    }
}

/// A shared secret written as hex (at least 16 bytes).
pub fn parse_hex_secret(text: &str) -> Result<Vec<u8>, String> {
    let secret = hex::decode(text.trim()).map_err(|e| format!("not a hex secret: {e}"))?;
    if secret.len() < 16 {
        return Err(format!(
            "secret has {} bytes; at least 16 are needed",
            secret.len()
        ));
    }
    Ok(secret)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents)
}

/// Verifies the bearer token of every request and attaches the [`Caller`].
#[derive(Clone)]
pub struct AuthInterceptor {
    verifier: Arc<Verifier>,
}

impl AuthInterceptor {
    pub fn new(verifier: Arc<Verifier>) -> AuthInterceptor {
        AuthInterceptor { verifier }
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let value = header
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be \"Bearer <token>\""))?;
        let caller = self.verifier.verify(token.trim())?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The caller attached by [`AuthInterceptor`].
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let issuer = Issuer::hs256(b"secret-one");
        let token = issuer
            .issue(
                "xa-15499",
                &[Role::Submitter, Role::Reader],
                "15499",
                Duration::from_secs(60),
            )
            .unwrap();
        let caller = Verifier::hs256(b"secret-one").verify(&token).unwrap();
        assert_eq!(caller.subject, "xa-15499");
        assert_eq!(caller.scope, "15499");
        assert!(caller.has_role(Role::Submitter) && !caller.has_role(Role::Admin));

        let err = Verifier::hs256(b"secret-two").verify(&token).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert_eq!(
            Verifier::hs256(b"secret-one")
                .verify("not.a.token")
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let issuer = Issuer::hs256(b"k");
        let mut claims = Claims {
            sub: "s".into(),
            roles: vec![Role::Reader],
            scope: "38".into(),
            aud: AUDIENCE.into(),
            iat: 1,
            exp: 2,
            nbf: None,
        };
        let old =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &issuer.key).unwrap();
        assert!(Verifier::hs256(b"k").verify(&old).is_err());
        claims.exp = u64::MAX / 2;
        claims.aud = "other".into();
        let wrong_aud =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &issuer.key).unwrap();
        assert!(Verifier::hs256(b"k").verify(&wrong_aud).is_err());
    }

    #[test]
    fn dev_secret_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = dev_secret(dir.path()).unwrap();
        let b = dev_secret(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
    }
}
