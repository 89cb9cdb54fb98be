//! Production keys: RS256, ES256 and EdDSA pairs generated here, a rollover
//! with two keys told apart by `kid`, and the clock-skew rules for `exp` and
//! `nbf`.

use std::time::{SystemTime, UNIX_EPOCH};

use chiso_auth::{
    AUDIENCE, Algorithm, CLOCK_SKEW_LEEWAY_SECS, Claims, PublicKey, Role, Scope, Verifier,
};
use jsonwebtoken::{EncodingKey, Header};
use tonic::Code;

/// A freshly generated key pair: the private key to sign with, the public
/// key as a deployment would configure it.
struct Pair {
    algorithm: Algorithm,
    signing: EncodingKey,
    public_pem: Vec<u8>,
}

fn rsa_pair() -> Pair {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    Pair {
        algorithm: Algorithm::RS256,
        signing: EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        public_pem: public_pem.into_bytes(),
    }
}

fn ec_pair() -> Pair {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    let public_pem = private
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    Pair {
        algorithm: Algorithm::ES256,
        signing: EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap(),
        public_pem: public_pem.into_bytes(),
    }
}

fn ed_pair() -> Pair {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
    let private = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    let public_pem = private
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    Pair {
        algorithm: Algorithm::EdDSA,
        signing: EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap(),
        public_pem: public_pem.into_bytes(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Claims {
    Claims {
        sub: "so-tttt-thanh-hoa".into(),
        roles: vec![Role::Reader, Role::Approver],
        scope: "38".into(),
        aud: AUDIENCE.into(),
        iat: now(),
        exp: now() + 600,
        nbf: None,
    }
}

fn sign(pair: &Pair, kid: Option<&str>, claims: &Claims) -> String {
    let mut header = Header::new(pair.algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &pair.signing).unwrap()
}

fn trusting(pairs: &[(&Pair, Option<&str>)]) -> Verifier {
    let keys: Vec<PublicKey> = pairs
        .iter()
        .map(|(p, kid)| PublicKey {
            kid: kid.map(str::to_owned),
            algorithm: p.algorithm,
            pem: p.public_pem.clone(),
        })
        .collect();
    Verifier::from_public_keys(&keys).unwrap()
}

#[test]
fn each_asymmetric_algorithm_verifies_its_own_key_only() {
    let pairs = [rsa_pair(), ec_pair(), ed_pair()];
    let others = [rsa_pair(), ec_pair(), ed_pair()];
    for (pair, other) in pairs.iter().zip(&others) {
        let token = sign(pair, None, &claims());
        let verifier = Verifier::from_public_pem(pair.algorithm, &pair.public_pem).unwrap();
        let caller = verifier.verify(&token).unwrap();
        assert_eq!(caller.subject, "so-tttt-thanh-hoa", "{:?}", pair.algorithm);
        assert_eq!(caller.scope, Scope::parse("38").unwrap());
        assert!(caller.has_role(Role::Approver) && !caller.has_role(Role::Admin));

        // The same algorithm, another key pair: refused.
        let stranger = Verifier::from_public_pem(other.algorithm, &other.public_pem).unwrap();
        let err = stranger.verify(&token).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{:?}", pair.algorithm);

        // A token signed with the shared-secret algorithm never passes a
        // public-key verifier, whatever its secret (the classic confusion
        // of signing HS256 with the public key).
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(&pair.public_pem),
        )
        .unwrap();
        let err = verifier.verify(&confused).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert!(err.message().contains("not accepted"), "{}", err.message());
    }
}

#[test]
fn a_rollover_accepts_both_keys_by_kid_and_nothing_else() {
    let old = ec_pair();
    let new = ed_pair();
    let verifier = trusting(&[(&old, Some("2026-01")), (&new, Some("2026-07"))]);
    for (pair, kid) in [(&old, "2026-01"), (&new, "2026-07")] {
        let token = sign(pair, Some(kid), &claims());
        assert_eq!(
            verifier.verify(&token).unwrap().subject,
            "so-tttt-thanh-hoa"
        );
    }
    // A kid names one key: a token signed by the other key under it fails.
    let swapped = sign(&new, Some("2026-01"), &claims());
    assert_eq!(
        verifier.verify(&swapped).unwrap_err().code(),
        Code::Unauthenticated
    );
    // An unknown kid is refused and named.
    let unknown = sign(&new, Some("2027-01"), &claims());
    let err = verifier.verify(&unknown).unwrap_err();
    assert!(
        err.message().contains("unknown key id"),
        "{}",
        err.message()
    );
    // No kid: tried against the keys of its algorithm.
    let bare = sign(&new, None, &claims());
    assert!(verifier.verify(&bare).is_ok());
    // After the rollover the old key is gone.
    let after = trusting(&[(&new, Some("2026-07"))]);
    assert!(
        after
            .verify(&sign(&old, Some("2026-01"), &claims()))
            .is_err()
    );
}

#[test]
fn duplicate_key_ids_are_a_configuration_error() {
    let a = ed_pair();
    let b = ed_pair();
    let keys = [&a, &b].map(|p| PublicKey {
        kid: Some("k".into()),
        algorithm: p.algorithm,
        pem: p.public_pem.clone(),
    });
    assert!(Verifier::from_public_keys(&keys).is_err());
    assert!(Verifier::from_public_keys(&[]).is_err());
}

#[test]
fn clock_skew_is_forgiven_up_to_the_leeway_and_no_further() {
    let pair = ed_pair();
    let verifier = trusting(&[(&pair, None)]);
    let skew = CLOCK_SKEW_LEEWAY_SECS;

    let mut c = claims();
    c.nbf = Some(now() + skew / 2);
    assert!(
        verifier.verify(&sign(&pair, None, &c)).is_ok(),
        "nbf within leeway"
    );
    c.nbf = Some(now() + skew + 60);
    let err = verifier.verify(&sign(&pair, None, &c)).unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "nbf beyond leeway");

    let mut c = claims();
    c.exp = now() - skew / 2;
    assert!(
        verifier.verify(&sign(&pair, None, &c)).is_ok(),
        "exp within leeway"
    );
    c.exp = now() - skew - 60;
    assert!(
        verifier.verify(&sign(&pair, None, &c)).is_err(),
        "exp beyond leeway"
    );
}

#[test]
fn a_token_with_a_malformed_scope_is_unauthenticated() {
    let pair = ec_pair();
    let verifier = trusting(&[(&pair, None)]);
    let mut c = claims();
    c.scope = "38; DROP".into();
    let err = verifier.verify(&sign(&pair, None, &c)).unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("scope"), "{}", err.message());
}
