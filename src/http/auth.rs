//! Bearer-token authentication with scopes. Applied to every API route (never to the
//! webhook and health routes): GET needs `read`, other methods `write`, and the routes
//! listed in [`required_scope`] `admin`.

use std::net::IpAddr;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{AppState, error::ApiError, limits, metrics};
use crate::store::tokens::{self, Scope};

/// Longer than any token `billd token create` makes.
const MAX_TOKEN_LEN: usize = 256;

/// The scope a route needs.
pub fn required_scope(method: &Method, route: &str) -> Scope {
    let admin = route.ends_with("/replay")
        || route.starts_with("/stripe/refunds")
        || route.starts_with("/tokens");
    if admin {
        Scope::Admin
    } else if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else {
        Scope::Write
    }
}

/// The id of the token that authenticated the request (for the audit log).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| request.uri().path().to_string());
    let needed = required_scope(request.method(), &route);
    // An address that failed too often is refused before its token is even looked up.
    let client = limits::client_of(&state, &request);
    if let Err(limited) = not_blocked(&state, client) {
        return limited.into_response();
    }
    let failed = |error: ApiError| match count_failure(&state, client) {
        Ok(()) => error.into_response(),
        Err(limited) => limited.into_response(),
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    // billd's tokens are short; a long one is not worth hashing and looking up.
    let Some(token) = token.filter(|t| usable(t)) else {
        // No `Authorization` header guesses at nothing: answered, not counted. A header
        // without a usable token (not Bearer, empty, too long to be billd's) is a
        // failed attempt like a wrong token.
        let error =
            ApiError::unauthorized("missing bearer token: send `Authorization: Bearer <token>`");
        return if request.headers().contains_key(header::AUTHORIZATION) {
            failed(error)
        } else {
            error.into_response()
        };
    };
    match lookup(&state, token).await {
        Ok(Some((id, scope))) => match allows(scope, needed) {
            Ok(()) => {
                request.extensions_mut().insert(Caller(id));
                next.run(request).await
            }
            Err(forbidden) => forbidden.into_response(),
        },
        Ok(None) => failed(ApiError::unauthorized("unknown or revoked token")),
        Err(e) => e.into_response(),
    }
}

// The steps of [`layer`], also taken by the dashboard's login and session checks
// (`http::dashboard`), so a browser is held to the same rules as a client.

/// Refuses an address past its failure burst (429), before anything else is checked.
pub fn not_blocked(state: &AppState, client: Option<IpAddr>) -> Result<(), ApiError> {
    state.limits.check_not_blocked(client).map_err(|limited| {
        metrics::protection("rate_limited");
        ApiError::from(limited)
    })
}

/// Counts a failed authentication of `client`; the 429 to answer instead once the
/// address is past its burst.
pub fn count_failure(state: &AppState, client: Option<IpAddr>) -> Result<(), ApiError> {
    state.limits.failed(client).map_err(|limited| {
        tracing::warn!("authentication failures from one client address: rate limited");
        metrics::protection("rate_limited");
        ApiError::from(limited)
    })
}

/// Whether `token` could be one of billd's (not empty, not longer than any it makes).
pub fn usable(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_LEN
}

/// The id and scope of a token, `None` when it is unknown, revoked or not usable.
pub async fn lookup(state: &AppState, token: String) -> Result<Option<(String, Scope)>, ApiError> {
    if !usable(&token) {
        return Ok(None);
    }
    Ok(state
        .store
        .run(move |conn| tokens::authenticate(conn, &token))
        .await?)
}

/// A token's `scope` against the scope a route needs: 403 when it falls short.
pub fn allows(scope: Scope, needed: Scope) -> Result<(), ApiError> {
    if scope >= needed {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this token has scope `{}`; this route needs `{}`",
            scope.as_str(),
            needed.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_method_and_route() {
        assert_eq!(required_scope(&Method::GET, "/stripe/events"), Scope::Read);
        assert_eq!(
            required_scope(&Method::POST, "/stripe/flags/{id}/resolve"),
            Scope::Write
        );
        assert_eq!(
            required_scope(&Method::POST, "/stripe/events/{id}/replay"),
            Scope::Admin
        );
        assert_eq!(
            required_scope(&Method::POST, "/stripe/refunds"),
            Scope::Admin
        );
    }
}
