//! The engine's memory beside the store, behind one lock: which routes the router serves,
//! which replicas are kept out of it and why, which routes are being rolled, and which
//! rollouts run here. None of it is the truth (the store is); all of it can be rebuilt by a
//! new engine, so losing it in a crash loses nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

type Key = (String, String);

/// One change at a time per route: a rollout step, a background retirement and a secret roll
/// of the same route must not interleave their read-modify-write of its desired state.
pub(super) type RouteLock = Arc<tokio::sync::Mutex<()>>;

#[derive(Debug, Default)]
pub(super) struct Book {
    /// Routes the router was asked to serve since it (last) started.
    pub(super) listening: HashSet<Key>,
    /// The router's boot id when this engine last spoke to it: a new one means it restarted
    /// and needs every table again.
    pub(super) router_boot: Option<u64>,
    /// Replicas that crashed or fail their health check: kept out of the router.
    pub(super) unhealthy: HashSet<String>,
    /// Extra replicas started for a roll, served beside the desired ones until it ends.
    pub(super) surge: HashSet<String>,
    /// Replicas taken out of the router to be restarted.
    pub(super) draining: HashSet<String>,
    /// Rollouts being executed by this engine.
    pub(super) running: HashSet<i64>,
    pub(super) route_locks: HashMap<Key, RouteLock>,
    /// Routes whose replicas are being restarted with changed secrets.
    pub(super) rolling: HashSet<Key>,
    /// A route's failed roll: the secret revision, when to try again, and how many tries
    /// failed (the wait doubles, from 10 s to 10 min, and starts over when the secrets change).
    pub(super) failed_rolls: HashMap<Key, FailedRoll>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct FailedRoll {
    pub(super) revision: i64,
    pub(super) retry_at: std::time::Instant,
    pub(super) failures: u32,
}

impl FailedRoll {
    pub(super) fn holds(&self, revision: i64) -> bool {
        self.revision == revision && std::time::Instant::now() < self.retry_at
    }
}
