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
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        )
        .to_lowercase(),
    })
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The `.rs` files under `src/<dir>`, with their text.
    fn sources(dir: &str) -> Vec<(PathBuf, String)> {
        let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir)];
        let mut files = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    files.push((path, text));
                }
            }
        }
        assert!(!files.is_empty(), "no sources under src/{dir}");
        files
    }

    /// The first path segment after each `prefix` in `text`, and each one inside a group:
    /// a group `{ids, events::List}` after the prefix names `ids` and `events`, which a
    /// plain search for the joined path would miss.
    fn modules_named(text: &str, prefix: &str) -> Vec<String> {
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        let mut found = Vec::new();
        for (i, _) in text.match_indices(prefix) {
            let rest = text[i + prefix.len()..].trim_start();
            let Some(group) = rest.strip_prefix('{') else {
                found.push(ident(rest));
                continue;
            };
            found.push(ident(group));
            let mut depth = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => found.push(ident(&group[j + 1..])),
                    _ => {}
                }
            }
        }
        found
    }

    /// Where a file under `src/<dir>` reaches one of `forbidden` (top-level modules of
    /// the crate): through `crate::`, or through `super::` from the directory's
    /// `mod.rs` or `super::super::` from a file beside it (neither tree nests deeper).
    fn imports_of(dir: &str, forbidden: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for (path, text) in sources(dir) {
            let up = if path.ends_with("mod.rs") {
                "super::"
            } else {
                "super::super::"
            };
            for prefix in ["crate::", up] {
                for module in modules_named(&text, prefix) {
                    if forbidden.contains(&module.as_str()) {
                        found.push(format!("{}: {prefix}{module}", path.display()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn a_grouped_import_names_each_module_it_opens() {
        // Another prefix than the crate's, so that this file passes its own check.
        let text = "use root::{ids, events::{List, expandable}};\nuse root::store::mirror;";
        assert_eq!(
            modules_named(text, "root::"),
            ["ids", "events", "store"].map(String::from)
        );
    }

    #[test]
    fn the_stripe_client_never_imports_the_event_handlers() {
        let found = imports_of("stripe", &["events"]);
        assert!(
            found.is_empty(),
            "stripe/ imports events/:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn the_objects_import_no_layer_above_them() {
        let found = imports_of("objects", &["events", "stripe", "store", "http"]);
        assert!(
            found.is_empty(),
            "objects/ imports a layer above it:\n{}",
            found.join("\n")
        );
    }
}
