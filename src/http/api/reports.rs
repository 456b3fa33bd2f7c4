//! `GET /stripe/reports/{revenue,mrr,subscriptions,failed-payments,mrr-movements,retention}`:
//! the financial reports of DESIGN §3, computed from the mirror when asked (docs/reports.md).
//!
//! Each answers a list, `{"data": [rows], "has_more": false}`: a report is never paged,
//! its size is bounded by its periods and currencies. MRR answers one row per currency.

use crate::http::api::Query;
use axum::{Json, extract::State};
use serde::Deserialize;

use super::List;
use crate::{
    http::{
        AppState,
        error::{ApiError, ApiResult},
    },
    ids::{self, Kind},
    report::{
        self, Basis, FailedPaymentsRow, MrrMovementRow, MrrRow, RangeQuery, ReportError,
        RetentionRow, RevenueRow, SubscriptionsRow,
    },
    store::Result as StoreResult,
    time::now_secs,
};

/// `?from=&to=&interval=day|week|month&currency=&account=` of the per-period reports,
/// and `gross=true|false` of those made of MRR (movements, retention).
#[derive(Debug, Deserialize)]
pub struct RangeParams {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
    currency: Option<String>,
    account: Option<String>,
    gross: Option<String>,
}

impl RangeParams {
    pub(super) fn parse(&self) -> ApiResult<RangeQuery> {
        let mut q = RangeQuery::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            self.interval.as_deref(),
            self.currency.as_deref(),
        )
        .map_err(api_error)?;
        q.basis = Basis::parse(self.gross.as_deref()).map_err(api_error)?;
        ids::check_opt(Kind::Account, "account", self.account.as_deref())?;
        q.account = self.account.clone();
        Ok(q)
    }
}

/// `?at=&currency=&account=&gross=` of the MRR report.
#[derive(Debug, Deserialize)]
pub struct MrrParams {
    at: Option<String>,
    currency: Option<String>,
    account: Option<String>,
    gross: Option<String>,
}

pub(super) fn api_error(e: ReportError) -> ApiError {
    match e {
        ReportError::Invalid(message) => ApiError::invalid(message),
        ReportError::Store(e) => e.into(),
    }
}

/// Runs a report off the async runtime and wraps its rows as a list.
async fn answer<T, F>(state: &AppState, f: F) -> ApiResult<Json<List<T>>>
where
    T: Send + 'static,
    F: FnOnce(&crate::store::Connection) -> Result<Vec<T>, ReportError> + Send + 'static,
{
    let rows: StoreResult<Result<Vec<T>, ReportError>> =
        state.store.run(move |conn| Ok(f(conn))).await;
    let data = rows?.map_err(api_error)?;
    Ok(Json(List {
        data,
        has_more: false,
    }))
}

pub async fn revenue(
    State(state): State<AppState>,
    Query(p): Query<RangeParams>,
) -> ApiResult<Json<List<RevenueRow>>> {
    let q = p.parse()?;
    let now = now_secs();
    answer(&state, move |c| report::revenue(c, &q, now)).await
}

pub async fn mrr(
    State(state): State<AppState>,
    Query(p): Query<MrrParams>,
) -> ApiResult<Json<List<MrrRow>>> {
    let at = match p.at.as_deref() {
        Some(s) => report::parse_time("at", s).map_err(api_error)?,
        None => now_secs(),
    };
    let currency = p
        .currency
        .as_deref()
        .map(report::parse_currency)
        .transpose()
        .map_err(api_error)?;
    let basis = Basis::parse(p.gross.as_deref()).map_err(api_error)?;
    ids::check_opt(Kind::Account, "account", p.account.as_deref())?;
    let account = p.account;
    answer(&state, move |c| {
        report::mrr(c, at, currency.as_deref(), account.as_deref(), basis)
    })
    .await
}

pub async fn subscriptions(
    State(state): State<AppState>,
    Query(p): Query<RangeParams>,
) -> ApiResult<Json<List<SubscriptionsRow>>> {
    let q = p.parse()?;
    let now = now_secs();
    answer(&state, move |c| report::subscriptions(c, &q, now)).await
}

pub async fn failed_payments(
    State(state): State<AppState>,
    Query(p): Query<RangeParams>,
) -> ApiResult<Json<List<FailedPaymentsRow>>> {
    let q = p.parse()?;
    let now = now_secs();
    answer(&state, move |c| report::failed_payments(c, &q, now)).await
}

pub async fn mrr_movements(
    State(state): State<AppState>,
    Query(p): Query<RangeParams>,
) -> ApiResult<Json<List<MrrMovementRow>>> {
    let q = p.parse()?;
    let now = now_secs();
    answer(&state, move |c| report::mrr_movements(c, &q, now)).await
}

pub async fn retention(
    State(state): State<AppState>,
    Query(p): Query<RangeParams>,
) -> ApiResult<Json<List<RetentionRow>>> {
    let q = p.parse()?;
    let now = now_secs();
    answer(&state, move |c| report::retention(c, &q, now)).await
}
