//! The engine: recovers what runs, dispatches active rollouts, runs their steps, keeps the
//! router in line with healthy replicas, and reports finished deployments to DORA.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use pave_artifacts::ArtifactStore;
use pave_canary_judge::{MetricRun, Verdict};
use pave_model::analysis::AnalysisSpec;
use pave_model::clock::{Clock, SystemClock};
use pave_model::delivery::{Deployment, DeploymentKind, DeploymentStatus, Report};
use pave_model::event::kinds;
use pave_model::rollout::{Rollout, RolloutKind, RolloutState, RouteState, Step};
use pave_model::runtime::parse_duration;
use pave_model::{Kind, NewEvent, Resource, Timestamp};
use pave_router::control::{BoxFuture, ControlError, RouterHandle};
use pave_router::{RouteTable, Summary, VersionRoute};
use pave_runtime::{Adoption, Health, Instance, LogCursor, LogLines, ReplicaSpec, Runtime, RuntimeEvent};
use pave_store::{Store, WriteContext};
use serde_json::json;
use tokio::sync::Notify;

use book::{Book, FailedRoll, RouteLock};
pub(crate) use error::StepError;
pub use lease::holder_is_dead;

mod book;
mod error;
mod lease;
mod recover;
mod replicas;
mod report;
mod roll;
mod routes;
mod steps;

/// Engine settings.
#[derive(Clone)]
pub struct EngineConfig {
    pub artifacts_dir: PathBuf,
    /// Router ports are taken from this range, one per service and environment, and kept.
    pub router_ports: RangeInclusive<u16>,
    /// Identifies this control plane in the engine lease: `host/pid/start/nonce`, where
    /// `start` is the kernel's start time of `pid` (see [`holder_is_dead`]).
    pub holder: String,
    /// How often active rollouts are looked for when nothing wakes the engine.
    pub poll: Duration,
    /// Longest wait for requests in flight to a replica before it is stopped anyway.
    pub drain_timeout: Duration,
    /// Where rollout events are POSTed (see [`crate::notify`]).
    pub webhooks: Vec<crate::notify::Webhook>,
    /// Opens the services' secrets for their replicas. Without it a service that has
    /// secrets cannot start.
    pub master_key: Option<Arc<pave_vault::Keyring>>,
    /// Stamps events, leases, retirements and DORA facts; unit tests freeze it (waits — a
    /// pause, an analysis interval — run on tokio's timer instead).
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("artifacts_dir", &self.artifacts_dir)
            .field("router_ports", &self.router_ports)
            .field("holder", &self.holder)
            .field("poll", &self.poll)
            .field("drain_timeout", &self.drain_timeout)
            .field("webhooks", &self.webhooks.len())
            .field("master_key", &self.master_key.is_some())
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    pub fn new(artifacts_dir: impl Into<PathBuf>, holder: impl Into<String>) -> Self {
        EngineConfig {
            artifacts_dir: artifacts_dir.into(),
            router_ports: 7800..=7999,
            holder: holder.into(),
            poll: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(30),
            webhooks: Vec::new(),
            master_key: None,
            clock: Arc::new(SystemClock),
        }
    }
}

const LEASE: &str = "delivery-engine";
const LEASE_TTL_MS: i64 = 15_000;
const RENEW_EVERY: Duration = Duration::from_secs(3);

/// An event's data about a replica: `data`, its endpoint, and the runtime's own record of it
/// (a process replica's pid and port), which never overrides a field of `data`.
fn replica_data(inst: &Instance, mut data: serde_json::Value) -> serde_json::Value {
    if let Some(map) = data.as_object_mut() {
        map.insert("endpoint".into(), json!(inst.endpoint));
        for (k, v) in &inst.detail {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    data
}

fn subject(service: &str) -> String {
    format!("service/{service}")
}

/// How long a step that failed for a passing reason waits before it is tried again.
const RETRY_TRANSIENT: Duration = Duration::from_secs(1);

/// What [`Engine::tick`] says to do next with a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Look at it again now.
    Again,
    /// Look at it again after a while (a step that could not run for a passing reason).
    Wait(Duration),
    /// Nothing to do until something changes (over, waiting for a person, not ours).
    Stop,
}

/// What running a step came to.
enum Outcome {
    Done,
    /// Waits for a person to promote or abort: at a promotion gate (no reason), or after an
    /// analysis that could not decide (the reason).
    AwaitPromotion(Option<String>),
    /// Someone moved the rollout on (promote, pause, abort) while the step waited: look again.
    Interrupted,
}

/// The delivery engine over runtime `R`.
pub struct Engine<R: Runtime> {
    store: Store,
    runtime: R,
    artifacts: ArtifactStore,
    config: EngineConfig,
    /// The router, its own process: it serves its last tables while no engine runs.
    router: RouterHandle,
    /// What the engine keeps in memory of its routes, replicas and rollouts: one lock.
    book: Mutex<Book>,
    wake: Notify,
    leader: AtomicBool,
    stopped: AtomicBool,
    /// Held (shared) by every replica start; [`Engine::stop`] takes it exclusively, so a stop
    /// waits for the starts in flight (a replica being restored just after a restart, say) and
    /// sees every replica they made, and no start begins after it.
    starts: tokio::sync::RwLock<()>,
}

/// How often a waiting step (a pause, an analysis between measurements) looks whether the
/// rollout was promoted, paused or aborted meanwhile.
const CHECK_EVERY: Duration = Duration::from_millis(200);

use pave_sync::lock;

impl<R: Runtime> Engine<R> {
    /// Now, by the engine's clock.
    fn now(&self) -> i64 {
        self.config.clock.now_ms()
    }

    /// How the engine's writes are stamped.
    fn ctx(&self) -> WriteContext {
        WriteContext { actor: "pave-engine".to_owned(), request_id: None, now: self.now() }
    }

    /// The book, locked. Never held across an await (the compiler sees to it: the engine's
    /// futures must be `Send`).
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        lock(&self.book)
    }
}

impl<R: Runtime> Engine<R> {
    pub fn new(store: Store, runtime: R, router: RouterHandle, config: EngineConfig) -> Arc<Self> {
        Arc::new(Engine {
            store,
            artifacts: ArtifactStore::new(&config.artifacts_dir),
            runtime,
            config,
            router,
            book: Mutex::new(Book::default()),
            wake: Notify::new(),
            leader: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            starts: tokio::sync::RwLock::new(()),
        })
    }

    /// Runs the engine until [`Engine::stop`]: takes the lease, recovers, then dispatches
    /// rollouts whenever woken or every `poll`.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            // A held lease is renewed a few times per TTL, not on every poll: each renewal is a
            // write transaction, and on SQLite writes queue behind one another.
            let mut renewed: Option<std::time::Instant> = None;
            while !engine.stopped.load(Ordering::SeqCst) {
                let fresh = renewed.is_some_and(|t| t.elapsed() < RENEW_EVERY);
                let leader = match if fresh { Ok(true) } else { engine.take_lease().await } {
                    _ if engine.stopped.load(Ordering::SeqCst) => break,
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the delivery engine lease");
                        false
                    }
                };
                if leader && !fresh {
                    renewed = Some(std::time::Instant::now());
                } else if !leader {
                    renewed = None;
                }
                if leader && !engine.leader.swap(true, Ordering::SeqCst) {
                    tracing::info!(holder = %engine.config.holder, "this control plane runs the delivery engine");
                    engine.check_router(false).await;
                    engine.recover().await;
                    tokio::spawn(engine.clone().watch_runtime());
                    tokio::spawn(engine.clone().notify());
                } else if !leader && engine.leader.swap(false, Ordering::SeqCst) {
                    tracing::warn!("lost the delivery engine lease; another control plane runs it now");
                }
                if leader {
                    engine.check_router(true).await;
                    engine.dispatch().await;
                    engine.retire_due().await;
                    engine.roll_due().await;
                    engine.reap_removed().await;
                }
                tokio::select! {
                    _ = engine.wake.notified() => {}
                    _ = tokio::time::sleep(engine.config.poll) => {}
                }
            }
        })
    }

    /// Makes the engine look for work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether this control plane holds the engine lease.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// Stops taking new work (the first thing a shutdown does); see [`Engine::stop`].
    pub fn halt(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Stops the engine. With `stop_replicas`, every replica is stopped too (the demo's end);
    /// otherwise they keep serving and the next engine adopts them.
    pub async fn stop(&self, stop_replicas: bool) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        // Starts in flight finish first (their replicas are then in `running`); none begins
        // after this.
        let _no_more_starts = self.starts.write().await;
        if stop_replicas {
            for inst in self.runtime.running() {
                let _ = self.runtime.stop(&inst.id).await;
                let _ = self.store.delete_instance(&inst.id).await;
            }
            // And any replica of ours that no table holds.
            self.runtime.reap_orphans().await;
            // Nothing is left to route to: the router goes too (the demo's end, a test's).
            if let Err(e) = self.router.shutdown().await {
                tracing::warn!(error = %e, "cannot stop the router");
            }
        }
    }

    /// Golden signals per version since `since` (`None` when the router serves no such route or
    /// cannot be reached).
    pub async fn signals(&self, service: &str, env: &str, since: std::time::SystemTime) -> Option<Vec<Summary>> {
        match self.router.signals(service, env, since).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the router's signals");
                None
            }
        }
    }

    /// The table the router uses now.
    pub async fn route_table(&self, service: &str, env: &str) -> Option<RouteTable> {
        self.router.table(service, env).await.ok().flatten()
    }

    /// Looks whether the router restarted since this engine last spoke to it (a new boot id)
    /// and, if so and `resync`, gives it every route and table again. A router that restored
    /// its saved tables already serves them; this brings them up to date.
    async fn check_router(&self, resync: bool) {
        let hello = match self.router.hello().await {
            Ok(h) => h,
            Err(e) => {
                if !self.stopped.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "the router does not answer; it keeps serving its last tables");
                }
                self.book().router_boot = None;
                return;
            }
        };
        let previous = self.book().router_boot.replace(hello.boot);
        if previous == Some(hello.boot) || !resync {
            return;
        }
        tracing::info!(pid = hello.pid, version = %hello.version, "the router (re)started; giving it every route");
        self.book().listening.clear();
        let routes = match self.store.routes().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read routes");
                self.book().router_boot = None;
                return;
            }
        };
        for (service, env, state) in routes {
            if let Err(e) = self.ensure_listener(&service, &env, state.port).await {
                tracing::error!(error = %e, "cannot serve a route");
                continue;
            }
            let _ = self.apply_state(&service, &env, &state).await;
        }
    }

    /// Replicas running now.
    pub fn replicas(&self) -> Vec<Instance> {
        self.runtime.running()
    }

    async fn event(&self, kind: &str, service: &str, data: serde_json::Value) {
        let e = NewEvent::new(kind, subject(service), data);
        if let Err(err) = self.store.append_events(&self.ctx(), &[e]).await {
            tracing::warn!(error = %err, kind, "cannot append an engine event");
        }
    }
}

/// What the API needs of the delivery engine, whatever runtime it drives: the server holds
/// this, not an engine over a particular runtime.
pub trait Delivery: Send + Sync + 'static {
    /// Makes the engine look for work now (a deployment was requested, a secret changed).
    fn wake(&self);
    /// Whether this control plane runs the engine now.
    fn is_leader(&self) -> bool;
    /// The replicas this control plane supervises.
    fn replicas(&self) -> Vec<Instance>;
    /// The table the router uses for a route now.
    fn route_table<'a>(&'a self, service: &'a str, env: &'a str) -> BoxFuture<'a, Option<RouteTable>>;
    /// Golden signals per version since `since`.
    fn signals<'a>(
        &'a self,
        service: &'a str,
        env: &'a str,
        since: std::time::SystemTime,
    ) -> BoxFuture<'a, Option<Vec<Summary>>>;
    /// The replicas' logs, from the runtime (see [`Runtime::logs`]).
    fn logs(&self, service: &str, env: &str, lines: usize) -> std::io::Result<(Vec<LogLines>, LogCursor)>;
    fn logs_since(&self, service: &str, env: &str, cursor: &mut LogCursor) -> std::io::Result<Vec<LogLines>>;
}

impl<R: Runtime> Delivery for Engine<R> {
    fn wake(&self) {
        Engine::wake(self);
    }

    fn is_leader(&self) -> bool {
        Engine::is_leader(self)
    }

    fn replicas(&self) -> Vec<Instance> {
        Engine::replicas(self)
    }

    fn route_table<'a>(&'a self, service: &'a str, env: &'a str) -> BoxFuture<'a, Option<RouteTable>> {
        Box::pin(Engine::route_table(self, service, env))
    }

    fn signals<'a>(
        &'a self,
        service: &'a str,
        env: &'a str,
        since: std::time::SystemTime,
    ) -> BoxFuture<'a, Option<Vec<Summary>>> {
        Box::pin(Engine::signals(self, service, env, since))
    }

    fn logs(&self, service: &str, env: &str, lines: usize) -> std::io::Result<(Vec<LogLines>, LogCursor)> {
        self.runtime.logs(service, env, lines)
    }

    fn logs_since(&self, service: &str, env: &str, cursor: &mut LogCursor) -> std::io::Result<Vec<LogLines>> {
        self.runtime.logs_since(service, env, cursor)
    }
}

#[cfg(test)]
mod tests;
