//! Dashboard sessions: the cookie (a random id whose record, with its CSRF token, is in
//! `store::sessions`), the `Authed` extractor every page takes, and the login and
//! logout forms, which check a token with `http::auth`'s own steps.

use super::*;

// ---- sessions -----------------------------------------------------------------------

/// The value of cookie `name`, if the request carries it in a shape billd makes
/// (64 hex digits); anything else is as good as no cookie.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `Set-Cookie` value for the dashboard: `HttpOnly`, `SameSite=Strict`, for
/// `/dashboard` only, `Secure` when the client came over TLS; `None` clears it.
pub(super) fn set_cookie(
    name: &str,
    value: Option<&str>,
    max_age_secs: i64,
    secure: bool,
) -> HeaderValue {
    let text = format!(
        "{name}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}{}",
        value.unwrap_or(""),
        if value.is_some() { max_age_secs } else { 0 },
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(super) fn over_tls(
    state: &AppState,
    parts_extensions: &axum::http::Extensions,
    headers: &HeaderMap,
) -> bool {
    let peer = parts_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    state.limits.forwarded_https(peer, headers)
}

pub(super) fn random_hex() -> Result<String, PageError> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)
        .map_err(|_| PageError::new(StatusCode::SERVICE_UNAVAILABLE, "no randomness; try again"))?;
    Ok(hex::encode(buf))
}

pub(super) fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A request of a live session. Without a session cookie the request is sent to the
/// login page (303); an unknown or expired one counts as a failed authentication, as
/// an unknown bearer token does.
pub(super) struct Authed {
    /// The cookie's session id.
    pub(super) id: String,
    pub(super) token_id: String,
    pub(super) scope: Scope,
    pub(super) csrf: String,
}

impl Authed {
    pub(super) fn frame<'a>(&'a self, title: &'a str, nav: Nav) -> Frame<'a> {
        Frame {
            title,
            nav,
            token_id: &self.token_id,
            scope: self.scope,
            csrf: &self.csrf,
            notice: None,
        }
    }

    /// The session's CSRF token, if its scope allows what `route` needs.
    pub(super) fn may(&self, route: &str) -> Option<&str> {
        (self.scope >= auth::required_scope(&Method::POST, route)).then_some(self.csrf.as_str())
    }

    /// A state-changing form's checks, in this order: the session's CSRF token (a
    /// forged request learns nothing more), then the scope of the API route.
    pub(super) fn check(&self, csrf: &str, route: &str) -> Result<(), PageError> {
        if !same(csrf, &self.csrf) {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "this form is not from this session (CSRF check failed): reload the page and try again",
            ));
        }
        auth::allows(self.scope, auth::required_scope(&Method::POST, route))?;
        Ok(())
    }

    pub(super) fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_string) else {
            return Err(to_login());
        };
        let Ok(ClientAddr(client)) = ClientAddr::from_request_parts(parts, state).await;
        auth::not_blocked(state, client).map_err(|e| PageError::from(e).into_response())?;
        let key = id.clone();
        let found = state
            .store
            .run(move |c| sessions::find(c, &key, now_ms()))
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        match found {
            Some(s) => Ok(Authed {
                id,
                token_id: s.token_id,
                scope: s.scope,
                csrf: s.csrf,
            }),
            None => {
                auth::count_failure(state, client)
                    .map_err(|e| PageError::from(e).into_response())?;
                let mut response = to_login();
                let secure = over_tls(state, &parts.extensions, &parts.headers);
                response.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(SESSION_COOKIE, None, 0, secure),
                );
                Err(response)
            }
        }
    }
}

// ---- login and logout ---------------------------------------------------------------

pub(super) async fn login_form(State(state): State<AppState>, request: Request) -> PageResult {
    let (parts, _) = request.into_parts();
    let csrf = random_hex()?;
    let mut response = html(StatusCode::OK, pages::login(&csrf, None));
    let secure = over_tls(&state, &parts.extensions, &parts.headers);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, Some(&csrf), 3_600, secure),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    pub(super) csrf: String,
}

pub(super) async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ConnectInfoOpt(peer): ConnectInfoOpt,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> PageResult {
    auth::not_blocked(&state, client)?;
    let secure = state.limits.forwarded_https(peer, &headers);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !same(expected, &form.csrf) {
        // A login form from elsewhere, or one whose cookie expired: a fresh form.
        let csrf = random_hex()?;
        let mut response = html(
            StatusCode::FORBIDDEN,
            pages::login(&csrf, Some("The login form expired. Type the token again.")),
        );
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, Some(&csrf), 3_600, secure),
        );
        return Ok(response);
    }
    let Some((token_id, _scope)) = auth::lookup(&state, form.token.trim().to_string()).await?
    else {
        auth::count_failure(&state, client)?;
        return Ok(html(
            StatusCode::UNAUTHORIZED,
            pages::login(expected, Some("Unknown or revoked token.")),
        ));
    };
    let actor = format!("token:{token_id}");
    let session = state
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            let session = sessions::create(&tx, &token_id, now_ms(), SESSION_TTL_MS)?;
            audit::record(&tx, &actor, "dashboard.login", None, None, now_secs())?;
            tx.commit()?;
            Ok(session)
        })
        .await?;
    let mut response = see_other("/dashboard");
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            Some(&session.id),
            SESSION_TTL_MS / 1000,
            secure,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, None, 0, secure),
    );
    Ok(response)
}

/// The peer address, when the server recorded it (it always does; tests that build
/// the router alone may not).
pub(super) struct ConnectInfoOpt(Option<SocketAddr>);

impl FromRequestParts<AppState> for ConnectInfoOpt {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ConnectInfoOpt(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

pub(super) async fn logout(
    State(state): State<AppState>,
    authed: Authed,
    ConnectInfoOpt(peer): ConnectInfoOpt,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfForm>,
) -> PageResult {
    if !same(&form.csrf, &authed.csrf) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "this form is not from this session (CSRF check failed): reload the page and try again",
        ));
    }
    let (id, actor) = (authed.id.clone(), authed.actor());
    state
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            sessions::delete(&tx, &id)?;
            audit::record(&tx, &actor, "dashboard.logout", None, None, now_secs())?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    let mut response = to_login();
    let secure = state.limits.forwarded_https(peer, &headers);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, None, 0, secure),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_only_in_the_shape_billd_makes_them() {
        let mut h = HeaderMap::new();
        let id = "ab".repeat(32);
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {SESSION_COOKIE}={id}")).unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some(id.as_str()));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
        let mut bad = HeaderMap::new();
        bad.append(
            header::COOKIE,
            HeaderValue::from_static("billd_session=../../etc"),
        );
        assert_eq!(cookie(&bad, SESSION_COOKIE), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_secure_behind_tls() {
        let c = set_cookie(SESSION_COOKIE, Some("abc"), 60, true);
        let c = c.to_str().unwrap();
        assert_eq!(
            c,
            "billd_session=abc; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        let cleared = set_cookie(SESSION_COOKIE, None, 60, false);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
        assert!(!cleared.to_str().unwrap().contains("Secure"));
    }
}
