//! Stripe Connect: connected accounts and their onboarding links. What an account
//! may do (charges, payouts) and what Stripe still needs arrive later by
//! `account.updated` webhooks.

use serde::Deserialize;
use stripe_connect::{
    account::{
        CreateAccount, CreateAccountCapabilities, CreateAccountCapabilitiesCardPayments,
        CreateAccountCapabilitiesTransfers, CreateAccountType,
    },
    account_link::{CreateAccountLink, CreateAccountLinkType},
};

use super::{Client, IdempotencyKey, Object, StripeError};

/// billd's view of a connected account (the mirror reads the rest from the raw JSON).
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub id: String,
}

/// An onboarding (or update) link: a single-use URL that expires within minutes.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountLink {
    pub url: String,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub created: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountType {
    Express,
    Standard,
    Custom,
}

impl AccountType {
    pub fn parse(s: &str) -> Option<AccountType> {
        match s {
            "express" => Some(AccountType::Express),
            "standard" => Some(AccountType::Standard),
            "custom" => Some(AccountType::Custom),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub type_: AccountType,
    /// ISO 3166-1 alpha-2; Stripe defaults to the platform's country.
    pub country: Option<String>,
    pub email: Option<String>,
}

/// Creates a connected account. Express and custom accounts ask for the card payments
/// and transfers capabilities (Stripe requires capabilities for custom accounts;
/// standard accounts choose their own).
pub async fn create_account(
    client: &Client,
    new: &NewAccount,
    key: Option<&IdempotencyKey>,
) -> Result<Object<Account>, StripeError> {
    let mut request = CreateAccount::new().type_(match new.type_ {
        AccountType::Express => CreateAccountType::Express,
        AccountType::Standard => CreateAccountType::Standard,
        AccountType::Custom => CreateAccountType::Custom,
    });
    if new.type_ != AccountType::Standard {
        let mut capabilities = CreateAccountCapabilities::new();
        let mut card = CreateAccountCapabilitiesCardPayments::new();
        card.requested = Some(true);
        let mut transfers = CreateAccountCapabilitiesTransfers::new();
        transfers.requested = Some(true);
        capabilities.card_payments = Some(card);
        capabilities.transfers = Some(transfers);
        request = request.capabilities(capabilities);
    }
    if let Some(country) = &new.country {
        request = request.country(country);
    }
    if let Some(email) = &new.email {
        request = request.email(email);
    }
    client.send("accounts.create", &request, key).await
}

/// Whether the link is for first onboarding or for updating details later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Onboarding,
    Update,
}

pub async fn create_link(
    client: &Client,
    account: &str,
    type_: LinkType,
    refresh_url: &str,
    return_url: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Object<AccountLink>, StripeError> {
    let type_ = match type_ {
        LinkType::Onboarding => CreateAccountLinkType::AccountOnboarding,
        LinkType::Update => CreateAccountLinkType::AccountUpdate,
    };
    let request = CreateAccountLink::new(account, type_)
        .refresh_url(refresh_url)
        .return_url(return_url);
    client.send("account_links.create", &request, key).await
}
