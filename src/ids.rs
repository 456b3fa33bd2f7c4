//! Stripe object ids as callers send them, checked before billd puts them into a
//! Stripe request (DESIGN §3): `^[A-Za-z0-9_]{1,255}$` and the prefix of the object's
//! kind. An id that passes cannot change which Stripe endpoint is called or which
//! parameters it gets (no `/`, `..`, `?`, `#`, `&`, `=`, `%` or control bytes).
//!
//! Errors name the parameter and the expected shape, never the value: it comes from a
//! caller and may be hostile or huge.

/// What kind of Stripe object an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Customer,
    Subscription,
    PaymentIntent,
    Charge,
    /// What a refund is made of: a payment intent or a charge.
    Payment,
    Refund,
    PaymentMethod,
    Price,
    Product,
    Account,
    CheckoutSession,
    Invoice,
    Event,
}

impl Kind {
    /// The prefixes Stripe gives this kind's ids (docs/decisions.md, "Ids").
    pub fn prefixes(self) -> &'static [&'static str] {
        match self {
            Kind::Customer => &["cus_"],
            Kind::Subscription => &["sub_"],
            Kind::PaymentIntent => &["pi_"],
            // `py_`: charges of non-card payment methods.
            Kind::Charge => &["ch_", "py_"],
            Kind::Payment => &["pi_", "ch_", "py_"],
            Kind::Refund => &["re_"],
            // Stripe takes legacy cards and sources where a payment method goes.
            Kind::PaymentMethod => &["pm_", "card_", "src_"],
            // Stripe takes a legacy plan's id where a price goes; billd accepts plans
            // whose ids follow the `plan_` convention.
            Kind::Price => &["price_", "plan_"],
            Kind::Product => &["prod_"],
            Kind::Account => &["acct_"],
            Kind::CheckoutSession => &["cs_"],
            Kind::Invoice => &["in_"],
            Kind::Event => &["evt_"],
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Customer => "a customer id",
            Kind::Subscription => "a subscription id",
            Kind::PaymentIntent => "a payment intent id",
            Kind::Charge => "a charge id",
            Kind::Payment => "a payment intent or charge id",
            Kind::Refund => "a refund id",
            Kind::PaymentMethod => "a payment method id",
            Kind::Price => "a price id",
            Kind::Product => "a product id",
            Kind::Account => "a connected account id",
            Kind::CheckoutSession => "a Checkout session id",
            Kind::Invoice => "an invoice id",
            Kind::Event => "an event id",
        }
    }
}

/// The longest id Stripe makes (and the rule's bound).
pub const MAX_LEN: usize = 255;

/// An id refused: which parameter, and what it should have looked like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{param} must be {} ({}… followed by letters, digits and underscores, at most {MAX_LEN} characters in all)",
    kind.noun(),
    shapes(*kind)
)]
pub struct IdError {
    param: String,
    kind: Kind,
}

impl IdError {
    /// The parameter at fault, as the caller named it (`customer`, `line_items[0].price`).
    pub fn param(&self) -> &str {
        &self.param
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
}

fn shapes(kind: Kind) -> String {
    let prefixes = kind.prefixes();
    match prefixes.split_last() {
        Some((last, [])) => format!("`{last}`"),
        Some((last, rest)) => {
            let rest: Vec<String> = rest.iter().map(|p| format!("`{p}`")).collect();
            format!("{} or `{last}`", rest.join(", "))
        }
        None => String::new(),
    }
}

/// Whether `value` is an id of `kind`.
pub fn is_valid(kind: Kind, value: &str) -> bool {
    value.len() <= MAX_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && kind
            .prefixes()
            .iter()
            .any(|p| value.len() > p.len() && value.starts_with(p))
}

/// `value` if it is an id of `kind`; otherwise an error naming `param`.
pub fn check<'a>(kind: Kind, param: &str, value: &'a str) -> Result<&'a str, IdError> {
    if is_valid(kind, value) {
        Ok(value)
    } else {
        Err(IdError {
            param: param.to_string(),
            kind,
        })
    }
}

/// [`check`] for an optional parameter: absent is fine.
pub fn check_opt<'a>(
    kind: Kind,
    param: &str,
    value: Option<&'a str>,
) -> Result<Option<&'a str>, IdError> {
    value.map(|v| check(kind, param, v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_the_right_kind_pass() {
        for (kind, id) in [
            (Kind::Customer, "cus_IhGfebO16cMIGN"),
            (Kind::Subscription, "sub_1"),
            (Kind::PaymentIntent, "pi_3MtwBwLkdIwHu7ix28a3tqPa"),
            (Kind::Charge, "ch_1"),
            (Kind::Charge, "py_1"),
            (Kind::Payment, "pi_1"),
            (Kind::Payment, "ch_1"),
            (Kind::Refund, "re_1"),
            (Kind::PaymentMethod, "pm_card_visa"),
            (Kind::PaymentMethod, "card_1"),
            (Kind::PaymentMethod, "src_1"),
            (Kind::Price, "price_1"),
            (Kind::Price, "plan_basic_monthly"),
            (Kind::Product, "prod_1"),
            (Kind::Account, "acct_1"),
            (Kind::CheckoutSession, "cs_test_a1"),
            (Kind::Invoice, "in_1"),
            (Kind::Event, "evt_1"),
        ] {
            assert_eq!(check(kind, "p", id), Ok(id), "{kind:?} {id}");
        }
        assert!(is_valid(
            Kind::Customer,
            &format!("cus_{}", "a".repeat(251))
        ));
    }

    #[test]
    fn anything_that_could_change_the_request_is_refused() {
        for id in [
            "",
            "cus_",
            "cus_1/../../refunds",
            "x/../../refunds?payment_intent=pi_1&amount=100",
            "cus_1?expand[]=x",
            "cus_1#x",
            "cus_1%2F",
            "cus_1&amount=1",
            "cus_1=",
            "cus_..",
            "cus_1.2",
            "cus_1-2",
            "cus_1 ",
            " cus_1",
            "cus_1\r\nX-Injected: 1",
            "cus_1\0",
            "cus_é",
            "CUS_1",
        ] {
            assert!(check(Kind::Customer, "id", id).is_err(), "{id:?}");
        }
        assert!(!is_valid(
            Kind::Customer,
            &format!("cus_{}", "a".repeat(252))
        ));
    }

    #[test]
    fn the_prefix_must_be_the_kinds() {
        assert!(check(Kind::Customer, "customer", "sub_1").is_err());
        assert!(check(Kind::PaymentIntent, "payment_intent", "ch_1").is_err());
        assert!(check(Kind::Charge, "charge", "pi_1").is_err());
        assert!(check(Kind::Price, "price", "basic-monthly").is_err());
        assert!(check(Kind::Price, "price", "prod_1").is_err());
        assert!(check(Kind::PaymentMethod, "payment_method", "tok_visa").is_err());
        assert!(check(Kind::Payment, "payment", "re_1").is_err());
    }

    #[test]
    fn the_error_names_the_parameter_and_the_shape_but_never_the_value() {
        let hostile = "pm_1/../x?amount=1\r\nsecret";
        let e = check(Kind::PaymentMethod, "payment_method", hostile).unwrap_err();
        assert_eq!(e.param(), "payment_method");
        let text = e.to_string();
        assert!(
            text.starts_with("payment_method must be a payment method id"),
            "{text}"
        );
        assert!(text.contains("`pm_`, `card_` or `src_`"), "{text}");
        assert!(!text.contains("../x"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let e = check(Kind::Customer, "customer", "x").unwrap_err();
        assert!(e.to_string().contains("(`cus_`…"), "{e}");
        let huge = "a".repeat(1 << 20);
        assert!(
            check(Kind::Customer, "id", &huge)
                .unwrap_err()
                .to_string()
                .len()
                < 200
        );
    }

    #[test]
    fn optional_ids_may_be_absent() {
        assert_eq!(check_opt(Kind::Customer, "customer", None), Ok(None));
        assert!(check_opt(Kind::Customer, "customer", Some("cus_1/")).is_err());
    }
}
