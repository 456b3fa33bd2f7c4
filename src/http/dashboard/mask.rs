//! Personal data masked out of an event's payload before an admin sees it on the
//! dashboard: the payload's shape, ids, amounts, statuses and times stay, so an
//! operator can see why an event failed; what names, reaches or identifies a person or
//! a card does not (emails, names, phones, addresses, card details, IP addresses,
//! free text and metadata, which may hold anything).

use serde_json::Value;

/// What a masked value is shown as.
pub const MASK: &str = "•••";

/// Keys whose whole value is personal (every leaf below them is masked).
const PERSONAL: [&str; 27] = [
    "name",
    "account_holder_name",
    "address",
    "address_kana",
    "address_kanji",
    "shipping",
    "billing_details",
    "owner",
    "line1",
    "line2",
    "city",
    "postal_code",
    "state",
    "last4",
    "dynamic_last4",
    "exp_month",
    "exp_year",
    "fingerprint",
    "number",
    "cvc",
    "iin",
    "ip",
    "ip_address",
    "client_ip",
    "description",
    "metadata",
    "tax_ids",
];

fn personal(key: &str) -> bool {
    PERSONAL.contains(&key)
        || key.ends_with("email")
        || key.ends_with("phone")
        || key.ends_with("_name")
        || key.ends_with("_address")
        || key.ends_with("_shipping")
}

/// Masks `v` in place (see the module comment).
pub fn mask(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if personal(key) {
                    mask_all(value);
                } else {
                    mask(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

/// Every string and number below `v` masked; nulls and booleans say only whether
/// something is there.
fn mask_all(v: &mut Value) {
    match v {
        Value::String(_) | Value::Number(_) => *v = MASK.into(),
        Value::Object(map) => map.values_mut().for_each(mask_all),
        Value::Array(items) => items.iter_mut().for_each(mask_all),
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_contacts_addresses_cards_and_metadata_are_masked_and_the_rest_kept() {
        let mut event = json!({
            "id": "evt_1",
            "type": "charge.succeeded",
            "data": {"object": {
                "id": "ch_1", "amount": 1200, "currency": "eur", "status": "succeeded",
                "receipt_email": "someone@mail.test",
                "billing_details": {"name": "A Person", "phone": "+4912345",
                    "address": {"line1": "Street 1", "city": "Town", "country": "DE"}},
                "payment_method_details": {"card": {"brand": "visa", "last4": "4242",
                    "exp_month": 12, "exp_year": 2030, "fingerprint": "abc", "country": "US"}},
                "customer": "cus_1",
                "metadata": {"note": "call me"},
                "shipping": null,
                "customer_details": {"email": "x@mail.test", "tax_exempt": "none"},
            }},
        });
        mask(&mut event);
        let o = &event["data"]["object"];
        assert_eq!(o["id"], "ch_1");
        assert_eq!(o["amount"], 1200);
        assert_eq!(o["customer"], "cus_1");
        assert_eq!(o["receipt_email"], MASK);
        assert_eq!(o["billing_details"]["name"], MASK);
        assert_eq!(o["billing_details"]["address"]["country"], MASK);
        let card = &o["payment_method_details"]["card"];
        assert_eq!(card["brand"], "visa");
        assert_eq!(card["country"], "US");
        for k in ["last4", "exp_month", "exp_year", "fingerprint"] {
            assert_eq!(card[k], MASK, "{k}");
        }
        assert_eq!(o["metadata"]["note"], MASK);
        assert_eq!(o["shipping"], Value::Null);
        assert_eq!(o["customer_details"]["email"], MASK);
        assert_eq!(o["customer_details"]["tax_exempt"], "none");
        let text = event.to_string();
        for secret in ["someone@", "A Person", "4242", "Street", "call me", "+49"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
