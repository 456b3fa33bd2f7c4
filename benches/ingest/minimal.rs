//! The yardstick of issue 9: the least a durable webhook receiver does. It verifies the
//! signature with billd's own verifier, reads the envelope with billd's own type, and
//! group-commits to SQLite (one writer thread, WAL, `synchronous=FULL`) whatever is
//! waiting, answering each delivery after its commit. No limits, logs, metrics or
//! workers: what billd does beyond this is what the ratio measures.

use std::{path::Path, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use billd::{events::EnvelopeHeader, objects::parse_json, signature::Verifier};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// The environment variable that makes the benchmark's binary the minimal server (its
/// value: the database file).
pub const ROLE: &str = "BENCH_MINIMAL_SERVE";
/// Printed with the address once the server listens.
pub const SERVING: &str = "minimal serving";

/// As billd's ingest writer: at most this many deliveries per commit.
const MAX_BATCH: usize = 512;

struct Job {
    id: String,
    type_: String,
    created: i64,
    payload: String,
    stored: oneshot::Sender<bool>,
}

#[derive(Clone)]
struct Server {
    verifier: Arc<Verifier>,
    jobs: mpsc::Sender<Job>,
}

/// Serves `POST /stripe/webhook` on a loopback port until killed.
pub fn serve(database: &Path, secret: &str) {
    let (jobs, rx) = mpsc::channel(MAX_BATCH * 8);
    let database = database.to_path_buf();
    std::thread::spawn(move || writer(&database, rx));
    let server = Server {
        verifier: Arc::new(Verifier::new(vec![SecretString::from(secret)], 300)),
        jobs,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{SERVING} {}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/stripe/webhook", post(receive))
            .with_state(server);
        axum::serve(listener, app).await.unwrap();
    });
}

async fn receive(
    State(server): State<Server>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StatusCode> {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(StatusCode::BAD_REQUEST)?;
    server
        .verifier
        .verify(&body, header, billd::time::now_secs())
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    let text = std::str::from_utf8(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let envelope: EnvelopeHeader =
        parse_json(text, "event").map_err(|_| StatusCode::BAD_REQUEST)?;
    if envelope.invalid().is_some() {
        return Err(StatusCode::BAD_REQUEST);
    }
    let (stored, answer) = oneshot::channel();
    let job = Job {
        id: envelope.id,
        type_: envelope.type_,
        created: envelope.created,
        payload: text.to_string(),
        stored,
    };
    server
        .jobs
        .send(job)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    match answer.await {
        Ok(true) => Ok(Json(json!({"received": true}))),
        _ => Err(StatusCode::SERVICE_UNAVAILABLE),
    }
}

fn writer(database: &Path, mut rx: mpsc::Receiver<Job>) {
    let mut conn = rusqlite::Connection::open(database).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS events (
             id TEXT PRIMARY KEY, type TEXT NOT NULL, created INTEGER NOT NULL,
             payload TEXT NOT NULL);",
    )
    .unwrap();
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO events (id, type, created, payload) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO NOTHING",
                )?;
                for job in &batch {
                    insert.execute((&job.id, &job.type_, job.created, &job.payload))?;
                }
            }
            tx.commit()
        })()
        .is_ok();
        for job in batch {
            let _ = job.stored.send(committed);
        }
    }
}
