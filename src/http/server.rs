//! The HTTP/1 server loop: hyper with its timers on, a cap on open connections, a
//! deadline on every request body, and a shutdown that closes what is idle or
//! half-sent at once and drains only requests being handled.
//!
//! `axum::serve` leaves hyper's header-read timer off and has no connection cap, so a
//! client trickling headers or bodies could hold connections and memory for ever. Here:
//! - hyper's header-read timer runs from when a connection starts waiting for a
//!   request's head (on open, and after each answer), so it also closes idle
//!   keep-alive connections: it is set to the smaller of `[limits]
//!   header_read_timeout_secs` and `idle_timeout_secs`;
//! - every request body must arrive whole within `body_read_timeout_secs` of its head
//!   (an absolute deadline, not a per-chunk one that a trickle defeats);
//! - past `max_connections` a new connection is closed as soon as it is accepted.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::metrics;
use crate::config::LimitsConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `router` on `listener` until `stopping` is cancelled, then closes idle and
/// half-sent connections and waits for the requests being handled.
///
/// Requests still being handled after `grace` are dropped (their connections closed),
/// so nothing outlives the server: shutdown then drains the ingest writer knowing no
/// handler can submit to it any more.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: LimitsConfig,
    stopping: CancellationToken,
    grace: Duration,
) {
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let header_read = Duration::from_secs(
        limits
            .header_read_timeout_secs
            .min(limits.idle_timeout_secs),
    );
    let body_read = Duration::from_secs(limits.body_read_timeout_secs);
    // A JoinSet, not detached tasks: dropping it aborts what is left after the grace.
    let mut tasks = JoinSet::new();
    loop {
        // Reap finished connections so the set holds only open ones.
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopping.cancelled() => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            metrics::protection("connection_refused");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            router: router.clone(),
            peer,
            body_read,
            stopping: stopping.clone(),
            active: Arc::default(),
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_read)
            .keep_alive(true);
        tasks.spawn(async move {
            connection.run(builder, stream).await;
            drop(permit);
        });
    }
    drop(listener);
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            open = tasks.len(),
            "requests still being handled after the grace period are dropped"
        );
    }
}

/// One accepted connection.
struct Connection {
    router: Router,
    peer: SocketAddr,
    body_read: Duration,
    stopping: CancellationToken,
    active: Arc<Active>,
}

/// Requests of one connection whose answer has not been sent in full yet.
type Active = AtomicUsize;

impl Connection {
    async fn run(
        self,
        builder: hyper::server::conn::http1::Builder,
        stream: tokio::net::TcpStream,
    ) {
        let active = self.active.clone();
        let stopping = self.stopping.clone();
        let service = hyper::service::service_fn(move |request| self.handle(request));
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            () = stopping.cancelled() => {}
        }
        // Idle connections close now; one with a request being handled closes after
        // its answer is written. A half-sent body fails at once (see `DeadlineBody`),
        // so its request answers at once too.
        conn.as_mut().graceful_shutdown();
        if active.load(Ordering::Acquire) == 0 {
            // Nothing is being answered: whatever the client has sent of a request
            // head is dropped with the connection.
            return;
        }
        let _ = conn.await;
    }

    fn handle(
        &self,
        request: hyper::Request<Incoming>,
    ) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + use<>
    {
        let guard = ActiveGuard::new(self.active.clone());
        let deadline = tokio::time::Instant::now() + self.body_read;
        let stopping = self.stopping.clone();
        let mut request = request.map(|body| {
            Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                stopping: Box::pin(stopping.cancelled_owned()),
            })
        });
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        async move {
            let response = router.oneshot(request).await?;
            // The guard lives until hyper has sent (and dropped) the answer's body.
            Ok(response.map(|body| Body::new(GuardedBody { inner: body, guard })))
        }
    }
}

/// Counts a request as active from its head until its answer's body is dropped.
struct ActiveGuard(Arc<Active>);

impl ActiveGuard {
    fn new(active: Arc<Active>) -> ActiveGuard {
        active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(active)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the request body did not arrive in time")]
    TimedOut,
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// A request body that fails once its deadline passes or the server shuts down.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    stopping: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BoxError::from)));
        }
        if self.stopping.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyError::ShuttingDown.into())));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyError::TimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that keeps its request counted as active until it is dropped.
struct GuardedBody {
    inner: Body,
    #[allow(dead_code)] // held for its `Drop`
    guard: ActiveGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
