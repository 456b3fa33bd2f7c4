//! Logging: JSON lines to stdout and to a daily rolling file for the daemon, a human
//! format on a terminal; quiet human logs on stderr for the other subcommands.
//! `RUST_LOG` overrides the configured level. The daily files are private to their
//! owner (the process umask, `process::private_umask`, and a 0700 directory) and only
//! the newest `[log] keep_days` are kept.
//!
//! What is logged is chosen where it is logged: ids, types, outcomes, durations. Bodies,
//! headers, query strings, secrets and personal data never reach a log call.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{
    EnvFilter, Layer,
    fmt::{self, writer::MakeWriterExt},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::config::{LogConfig, LogFormat};

/// Keeps the writer threads flushing; drop it last.
pub struct Guard(#[allow(dead_code)] Vec<WorkerGuard>);

/// Log lines are formatted on the thread that logs and written by a thread of their own,
/// so a request never waits for a `write(2)` to a pipe, a terminal or a disk. The queue
/// is never lossy: when the writer falls this far behind, loggers wait for it rather
/// than lose a line (DESIGN §6: every received event and every apply is logged).
///
/// The writer thread writes every line it finds queued into a buffer and flushes it once
/// the queue is empty: a burst of lines costs one `write(2)`, not one each.
fn writer<W: std::io::Write + Send + 'static>(
    sink: W,
) -> (tracing_appender::non_blocking::NonBlocking, WorkerGuard) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LINES_QUEUED)
        .finish(std::io::BufWriter::with_capacity(WRITE_BUFFER, sink))
}

/// Bytes gathered before a write when the queue stays full (a few hundred lines).
const WRITE_BUFFER: usize = 64 * 1024;

/// Lines queued per sink before loggers wait (a few MB at most).
const LINES_QUEUED: usize = 16_384;

/// The PostgreSQL driver logs every statement's parameters at debug level: payloads,
/// emails, token hashes. Its records stop at `warn`, whatever level is asked for
/// (a directive added after the user's, so it wins for these targets).
const QUIET_DRIVER: [&str; 2] = ["tokio_postgres=warn", "postgres=warn"];

fn filter(default: &str) -> EnvFilter {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    QUIET_DRIVER.iter().fold(filter, |f, d| {
        f.add_directive(d.parse().expect("a valid directive"))
    })
}

/// Logging for `billd serve`.
pub fn init_daemon(config: &LogConfig) -> anyhow::Result<Guard> {
    let json_stdout = match config.format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let (stdout_writer, stdout_guard) = writer(std::io::stdout());
    let file = if config.dir.as_os_str().is_empty() {
        None
    } else {
        crate::process::private_dir(&config.dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create log directory {} (log.dir): {e}",
                config.dir.display()
            )
        })?;
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("billd.log")
            .max_log_files(config.keep_days)
            .build(&config.dir)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the log file in {} (log.dir): {e}",
                    config.dir.display()
                )
            })?;
        Some(writer(appender))
    };
    // The span list alone: the current span would repeat its last entry.
    fn json<S, W>(writer: W) -> impl Layer<S> + Send + Sync
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
        W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(writer)
    }
    let mut guards = vec![stdout_guard];
    let layer = match (json_stdout, file) {
        // Both sinks in JSON: each line formatted once and written to both.
        (true, Some((file_writer, guard))) => {
            guards.push(guard);
            json(stdout_writer.and(file_writer)).boxed()
        }
        (true, None) => json(stdout_writer).boxed(),
        (false, file) => {
            let human = fmt::layer().with_target(false).with_writer(stdout_writer);
            let file = file.map(|(file_writer, guard)| {
                guards.push(guard);
                json(file_writer)
            });
            human.and_then(file).boxed()
        }
    };
    tracing_subscriber::registry()
        .with(filter(&config.level))
        .with(layer)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))?;
    Ok(Guard(guards))
}

/// Logging for one-shot subcommands: warnings and errors on stderr.
pub fn init_cli() {
    let _ = tracing_subscriber::registry()
        .with(filter("warn"))
        .with(fmt::layer().with_target(false).with_writer(std::io::stderr))
        .try_init();
}
