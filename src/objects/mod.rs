//! Stripe's objects as billd reads them, and the JSON helpers that read them: the layer
//! below both the event handlers (`events`) and the Stripe client (`stripe`).
//!
//! Every field is optional unless Stripe always sends it, unknown fields are ignored,
//! and ids may arrive expanded into objects, because events are rendered in the
//! endpoint's pinned API version, which may be years old (DESIGN §5.9). This module is
//! pure (serde types and parsing): it imports none of `events`, `stripe`, `store` or
//! `http`, so both layers above it can use it without leaning on each other.

pub mod account;
pub mod catalog;
pub mod charge;
pub mod checkout;
pub mod customer;
pub mod discount;
pub mod invoice;
pub mod payment_intent;
pub mod payment_method;
pub mod refund;
pub mod risk;
pub mod subscription;

use serde::{Deserialize, Deserializer};

/// JSON that could not be read. The message names the position and the kind of problem
/// only, never the offending value (it may be personal data).
#[derive(Debug, thiserror::Error)]
#[error("cannot parse {what}: {message}")]
pub struct ParseError {
    pub what: String,
    pub message: String,
}

/// Parses JSON, keeping the offending value out of the error message.
pub fn parse_json<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, ParseError> {
    serde_json::from_str(text).map_err(|e| ParseError {
        what: what.to_string(),
        message: format!(
            "{} error at line {} column {}{}",
            format!("{:?}", e.classify()).to_lowercase(),
            e.line(),
            e.column(),
            safe_detail(&e.to_string())
        ),
    })
}

/// What of serde's message can be repeated: a missing field's name, or the type that
/// was expected. Never the value found (serde's "invalid type: string \"…\"" quotes
/// it, and it may be personal data).
fn safe_detail(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or("");
    if let Some(field) = message.strip_prefix("missing field ") {
        return format!(": missing field {field}");
    }
    if (message.starts_with("invalid type") || message.starts_with("invalid value"))
        && let Some((_, expected)) = message.rsplit_once(", expected ")
    {
        return format!(": expected {expected}");
    }
    String::new()
}

/// Deserializes an id that Stripe may send as a string, as an expanded object with an
/// `id`, or as null.
pub fn expandable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Exp {
        Id(String),
        Object { id: String },
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Exp>::deserialize(d)? {
        Some(Exp::Id(id)) | Some(Exp::Object { id }) => Some(id),
        Some(Exp::Other(_)) | None => None,
    })
}

/// A Stripe list (`{"object": "list", "data": [...]}`), lenient about everything else.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List { data: Vec::new() }
    }
}

/// Deserializes a list as Stripe has sent one: a list object (its `data`), or in the
/// oldest API versions a bare array (a charge's `refunds` before 2014-06-17); null or
/// any other shape reads as `None`. Written as a visitor rather than an untagged enum so
/// that elements may be raw JSON (`Box<RawValue>`), which serde cannot buffer.
pub fn list_or_array<'de, D, T>(d: D) -> Result<Option<List<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};

    struct ListVisitor<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
        type Value = Option<List<T>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list object or an array")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut data = Vec::new();
            while let Some(element) = seq.next_element()? {
                data.push(element);
            }
            Ok(Some(List { data }))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut data = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                if key == "data" {
                    data = map.next_value::<Option<Vec<T>>>()?.unwrap_or_default();
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Some(List { data }))
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    d.deserialize_any(ListVisitor(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Thing {
        id: String,
        amount: i64,
    }

    #[test]
    fn a_list_is_read_from_a_list_object_or_a_bare_array_and_anything_else_is_none() {
        #[derive(Debug, Deserialize)]
        struct Holder {
            #[serde(default, deserialize_with = "list_or_array")]
            things: Option<List<Box<serde_json::value::RawValue>>>,
        }
        let read = |json: &str| -> Option<Vec<String>> {
            let h: Holder = serde_json::from_str(json).unwrap();
            h.things
                .map(|l| l.data.iter().map(|r| r.get().to_string()).collect())
        };
        let list = r#"{"things": {"object": "list", "has_more": false, "data": [{"id": "a"}]}}"#;
        assert_eq!(read(list), Some(vec![r#"{"id": "a"}"#.to_string()]));
        let array = r#"{"things": [{"id": "a"}, {"id": "b"}]}"#;
        assert_eq!(read(array).map(|v| v.len()), Some(2));
        assert_eq!(
            read(r#"{"things": {"object": "list", "data": null}}"#),
            Some(vec![])
        );
        for none in [
            r#"{}"#,
            r#"{"things": null}"#,
            r#"{"things": "x"}"#,
            r#"{"things": 3}"#,
        ] {
            assert_eq!(read(none), None, "{none}");
        }
    }

    #[test]
    fn a_parse_error_names_the_missing_field_or_the_expected_type_never_the_value() {
        let e = parse_json::<Thing>(r#"{"amount": 5}"#, "thing").unwrap_err();
        assert_eq!(e.what, "thing");
        assert!(e.message.ends_with(": missing field `id`"), "{}", e.message);
        let e = parse_json::<Thing>(r#"{"id": "x", "amount": "jane@example.com"}"#, "thing")
            .unwrap_err();
        assert!(e.message.contains("expected i64"), "{}", e.message);
        assert!(!e.message.contains("jane"), "{}", e.message);
        let e = parse_json::<Thing>(r#"{"id": "x", "#, "thing").unwrap_err();
        assert!(
            e.message.starts_with("eof error at line 1"),
            "{}",
            e.message
        );
    }
}
