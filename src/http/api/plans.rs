//! `GET /stripe/plans`: the active products with their active prices, from memory.
//!
//! The list is read from the mirror and kept for `[stripe] plans_cache_ttl_secs`.
//! Workers clear it as soon as they apply a product, price or plan event
//! ([`PlansCache::invalidate`], wired in `app.rs`), so a change arriving by webhook
//! shows on the next request. Changes written by another process (`billd plans sync`)
//! cannot clear this process's memory: they show when the TTL runs out.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{Json, extract::State};
use serde::Serialize;

use crate::{
    http::{AppState, error::ApiResult},
    store::catalog::{self, Plan},
};

/// The cached list. A generation number, bumped by every invalidation, keeps a read of
/// the mirror that started before an invalidation from being cached after it.
pub struct PlansCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    cached: Option<(Instant, Arc<Vec<Plan>>)>,
}

impl PlansCache {
    pub fn new(ttl: Duration) -> PlansCache {
        PlansCache {
            ttl,
            inner: Mutex::default(),
        }
    }

    /// Forgets the list: the next request reads the mirror.
    pub fn invalidate(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.cached = None;
    }

    /// The cached list if it is fresh, else the generation to fill it under.
    fn fresh(&self) -> Result<Arc<Vec<Plan>>, u64> {
        let inner = self.lock();
        match &inner.cached {
            Some((at, plans)) if at.elapsed() < self.ttl => Ok(plans.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Keeps `plans`, read under `generation`, unless an invalidation came since.
    fn fill(&self, generation: u64, plans: Arc<Vec<Plan>>) {
        let mut inner = self.lock();
        if inner.generation == generation && !self.ttl.is_zero() {
            inner.cached = Some((Instant::now(), plans));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The guarded data is always consistent (two plain assignments).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `{"data": [...], "has_more": false}`, serialized from the shared list.
#[derive(Serialize)]
pub struct Plans {
    #[serde(serialize_with = "shared")]
    data: Arc<Vec<Plan>>,
    has_more: bool,
}

fn shared<S: serde::Serializer>(plans: &Arc<Vec<Plan>>, s: S) -> Result<S::Ok, S::Error> {
    plans.as_slice().serialize(s)
}

pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Plans>> {
    let plans = match state.plans.fresh() {
        Ok(plans) => plans,
        Err(generation) => {
            let plans = Arc::new(state.store.run(|c| catalog::plans(c)).await?);
            state.plans.fill(generation, plans.clone());
            plans
        }
    };
    Ok(Json(Plans {
        data: plans,
        has_more: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str) -> Arc<Vec<Plan>> {
        Arc::new(vec![Plan {
            id: id.into(),
            name: None,
            description: None,
            prices: Vec::new(),
        }])
    }

    #[test]
    fn a_read_started_before_an_invalidation_is_not_cached() {
        let cache = PlansCache::new(Duration::from_secs(300));
        let generation = cache.fresh().unwrap_err();
        cache.invalidate();
        cache.fill(generation, plan("prod_old"));
        let generation = cache.fresh().unwrap_err();
        cache.fill(generation, plan("prod_new"));
        assert_eq!(cache.fresh().unwrap()[0].id, "prod_new");
        cache.invalidate();
        assert!(cache.fresh().is_err());
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = PlansCache::new(Duration::ZERO);
        let generation = cache.fresh().unwrap_err();
        cache.fill(generation, plan("prod_1"));
        assert!(cache.fresh().is_err());
    }
}
