//! The daemon, built by one function from a config: it opens and migrates the store,
//! binds the listener (port 0 in tests), starts the ingest writer and the workers, and
//! runs until a shutdown future resolves.
//!
//! Shutdown: stop accepting connections, let in-flight requests finish (each one waits
//! for its event to be committed), stop workers between two events, drain the ingest
//! queue. Nothing acknowledged is lost; nothing half-applied is committed.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::Notify};
use tokio_util::sync::CancellationToken;

use crate::{
    alerts::Alerter,
    config::{Config, Secrets},
    gap::GapRepair,
    http::{self, AppState, api::plans::PlansCache, limits::Limits},
    ingest::Ingest,
    signature::Verifier,
    store::Store,
    worker::Worker,
};

pub struct App {
    config: Config,
    store: Store,
    listener: TcpListener,
    verifier: Arc<Verifier>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    stripe: crate::stripe::Client,
    alerts: crate::alerts::Sinks,
    /// Held while the daemon runs, so `billd restore` can tell (`store::backup`).
    _lock: crate::store::backup::DbLock,
}

impl App {
    /// Opens and migrates the database and binds `config.server.listen`.
    pub async fn build(config: Config, secrets: &Secrets) -> anyhow::Result<App> {
        let store = open_store(&config)?;
        let lock = crate::store::backup::hold_for_daemon(&config.database.path)?;
        let applied = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.migrate()).await??
        };
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| {
                format!("cannot listen on {} (server.listen)", config.server.listen)
            })?;
        let verifier = Arc::new(Verifier::new(
            secrets.webhook_secrets.clone(),
            config.stripe.webhook_tolerance_secs,
        ));
        let stripe = crate::stripe::Client::from_config(&config.stripe, &secrets.stripe_secret_key)
            .context("cannot set up the Stripe client (stripe.api_base, stripe.secret_key_env)")?;
        let alerts = crate::alerts::Sinks::new(
            &config.alerts,
            secrets.alert_webhook_url.clone().or_else(|| {
                (!config.alerts.webhook_url.is_empty())
                    .then(|| secrecy::SecretString::from(config.alerts.webhook_url.clone()))
            }),
        )?;
        Ok(App {
            alerts,
            config,
            store,
            listener,
            verifier,
            stripe,
            clock: Arc::new(crate::time::now_secs),
            _lock: lock,
        })
    }

    /// Replaces the clock the webhook verifier uses (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> App {
        self.clock = clock;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.config.server.listen)
    }

    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let stored = Arc::new(Notify::new());
        let (ingest, writer) = Ingest::start(&self.store, stored.clone())?;
        // On PostgreSQL other nodes store events too: their announcements wake ours.
        let stop_listening = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let listener = (self.store.backend() == crate::store::Backend::Postgres).then(|| {
            let (store, wake, stop) = (self.store.clone(), stored.clone(), stop_listening.clone());
            std::thread::Builder::new()
                .name("billd-listen".into())
                .spawn(move || {
                    crate::store::events::listen(&store, || wake.notify_waiters(), &stop)
                })
        });
        let stop_workers = CancellationToken::new();
        let plans = Arc::new(PlansCache::new(Duration::from_secs(
            self.config.stripe.plans_cache_ttl_secs,
        )));
        let alert_now = Arc::new(Notify::new());
        let stop_alerts = CancellationToken::new();
        let alerter = if self.alerts.is_empty() {
            tracing::warn!(
                "no alert sink configured ([alerts] webhook_url or command): alerts are only logged"
            );
            None
        } else {
            let alerter = Alerter::new(
                self.store.clone(),
                self.config.alerts.clone(),
                self.alerts.clone(),
            );
            Some(tokio::spawn(
                alerter.run(alert_now.clone(), stop_alerts.clone()),
            ))
        };
        let mut workers = Vec::new();
        for _ in 0..self.config.workers.count {
            let dead = alert_now.clone();
            let worker = Worker::new(
                self.store.clone(),
                self.config.workers.clone(),
                self.config.stripe.mode,
            )
            .on_dead(Arc::new(move || dead.notify_one()));
            workers.push(tokio::spawn(
                worker.run(stored.clone(), stop_workers.clone()),
            ));
        }
        let stop_gap = CancellationToken::new();
        let every = self.config.stripe.gap_repair_interval_secs;
        let repair = (every > 0).then(|| {
            let repair = GapRepair::new(self.store.clone(), self.stripe.clone(), ingest.clone());
            tokio::spawn(repair.run(Duration::from_secs(every), stop_gap.clone()))
        });
        let state = AppState {
            store: self.store.clone(),
            ingest,
            verifier: self.verifier,
            stored,
            clock: self.clock,
            metrics_public: self.config.server.metrics_public,
            stripe: self.stripe,
            plans,
            limits: Arc::new(Limits::new(&self.config.limits, &self.config.server)),
            compliance: Arc::new(crate::compliance::Rules::new(&self.config.compliance)),
            readiness: Arc::default(),
        };
        let limits = state.limits.clone();
        let pruning = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                limits.prune();
            }
        });
        let router = http::router(state);
        let stopping = CancellationToken::new();
        let signal = stopping.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal.cancel();
        });
        tracing::info!(addr = %addr, mode = ?self.config.stripe.mode, "billd serving");
        let grace = Duration::from_secs(self.config.server.shutdown_grace_secs);
        let serve = tokio::spawn(http::server::serve(
            self.listener,
            router,
            self.config.limits.clone(),
            stopping.clone(),
            grace,
        ));
        stopping.cancelled().await;
        tracing::info!(
            "shutting down: no new connections; idle and half-sent ones closed; finishing requests being handled"
        );
        // Bounded by the grace inside: requests still running after it are dropped.
        serve.await.context("HTTP server failed")?;
        pruning.abort();
        stop_gap.cancel();
        if let Some(repair) = repair {
            let _ = repair.await;
        }
        stop_workers.cancel();
        for worker in workers {
            let _ = tokio::time::timeout(grace, worker).await;
        }
        stop_alerts.cancel();
        if let Some(alerter) = alerter {
            let _ = tokio::time::timeout(grace, alerter).await;
        }
        // The router (and with it every ingest handle) is gone: the writer drains and ends.
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        stop_listening.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(Ok(listener)) = listener {
            let _ = tokio::task::spawn_blocking(move || listener.join()).await;
        }
        tracing::info!("billd stopped");
        Ok(())
    }
}

/// Opens the configured database (without migrating).
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open_config(&config.database).with_context(|| match &config.database.url {
        Some(url) => format!(
            "cannot open database {} (database.url)",
            crate::config::without_credentials(url)
        ),
        None => format!(
            "cannot open database {} (database.path)",
            config.database.path.display()
        ),
    })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
