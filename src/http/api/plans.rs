//! `GET /stripe/plans`: the active products with their active prices, from memory.
//!
//! The list is read from the mirror and kept while the catalog's generation in the
//! database (bumped by a trigger on every write to `products` or `prices`, whoever
//! writes: a worker of any node, `billd plans sync`, `billd sync`) is unchanged, and
//! for `[stripe] plans_cache_ttl_secs` at most. Each request reads that one number, so
//! a change made by another process shows on the next request, on every node.

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

/// The list read at one catalog generation.
pub struct PlansCache {
    ttl: Duration,
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    generation: i64,
    at: Instant,
    plans: Arc<Vec<Plan>>,
}

impl PlansCache {
    pub fn new(ttl: Duration) -> PlansCache {
        PlansCache {
            ttl,
            cached: Mutex::default(),
        }
    }

    /// The list kept for `generation`, if it is still fresh.
    fn get(&self, generation: i64) -> Option<Arc<Vec<Plan>>> {
        let cached = self.lock();
        cached
            .as_ref()
            .filter(|c| c.generation == generation && c.at.elapsed() < self.ttl)
            .map(|c| c.plans.clone())
    }

    /// Keeps `plans`, read at or after `generation` (a write since then bumped the
    /// generation, so the next request reads again).
    fn fill(&self, generation: i64, plans: Arc<Vec<Plan>>) {
        if !self.ttl.is_zero() {
            *self.lock() = Some(Cached {
                generation,
                at: Instant::now(),
                plans,
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        // The guarded data is always consistent (one assignment).
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
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
    let cache = state.plans.clone();
    let plans = state
        .store
        .run(move |c| {
            // The generation first: a write after it bumps it, so what is read below is
            // never kept past that write.
            let generation = catalog::generation(c)?;
            if let Some(plans) = cache.get(generation) {
                return Ok(plans);
            }
            let plans = Arc::new(catalog::plans(c)?);
            cache.fill(generation, plans.clone());
            Ok(plans)
        })
        .await?;
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
    fn a_list_is_kept_for_its_generation_only() {
        let cache = PlansCache::new(Duration::from_secs(300));
        assert!(cache.get(1).is_none());
        cache.fill(1, plan("prod_old"));
        assert_eq!(cache.get(1).unwrap()[0].id, "prod_old");
        assert!(cache.get(2).is_none());
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = PlansCache::new(Duration::ZERO);
        cache.fill(1, plan("prod_1"));
        assert!(cache.get(1).is_none());
    }
}
