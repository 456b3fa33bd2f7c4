//! A connected account (Stripe Connect), and the application of a deauthorization.
//!
//! Several fields moved over the API versions: `charge_enabled` and `transfer_enabled`
//! became `charges_enabled` and `transfers_enabled` (2014-11-05), then `payouts_enabled`
//! with the payout split (2017-04-06); the `managed` flag became `type` (2017-05-25); and
//! `verification` became `requirements` (2019-02-19). The methods read either.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Account {
    pub id: String,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// Before 2017-05-25: `true` for what is now `custom`, `false` for `standard`.
    #[serde(default)]
    pub managed: Option<bool>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub charges_enabled: Option<bool>,
    /// `charges_enabled` before 2014-11-05.
    #[serde(default)]
    pub charge_enabled: Option<bool>,
    #[serde(default)]
    pub payouts_enabled: Option<bool>,
    /// What `payouts_enabled` was before payouts were split from transfers.
    #[serde(default)]
    pub transfers_enabled: Option<bool>,
    /// `transfers_enabled` before 2014-11-05.
    #[serde(default)]
    pub transfer_enabled: Option<bool>,
    #[serde(default)]
    pub details_submitted: Option<bool>,
    #[serde(default)]
    pub requirements: Option<Requirements>,
    /// `requirements` before 2019-02-19.
    #[serde(default)]
    pub verification: Option<Verification>,
}

#[derive(Debug, Deserialize)]
pub struct Requirements {
    #[serde(default)]
    pub currently_due: Option<Vec<String>>,
    #[serde(default)]
    pub past_due: Option<Vec<String>>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Verification {
    /// What is now `requirements.currently_due`.
    #[serde(default)]
    pub fields_needed: Option<Vec<String>>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

impl Account {
    pub fn type_(&self) -> Option<String> {
        self.type_.clone().or_else(|| {
            self.managed
                .map(|m| if m { "custom" } else { "standard" }.to_string())
        })
    }

    pub fn charges_enabled(&self) -> Option<bool> {
        self.charges_enabled.or(self.charge_enabled)
    }

    pub fn payouts_enabled(&self) -> Option<bool> {
        self.payouts_enabled
            .or(self.transfers_enabled)
            .or(self.transfer_enabled)
    }

    pub fn currently_due(&self) -> Option<&[String]> {
        match &self.requirements {
            Some(r) => r.currently_due.as_deref(),
            None => self.verification.as_ref()?.fields_needed.as_deref(),
        }
    }

    /// Requirements past due (named only from 2019-02-19 on; before, a disabled
    /// account says why in `verification.disabled_reason`).
    pub fn past_due(&self) -> &[String] {
        self.requirements
            .as_ref()
            .and_then(|r| r.past_due.as_deref())
            .unwrap_or_default()
    }

    pub fn disabled_reason(&self) -> Option<&str> {
        match &self.requirements {
            Some(r) => r.disabled_reason.as_deref(),
            None => self.verification.as_ref()?.disabled_reason.as_deref(),
        }
    }
}

/// The object of account.application.deauthorized is the application, not the account.
#[derive(Debug, Deserialize)]
pub struct Deauthorized {
    #[serde(default)]
    pub id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_of_every_era_read_alike() {
        let read = |json: &str| serde_json::from_str::<Account>(json).unwrap();
        let y2013 = read(r#"{"id":"acct_1","charge_enabled":true,"transfer_enabled":false}"#);
        assert_eq!(y2013.charges_enabled(), Some(true));
        assert_eq!(y2013.payouts_enabled(), Some(false));
        assert_eq!(y2013.type_(), None);
        let y2016 = read(
            r#"{"id":"acct_2","managed":true,"charges_enabled":false,"transfers_enabled":true,
                "verification":{"fields_needed":["legal_entity.dob.day"],"due_by":null,
                                "disabled_reason":"fields_needed"}}"#,
        );
        assert_eq!(y2016.type_().as_deref(), Some("custom"));
        assert_eq!(y2016.payouts_enabled(), Some(true));
        assert_eq!(
            y2016.currently_due(),
            Some(&["legal_entity.dob.day".to_string()][..])
        );
        assert_eq!(y2016.disabled_reason(), Some("fields_needed"));
        assert!(y2016.past_due().is_empty());
        let y2019 = read(
            r#"{"id":"acct_3","type":"express","payouts_enabled":true,
                "requirements":{"currently_due":[],"past_due":["external_account"],
                                "disabled_reason":null}}"#,
        );
        assert_eq!(y2019.type_().as_deref(), Some("express"));
        assert_eq!(y2019.currently_due(), Some(&[][..]));
        assert_eq!(y2019.past_due(), ["external_account".to_string()]);
        assert_eq!(y2019.disabled_reason(), None);
    }
}
