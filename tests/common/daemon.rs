//! The real `billd serve` process, for tests that kill it or read its logs.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

pub const SECRET_KEY: &str = "sk_test_daemon_key_0123456789";

pub struct Daemon {
    pub child: Child,
    pub address: String,
    /// Every stdout line so far is sent here by a reader thread.
    pub lines: mpsc::Receiver<String>,
}

/// Writes a config for a daemon in `dir` (port 0, JSON logs to stdout and `dir/logs`).
pub fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("billd.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n\
         {db}\
         [workers]\npoll_interval_ms = 50\n\
         [log]\nformat = \"json\"\nlevel = \"debug\"\ndir = \"{logs}\"\n",
        db = super::database_toml(dir),
        logs = dir.join("logs").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

impl Daemon {
    /// Starts `billd serve` and waits until it listens.
    pub fn start(config: &Path, webhook_secret: &str) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_billd"))
            .args(["serve", "--config"])
            .arg(config)
            .env("STRIPE_SECRET_KEY", SECRET_KEY)
            .env("STRIPE_WEBHOOK_SECRET", webhook_secret)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("billd starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let address = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("billd did not start; output so far: {seen:#?}"));
            if line.contains("billd serving") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                break format!("http://{}", v["fields"]["addr"].as_str().unwrap());
            }
            seen.push(line);
        };
        Daemon {
            child,
            address,
            lines: rx,
        }
    }

    /// SIGKILL: no chance to flush or finish anything.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit; returns every stdout line.
    pub fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "billd exited with {exit}");
        self.lines.try_iter().collect()
    }
}

/// A test that fails mid-way must not leave its daemon running (it holds the test
/// runner's stderr open).
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
