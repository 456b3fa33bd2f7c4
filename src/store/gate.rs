//! Turns at SQLite's one write lock, between this process's ingest writer and workers.
//!
//! SQLite lets one connection write at a time and makes the others wait in its busy
//! handler, which sleeps in growing steps (1, 2, 5, 10 … 100 ms) instead of waking when
//! the lock is freed. Within one process the two busy writers queue here instead: the
//! next one is woken the moment the previous one commits, and they alternate when both
//! wait, so neither a webhook (waiting for an ingest commit) nor the apply backlog is
//! starved. Writers of other processes (the CLI) and the API's few writes still meet the
//! busy handler, as before. PostgreSQL has no such lock and takes no turns.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Who asks for a turn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Writer {
    Ingest,
    Worker,
}

#[derive(Default)]
pub struct WriteGate {
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    held: bool,
    ingest_waiting: bool,
    workers_waiting: u32,
    /// The last turn was the ingest writer's: a waiting worker goes next.
    last_was_ingest: bool,
}

impl State {
    fn may_go(&self, who: Writer) -> bool {
        !self.held
            && match who {
                // Behind a waiting worker if the last turn was its own.
                Writer::Ingest => !self.last_was_ingest || self.workers_waiting == 0,
                // Behind the waiting ingest writer unless the last turn was its.
                Writer::Worker => !self.ingest_waiting || self.last_was_ingest,
            }
    }

    fn waiting(&mut self, who: Writer, waiting: bool) {
        match who {
            Writer::Ingest => self.ingest_waiting = waiting,
            Writer::Worker if waiting => self.workers_waiting += 1,
            Writer::Worker => self.workers_waiting -= 1,
        }
    }
}

/// A turn at the write lock; the next writer is woken when it is dropped.
pub struct Turn<'a> {
    gate: &'a WriteGate,
}

impl WriteGate {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two flags and a count, each written whole: a panic elsewhere
        // cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for `who`'s turn.
    pub fn turn(&self, who: Writer) -> Turn<'_> {
        let mut state = self.lock();
        if !state.may_go(who) {
            state.waiting(who, true);
            while !state.may_go(who) {
                state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.waiting(who, false);
        }
        state.held = true;
        state.last_was_ingest = who == Writer::Ingest;
        Turn { gate: self }
    }

    /// Whether the ingest writer waits for a turn.
    pub fn ingest_waiting(&self) -> bool {
        self.lock().ingest_waiting
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.gate.lock().held = false;
        self.gate.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn one_writer_at_a_time_and_they_alternate_when_both_wait() {
        let gate = Arc::new(WriteGate::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.turn(Writer::Ingest);
        let spawn = |who: Writer, times: usize| {
            let (gate, order) = (gate.clone(), order.clone());
            std::thread::spawn(move || {
                for _ in 0..times {
                    let _turn = gate.turn(who);
                    order.lock().unwrap().push(who);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            })
        };
        let worker = spawn(Writer::Worker, 3);
        let ingest = spawn(Writer::Ingest, 3);
        // Both are queued behind the first turn before it ends.
        while {
            let s = gate.lock();
            !(s.ingest_waiting && s.workers_waiting == 1)
        } {
            std::thread::yield_now();
        }
        drop(first);
        worker.join().unwrap();
        ingest.join().unwrap();
        let order = order.lock().unwrap();
        assert_eq!(order.len(), 6);
        // After an ingest turn the waiting worker goes, and the other way round; at
        // most the tail repeats once the other writer is done.
        assert_eq!(order[0], Writer::Worker, "{order:?}");
        for pair in order[..4].windows(2) {
            assert_ne!(pair[0], pair[1], "{order:?}");
        }
    }

    #[test]
    fn a_lone_writer_never_waits() {
        let gate = WriteGate::default();
        for _ in 0..3 {
            drop(gate.turn(Writer::Worker));
        }
        for _ in 0..3 {
            drop(gate.turn(Writer::Ingest));
        }
        assert!(!gate.ingest_waiting());
    }
}
