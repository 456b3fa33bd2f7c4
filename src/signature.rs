//! Stripe webhook signature verification (DESIGN §5.1), on the raw request bytes.
//!
//! `Stripe-Signature: t=<unix secs>,v1=<hex>,v1=<hex>,v0=<hex>`: the body is authentic
//! when any `v1` value equals HMAC-SHA256(secret, "{t}.{raw body}") for any configured
//! secret. The checks mirror Stripe's own libraries, which the vectors in
//! `tests/fixtures/signatures.json` were made with: header elements are split on `,` and
//! `=` without trimming, only lowercase hex matches, the first `t` wins, and only a
//! timestamp older than the tolerance is stale (a tolerance of 0 turns the age check off).
//!
//! The header arrives before anything is authenticated, so its cost is bounded: a header
//! longer than [`MAX_HEADER_LEN`] or with more than [`MAX_SIGNATURES`] `v1` values is
//! refused before any HMAC is computed, and verification computes one HMAC per configured
//! secret (never per secret × signature), then compares it with every candidate in
//! constant time.

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Longest `Stripe-Signature` header accepted (DESIGN §2); Stripe's own are ~200 bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// Most `v1` signatures accepted in one header (Stripe sends one per active secret).
pub const MAX_SIGNATURES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header: no valid `t=` timestamp")]
    NoTimestamp,
    #[error("malformed Stripe-Signature header: no `v1=` signature")]
    NoSignature,
    #[error("no signature matches the payload")]
    Mismatch,
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error(
        "Stripe-Signature header too large (at most {MAX_HEADER_LEN} bytes and {MAX_SIGNATURES} signatures)"
    )]
    Oversized,
}

/// Verifies signatures with one or more secrets (several while a secret is rolled).
pub struct Verifier {
    secrets: Vec<SecretString>,
    tolerance_secs: i64,
    /// HMACs computed so far: the cost an unauthenticated caller can cause, counted so
    /// tests can assert it is bounded (and metrics can show it).
    hmacs: AtomicU64,
}

impl Verifier {
    pub fn new(secrets: Vec<SecretString>, tolerance_secs: u64) -> Verifier {
        Verifier {
            secrets,
            tolerance_secs: i64::try_from(tolerance_secs).unwrap_or(i64::MAX),
            hmacs: AtomicU64::new(0),
        }
    }

    /// How many HMACs this verifier has computed.
    pub fn hmac_count(&self) -> u64 {
        self.hmacs.load(Ordering::Relaxed)
    }

    /// Checks `header` against `payload` as of `now` (unix seconds; injected so tests
    /// can fix the clock). Returns the signed timestamp.
    pub fn verify(&self, payload: &[u8], header: &str, now: i64) -> Result<i64, SignatureError> {
        if header.len() > MAX_HEADER_LEN {
            return Err(SignatureError::Oversized);
        }
        let mut timestamp: Option<(&str, i64)> = None;
        let mut signatures = Vec::new();
        for element in header.split(',') {
            let Some((key, value)) = element.split_once('=') else {
                continue;
            };
            match key {
                "t" if timestamp.is_none() => {
                    if let Ok(t) = value.parse::<i64>()
                        && !value.is_empty()
                        && value.bytes().all(|b| b.is_ascii_digit())
                    {
                        timestamp = Some((value, t));
                    }
                }
                "v1" => {
                    if signatures.len() == MAX_SIGNATURES {
                        return Err(SignatureError::Oversized);
                    }
                    signatures.push(value);
                }
                _ => {}
            }
        }
        let (t_text, t) = timestamp.ok_or(SignatureError::NoTimestamp)?;
        if signatures.is_empty() {
            return Err(SignatureError::NoSignature);
        }
        let candidates: Vec<[u8; 32]> = signatures
            .iter()
            .filter_map(|s| decode_lower_hex(s))
            .collect();
        // Nothing could match: no HMAC is worth computing.
        if candidates.is_empty() {
            return Err(SignatureError::Mismatch);
        }
        let mut matched = false;
        for secret in &self.secrets {
            let expected = self.hmac(secret, t_text, payload);
            // Every candidate is compared, in constant time, whether or not one matched.
            for candidate in &candidates {
                matched |= bool::from(expected.ct_eq(candidate));
            }
        }
        if !matched {
            return Err(SignatureError::Mismatch);
        }
        if self.tolerance_secs > 0 && now.saturating_sub(t) > self.tolerance_secs {
            return Err(SignatureError::Stale);
        }
        Ok(t)
    }

    fn hmac(&self, secret: &SecretString, t_text: &str, payload: &[u8]) -> [u8; 32] {
        self.hmacs.fetch_add(1, Ordering::Relaxed);
        let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(t_text.as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

/// Decodes a 64-digit lowercase hex string; anything else cannot be a `v1` signature.
fn decode_lower_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Builds a `Stripe-Signature` header for `payload` (tests, benchmarks and `billd` tooling
/// that sends itself signed events).
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(secrets: &[&str], tolerance: u64) -> Verifier {
        Verifier::new(
            secrets
                .iter()
                .map(|s| SecretString::from(s.to_string()))
                .collect(),
            tolerance,
        )
    }

    #[test]
    fn a_signature_made_by_sign_verifies() {
        let header = sign(b"{}", "whsec_a", 1000);
        assert_eq!(
            verifier(&["whsec_a"], 300).verify(b"{}", &header, 1000),
            Ok(1000)
        );
    }

    #[test]
    fn any_configured_secret_may_match() {
        let header = sign(b"{}", "whsec_new", 1000);
        assert!(
            verifier(&["whsec_old", "whsec_new"], 300)
                .verify(b"{}", &header, 1000)
                .is_ok()
        );
    }

    #[test]
    fn a_stale_timestamp_is_rejected() {
        let header = sign(b"{}", "whsec_a", 1000);
        assert_eq!(
            verifier(&["whsec_a"], 300).verify(b"{}", &header, 1301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn verification_costs_one_hmac_per_secret_however_many_signatures() {
        let v = verifier(&["whsec_a", "whsec_b"], 300);
        let body = vec![b'x'; 64 * 1024];
        let wrong = format!("v1={}", "0".repeat(64));
        let header = format!("t=1000,{}", vec![wrong.as_str(); MAX_SIGNATURES].join(","));
        assert_eq!(
            v.verify(&body, &header, 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(v.hmac_count(), 2);
        // The right signature among many wrong ones still matches, for one HMAC per secret.
        let good = sign(&body, "whsec_b", 1000);
        let header = format!(
            "{good},{}",
            vec![wrong.as_str(); MAX_SIGNATURES - 1].join(",")
        );
        assert_eq!(v.verify(&body, &header, 1000), Ok(1000));
        assert_eq!(v.hmac_count(), 4);
    }

    #[test]
    fn an_oversized_header_is_refused_before_any_hmac() {
        let v = verifier(&["whsec_a"], 300);
        let sig = format!("v1={}", "0".repeat(64));
        // The attack of issue 7: thousands of signatures.
        let many = format!("t=1000,{}", vec![sig.as_str(); 5_000].join(","));
        assert_eq!(v.verify(b"{}", &many, 1000), Err(SignatureError::Oversized));
        let seventeen = format!(
            "t=1000,{}",
            vec![sig.as_str(); MAX_SIGNATURES + 1].join(",")
        );
        assert!(seventeen.len() < MAX_HEADER_LEN);
        assert_eq!(
            v.verify(b"{}", &seventeen, 1000),
            Err(SignatureError::Oversized)
        );
        let long = format!(
            "t=1000,v1={},x={}",
            "0".repeat(64),
            "y".repeat(MAX_HEADER_LEN)
        );
        assert_eq!(v.verify(b"{}", &long, 1000), Err(SignatureError::Oversized));
        // Signatures that cannot be HMAC-SHA256 hex cost nothing either.
        assert_eq!(
            v.verify(b"{}", "t=1000,v1=nothex", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(v.hmac_count(), 0);
    }

    #[test]
    fn agrees_with_every_vector_made_by_stripes_library() {
        #[derive(serde::Deserialize)]
        struct Case {
            name: String,
            payload: String,
            header: String,
            secrets: Vec<String>,
            now: i64,
            tolerance: u64,
            valid: bool,
        }
        #[derive(serde::Deserialize)]
        struct Vectors {
            cases: Vec<Case>,
        }
        let vectors: Vectors =
            serde_json::from_str(include_str!("../tests/fixtures/signatures.json")).unwrap();
        assert!(vectors.cases.len() > 20);
        for case in vectors.cases {
            let secrets: Vec<&str> = case.secrets.iter().map(String::as_str).collect();
            let verdict = verifier(&secrets, case.tolerance).verify(
                case.payload.as_bytes(),
                &case.header,
                case.now,
            );
            assert_eq!(verdict.is_ok(), case.valid, "{}: {verdict:?}", case.name);
        }
    }
}
