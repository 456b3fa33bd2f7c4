//! Stripe Connect: `POST /stripe/connect/accounts` creates a connected account
//! (written through to the mirror), `POST /stripe/connect/accounts/{id}/links` makes
//! its onboarding link, and `GET /stripe/connect/accounts/{id}` answers its
//! verification status from the mirror (kept current by `account.updated` webhooks).

use crate::http::api::Path;
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{Body, write_through};
use crate::{
    events,
    http::{
        AppState,
        error::{ApiError, ApiResult},
        idempotency::Key,
    },
    ids::{self, Kind},
    store::accounts::{self, Account},
    stripe::{
        self,
        connect::{AccountType, LinkType, NewAccount},
    },
    time::as_rfc3339,
};

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Account>> {
    Ok(Json(state.store.run(move |c| accounts::get(c, &id)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// `express`, `standard` or `custom`.
    #[serde(rename = "type")]
    type_: String,
    country: Option<String>,
    email: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Key(key): Key,
    Body(body): Body<CreateBody>,
) -> ApiResult<(StatusCode, Json<Account>)> {
    let type_ = AccountType::parse(&body.type_).ok_or_else(|| {
        ApiError::invalid(format!(
            "type must be express, standard or custom, got {:?}",
            body.type_
        ))
        .with("param", "type")
    })?;
    let country = match body.country {
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(c) => {
            return Err(ApiError::invalid(format!(
                "country must be a two-letter ISO code such as DE, got {c:?}"
            ))
            .with("param", "country"));
        }
        None => None,
    };
    let new = NewAccount {
        type_,
        country,
        email: body.email,
    };
    let created = stripe::connect::create_account(&state.stripe, &new, key.as_ref()).await?;
    let id = created.value.id.clone();
    let raw = created.raw;
    let read = write_through(
        &state,
        move |conn, origin| events::write_account(conn, &raw, origin).map(drop),
        move |conn| accounts::get(conn, &id),
    )
    .await;
    let account = read.unwrap_or_else(|| Account {
        id: created.value.id,
        type_: Some(body.type_),
        country: new.country,
        charges_enabled: false,
        payouts_enabled: false,
        details_submitted: false,
        currently_due: Vec::new(),
        disabled_reason: None,
        deleted: false,
    });
    Ok((StatusCode::CREATED, Json(account)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// Where Stripe sends the person when the link expired or was used: make a new
    /// link there.
    refresh_url: String,
    /// Where Stripe sends the person after onboarding (which may be unfinished).
    return_url: String,
    /// `account_onboarding` (default) or `account_update`.
    #[serde(rename = "type")]
    type_: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Link {
    url: String,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    expires_at: Option<i64>,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    created: Option<i64>,
}

pub async fn link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Key(key): Key,
    Body(body): Body<LinkBody>,
) -> ApiResult<(StatusCode, Json<Link>)> {
    ids::check(Kind::Account, "id", &id)?;
    let type_ = match body.type_.as_deref() {
        None | Some("account_onboarding") => LinkType::Onboarding,
        Some("account_update") => LinkType::Update,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "type must be account_onboarding or account_update, got {other:?}"
            ))
            .with("param", "type"));
        }
    };
    for (name, url) in [
        ("refresh_url", &body.refresh_url),
        ("return_url", &body.return_url),
    ] {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(
                ApiError::invalid(format!("{name} must be an http(s) URL")).with("param", name)
            );
        }
    }
    let link = stripe::connect::create_link(
        &state.stripe,
        &id,
        type_,
        &body.refresh_url,
        &body.return_url,
        key.as_ref(),
    )
    .await?;
    let l = link.value;
    Ok((
        StatusCode::CREATED,
        Json(Link {
            url: l.url,
            expires_at: l.expires_at,
            created: l.created,
        }),
    ))
}
