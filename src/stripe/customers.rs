//! Customers: create, update, delete, retrieve, default payment method.

use std::collections::HashMap;

use serde::Deserialize;
use stripe_core::customer::{
    CreateCustomer, CreateCustomerInvoiceSettings, DeleteCustomer, UpdateCustomer,
    UpdateCustomerInvoiceSettings,
};

use super::{Client, IdempotencyKey, Object, StripeError};
use crate::objects::expandable;

/// billd's view of a Stripe customer.
#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub invoice_settings: Option<InvoiceSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceSettings {
    #[serde(default, deserialize_with = "expandable")]
    pub default_payment_method: Option<String>,
}

impl Customer {
    pub fn default_payment_method(&self) -> Option<&str> {
        self.invoice_settings
            .as_ref()
            .and_then(|s| s.default_payment_method.as_deref())
    }
}

/// The fields billd sets on a customer (absent: not sent, so left as they are).
#[derive(Debug, Clone, Default)]
pub struct CustomerFields {
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub phone: Option<String>,
    pub metadata: Option<HashMap<String, String>>,
}

pub async fn create(
    client: &Client,
    fields: &CustomerFields,
    payment_method: Option<&str>,
    key: Option<&IdempotencyKey>,
) -> Result<Object<Customer>, StripeError> {
    let mut request = CreateCustomer::new();
    if let Some(v) = &fields.email {
        request = request.email(v);
    }
    if let Some(v) = &fields.name {
        request = request.name(v);
    }
    if let Some(v) = &fields.description {
        request = request.description(v);
    }
    if let Some(v) = &fields.phone {
        request = request.phone(v);
    }
    if let Some(v) = &fields.metadata {
        request = request.metadata(v.clone());
    }
    if let Some(pm) = payment_method {
        // Attached by Stripe and made the default for invoices and subscriptions.
        let mut settings = CreateCustomerInvoiceSettings::new();
        settings.default_payment_method = Some(pm.to_string());
        request = request.payment_method(pm).invoice_settings(settings);
    }
    client.send("customers.create", &request, key).await
}

pub async fn update(
    client: &Client,
    id: &str,
    fields: &CustomerFields,
    key: Option<&IdempotencyKey>,
) -> Result<Object<Customer>, StripeError> {
    let mut request = UpdateCustomer::new(id);
    if let Some(v) = &fields.email {
        request = request.email(v);
    }
    if let Some(v) = &fields.name {
        request = request.name(v);
    }
    if let Some(v) = &fields.description {
        request = request.description(v);
    }
    if let Some(v) = &fields.phone {
        request = request.phone(v);
    }
    if let Some(v) = &fields.metadata {
        request = request.metadata(v.clone());
    }
    client.send("customers.update", &request, key).await
}

/// Makes `payment_method` the customer's default for invoices and subscriptions.
pub async fn set_default_payment_method(
    client: &Client,
    id: &str,
    payment_method: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Object<Customer>, StripeError> {
    let mut settings = UpdateCustomerInvoiceSettings::new();
    settings.default_payment_method = Some(payment_method.to_string());
    let request = UpdateCustomer::new(id).invoice_settings(settings);
    client
        .send("customers.set_default_payment_method", &request, key)
        .await
}

/// Deletes the customer in Stripe (which cancels its subscriptions). Answers the
/// deleted stub, `{"id", "deleted": true}`.
pub async fn delete(client: &Client, id: &str) -> Result<Object<Customer>, StripeError> {
    client
        .send("customers.delete", &DeleteCustomer::new(id), None)
        .await
}
