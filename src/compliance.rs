//! Compliance rules (DESIGN §2 `[compliance]`, docs/compliance.md): what billd checks
//! before it asks Stripe to take money — a payment, a Checkout session, a subscription.
//!
//! Pure: the HTTP layer gathers the facts (the amount asked for, and what the mirror
//! knows of the customer and the card) and asks [`Rules::check`]; a refusal names the
//! rule it broke, never the value (an email address is personal data).

use std::collections::BTreeMap;

use crate::config::ComplianceConfig;

/// The rules, normalised from the config: countries upper case, currencies and email
/// domains lower case.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    blocked_countries: Vec<String>,
    max_amount: BTreeMap<String, i64>,
    blocked_email_domains: Vec<String>,
}

/// What a request would make Stripe do, and what billd knows of who asks.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Each amount the request would charge at once (a payment, a Checkout line
    /// total, a subscription's first period), with its currency.
    pub amounts: Vec<(i64, String)>,
    /// The customer's email, or the one a Checkout session is prefilled with.
    pub email: Option<String>,
    /// The customer's address country.
    pub address_country: Option<String>,
    /// The card's issuing country.
    pub card_country: Option<String>,
}

/// Why a request was refused: the rule, and which fact broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BlockedCountry { of: &'static str },
    MaxAmount { currency: String, max: i64 },
    BlockedEmailDomain,
}

impl Refusal {
    /// The config key of the rule.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::BlockedCountry { .. } => "blocked_countries",
            Refusal::MaxAmount { .. } => "max_amount",
            Refusal::BlockedEmailDomain => "blocked_email_domains",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BlockedCountry { of } => write!(
                f,
                "refused by the compliance rule blocked_countries: the {of} country is blocked"
            ),
            Refusal::MaxAmount { currency, max } => write!(
                f,
                "refused by the compliance rule max_amount: more than {max} (minor units) \
                 {currency} in one payment"
            ),
            Refusal::BlockedEmailDomain => write!(
                f,
                "refused by the compliance rule blocked_email_domains: the customer's email \
                 domain is blocked"
            ),
        }
    }
}

impl Rules {
    pub fn new(config: &ComplianceConfig) -> Rules {
        Rules {
            blocked_countries: config
                .blocked_countries
                .iter()
                .map(|c| c.trim().to_ascii_uppercase())
                .collect(),
            max_amount: config
                .max_amount
                .iter()
                .map(|(c, max)| (c.trim().to_ascii_lowercase(), *max))
                .collect(),
            blocked_email_domains: config
                .blocked_email_domains
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect(),
        }
    }

    /// No rule is configured: nothing needs to be looked up.
    pub fn is_empty(&self) -> bool {
        self.blocked_countries.is_empty()
            && self.max_amount.is_empty()
            && self.blocked_email_domains.is_empty()
    }

    /// Whether the rules need the customer's and the card's details (countries, email).
    pub fn needs_parties(&self) -> bool {
        !self.blocked_countries.is_empty() || !self.blocked_email_domains.is_empty()
    }

    /// The first rule the request breaks, if any. A fact billd does not know (a
    /// customer the mirror has not seen, a card without a country) breaks nothing.
    pub fn check(&self, facts: &Facts) -> Result<(), Refusal> {
        for (of, country) in [
            ("customer's address", &facts.address_country),
            ("card's", &facts.card_country),
        ] {
            if let Some(c) = country
                && self
                    .blocked_countries
                    .iter()
                    .any(|b| b.eq_ignore_ascii_case(c.trim()))
            {
                return Err(Refusal::BlockedCountry { of });
            }
        }
        for (amount, currency) in &facts.amounts {
            let currency = currency.to_ascii_lowercase();
            if let Some(max) = self.max_amount.get(&currency)
                && amount > max
            {
                return Err(Refusal::MaxAmount {
                    currency,
                    max: *max,
                });
            }
        }
        if let Some(email) = &facts.email
            && let Some((_, domain)) = email.trim().rsplit_once('@')
        {
            let domain = domain.to_ascii_lowercase();
            // A blocked domain blocks its subdomains too (`mail.example.org`).
            if self
                .blocked_email_domains
                .iter()
                .any(|b| domain == *b || domain.ends_with(&format!(".{b}")))
            {
                return Err(Refusal::BlockedEmailDomain);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::new(&ComplianceConfig {
            blocked_countries: vec!["kp".into(), " IR".into()],
            max_amount: [("USD".to_string(), 500_000)].into_iter().collect(),
            blocked_email_domains: vec!["@Blocked.example".into()],
        })
    }

    #[test]
    fn each_rule_refuses_what_it_names_and_lets_the_rest_pass() {
        let r = rules();
        let ok = Facts {
            amounts: vec![(500_000, "usd".into()), (9_999_999, "eur".into())],
            email: Some("someone@example.com".into()),
            address_country: Some("DE".into()),
            card_country: Some("US".into()),
        };
        assert_eq!(r.check(&ok), Ok(()));
        assert_eq!(r.check(&Facts::default()), Ok(()));

        let over = Facts {
            amounts: vec![(500_001, "USD".into())],
            ..ok.clone()
        };
        let refusal = r.check(&over).unwrap_err();
        assert_eq!(refusal.rule(), "max_amount");
        assert!(refusal.to_string().contains("500000"), "{refusal}");

        let card = Facts {
            card_country: Some("ir".into()),
            ..ok.clone()
        };
        assert_eq!(
            r.check(&card),
            Err(Refusal::BlockedCountry { of: "card's" })
        );
        let address = Facts {
            address_country: Some("KP".into()),
            ..ok.clone()
        };
        assert_eq!(r.check(&address).unwrap_err().rule(), "blocked_countries");

        for email in ["a@blocked.example", "a@MAIL.Blocked.Example"] {
            let f = Facts {
                email: Some(email.into()),
                ..ok.clone()
            };
            let refusal = r.check(&f).unwrap_err();
            assert_eq!(refusal, Refusal::BlockedEmailDomain);
            // The refusal never repeats the address.
            assert!(!refusal.to_string().contains('@'), "{refusal}");
        }
        // Not a subdomain: a domain that merely ends with the same letters.
        let f = Facts {
            email: Some("a@notblocked.example".into()),
            ..ok
        };
        assert_eq!(r.check(&f), Ok(()));
    }

    #[test]
    fn no_rules_check_nothing() {
        let r = Rules::default();
        assert!(r.is_empty() && !r.needs_parties());
        let f = Facts {
            amounts: vec![(i64::MAX, "usd".into())],
            email: Some("a@b.c".into()),
            address_country: Some("KP".into()),
            card_country: None,
        };
        assert_eq!(r.check(&f), Ok(()));
    }
}
