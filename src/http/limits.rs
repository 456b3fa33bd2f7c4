//! Rate limits (DESIGN §2 `[limits]`): token buckets from governor, kept per process.
//!
//! - **Failures** per client address: requests that fail authentication or signature
//!   verification. Past the burst the address is *blocked* until its bucket has a cell
//!   again, and a blocked address is answered 429 before anything is checked, so guessing
//!   tokens or webhook secrets costs billd nothing (no token lookup, no HMAC).
//! - **Money routes** per token: payments, refunds, Checkout, Connect, replay.
//! - **Webhook** per client address: generous, as Stripe retries a 429 later.
//!
//! The client address is the TCP peer, or for a peer in `[server] trusted_proxies` the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy. IPv6 clients
//! are keyed by their /64, which one host can fill with addresses.
//!
//! Per process, not in the database: a limit exists to shed load before it costs
//! anything, and a database round trip per request would be that cost. N nodes behind a
//! balancer let a client N times the rate, which the burst sizes allow for.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State},
    http::{HeaderMap, Method, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use super::{AppState, auth::Caller, error::ApiError};
use crate::config::{LimitsConfig, ServerConfig};

/// An IP address or a CIDR range, for `[server] trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    /// `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    pub fn parse(text: &str) -> Option<AddressRange> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(AddressRange { network, prefix })
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address they map.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client is limited by: its address, or its /64 for IPv6.
fn client_key(addr: IpAddr) -> IpAddr {
    match canonical(addr) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// How long until a limited caller may try again.
#[derive(Debug, Clone, Copy)]
pub struct Limited(pub Duration);

impl From<Limited> for ApiError {
    fn from(Limited(wait): Limited) -> Self {
        // Whole seconds, rounded up, at least 1: what `Retry-After` can say.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::rate_limited(secs.max(1))
    }
}

/// A keyed token bucket.
struct Bucket<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
}

impl<K: std::hash::Hash + Eq + Clone> Bucket<K> {
    fn new(burst: u32, per_sec: u32) -> Bucket<K> {
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Bucket {
            limiter: RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one cell for `key`.
    fn take(&self, key: &K) -> Result<(), Limited> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| Limited(not_until.wait_time_from(self.clock.now())))
    }

    fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Every limit of one process.
pub struct Limits {
    failures: Bucket<IpAddr>,
    /// Addresses past their failure burst, until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    money: Bucket<String>,
    webhook: Bucket<IpAddr>,
    trusted_proxies: Vec<AddressRange>,
    in_flight: tokio::sync::Semaphore,
    /// Requests being handled per client key.
    per_address: Mutex<HashMap<IpAddr, usize>>,
    max_per_address: usize,
}

impl Limits {
    pub fn new(limits: &LimitsConfig, server: &ServerConfig) -> Limits {
        Limits {
            failures: Bucket::new(limits.failed_auth_burst, limits.failed_auth_per_sec),
            blocked: Mutex::default(),
            money: Bucket::new(limits.money_burst, limits.money_per_sec),
            webhook: Bucket::new(limits.webhook_burst, limits.webhook_per_sec),
            trusted_proxies: server
                .trusted_proxies
                .iter()
                .filter_map(|p| AddressRange::parse(p))
                .collect(),
            in_flight: tokio::sync::Semaphore::new(limits.max_in_flight),
            per_address: Mutex::default(),
            max_per_address: limits.max_in_flight_per_address,
        }
    }

    /// A place for one more request being handled, if the caps allow it.
    pub fn enter(&self, client: Option<IpAddr>) -> Option<InFlight<'_>> {
        let permit = self.in_flight.try_acquire().ok()?;
        let key = client.map(client_key);
        if let Some(key) = key {
            let mut per = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = per.entry(key).or_insert(0);
            if *n >= self.max_per_address {
                return None;
            }
            *n += 1;
        }
        Some(InFlight {
            limits: self,
            key,
            _permit: permit,
        })
    }

    /// Who sent the request (see the module comment).
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?.ip());
        if !self.trusted(peer) {
            return Some(peer);
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            let Ok(addr) = hop.parse::<IpAddr>() else {
                // A hop that is not an address: nothing left of it can be believed.
                break;
            };
            if !self.trusted(addr) {
                return Some(canonical(addr));
            }
        }
        Some(peer)
    }

    /// Whether the client reached billd over TLS: billd itself speaks plain HTTP, so
    /// only a trusted proxy can say so, with `X-Forwarded-Proto: https` (its first
    /// value, the scheme the client used at the first proxy).
    pub fn forwarded_https(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
        let Some(peer) = peer else { return false };
        self.trusted(canonical(peer.ip()))
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }

    fn trusted(&self, addr: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|r| r.contains(addr))
    }

    /// Refuses an address that is past its failure burst, before anything is checked.
    pub fn check_not_blocked(&self, client: Option<IpAddr>) -> Result<(), Limited> {
        let Some(client) = client else { return Ok(()) };
        let key = client_key(client);
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&key) {
            Some(until) => {
                let now = Instant::now();
                if *until > now {
                    Err(Limited(*until - now))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// Counts a failed authentication or signature check; past the burst the address is
    /// blocked (and this request is answered as limited).
    pub fn failed(&self, client: Option<IpAddr>) -> Result<(), Limited> {
        let Some(client) = client else { return Ok(()) };
        let key = client_key(client);
        self.failures.take(&key).inspect_err(|Limited(wait)| {
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            blocked.insert(key, Instant::now() + *wait);
        })
    }

    pub fn webhook(&self, client: Option<IpAddr>) -> Result<(), Limited> {
        match client {
            Some(client) => self.webhook.take(&client_key(client)),
            None => Ok(()),
        }
    }

    pub fn money(&self, token_id: &str) -> Result<(), Limited> {
        self.money.take(&token_id.to_string())
    }

    /// Forgets buckets that are full again and blocks that ended, so the memory an
    /// attacker with many addresses can make billd hold stays bounded by their rate.
    pub fn prune(&self) {
        self.failures.prune();
        self.money.prune();
        self.webhook.prune();
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        blocked.retain(|_, until| *until > now);
        blocked.shrink_to_fit();
    }
}

/// The request's client address (see [`Limits::client`]).
pub fn client_of(state: &AppState, request: &Request) -> Option<IpAddr> {
    client_from(state, request.extensions(), request.headers())
}

/// The address `in_flight_layer` found (it runs first and keeps it in the request's
/// extensions), or found now for a request that did not pass it.
fn client_from(
    state: &AppState,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    if let Some(ClientAddr(found)) = extensions.get::<ClientAddr>() {
        return *found;
    }
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    state.limits.client(peer, headers)
}

/// The client address of a request, as an extractor (see [`Limits::client`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr(client_from(
            state,
            &parts.extensions,
            &parts.headers,
        )))
    }
}

/// Caps the requests being handled at once (`[limits] max_in_flight`, and
/// `max_in_flight_per_address` for one client): past either, 503 at once rather than a
/// queue that grows with the attack. A request counts from its head until its handler
/// answers, so half-sent bodies count: one address cannot hold more than its share of
/// memory in bodies being read.
pub async fn in_flight_layer(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    mut request: Request,
    next: Next,
) -> Response {
    // Found once per request (`X-Forwarded-For` parsing included): the limits after
    // this layer read it back.
    request.extensions_mut().insert(ClientAddr(client));
    // "Is the process alive" must be answerable however busy it is.
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let Some(_slot) = state.limits.enter(client) else {
        super::metrics::protection("overloaded");
        return ApiError::overloaded().into_response();
    };
    next.run(request).await
}

/// A request being handled; leaving frees its place.
pub struct InFlight<'a> {
    limits: &'a Limits,
    key: Option<IpAddr>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut per = self
                .limits
                .per_address
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = per.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    per.remove(&key);
                }
            }
        }
    }
}

/// Whether a route moves money or acts in Stripe's name on the caller's behalf.
pub fn is_money_route(method: &Method, route: &str) -> bool {
    method != Method::GET
        && method != Method::HEAD
        && (route == "/stripe/payments"
            || route.starts_with("/stripe/refunds")
            || route.starts_with("/stripe/checkout/")
            || route.starts_with("/stripe/connect/")
            || route.ends_with("/replay"))
}

/// Per-token limit on the money routes; runs after authentication.
pub async fn money_layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let caller = request.extensions().get::<Caller>().cloned();
    if let (Some(route), Some(Caller(token))) = (route, caller)
        && is_money_route(request.method(), &route)
        && let Err(limited) = state.limits.money(&token)
    {
        tracing::warn!(route, "money route rate limited for a token");
        super::metrics::protection("rate_limited");
        return ApiError::from(limited).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_match() {
        let r = AddressRange::parse("10.0.0.0/8").unwrap();
        assert!(r.contains("10.2.3.4".parse().unwrap()));
        assert!(r.contains("::ffff:10.2.3.4".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        let one = AddressRange::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            AddressRange::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!(
            AddressRange::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0.0/x"] {
            assert!(AddressRange::parse(bad).is_none(), "{bad}");
        }
    }

    fn limits(proxies: &[&str]) -> Limits {
        let server = ServerConfig {
            trusted_proxies: proxies.iter().map(|p| p.to_string()).collect(),
            ..ServerConfig::default()
        };
        let config = LimitsConfig {
            failed_auth_burst: 3,
            ..LimitsConfig::default()
        };
        Limits::new(&config, &server)
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap(),
        );
        let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "9.9.9.9:5000".parse().unwrap();
        let l = limits(&["10.0.0.0/8"]);
        // The right-most hop that is not a proxy: the left ones are the client's claims.
        assert_eq!(
            l.client(Some(proxy), &headers),
            Some("1.2.3.4".parse().unwrap())
        );
        assert_eq!(l.client(Some(stranger), &headers), Some(stranger.ip()));
        let none = limits(&[]);
        assert_eq!(none.client(Some(proxy), &headers), Some(proxy.ip()));
    }

    #[test]
    fn requests_in_flight_are_capped_in_all_and_per_address() {
        let config = LimitsConfig {
            max_in_flight: 3,
            max_in_flight_per_address: 2,
            ..LimitsConfig::default()
        };
        let l = Limits::new(&config, &ServerConfig::default());
        let (a, b) = (
            Some("1.2.3.4".parse().unwrap()),
            Some("5.6.7.8".parse().unwrap()),
        );
        let a1 = l.enter(a).unwrap();
        let _a2 = l.enter(a).unwrap();
        assert!(l.enter(a).is_none(), "one address holds at most its share");
        let _b1 = l.enter(b).unwrap();
        assert!(l.enter(b).is_none(), "the total cap holds");
        drop(a1);
        assert!(l.enter(a).is_some());
        assert!(l.per_address.lock().unwrap().len() <= 2);
    }

    #[test]
    fn an_address_past_its_failure_burst_is_blocked_and_others_are_not() {
        let l = limits(&[]);
        let a = Some("1.2.3.4".parse().unwrap());
        let b = Some("5.6.7.8".parse().unwrap());
        for _ in 0..3 {
            l.check_not_blocked(a).unwrap();
            l.failed(a).unwrap();
        }
        let Limited(wait) = l.failed(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        assert!(l.check_not_blocked(a).is_err());
        assert!(l.check_not_blocked(b).is_ok());
        // IPv6 neighbours in one /64 share a bucket.
        let v6a = Some("2001:db8::1".parse().unwrap());
        let v6b = Some("2001:db8::2".parse().unwrap());
        for _ in 0..3 {
            l.failed(v6a).unwrap();
        }
        assert!(l.failed(v6b).is_err());
        l.prune();
    }
}
