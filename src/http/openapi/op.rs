//! The operation builder: one `Op` per route, rendered into an OpenAPI operation with
//! the scope, the idempotency header and the error answers every route of its kind has.

use std::collections::BTreeSet;

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::super::auth::required_scope;

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// No token.
    Public,
    /// A bearer token with the scope [`required_scope`] names.
    Token,
    /// A `read` token, unless `[server] metrics_public` opens it.
    TokenUnlessConfigured,
}

pub(super) struct Op {
    pub(super) method: Method,
    pub(super) path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: String,
    access: Access,
    params: Vec<Value>,
    body: Option<Value>,
    ok: (u16, &'static str, Value),
    errors: Vec<u16>,
}

pub(super) fn op(method: Method, path: &'static str, id: &'static str, tag: &'static str) -> Op {
    Op {
        method,
        path,
        id,
        tag,
        summary: "",
        description: String::new(),
        access: Access::Token,
        params: Vec::new(),
        body: None,
        ok: (200, "OK", json!({})),
        errors: Vec::new(),
    }
}

impl Op {
    pub(super) fn summary(mut self, summary: &'static str) -> Op {
        self.summary = summary;
        self
    }

    pub(super) fn describe(mut self, text: &str) -> Op {
        self.description = text.to_string();
        self
    }

    pub(super) fn access(mut self, access: Access) -> Op {
        self.access = access;
        self
    }

    pub(super) fn params(mut self, params: Vec<Value>) -> Op {
        self.params.extend(params);
        self
    }

    /// A JSON request body of the named schema.
    pub(super) fn body(mut self, schema: &str, required: bool) -> Op {
        self.body = Some(json!({
            "required": required,
            "content": {"application/json": {"schema": schema_ref(schema)}},
        }));
        self
    }

    /// The success answer: a JSON body of the named schema.
    pub(super) fn answers(self, status: u16, schema: &str, description: &'static str) -> Op {
        self.answers_with(
            status,
            description,
            json!({"application/json": {"schema": schema_ref(schema)}}),
        )
    }

    pub(super) fn answers_with(
        mut self,
        status: u16,
        description: &'static str,
        content: Value,
    ) -> Op {
        self.ok = (status, description, content);
        self
    }

    pub(super) fn errors(mut self, codes: &[u16]) -> Op {
        self.errors.extend_from_slice(codes);
        self
    }

    pub(super) fn render(self) -> Value {
        let mut description = self.description;
        let mut params = self.params;
        let mut errors: BTreeSet<u16> = self.errors.into_iter().collect();
        if self.body.is_some() {
            // A body that is not the right JSON, or too long to read.
            errors.extend([400, 413]);
        }
        if self.path != "/healthz" {
            // `[limits] max_in_flight`: every route but liveness answers 503 past it.
            errors.insert(503);
        }
        let mut o = Map::new();
        o.insert("operationId".into(), self.id.into());
        o.insert("tags".into(), json!([self.tag]));
        o.insert("summary".into(), self.summary.into());
        let write = self.method != Method::GET;
        match self.access {
            Access::Public => {
                o.insert("security".into(), json!([]));
                add_paragraph(&mut description, "No token needed.");
            }
            Access::Token | Access::TokenUnlessConfigured => {
                let scope = required_scope(&self.method, self.path).as_str();
                let mut security = vec![json!({"bearer": [scope]})];
                if self.access == Access::TokenUnlessConfigured {
                    security.push(json!({}));
                    add_paragraph(
                        &mut description,
                        &format!(
                            "Needs a bearer token with scope `{scope}` (or higher), unless \
                             `[server] metrics_public = true` opens it."
                        ),
                    );
                } else {
                    add_paragraph(
                        &mut description,
                        &format!("Needs a bearer token with scope `{scope}` (or higher)."),
                    );
                }
                o.insert("security".into(), json!(security));
                o.insert("x-billd-scope".into(), scope.into());
                // The token is checked against the database; failed checks are rate
                // limited per client address, the money routes per token.
                errors.extend([401, 403, 429, 503]);
                if write && self.access == Access::Token {
                    // The idempotency middleware: a malformed key, a key reused.
                    params.push(param_ref("IdempotencyKey"));
                    errors.extend([400, 409]);
                }
            }
        }
        params.push(param_ref("RequestId"));
        o.insert("description".into(), description.into());
        o.insert("parameters".into(), json!(params));
        if let Some(body) = self.body {
            o.insert("requestBody".into(), body);
        }
        let (status, ok_description, content) = self.ok;
        let mut ok_headers = Map::new();
        ok_headers.insert("x-request-id".into(), header_ref("RequestId"));
        if write && self.access == Access::Token {
            ok_headers.insert(
                "Idempotent-Replayed".into(),
                header_ref("IdempotentReplayed"),
            );
        }
        let mut responses = Map::new();
        responses.insert(
            status.to_string(),
            json!({"description": ok_description, "headers": ok_headers, "content": content}),
        );
        for code in errors {
            responses.insert(
                code.to_string(),
                json!({"$ref": format!("#/components/responses/{}", error_response(code))}),
            );
        }
        o.insert("responses".into(), responses.into());
        o.into()
    }
}

pub(super) fn add_paragraph(text: &mut String, paragraph: &str) {
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(paragraph);
}

pub(super) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

pub(super) fn param_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

pub(super) fn header_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

/// The component response of an error status.
pub(super) fn error_response(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        402 => "CardDeclined",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        422 => "Unprocessable",
        429 => "RateLimited",
        502 => "BadGateway",
        503 => "Unavailable",
        other => panic!("no error response for {other}"),
    }
}

pub(super) fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true,
        "description": description, "schema": {"type": "string"},
    })
}

pub(super) fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({
        "name": name, "in": "query", "required": false,
        "description": description, "schema": schema,
    })
}

pub(super) fn paging() -> Vec<Value> {
    vec![param_ref("Limit"), param_ref("StartingAfter")]
}

pub(super) fn range_params() -> Vec<Value> {
    vec![
        query(
            "from",
            json!({"type": "string"}),
            "Start of the range, inclusive: RFC 3339, a date (midnight UTC) or unix seconds. Default: the start of the period holding the first data.",
        ),
        query(
            "to",
            json!({"type": "string"}),
            "End of the range, exclusive (same forms as `from`). Default: now (or after the last data, if later).",
        ),
        query(
            "interval",
            json!({"type": "string", "enum": ["day", "week", "month"], "default": "month"}),
            "Period length: UTC days, ISO weeks (from Monday) or calendar months.",
        ),
        query(
            "currency",
            json!({"type": "string", "pattern": "^[A-Za-z]{3}$"}),
            "Only this ISO currency (any case).",
        ),
        query(
            "account",
            json!({"type": "string", "pattern": "^acct_[A-Za-z0-9_]+$"}),
            "Only the rows of this connected account (`acct_…`): its payments, refunds and disputes, or its subscriptions (docs/connect.md). Default: the platform's and every account's.",
        ),
    ]
}
