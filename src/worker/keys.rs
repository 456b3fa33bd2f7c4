//! Which objects an event names: the keys a worker locks on PostgreSQL before the
//! event's handler reads anything (`super::Worker`'s batch, `store::events::lock_objects`).

/// The keys of the rows an event's object writes or reads before writing: its own id,
/// and the objects it names whose rows it shares or flags (a charge writes its payment
/// intent's payment row and flags its invoice; a refund names its charge; a customer of
/// an old API version writes the subscriptions it embeds). An object without an id is
/// known by its customer (the one subscription of a customer before 2014-01-31).
pub(super) fn object_keys(object: &serde_json::value::RawValue) -> Vec<String> {
    use std::borrow::Cow;
    #[derive(serde::Deserialize)]
    struct Keys<'a> {
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        customer: Option<Link<'a>>,
        #[serde(borrow, default)]
        payment_intent: Option<Link<'a>>,
        #[serde(borrow, default)]
        charge: Option<Link<'a>>,
        #[serde(borrow, default)]
        invoice: Option<Link<'a>>,
        #[serde(borrow, default)]
        subscription: Option<Link<'a>>,
        #[serde(borrow, default)]
        subscriptions: Option<Listed<'a>>,
    }
    /// A list of objects, or anything else (which names nothing).
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Listed<'a> {
        List {
            #[serde(borrow)]
            data: Vec<Link<'a>>,
        },
        Other(serde::de::IgnoredAny),
    }
    /// An id, or an expanded object with one (older API versions expand some).
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Link<'a> {
        Id(#[serde(borrow)] Cow<'a, str>),
        Object {
            #[serde(borrow)]
            id: Cow<'a, str>,
        },
        Other(serde::de::IgnoredAny),
    }
    let Ok(keys) = serde_json::from_str::<Keys<'_>>(object.get()) else {
        return Vec::new();
    };
    let customer = keys.customer.filter(|_| keys.id.is_none());
    let listed = match keys.subscriptions {
        Some(Listed::List { data }) => data,
        _ => Vec::new(),
    };
    let linked = [
        customer,
        keys.payment_intent,
        keys.charge,
        keys.invoice,
        keys.subscription,
    ]
    .into_iter()
    .flatten()
    .chain(listed)
    .filter_map(|l| match l {
        Link::Id(id) | Link::Object { id } => Some(id),
        Link::Other(_) => None,
    });
    let mut out: Vec<String> = keys
        .id
        .into_iter()
        .chain(linked)
        .map(Cow::into_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::object_keys;

    #[test]
    fn an_event_locks_its_object_what_it_names_and_the_subscriptions_a_customer_embeds() {
        let keys = |json: &str| {
            let raw: Box<serde_json::value::RawValue> = serde_json::from_str(json).unwrap();
            object_keys(&raw)
        };
        assert_eq!(
            keys(r#"{"id":"ch_1","customer":"cus_1","payment_intent":"pi_1","invoice":null}"#),
            ["ch_1", "pi_1"]
        );
        // The single subscription of 2013 has no id: its customer names it.
        assert_eq!(
            keys(r#"{"object":"subscription","customer":"cus_1","plan":{"id":"gold"}}"#),
            ["cus_1"]
        );
        assert_eq!(
            keys(
                r#"{"id":"cus_1","subscriptions":{"object":"list","data":[{"id":"sub_2"},"sub_1",7]},
                    "subscription":{"id":"sub_3"}}"#
            ),
            ["cus_1", "sub_1", "sub_2", "sub_3"]
        );
        assert_eq!(
            keys(r#"{"id":"cus_1","subscription":{"plan":"gold"},"subscriptions":"x"}"#),
            ["cus_1"]
        );
    }
}
