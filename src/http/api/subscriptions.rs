//! `GET /stripe/subscriptions/{id}` from the mirror.

use axum::{
    Json,
    extract::{Path, State},
};

use crate::{
    http::{AppState, error::ApiResult},
    store::mirror::{self, Subscription},
};

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(
        state
            .store
            .run(move |c| mirror::get_subscription(c, &id))
            .await?,
    ))
}
