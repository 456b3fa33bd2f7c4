//! `Stripe-Signature` verification (`billd::signature`) on any header and body. The
//! input is the header, a newline, then the raw body, as the webhook hands them over.
//!
//! Beyond never panicking: a header made by `signature::sign` verifies, and still does
//! with the fuzzed header's elements after it (its own `t` comes first, and unknown or
//! extra elements never spoil a match) unless that makes it too large.
#![no_main]

use std::sync::LazyLock;

use billd::signature::{self, MAX_HEADER_LEN, MAX_SIGNATURES, SignatureError, Verifier};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

/// The secrets of `tests/fixtures/signatures.json`, so its headers make seeds that verify.
const SECRETS: [&str; 2] = [
    "whsec_billdTestSecretPrimary0000000000000",
    "whsec_billdTestSecretRotatedOut111111111",
];
/// The vectors' clock.
const NOW: i64 = 1_767_225_600;

fn verifier(tolerance: u64) -> Verifier {
    Verifier::new(
        SECRETS
            .iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect(),
        tolerance,
    )
}

static DEFAULT: LazyLock<Verifier> = LazyLock::new(|| verifier(300));
static AGELESS: LazyLock<Verifier> = LazyLock::new(|| verifier(0));

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(header) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = data.get(split + 1..).unwrap_or_default();
    let _ = DEFAULT.verify(body, header, NOW);
    let _ = AGELESS.verify(body, header, i64::MIN);

    let t = NOW - i64::try_from(body.len() % 300).unwrap_or(0);
    let signed = signature::sign(body, SECRETS[1], t);
    assert_eq!(DEFAULT.verify(body, &signed, NOW), Ok(t));
    let extended = format!("{signed},{header}");
    match DEFAULT.verify(body, &extended, NOW) {
        Ok(got) => assert_eq!(got, t),
        Err(SignatureError::Oversized) => {
            let v1s = header
                .split(',')
                .filter(|e| e.split_once('=').is_some_and(|(k, _)| k == "v1"))
                .count();
            assert!(extended.len() > MAX_HEADER_LEN || v1s + 1 > MAX_SIGNATURES);
        }
        Err(e) => panic!("a signed header with elements after it: {e}"),
    }
});
