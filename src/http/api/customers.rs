//! `GET /stripe/customers/{id}`: the mirrored customer with its subscriptions, payment
//! methods and open flags.

use axum::{
    Json,
    extract::{Path, State},
};

use crate::{
    http::{AppState, error::ApiResult},
    store::mirror::{self, Customer},
};

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Customer>> {
    Ok(Json(
        state
            .store
            .run(move |c| mirror::get_customer(c, &id))
            .await?,
    ))
}
