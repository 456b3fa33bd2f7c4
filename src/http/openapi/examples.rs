//! The example of each operation: one request and its answer, recorded by a test run
//! against the real server (`tests/api_examples.rs` writes `docs/api-examples.json`,
//! with ids and clock times replaced by placeholders, and fails when it is stale) and
//! bundled here, so that `/openapi.json` and `/docs` show what a call looks like.

use serde_json::{Map, Value, json};

/// The recorded examples, as committed.
const RECORDED: &str = include_str!("../../../docs/api-examples.json");

const SUMMARY: &str =
    "Recorded by a test run (tests/api_examples.rs); ids and clock times are placeholders.";

/// The recorded example of each operation, by `operationId`. Empty if the bundled file
/// is not what `tests/api_examples.rs` writes (a unit test keeps it readable).
pub(super) fn recorded() -> Map<String, Value> {
    serde_json::from_str::<Value>(RECORDED)
        .ok()
        .and_then(|v| v.get("operations")?.as_object().cloned())
        .unwrap_or_default()
}

/// Gives every operation of `paths` its recorded example: the request body's and the
/// success answer's `examples`, and `x-billd-example` with the request line and status.
pub(super) fn attach(paths: &mut Map<String, Value>) {
    let recorded = recorded();
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut().filter_map(Value::as_object_mut) {
            let example = op
                .get("operationId")
                .and_then(Value::as_str)
                .and_then(|id| recorded.get(id));
            if let Some(example) = example {
                attach_one(op, example);
            }
        }
    }
}

fn attach_one(op: &mut Map<String, Value>, example: &Value) {
    let request = &example["request"];
    let response = &example["response"];
    op.insert(
        "x-billd-example".into(),
        json!({
            "method": request["method"],
            "path": request["path"],
            "status": response["status"],
        }),
    );
    if let Some(body) = request.get("body") {
        let content = op
            .get_mut("requestBody")
            .and_then(|b| b.get_mut("content"))
            .and_then(Value::as_object_mut);
        add_to_media(content, body);
    }
    if let Some(status) = response["status"].as_u64() {
        let content = op
            .get_mut("responses")
            .and_then(|r| r.get_mut(status.to_string()))
            .and_then(|r| r.get_mut("content"))
            .and_then(Value::as_object_mut);
        add_to_media(content, &response["body"]);
    }
}

/// Adds `value` as the `recorded` example of every media type of a `content` map.
fn add_to_media(content: Option<&mut Map<String, Value>>, value: &Value) {
    for media in content
        .into_iter()
        .flat_map(|c| c.values_mut())
        .filter_map(Value::as_object_mut)
    {
        media.insert(
            "examples".into(),
            json!({"recorded": {"summary": SUMMARY, "value": value}}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_examples_are_readable() {
        let recorded = recorded();
        assert!(
            !recorded.is_empty(),
            "docs/api-examples.json: no operations"
        );
        for (id, example) in &recorded {
            assert!(example["request"]["method"].is_string(), "{id}");
            assert!(example["request"]["path"].is_string(), "{id}");
            assert!(example["response"]["status"].is_u64(), "{id}");
        }
    }
}
