//! Standard Webhooks signatures (spec v1.0.0): `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
//! under the secret `whsec_<base64 of 24..64 random bytes>`.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A webhook signing secret: `whsec_` followed by base64 of the key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is `whsec_` followed by base64 of 24 to 64 bytes")]
pub struct SecretError;

impl SigningSecret {
    /// A new secret of 32 random bytes.
    pub fn generate() -> SigningSecret {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        SigningSecret { key }
    }

    pub fn parse(text: &str) -> Result<SigningSecret, SecretError> {
        let encoded = text.strip_prefix(PREFIX).ok_or(SecretError)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError);
        }
        Ok(SigningSecret { key })
    }

    /// The form given to consumers and stored.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// The signature of one message: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &str) -> Vec<u8> {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether any signature in a `webhook-signature` header (space-separated) is ours.
    pub fn verify(&self, id: &str, timestamp: i64, body: &str, header: &str) -> bool {
        let expected = self.mac(id, timestamp, body);
        header.split(' ').any(|candidate| {
            candidate
                .strip_prefix("v1,")
                .and_then(|encoded| STANDARD.decode(encoded).ok())
                .is_some_and(|given| crate::constant_time::eq(&given, &expected))
        })
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// The `webhook-signature` header: the current secret's signature, and during a rotation's overlap
/// the previous secret's too, so consumers on either secret verify.
pub fn signature_header(
    secrets: &[&SigningSecret],
    id: &str,
    timestamp: i64,
    body: &str,
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The public test vector of the Standard Webhooks specification.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: i64 = 1_649_367_553;
    const BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn signs_the_specification_test_vector() {
        let secret = SigningSecret::parse(SECRET).expect("valid secret");
        assert_eq!(
            secret.sign(ID, TIMESTAMP, BODY),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn verifies_only_the_untampered_message() {
        let secret = SigningSecret::parse(SECRET).expect("valid secret");
        let header = secret.sign(ID, TIMESTAMP, BODY);
        assert!(secret.verify(ID, TIMESTAMP, BODY, &header));
        assert!(!secret.verify(ID, TIMESTAMP, &BODY.replace("test_user", "evil"), &header));
        assert!(!secret.verify(ID, TIMESTAMP + 1, BODY, &header));
        assert!(!secret.verify(ID, TIMESTAMP, BODY, "v1,"));
        assert!(!secret.verify(ID, TIMESTAMP, BODY, ""));
    }

    #[test]
    fn both_secrets_sign_during_a_rotation() {
        let old = SigningSecret::generate();
        let new = SigningSecret::generate();
        let header = signature_header(&[&new, &old], ID, TIMESTAMP, BODY);
        assert!(old.verify(ID, TIMESTAMP, BODY, &header));
        assert!(new.verify(ID, TIMESTAMP, BODY, &header));
        assert!(!SigningSecret::generate().verify(ID, TIMESTAMP, BODY, &header));
    }

    #[test]
    fn generated_secrets_round_trip_and_bad_ones_are_refused() {
        let secret = SigningSecret::generate();
        assert_eq!(SigningSecret::parse(&secret.expose()), Ok(secret));
        assert_eq!(
            SigningSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError)
        );
        assert_eq!(SigningSecret::parse("whsec_c2hvcnQ="), Err(SecretError));
        assert_eq!(SigningSecret::parse("whsec_!!!"), Err(SecretError));
    }
}
