//! The engine: recovers what runs, dispatches active rollouts, runs their steps, keeps the
//! router in line with healthy replicas, and reports finished deployments to DORA.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pave_artifacts::ArtifactStore;
use pave_canary_judge::{MetricRun, Verdict};
use pave_model::analysis::AnalysisSpec;
use pave_model::delivery::{Deployment, DeploymentKind, DeploymentStatus, Report};
use pave_model::rollout::{Rollout, RolloutKind, RolloutState, RouteState, Step};
use pave_model::runtime::parse_duration;
use pave_model::{Kind, NewEvent, Resource, Timestamp};
use pave_router::{Listening, Route, RouteTable, RouterConfig, Summary, VersionRoute, Workers};
use pave_runtime::{Adoption, Health, Instance, ReplicaSpec, Runtime, RuntimeEvent};
use pave_store::{Store, WriteContext};
use serde_json::json;
use tokio::sync::Notify;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub artifacts_dir: PathBuf,
    /// Router ports are taken from this range, one per service and environment, and kept.
    pub router_ports: RangeInclusive<u16>,
    /// Identifies this control plane in the engine lease: `host/pid/nonce`.
    pub holder: String,
    /// How often active rollouts are looked for when nothing wakes the engine.
    pub poll: Duration,
    /// Longest wait for requests in flight to a replica before it is stopped anyway.
    pub drain_timeout: Duration,
    pub router: RouterConfig,
    /// Where rollout events are POSTed (see [`crate::notify`]).
    pub webhooks: Vec<crate::notify::Webhook>,
    /// Opens the services' secrets for their replicas. Without it a service that has
    /// secrets cannot start.
    pub master_key: Option<Arc<pave_vault::Keyring>>,
}

impl EngineConfig {
    pub fn new(artifacts_dir: impl Into<PathBuf>, holder: impl Into<String>) -> Self {
        EngineConfig {
            artifacts_dir: artifacts_dir.into(),
            router_ports: 7800..=7999,
            holder: holder.into(),
            poll: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(30),
            router: RouterConfig::default(),
            webhooks: Vec::new(),
            master_key: None,
        }
    }
}

const LEASE: &str = "delivery-engine";
const LEASE_TTL_MS: i64 = 15_000;
const RENEW_EVERY: Duration = Duration::from_secs(3);

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn ctx(actor: &str) -> WriteContext {
    WriteContext { actor: actor.to_owned(), request_id: None, now: now_ms() }
}

fn subject(service: &str) -> String {
    format!("service/{service}")
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
    routes: Mutex<HashMap<(String, String), Listening>>,
    /// The router's threads, started with the first route.
    workers: std::sync::OnceLock<std::io::Result<Workers>>,
    /// Replicas that crashed or fail their health check: kept out of the router.
    unhealthy: Mutex<HashSet<String>>,
    wake: Notify,
    running: Mutex<HashSet<i64>>,
    leader: AtomicBool,
    stopped: AtomicBool,
    /// One change at a time per route: a rollout step and a background retirement of the
    /// same route must not interleave their read-modify-write of its desired state.
    route_locks: Mutex<HashMap<(String, String), RouteLock>>,
    /// Routes whose replicas are being restarted with changed secrets.
    rolling: Mutex<HashSet<(String, String)>>,
    /// A route's failed roll: the secret revision, when to try again, and how many tries
    /// failed (the wait doubles, from 10 s to 10 min, and starts over when the secrets change).
    failed_rolls: Mutex<HashMap<(String, String), FailedRoll>>,
    /// Extra replicas started for a roll, served beside the desired ones until it ends.
    surge: Mutex<HashSet<String>>,
    /// Replicas taken out of the router to be restarted.
    draining: Mutex<HashSet<String>>,
    /// Held (shared) by every replica start; [`Engine::stop`] takes it exclusively, so a stop
    /// waits for the starts in flight (a replica being restored just after a restart, say) and
    /// sees every replica they made, and no start begins after it.
    starts: tokio::sync::RwLock<()>,
}

type RouteLock = Arc<tokio::sync::Mutex<()>>;

#[derive(Debug, Clone, Copy)]
struct FailedRoll {
    revision: i64,
    retry_at: std::time::Instant,
    failures: u32,
}

impl FailedRoll {
    fn holds(&self, revision: i64) -> bool {
        self.revision == revision && std::time::Instant::now() < self.retry_at
    }
}

/// How often a waiting step (a pause, an analysis between measurements) looks whether the
/// rollout was promoted, paused or aborted meanwhile.
const CHECK_EVERY: Duration = Duration::from_millis(200);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<R: Runtime> Engine<R> {
    pub fn new(store: Store, runtime: R, config: EngineConfig) -> Arc<Self> {
        Arc::new(Engine {
            store,
            artifacts: ArtifactStore::new(&config.artifacts_dir),
            runtime,
            config,
            routes: Mutex::new(HashMap::new()),
            workers: std::sync::OnceLock::new(),
            unhealthy: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            running: Mutex::new(HashSet::new()),
            leader: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            route_locks: Mutex::new(HashMap::new()),
            rolling: Mutex::new(HashSet::new()),
            failed_rolls: Mutex::new(HashMap::new()),
            surge: Mutex::new(HashSet::new()),
            draining: Mutex::new(HashSet::new()),
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
                    engine.recover().await;
                    tokio::spawn(engine.clone().watch_runtime());
                    tokio::spawn(engine.clone().notify());
                } else if !leader && engine.leader.swap(false, Ordering::SeqCst) {
                    tracing::warn!("lost the delivery engine lease; another control plane runs it now");
                }
                if leader {
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

    /// Takes or renews the lease. A holder on this machine whose process is gone (a control
    /// plane killed a moment ago) is taken over at once instead of after the lease expires.
    async fn take_lease(&self) -> Result<bool, pave_store::StoreError> {
        let me = &self.config.holder;
        if self.store.acquire_lease(LEASE, me, LEASE_TTL_MS, now_ms(), None).await? {
            return Ok(true);
        }
        let Some(current) = self.store.lease_holder(LEASE).await? else { return Ok(false) };
        let parts: Vec<&str> = current.split('/').collect();
        let dead_here = match (parts.as_slice(), me.split('/').next()) {
            ([host, pid, _], Some(my_host)) => {
                *host == my_host
                    && pid.parse::<u32>().is_ok_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
            }
            _ => false,
        };
        if !dead_here {
            return Ok(false);
        }
        tracing::info!(previous = %current, "the previous engine's process is gone; taking over its lease");
        self.store.acquire_lease(LEASE, me, LEASE_TTL_MS, now_ms(), Some(&current)).await
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
        }
        lock(&self.routes).clear();
    }

    /// Golden signals per version since `since`.
    pub fn signals(&self, service: &str, env: &str, since: std::time::SystemTime) -> Option<Vec<Summary>> {
        lock(&self.routes).get(&(service.to_owned(), env.to_owned())).map(|l| l.route.signals.summary(since))
    }

    /// The table the router uses now.
    pub fn route_table(&self, service: &str, env: &str) -> Option<RouteTable> {
        lock(&self.routes).get(&(service.to_owned(), env.to_owned())).map(|l| l.route.table())
    }

    /// Replicas running now.
    pub fn replicas(&self) -> Vec<Instance> {
        self.runtime.running()
    }

    async fn event(&self, kind: &str, service: &str, data: serde_json::Value) {
        let e = NewEvent::new(kind, subject(service), data);
        if let Err(err) = self.store.append_events(&ctx("pave-engine"), &[e]).await {
            tracing::warn!(error = %err, kind, "cannot append an engine event");
        }
    }

    // ---- replicas ----------------------------------------------------------------------

    /// The runtime spec of one replica, from the service's runtime spec, its secrets and the
    /// release's verified artifact.
    async fn spec(&self, service: &str, env: &str, version: &str, replica: u32) -> Result<ReplicaSpec, String> {
        self.spec_with(service, env, version, replica, true).await
    }

    /// As [`Engine::spec`]; with `strict` false, secrets that cannot be opened are left out
    /// (with a warning) instead of failing: a running replica to adopt already has them, and
    /// stopping it would turn a key problem into an outage.
    async fn spec_with(
        &self,
        service: &str,
        env: &str,
        version: &str,
        replica: u32,
        strict: bool,
    ) -> Result<ReplicaSpec, String> {
        let svc = match self.store.get(Kind::Service, service).await.map_err(|e| e.to_string())? {
            Some(s) => match s.resource {
                Resource::Service(s) => s,
                _ => return Err(format!("{service} is not a service")),
            },
            None => return Err(format!("service {service} no longer exists")),
        };
        let rt = svc.spec.runtime.ok_or_else(|| format!("service {service} has no runtime spec"))?;
        let release = self
            .store
            .release(service, version)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("release {service} {version} does not exist"))?;
        let artifacts = self.artifacts.clone();
        let digest = release.digest.clone();
        let cwd = tokio::task::spawn_blocking(move || artifacts.verify(&digest))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("artifact of {service} {version}: {e}"))?;
        let ms = |s: &str| parse_duration(s).map(Duration::from_millis);
        let sealed = self.store.sealed_secrets(service, env).await.map_err(|e| e.to_string())?;
        let mut secrets = std::collections::BTreeMap::new();
        let mut opened = || -> Result<(), String> {
            if sealed.secrets.is_empty() {
                return Ok(());
            }
            let key = self.config.master_key.as_ref().ok_or_else(|| {
                format!("{service} has secrets in {env}, but this control plane has no master key to open them")
            })?;
            for s in &sealed.secrets {
                let at = pave_vault::SecretRef { service, environment: env, name: &s.name, version: s.version };
                secrets.insert(s.name.clone(), key.open(&at, &s.sealed).map_err(|e| e.to_string())?);
            }
            Ok(())
        };
        let mut config_rev = sealed.revision;
        match opened() {
            Ok(()) => {}
            Err(e) if strict => return Err(e),
            Err(e) => {
                // Should it crash and restart, it would run without its secrets: its revision
                // says it is behind, so a roll (which opens them, or fails and says so) follows.
                tracing::warn!(service, env, error = %e, "adopting a replica without opening its secrets");
                secrets.clear();
                config_rev = -1;
            }
        }
        Ok(ReplicaSpec {
            service: service.to_owned(),
            env: env.to_owned(),
            version: version.to_owned(),
            replica,
            program: rt.command.clone(),
            args: rt.args.clone(),
            cwd,
            vars: rt.env.clone(),
            secrets,
            config_rev,
            port_env: rt.port_env.clone(),
            health: Health {
                path: rt.health_check.path.clone(),
                interval: ms(&rt.health_check.interval)?,
                timeout: ms(&rt.health_check.timeout)?,
                threshold: rt.health_check.healthy_threshold,
            },
            start_timeout: ms(&rt.start_timeout)?,
            stop_timeout: ms(&rt.stop_timeout)?,
        })
    }

    fn instances_of(&self, service: &str, env: &str, version: &str) -> Vec<Instance> {
        self.runtime
            .running()
            .into_iter()
            .filter(|i| i.service == service && i.env == env && i.version == version)
            .collect()
    }

    /// Makes exactly `replicas` healthy replicas of `version` run; extra ones are taken out
    /// of the router, drained and stopped.
    async fn ensure_replicas(&self, service: &str, env: &str, version: &str, replicas: u32) -> Result<(), String> {
        let have = self.instances_of(service, env, version);
        for idx in 0..replicas {
            if have.iter().any(|i| i.replica == idx) {
                continue;
            }
            self.start_replica(service, env, version, idx, false).await?;
        }
        let mut extra: Vec<Instance> = have.into_iter().filter(|i| i.replica >= replicas).collect();
        extra.sort_by_key(|i| std::cmp::Reverse(i.replica));
        if !extra.is_empty() {
            // The desired state already excludes them: this table has none of them.
            self.apply(service, env).await;
        }
        for inst in extra {
            self.retire(&inst).await;
        }
        Ok(())
    }

    /// Drains and stops a replica the router no longer uses.
    async fn retire(&self, inst: &Instance) {
        let route = lock(&self.routes).get(&(inst.service.clone(), inst.env.clone())).map(|l| l.route.clone());
        if let Some(route) = route
            && !route.drain(inst.addr(), self.config.drain_timeout).await
        {
            tracing::warn!(id = %inst.id, "requests still in flight after the drain timeout; stopping anyway");
        }
        let outcome = self.runtime.stop(&inst.id).await;
        let _ = self.store.delete_instance(&inst.id).await;
        lock(&self.unhealthy).remove(&inst.id);
        lock(&self.surge).remove(&inst.id);
        self.event(
            "replica.stopped",
            &inst.service,
            json!({"environment": inst.env, "version": inst.version, "replica": inst.replica,
                   "outcome": outcome.map(|o| serde_json::to_value(o).unwrap_or_default()).unwrap_or_else(|e| json!(e.to_string()))}),
        )
        .await;
    }

    // ---- routes ------------------------------------------------------------------------

    fn route_lock(&self, service: &str, env: &str) -> RouteLock {
        lock(&self.route_locks).entry((service.to_owned(), env.to_owned())).or_default().clone()
    }

    /// Stops versions whose keep-warm time is over and that still take no traffic.
    async fn retire_due(&self) {
        let now = now_ms();
        let routes = match self.store.routes().await {
            Ok(r) => r,
            Err(e) => {
                if !self.stopped.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "cannot read routes");
                }
                return;
            }
        };
        for (service, env, state) in routes {
            if !state.versions.iter().any(|v| v.weight == 0 && v.retire_at.is_some_and(|t| t.0 <= now)) {
                continue;
            }
            let guard = self.route_lock(&service, &env);
            // Never wait here: this runs in the loop that renews the lease, and a rollout step
            // or a roll may hold the route for a while. The next poll tries again.
            let Ok(_held) = guard.try_lock() else { continue };
            // Read again under the lock: an undo may have brought the version back.
            let Ok(Some(mut state)) = self.store.route_state(&service, &env).await else { continue };
            let due: Vec<String> = state
                .versions
                .iter()
                .filter(|v| v.weight == 0 && v.retire_at.is_some_and(|t| t.0 <= now))
                .map(|v| v.version.clone())
                .collect();
            for version in due {
                state.set_replicas(&version, 0);
                let ev = NewEvent::new(
                    "route.retired",
                    subject(&service),
                    json!({"environment": env, "version": version, "reason": "keep-warm time over"}),
                );
                if let Err(e) = self.store.save_route(&service, &env, &state, &[ev], &ctx("pave-engine")).await {
                    tracing::warn!(error = %e, "cannot retire a version");
                    continue;
                }
                if let Err(e) = self.ensure_replicas(&service, &env, &version, 0).await {
                    tracing::warn!(error = %e, "cannot stop a retired version");
                }
            }
        }
    }

    /// Tears down the routes of services and environments that were deleted: a delete stops
    /// what runs there (its replicas, drained first, and the router's listener) and forgets
    /// the route. The store refuses the delete while a rollout there is in progress.
    async fn reap_removed(&self) {
        let removed = match self.store.removed_routes().await {
            Ok(r) => r,
            Err(e) => {
                if !self.stopped.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "cannot read routes");
                }
                return;
            }
        };
        for (service, env) in removed {
            let guard = self.route_lock(&service, &env);
            // As in retire_due: never wait here; the next poll tries again.
            let Ok(_held) = guard.try_lock() else { continue };
            let key = (service.clone(), env.clone());
            // No new connection and no new request, so the drains below see only what is
            // already in flight.
            let port = lock(&self.routes).get(&key).map(|l| {
                l.close();
                let _ = l.route.set(RouteTable::default());
                l.addr.port()
            });
            let replicas: Vec<Instance> =
                self.runtime.running().into_iter().filter(|i| i.service == service && i.env == env).collect();
            for inst in &replicas {
                self.retire(inst).await;
            }
            lock(&self.routes).remove(&key);
            lock(&self.failed_rolls).remove(&key);
            let ev = NewEvent::new(
                "route.removed",
                subject(&service),
                json!({"environment": env, "port": port, "stopped": replicas.len(),
                       "reason": "the service or the environment was deleted"}),
            );
            match self.store.delete_route(&service, &env, &[ev], &ctx("pave-engine")).await {
                Ok(()) => tracing::info!(service, env, stopped = replicas.len(), "route of a deleted resource removed"),
                Err(e) => tracing::warn!(error = %e, service, env, "cannot forget a removed route"),
            }
        }
    }

    /// The route's desired state, creating it (with a free port) the first time.
    async fn route_state(&self, service: &str, env: &str) -> Result<RouteState, String> {
        if let Some(s) = self.store.route_state(service, env).await.map_err(|e| e.to_string())? {
            self.ensure_listener(service, env, s.port)?;
            return Ok(s);
        }
        let used: HashSet<u16> =
            self.store.routes().await.map_err(|e| e.to_string())?.into_iter().map(|(_, _, s)| s.port).collect();
        let port = self
            .config
            .router_ports
            .clone()
            .find(|p| !used.contains(p) && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .ok_or_else(|| format!("no free router port in {:?}", self.config.router_ports))?;
        let state = RouteState { port, sticky: true, versions: Vec::new() };
        let ev = NewEvent::new("route.created", subject(service), json!({"environment": env, "port": port}));
        self.store.save_route(service, env, &state, &[ev], &ctx("pave-engine")).await.map_err(|e| e.to_string())?;
        self.ensure_listener(service, env, port)?;
        Ok(state)
    }

    fn ensure_listener(&self, service: &str, env: &str, port: u16) -> Result<(), String> {
        let key = (service.to_owned(), env.to_owned());
        let mut routes = lock(&self.routes);
        if routes.contains_key(&key) {
            return Ok(());
        }
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| format!("cannot listen on router port {port} for {service} in {env}: {e}"))?;
        let route = Route::new(service, env, self.config.router.clone());
        let workers = self
            .workers
            .get_or_init(|| Workers::start(self.config.router.threads))
            .as_ref()
            .map_err(|e| format!("cannot start the router's threads: {e}"))?;
        let listening = workers.listen(route, std_listener).map_err(|e| e.to_string())?;
        tracing::info!(service, env, addr = %listening.addr, "router listening");
        routes.insert(key, listening);
        Ok(())
    }

    /// Points the router at the healthy replicas of the versions the desired state names.
    async fn apply(&self, service: &str, env: &str) {
        let state = match self.store.route_state(service, env).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a route");
                return;
            }
        };
        self.apply_state(service, env, &state);
    }

    fn apply_state(&self, service: &str, env: &str, state: &RouteState) {
        let running = self.runtime.running();
        let unhealthy = lock(&self.unhealthy).clone();
        let surge = lock(&self.surge).clone();
        let draining = lock(&self.draining).clone();
        let table = RouteTable {
            sticky: state.sticky,
            versions: state
                .versions
                .iter()
                .map(|v| VersionRoute {
                    version: v.version.clone(),
                    weight: v.weight,
                    backends: running
                        .iter()
                        .filter(|i| {
                            i.service == service
                                && i.env == env
                                && i.version == v.version
                                && (i.replica < v.replicas || surge.contains(&i.id))
                                && !unhealthy.contains(&i.id)
                                && !draining.contains(&i.id)
                        })
                        .map(Instance::addr)
                        .collect(),
                })
                .collect(),
        };
        if let Some(l) = lock(&self.routes).get(&(service.to_owned(), env.to_owned()))
            && let Err(e) = l.route.set(table)
        {
            tracing::error!(service, env, error = %e, "route state is inconsistent");
        }
    }

    // ---- secrets ---------------------------------------------------------------------

    /// Starts a roll for every route with a replica that runs an older secret revision than
    /// the store has. One query per poll, and none while nothing runs.
    async fn roll_due(self: &Arc<Self>) {
        let running = self.runtime.running();
        if running.is_empty() {
            return;
        }
        let revisions = match self.store.secret_revisions().await {
            Ok(r) => r,
            Err(e) => {
                if !self.stopped.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "cannot read secret revisions");
                }
                return;
            }
        };
        let mut due: HashMap<(String, String), i64> = HashMap::new();
        for i in running {
            let key = (i.service, i.env);
            let rev = revisions.get(&key).copied().unwrap_or(0);
            if i.config_rev != rev {
                due.insert(key, rev);
            }
        }
        // A failed roll is tried again when its wait is over even if every running replica
        // is current: it may have left a slot empty with only the extra replica serving.
        for (key, f) in lock(&self.failed_rolls).iter() {
            let rev = revisions.get(key).copied().unwrap_or(0);
            if !f.holds(rev) {
                due.entry(key.clone()).or_insert(rev);
            }
        }
        for (key, rev) in due {
            if lock(&self.failed_rolls).get(&key).is_some_and(|f| f.holds(rev))
                || !lock(&self.rolling).insert(key.clone())
            {
                continue;
            }
            let engine = self.clone();
            tokio::spawn(async move {
                let (service, env) = &key;
                if let Err(reason) = engine.roll(service, env, rev).await {
                    let failures = {
                        let mut failed = lock(&engine.failed_rolls);
                        let failures = failed.get(&key).filter(|f| f.revision == rev).map_or(0, |f| f.failures) + 1;
                        let wait = Duration::from_secs(10u64.saturating_mul(1 << (failures - 1).min(6)).min(600));
                        failed.insert(
                            key.clone(),
                            FailedRoll { revision: rev, retry_at: std::time::Instant::now() + wait, failures },
                        );
                        failures
                    };
                    tracing::warn!(service, env, %reason, failures, "replicas keep their previous secrets for now");
                    engine
                        .event(
                            "replicas.roll-failed",
                            service,
                            json!({"environment": env, "revision": rev, "reason": reason, "failures": failures}),
                        )
                        .await;
                }
                lock(&engine.rolling).remove(&key);
            });
        }
    }

    /// Restarts a route's replicas that run older secrets, one at a time, without losing
    /// capacity: first one extra replica with the new secrets (if it fails its health check,
    /// nothing else changes), then each old one leaves the router, drains, stops and starts
    /// again on its slot with the new secrets, then the extra one leaves. A rollout in
    /// progress goes first: it starts its replicas with the new secrets, and what it leaves
    /// running is rolled after it.
    async fn roll(&self, service: &str, env: &str, rev: i64) -> Result<(), String> {
        let guard = self.route_lock(service, env);
        let _held = guard.lock().await;
        // A rollout waiting for its approval has changed nothing yet: it does not hold up a roll.
        let active = self.store.active_rollouts().await.map_err(|e| e.to_string())?;
        if active
            .iter()
            .any(|r| r.service == service && r.environment == env && r.state != RolloutState::AwaitingApproval)
        {
            return Ok(());
        }
        let Some(state) = self.store.route_state(service, env).await.map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let mut rolled = 0;
        for v in state.versions.iter().filter(|v| v.replicas > 0) {
            // Fill an empty slot and retire an extra replica a failed roll left behind.
            self.ensure_replicas(service, env, &v.version, v.replicas).await?;
            let mut stale: Vec<Instance> = self
                .instances_of(service, env, &v.version)
                .into_iter()
                .filter(|i| i.config_rev != rev && i.replica < v.replicas)
                .collect();
            if stale.is_empty() {
                continue;
            }
            stale.sort_by_key(|i| i.replica);
            let surge = self.start_replica(service, env, &v.version, v.replicas, true).await?;
            let mut outcome = Ok(());
            for old in &stale {
                if self.stopped.load(Ordering::SeqCst) || !self.is_leader() {
                    // The next engine picks the roll up where it stands.
                    return Ok(());
                }
                lock(&self.draining).insert(old.id.clone());
                self.apply(service, env).await;
                let route = lock(&self.routes).get(&(service.to_owned(), env.to_owned())).map(|l| l.route.clone());
                if let Some(route) = route {
                    route.drain(old.addr(), self.config.drain_timeout).await;
                }
                let _ = self.runtime.stop(&old.id).await;
                let started = self.start_replica(service, env, &v.version, old.replica, false).await;
                lock(&self.draining).remove(&old.id);
                self.apply(service, env).await;
                if let Err(e) = started {
                    // The slot stays empty; the extra replica keeps serving in its place.
                    outcome = Err(e);
                    break;
                }
                rolled += 1;
            }
            outcome?;
            lock(&self.surge).remove(&surge.id);
            self.apply(service, env).await;
            self.retire(&surge).await;
        }
        lock(&self.failed_rolls).remove(&(service.to_owned(), env.to_owned()));
        if rolled > 0 {
            self.event(
                "replicas.rolled",
                service,
                json!({"environment": env, "reason": "secrets changed", "revision": rev, "replicas": rolled}),
            )
            .await;
        }
        Ok(())
    }

    /// Starts one replica with the current secrets, records it, and puts it in the router
    /// (as an extra one beside the desired replicas when `surge`).
    async fn start_replica(
        &self,
        service: &str,
        env: &str,
        version: &str,
        replica: u32,
        surge: bool,
    ) -> Result<Instance, String> {
        let _starting = self.starts.read().await;
        if self.stopped.load(Ordering::SeqCst) {
            return Err("the delivery engine is stopping".into());
        }
        let spec = self.spec(service, env, version, replica).await?;
        let inst = self.runtime.start(spec).await.map_err(|e| e.to_string())?;
        let doc = serde_json::to_value(&inst).map_err(|e| e.to_string())?;
        self.store.save_instance(&inst.id, service, env, &doc, now_ms()).await.map_err(|e| e.to_string())?;
        lock(&self.unhealthy).remove(&inst.id);
        if surge {
            lock(&self.surge).insert(inst.id.clone());
        }
        self.event(
            "replica.started",
            service,
            json!({"environment": env, "version": version, "replica": replica, "pid": inst.pid, "port": inst.port,
                   "revision": inst.config_rev}),
        )
        .await;
        self.apply(service, env).await;
        Ok(inst)
    }

    // ---- recovery ----------------------------------------------------------------------

    /// After a start: adopt recorded replicas still running, forget the rest, serve every
    /// route again, start what is missing, and stop unrecorded replicas of ours.
    async fn recover(&self) {
        let records = self.store.instances().await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read recorded replicas");
            Vec::new()
        });
        let (mut adopted, mut gone) = (0, 0);
        for doc in records {
            let Ok(inst) = serde_json::from_value::<Instance>(doc) else { continue };
            let outcome = match self.spec_with(&inst.service, &inst.env, &inst.version, inst.replica, false).await {
                Ok(spec) => self.runtime.adopt(spec, inst.clone()).await,
                Err(e) => {
                    tracing::warn!(id = %inst.id, error = %e, "cannot rebuild a replica's spec; it will be stopped");
                    Adoption::Gone
                }
            };
            match outcome {
                Adoption::Adopted(_) => adopted += 1,
                Adoption::Gone | Adoption::Stopped => {
                    gone += 1;
                    let _ = self.store.delete_instance(&inst.id).await;
                }
            }
        }
        let reaped = self.runtime.reap_orphans().await;
        tracing::info!(adopted, gone, reaped = reaped.len(), "recovered replicas");
        let routes = self.store.routes().await.unwrap_or_default();
        let routes_empty = routes.is_empty();
        for (service, env, state) in &routes {
            if let Err(e) = self.ensure_listener(service, env, state.port) {
                tracing::error!(error = %e, "cannot serve a route");
                continue;
            }
            self.apply_state(service, env, state);
        }
        for (service, env, state) in routes {
            for v in &state.versions {
                if let Err(e) = self.ensure_replicas(&service, &env, &v.version, v.replicas).await {
                    tracing::error!(service, env, version = %v.version, error = %e, "cannot restore replicas");
                }
            }
            self.apply(&service, &env).await;
        }
        // Recorded when there was something to recover: a first start on an empty platform
        // is not an event.
        if adopted + gone + reaped.len() > 0 || !routes_empty {
            self.event("engine.recovered", "pave", json!({"adopted": adopted, "gone": gone, "reaped": reaped})).await;
        }
    }

    /// Sends rollout events to the webhooks while this control plane runs the engine: one
    /// ordered queue per endpoint, fed from the event log.
    async fn notify(self: Arc<Self>) {
        if self.config.webhooks.is_empty() {
            return;
        }
        let mut after = self.store.last_event_id().await.unwrap_or(0);
        let queues: Vec<tokio::sync::mpsc::Sender<pave_model::Event>> = self
            .config
            .webhooks
            .iter()
            .map(|hook| {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<pave_model::Event>(10_000);
                let hook = hook.clone();
                tokio::spawn(async move {
                    while let Some(e) = rx.recv().await {
                        crate::notify::deliver(&hook, &e).await;
                    }
                });
                tx
            })
            .collect();
        while !self.stopped.load(Ordering::SeqCst) && self.is_leader() {
            let q = pave_store::EventQuery {
                after,
                kinds: vec!["deployment.*".into(), "analysis.*".into()],
                subject: None,
                limit: 500,
            };
            match self.store.events(&q).await {
                Ok(batch) => {
                    let full = batch.len() as i64 == q.limit;
                    for e in batch {
                        after = after.max(e.id);
                        if !crate::notify::carried(&e.kind) {
                            continue;
                        }
                        for queue in &queues {
                            if queue.try_send(e.clone()).is_err() {
                                tracing::error!(event = e.id, "a webhook endpoint is 10,000 events behind; dropping");
                            }
                        }
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) if !self.stopped.load(Ordering::SeqCst) => {
                    tracing::warn!(error = %e, "webhooks cannot read the event log");
                }
                Err(_) => return,
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }

    /// Turns runtime events into events in the log and router changes.
    async fn watch_runtime(self: Arc<Self>) {
        let mut rx = self.runtime.subscribe();
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "runtime events lagged");
                    continue;
                }
                Err(_) => return,
            };
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let id = match &ev {
                RuntimeEvent::Crashed { id, .. }
                | RuntimeEvent::Unhealthy { id, .. }
                | RuntimeEvent::Healthy { id } => id.clone(),
                RuntimeEvent::Restarted { instance } => instance.id.clone(),
            };
            let Some((service, env, version, _)) = pave_runtime::parse_instance_id(&id) else { continue };
            let (service, env, version) = (service.to_owned(), env.to_owned(), version.to_owned());
            let (kind, data) = match &ev {
                RuntimeEvent::Crashed { status, restarts, restart_in, .. } => {
                    lock(&self.unhealthy).insert(id.clone());
                    (
                        "replica.crashed",
                        json!({"replica": id, "status": status, "restarts": restarts, "restartInMs": restart_in.as_millis() as u64}),
                    )
                }
                RuntimeEvent::Restarted { instance } => {
                    lock(&self.unhealthy).remove(&id);
                    if let Ok(doc) = serde_json::to_value(instance) {
                        let _ = self.store.save_instance(&id, &service, &env, &doc, now_ms()).await;
                    }
                    ("replica.restarted", json!({"replica": id, "pid": instance.pid}))
                }
                RuntimeEvent::Unhealthy { reason, .. } => {
                    lock(&self.unhealthy).insert(id.clone());
                    ("replica.unhealthy", json!({"replica": id, "reason": reason}))
                }
                RuntimeEvent::Healthy { .. } => {
                    lock(&self.unhealthy).remove(&id);
                    ("replica.healthy", json!({"replica": id}))
                }
            };
            self.apply(&service, &env).await;
            let mut data = data;
            data["environment"] = json!(env);
            self.event(kind, &service, data).await;
            if matches!(ev, RuntimeEvent::Crashed { .. } | RuntimeEvent::Unhealthy { .. }) {
                self.fail_canary_of(&service, &env, &version, &id).await;
            }
        }
    }

    /// A canary whose replica crashed or turned unhealthy is rolled back at once: users
    /// already saw it fail, and no analysis needs to say so.
    async fn fail_canary_of(&self, service: &str, env: &str, version: &str, replica: &str) {
        let Ok(Some(r)) = self.store.rollouts(Some(service), Some(env), 1).await.map(|v| v.into_iter().next()) else {
            return;
        };
        let canary = r.strategy == pave_model::rollout::Strategy::Canary
            && matches!(r.state, RolloutState::Progressing | RolloutState::Paused | RolloutState::AwaitingPromotion)
            && r.version == version;
        if canary {
            tracing::warn!(rollout = r.id, replica, "a canary replica failed; rolling back");
            self.begin_revert(r.id, format!("canary replica {replica} crashed or became unhealthy")).await;
            self.wake();
        }
    }

    // ---- rollouts ----------------------------------------------------------------------

    async fn dispatch(self: &Arc<Self>) {
        let active = match self.store.active_rollouts().await {
            Ok(a) => a,
            Err(e) => {
                // A shutdown closes the store under the engine's feet: not worth a warning.
                if !self.stopped.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "cannot list active rollouts");
                }
                return;
            }
        };
        for r in active {
            if matches!(r.state, RolloutState::AwaitingApproval) {
                continue;
            }
            if matches!(r.state, RolloutState::AwaitingPromotion | RolloutState::Paused) && r.abort_requested.is_none()
            {
                continue;
            }
            if !lock(&self.running).insert(r.id) {
                continue;
            }
            let engine = self.clone();
            tokio::spawn(async move {
                let id = r.id;
                engine.execute(id).await;
                lock(&engine.running).remove(&id);
                // Something may have changed while it ran (a promote, an abort).
                engine.wake();
            });
        }
    }

    async fn modify(
        &self,
        id: i64,
        change: impl FnOnce(&mut Rollout) -> Vec<NewEvent>,
    ) -> Result<Rollout, pave_store::StoreError> {
        self.store.modify_rollout(id, &ctx("pave-engine"), |r| Ok(change(r))).await
    }

    /// Moves a rollout past step `at` of the list it runs in `state` (its plan while
    /// progressing, its revert while rolling back), once.
    async fn advance(&self, id: i64, at: usize, state: RolloutState, step: &Step) {
        let kind = if state == RolloutState::RollingBack { "deployment.revert-step" } else { "deployment.step" };
        let _ = self
            .modify(id, |r| {
                // Only if still there: a revert begun meanwhile (a crashed canary) restarted
                // the count in its own list. A pause that came during the step lets it count.
                if r.step == at && (r.state == state || r.state == RolloutState::Paused) {
                    r.step += 1;
                }
                vec![NewEvent::new(
                    kind,
                    subject(&r.service),
                    json!({"environment": r.environment, "version": r.version, "index": at, "step": step.describe()}),
                )]
            })
            .await;
    }

    /// Switches a rollout to running its revert steps, for `reason`.
    async fn begin_revert(&self, id: i64, reason: String) {
        let _ = self
            .modify(id, |r| {
                r.state = RolloutState::RollingBack;
                r.reverted_at_step = Some(r.step);
                r.step = 0;
                r.reason = Some(reason.clone());
                vec![NewEvent::new(
                    "deployment.rolling-back",
                    subject(&r.service),
                    json!({"environment": r.environment, "version": r.version, "reason": reason}),
                )]
            })
            .await;
    }

    async fn execute(&self, id: i64) {
        loop {
            if self.stopped.load(Ordering::SeqCst) || !self.is_leader() {
                return;
            }
            let r = match self.store.rollout(id).await {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(id, error = %e, "cannot read a rollout");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Some(by) = &r.abort_requested
                && matches!(r.state, RolloutState::Progressing | RolloutState::AwaitingPromotion | RolloutState::Paused)
            {
                self.begin_revert(id, format!("aborted by {by}")).await;
                continue;
            }
            match r.state {
                RolloutState::Progressing if r.step >= r.steps.len() => {
                    self.finish(&r, RolloutState::Succeeded).await;
                    return;
                }
                RolloutState::Progressing => {
                    let step = &r.steps[r.step];
                    if r.step == 0 {
                        self.event(
                            "deployment.started",
                            &r.service,
                            json!({"rollout": r.id, "environment": r.environment, "version": r.version, "strategy": r.strategy}),
                        )
                        .await;
                    }
                    match self.run_step(&r, step).await {
                        Ok(Outcome::Done) => self.advance(id, r.step, RolloutState::Progressing, step).await,
                        Ok(Outcome::AwaitPromotion(reason)) => {
                            let _ = self
                                .modify(id, |r| {
                                    if r.abort_requested.is_none() && r.state == RolloutState::Progressing {
                                        r.state = RolloutState::AwaitingPromotion;
                                        if reason.is_some() {
                                            r.reason = reason.clone();
                                        }
                                    }
                                    vec![NewEvent::new(
                                        "deployment.awaiting-promotion",
                                        subject(&r.service),
                                        json!({"environment": r.environment, "version": r.version, "reason": reason}),
                                    )]
                                })
                                .await;
                            return;
                        }
                        Ok(Outcome::Interrupted) => {}
                        // Stopping is no failure of the release: the next engine resumes the step.
                        Err(_) if self.stopped.load(Ordering::SeqCst) => return,
                        Err(reason) => {
                            tracing::warn!(id, %reason, "rollout step failed; reverting");
                            self.begin_revert(id, reason).await;
                        }
                    }
                }
                RolloutState::RollingBack if r.step >= r.revert.len() => {
                    let end = if r.abort_requested.is_some() { RolloutState::Aborted } else { RolloutState::Failed };
                    self.finish(&r, end).await;
                    return;
                }
                RolloutState::RollingBack => {
                    let step = &r.revert[r.step];
                    match self.run_step(&r, step).await {
                        Ok(_) => self.advance(id, r.step, RolloutState::RollingBack, step).await,
                        Err(e) => {
                            // A revert must get through; keep trying, loudly.
                            tracing::error!(id, error = %e, "a revert step failed; retrying");
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                    }
                }
                // Waiting for a person, or over.
                _ => return,
            }
        }
    }

    async fn run_step(&self, r: &Rollout, step: &Step) -> Result<Outcome, String> {
        let (service, env) = (r.service.as_str(), r.environment.as_str());
        match step {
            Step::AwaitPromotion => return Ok(Outcome::AwaitPromotion(None)),
            Step::Pause { ms } => return Ok(self.hold(r, Duration::from_millis(*ms)).await),
            Step::Analyze { canary, stable, analysis } => return self.analyze(r, canary, stable, analysis).await,
            _ => {}
        }
        let guard = self.route_lock(service, env);
        let _held = guard.lock().await;
        let mut state = self.route_state(service, env).await?;
        let events = match step {
            Step::Retire { version, after_ms } => {
                let at = Timestamp(now_ms() + *after_ms as i64);
                if let Some(v) = state.versions.iter_mut().find(|v| v.version == *version && v.weight == 0) {
                    v.retire_at = Some(at);
                }
                vec![NewEvent::new(
                    "route.retire-scheduled",
                    subject(service),
                    json!({"environment": env, "version": version, "at": at, "rollout": r.id}),
                )]
            }
            Step::Scale { version, replicas } => {
                state.set_replicas(version, *replicas);
                Vec::new()
            }
            Step::Route { weights } => {
                state.set_weights(weights);
                vec![NewEvent::new(
                    "route.switched",
                    subject(service),
                    json!({"environment": env, "weights": weights, "rollout": r.id}),
                )]
            }
            Step::AwaitPromotion | Step::Pause { .. } | Step::Analyze { .. } => unreachable!("handled above"),
        };
        // The desired state is stored before anything acts on it.
        self.store.save_route(service, env, &state, &events, &ctx("pave-engine")).await.map_err(|e| e.to_string())?;
        match step {
            Step::Scale { version, replicas } => self.ensure_replicas(service, env, version, *replicas).await?,
            Step::Route { .. } => self.apply_state(service, env, &state),
            _ => {}
        }
        Ok(Outcome::Done)
    }

    /// Whether rollout `r` is still where the caller saw it: progressing, at the same step,
    /// not asked to abort, and this engine still in charge.
    async fn still_at(&self, r: &Rollout) -> bool {
        if self.stopped.load(Ordering::SeqCst) || !self.is_leader() {
            return false;
        }
        match self.store.rollout(r.id).await {
            Ok(Some(now)) => {
                now.state == RolloutState::Progressing && now.step == r.step && now.abort_requested.is_none()
            }
            Ok(None) => false,
            // A passing store error is no reason to drop the step.
            Err(_) => true,
        }
    }

    /// A timed pause: waits `length`, unless the rollout is moved on meanwhile.
    async fn hold(&self, r: &Rollout, length: Duration) -> Outcome {
        let until = tokio::time::Instant::now() + length;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Outcome::Done;
            }
            tokio::time::sleep(left.min(CHECK_EVERY)).await;
            if !self.still_at(r).await {
                return Outcome::Interrupted;
            }
        }
    }

    /// Runs an analysis step: every metric measured at its interval against its limits. The
    /// first failure (or untrustworthy metric) fails the step, which rolls the rollout back;
    /// an inconclusive metric hands the decision to a person.
    async fn analyze(&self, r: &Rollout, canary: &str, stable: &str, spec: &AnalysisSpec) -> Result<Outcome, String> {
        let (service, env) = (r.service.as_str(), r.environment.as_str());
        let since = std::time::SystemTime::now();
        let target = crate::analysis::Target { service, env, canary, stable };
        let start = tokio::time::Instant::now();
        struct Metric<'a> {
            spec: &'a pave_model::analysis::MetricSpec,
            every: Duration,
            due: tokio::time::Instant,
            run: MetricRun,
            verdict: Option<Verdict>,
        }
        let mut metrics: Vec<Metric> = spec
            .metrics
            .iter()
            .map(|m| {
                let every = Duration::from_millis(parse_duration(&m.interval).unwrap_or(10_000));
                Metric { spec: m, every, due: start + every, run: MetricRun::default(), verdict: None }
            })
            .collect();
        self.event(
            "analysis.started",
            service,
            json!({"rollout": r.id, "environment": env, "canary": canary, "stable": stable,
                   "metrics": spec.metrics.iter().map(|m| &m.name).collect::<Vec<_>>()}),
        )
        .await;
        loop {
            let next = metrics.iter().filter(|m| m.verdict.is_none()).map(|m| m.due).min();
            let Some(next) = next else { break };
            // Sleep to the next measurement in short stretches, to notice a promote or abort.
            while tokio::time::Instant::now() < next {
                let left = next.saturating_duration_since(tokio::time::Instant::now());
                tokio::time::sleep(left.min(CHECK_EVERY)).await;
                if !self.still_at(r).await {
                    return Ok(Outcome::Interrupted);
                }
            }
            let now = tokio::time::Instant::now();
            // One look at the router's signals for every metric due now.
            let summaries = self.signals(service, env, since).unwrap_or_default();
            let pick = |v: &str| summaries.iter().find(|s| s.version == v).cloned();
            for m in metrics.iter_mut().filter(|m| m.verdict.is_none() && m.due <= now) {
                let measured = crate::analysis::measure(m.spec, &target, (pick(canary), pick(stable))).await;
                m.verdict = m.run.record(m.spec, measured.outcome);
                m.due = now + m.every;
                self.event(
                    "analysis.measurement",
                    service,
                    json!({"rollout": r.id, "environment": env, "canary": canary, "measurement": measured, "run": m.run}),
                )
                .await;
                let outcome = match m.verdict {
                    Some(Verdict::Failed) => Some(("analysis.failed", "failed")),
                    Some(Verdict::Error) => Some(("analysis.failed", "could not be measured reliably")),
                    Some(Verdict::Inconclusive) => Some(("analysis.inconclusive", "was inconclusive")),
                    _ => None,
                };
                if let Some((kind, said)) = outcome {
                    let reason = format!("analysis {said}: metric {}: {}", m.spec.name, measured.message);
                    self.event(kind, service, json!({"rollout": r.id, "environment": env, "canary": canary, "metric": m.spec.name, "reason": reason}))
                        .await;
                    return if m.verdict == Some(Verdict::Inconclusive) {
                        Ok(Outcome::AwaitPromotion(Some(reason)))
                    } else {
                        Err(reason)
                    };
                }
            }
        }
        self.event(
            "analysis.succeeded",
            service,
            json!({"rollout": r.id, "environment": env, "canary": canary,
                   "runs": metrics.iter().map(|m| json!({"metric": m.spec.name, "run": m.run})).collect::<Vec<_>>()}),
        )
        .await;
        Ok(Outcome::Done)
    }

    /// Ends a rollout and reports the deployment to DORA (an undo also marks the rollout it
    /// undid as rolled back, which DORA counts as a failure recovered by this one).
    async fn finish(&self, r: &Rollout, end: RolloutState) {
        let now = now_ms();
        let kind = match end {
            RolloutState::Succeeded => "deployment.succeeded",
            RolloutState::Aborted => "deployment.aborted",
            _ => "deployment.failed",
        };
        let finished = self
            .modify(r.id, |r| {
                r.state = end;
                r.finished_at = Some(Timestamp(now));
                vec![NewEvent::new(
                    kind,
                    subject(&r.service),
                    json!({"environment": r.environment, "version": r.version, "from": r.from_version, "reason": r.reason}),
                )]
            })
            .await;
        let Ok(r) = finished else { return };
        // A failure users saw (the new version had traffic) that the revert recovered from is a
        // rollback to DORA, recovered when the revert ended; one that never took traffic is
        // a failed deployment.
        let status = match end {
            RolloutState::Succeeded => DeploymentStatus::Succeeded,
            _ if r.failed_in_traffic() => DeploymentStatus::RolledBack,
            _ => DeploymentStatus::Failed,
        };
        let mut reports = vec![Report::Deployment(deployment_fact(&r, status, now))];
        if r.kind == RolloutKind::Undo && end == RolloutState::Succeeded {
            let undone = self
                .store
                .rollouts(Some(&r.service), Some(&r.environment), 1000)
                .await
                .unwrap_or_default()
                .into_iter()
                .find(|o| {
                    o.id < r.id && Some(&o.version) == r.from_version.as_ref() && o.state == RolloutState::Succeeded
                });
            if let Some(u) = undone {
                let by = r.requested_by.clone();
                if let Ok(u) = self
                    .modify(u.id, |u| {
                        u.state = RolloutState::RolledBack;
                        vec![NewEvent::new(
                            "deployment.rolled-back",
                            subject(&u.service),
                            json!({"environment": u.environment, "version": u.version, "by": by, "undoRollout": r.id}),
                        )]
                    })
                    .await
                {
                    let finished_at = u.finished_at.map_or(now, |t| t.0);
                    reports.push(Report::Deployment(deployment_fact(&u, DeploymentStatus::RolledBack, finished_at)));
                }
            }
        }
        if let Err(e) = self.store.report(&reports, &ctx("pave-engine")).await {
            tracing::warn!(error = %e, "cannot report a finished deployment to DORA");
        }
        tracing::info!(rollout = r.id, service = %r.service, env = %r.environment, version = %r.version, state = end.as_str(), "rollout finished");
    }
}

fn deployment_fact(r: &Rollout, status: DeploymentStatus, finished_at: i64) -> Deployment {
    Deployment {
        id: format!("pave-rollout-{}", r.id),
        service: r.service.clone(),
        environment: r.environment.clone(),
        version: r.version.clone(),
        commit: r.commit.clone(),
        previous_commit: None,
        commits: Vec::new(),
        started_at: r.created_at,
        finished_at: Timestamp(finished_at),
        status,
        kind: if r.kind == RolloutKind::Undo { DeploymentKind::Unplanned } else { DeploymentKind::Planned },
    }
}
