//! Payment methods: attach to a customer, detach.

use stripe_payment::payment_method::{
    AttachPaymentMethod, DetachPaymentMethod, RetrievePaymentMethod,
};

use super::{Client, IdempotencyKey, Object, StripeError};
use crate::objects::payment_method::PaymentMethod;

pub async fn retrieve(client: &Client, id: &str) -> Result<Object<PaymentMethod>, StripeError> {
    client
        .send(
            "payment_methods.retrieve",
            &RetrievePaymentMethod::new(id),
            None,
        )
        .await
}

pub async fn attach(
    client: &Client,
    payment_method: &str,
    customer: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Object<PaymentMethod>, StripeError> {
    let request = AttachPaymentMethod::new(payment_method).customer(customer);
    client.send("payment_methods.attach", &request, key).await
}

pub async fn detach(
    client: &Client,
    payment_method: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Object<PaymentMethod>, StripeError> {
    let request = DetachPaymentMethod::new(payment_method);
    client.send("payment_methods.detach", &request, key).await
}
