//! The envelope of a webhook body, read as the webhook reads it before storing
//! (`EnvelopeHeader` and its `invalid` check), then as the worker reads a stored one
//! (`Event::object_of`).
//!
//! Beyond never panicking: whatever the webhook accepts and stores, the worker can
//! read, with `data.object` a JSON object (else a well-signed event would be dead at
//! its first attempt).
#![no_main]

use billd::{
    events::{EnvelopeHeader, Event},
    objects::parse_json,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(envelope) = parse_json::<EnvelopeHeader>(text, "event") else {
        return;
    };
    if envelope.invalid().is_some() {
        return;
    }
    match Event::object_of(text) {
        Ok(object) => assert!(
            object.get().starts_with('{'),
            "data.object is not an object"
        ),
        Err(e) => panic!("a stored envelope the worker cannot read: {e}"),
    }
});
