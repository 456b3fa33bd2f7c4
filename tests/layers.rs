//! Layers point down only (STYLE 19, ARCHITECTURE.md): read every source file of a
//! layer and fail when it reaches a layer above it. One check for every rule, outside
//! `src/`, so the rules can be spelled here without a file flagging itself.

use std::path::{Path, PathBuf};

/// (layer, the top-level modules it must never reach).
const RULES: [(&str, &[&str]); 3] = [
    // `report/` folds the store's rows: a store naming report types is a cycle.
    ("store", &["report"]),
    // The client and the handlers share `objects/`; the client never leans on apply.
    ("stripe", &["events"]),
    // Pure serde types, below everyone who reads Stripe's objects.
    ("objects", &["events", "stripe", "store", "http"]),
];

/// The `.rs` files under `src/<dir>`, with their code (comments removed).
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut pending = vec![src.join(dir)];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let code = code_only(&std::fs::read_to_string(&path).unwrap());
                files.push((path.strip_prefix(&src).unwrap().to_path_buf(), code));
            }
        }
    }
    assert!(!files.is_empty(), "no sources under src/{dir}");
    files
}

/// The code without comments and with whitespace squeezed out, so a comment may name
/// a layer and a path split over lines (`crate ::\n report`) is still seen.
fn code_only(source: &str) -> String {
    let mut code = String::new();
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            if !c.is_whitespace() {
                code.push(c);
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    code
}

/// The first path segment after each `prefix`, and each one inside a group: the group
/// `{ids, events::List}` names `ids` and `events`, which a search for the joined path
/// would miss.
fn modules_named(code: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
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

/// The prefix that leads from `file` (relative to `src/`) to the crate's root through
/// `super::`: one per module between them.
fn to_root(file: &Path) -> String {
    let mut depth = file.components().count();
    if file.ends_with("mod.rs") {
        depth -= 1;
    }
    "super::".repeat(depth)
}

/// Where the files of `layer` reach one of `forbidden`.
fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (file, code) in sources(layer) {
        for prefix in ["crate::".to_string(), to_root(&file)] {
            for module in modules_named(&code, &prefix) {
                if forbidden.contains(&module.as_str()) {
                    found.push(format!("src/{}: {prefix}{module}", file.display()));
                }
            }
        }
    }
    found
}

#[test]
fn no_layer_imports_one_above_it() {
    for (layer, forbidden) in RULES {
        let found = violations(layer, forbidden);
        assert!(
            found.is_empty(),
            "{layer}/ reaches a layer above it:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_check_sees_every_spelling_of_an_import() {
    let named = |text: &str| {
        let code = code_only(text);
        let mut all = modules_named(&code, "crate::");
        all.extend(modules_named(&code, "super::super::"));
        all
    };
    for (text, module) in [
        ("use crate::report::RangeQuery;", "report"),
        ("fn f() { crate::report::mrr(c, 1, None); }", "report"),
        ("use crate :: report :: Period;", "report"),
        ("use crate::{store::Result, report::Period};", "report"),
        (
            "use crate::{\n    report,\n    time::now_secs,\n};",
            "report",
        ),
        ("use crate::{ids, events::{List, expandable}};", "events"),
        ("use super::super::events::List;", "events"),
    ] {
        assert!(named(text).iter().any(|m| m == module), "missed: {text}");
    }
    for text in [
        "// report arithmetic lives in crate::report, above us",
        "/* crate::report::mrr */ use crate::store::reports;",
        "use crate::time::as_rfc3339; // a report time",
    ] {
        assert!(
            !named(text).iter().any(|m| m == "report"),
            "flagged: {text}"
        );
    }
    assert_eq!(to_root(Path::new("store/mod.rs")), "super::");
    assert_eq!(
        to_root(Path::new("store/reports/history.rs")),
        "super::super::super::"
    );
}
