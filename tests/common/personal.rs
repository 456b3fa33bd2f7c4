//! Personal data in documentation examples: replaced by Stripe's own example values
//! (an `example.com` email, a 555 phone number, Stripe's office address).

use serde_json::Value;

pub const EXAMPLE_EMAIL: &str = "jenny@example.com";
pub const EXAMPLE_PHONE: &str = "+15555550123";

const EXAMPLE_ADDRESS: [(&str, &str); 5] = [
    ("line1", "510 Townsend St"),
    ("line2", ""),
    ("city", "San Francisco"),
    ("state", "CA"),
    ("postal_code", "94103"),
];

/// Replaces what could be a person's data with Stripe's own example values, keeping
/// nulls null (so the example still shows which fields were absent).
pub fn scrub(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let personal = ["email", "phone", "address"]
                .iter()
                .any(|k| map.contains_key(*k));
            for (key, value) in map.iter_mut() {
                let text = value.is_string();
                match key.as_str() {
                    k if k.ends_with("email") && text => *value = EXAMPLE_EMAIL.into(),
                    k if k.ends_with("phone") && text => *value = EXAMPLE_PHONE.into(),
                    "name" | "customer_name" | "account_holder_name"
                        if text && (personal || key != "name") =>
                    {
                        *value = "Jenny Rosen".into()
                    }
                    "metadata" if value.is_object() => *value = Value::Object(Default::default()),
                    "fingerprint" if text => *value = "Xt5EWLLDS7FJjR1c".into(),
                    k if (k.ends_with("address")
                        || k == "address_kana"
                        || k == "address_kanji")
                        && value.is_object() =>
                    {
                        for (field, example) in EXAMPLE_ADDRESS {
                            if let Some(f) = value.get_mut(field).filter(|f| f.is_string()) {
                                *f = example.into();
                            }
                        }
                    }
                    _ => scrub(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// Every `@` address in `text` that is not at `example.com`.
pub fn real_looking_emails(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '"' | ',' | '<' | '>' | '(' | ')'))
        .filter(|word| word.contains('@') && word.contains('.'))
        .filter(|word| !word.trim_end_matches(['.', ';']).ends_with("@example.com"))
        .map(str::to_string)
        .collect()
}
