//! A runtime that runs nothing, for unit tests of what drives a runtime (the delivery
//! engine): a replica is a record with an endpoint of its own (never listened on), a start is
//! instant, and a version can be told to fail its health check. It models the one thing about
//! real replicas the engine depends on across a crash: they outlive the control plane. What
//! is *alive* is kept apart from what this control plane *supervises*; [`FakeRuntime::
//! control_plane_died`] forgets the latter, and a new engine must adopt the former.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::{Adoption, Instance, LogCursor, LogLines, ReplicaSpec, Runtime, RuntimeError, RuntimeEvent, StopOutcome};

#[derive(Debug, Default)]
struct World {
    alive: BTreeMap<String, Instance>,
    supervised: BTreeSet<String>,
    /// Versions whose replicas never pass their health check, and the last check's answer.
    failing: HashMap<String, String>,
    next_port: u16,
    /// Every start and stop, in order (`start ID`, `stop ID`, `adopt ID`, `reap ID`).
    log: Vec<String>,
}

/// See the module documentation. Clones share one world.
#[derive(Debug, Clone)]
pub struct FakeRuntime {
    world: Arc<Mutex<World>>,
    events: broadcast::Sender<RuntimeEvent>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        FakeRuntime::new()
    }
}

impl FakeRuntime {
    pub fn new() -> Self {
        let world = World { next_port: 20_000, ..World::default() };
        FakeRuntime { world: Arc::new(Mutex::new(world)), events: broadcast::channel(256).0 }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        pave_sync::lock(&self.world)
    }

    /// Replicas of `version` started from now on never become healthy.
    pub fn fail_health(&self, version: &str, answer: &str) {
        self.world().failing.insert(version.to_owned(), answer.to_owned());
    }

    /// The control plane is gone: nothing is supervised any more; what runs keeps running.
    pub fn control_plane_died(&self) {
        self.world().supervised.clear();
    }

    /// Every start, stop, adoption and reap so far.
    pub fn log(&self) -> Vec<String> {
        self.world().log.clone()
    }

    /// What runs, supervised or not.
    pub fn alive(&self) -> Vec<Instance> {
        self.world().alive.values().cloned().collect()
    }

    /// Publishes a runtime event, as a crash or a failing health check would.
    pub fn emit(&self, event: RuntimeEvent) {
        let _ = self.events.send(event);
    }
}

impl Runtime for FakeRuntime {
    async fn start(&self, spec: ReplicaSpec) -> Result<Instance, RuntimeError> {
        let id = spec.id();
        let mut w = self.world();
        if let Some(i) = w.alive.get(&id).filter(|_| w.supervised.contains(&id)) {
            return Ok(i.clone());
        }
        if let Some(answer) = w.failing.get(&spec.version) {
            return Err(RuntimeError::NeverHealthy {
                id,
                waited: spec.start_timeout,
                last: answer.clone(),
                tail: String::new(),
            });
        }
        w.next_port += 1;
        let instance = Instance {
            id: id.clone(),
            service: spec.service.clone(),
            env: spec.env.clone(),
            version: spec.version.clone(),
            replica: spec.replica,
            endpoint: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, w.next_port)),
            config_rev: spec.config_rev,
            detail: Default::default(),
        };
        w.alive.insert(id.clone(), instance.clone());
        w.supervised.insert(id.clone());
        w.log.push(format!("start {id}"));
        Ok(instance)
    }

    async fn stop(&self, id: &str) -> Result<StopOutcome, RuntimeError> {
        let mut w = self.world();
        if !w.supervised.remove(id) {
            return Ok(StopOutcome::NotRunning);
        }
        w.alive.remove(id);
        w.log.push(format!("stop {id}"));
        Ok(StopOutcome::Graceful)
    }

    async fn adopt(&self, _spec: ReplicaSpec, previous: Instance) -> Adoption {
        let mut w = self.world();
        match w.alive.get(&previous.id) {
            Some(i) if *i == previous => {
                w.supervised.insert(previous.id.clone());
                w.log.push(format!("adopt {}", previous.id));
                Adoption::Adopted(previous)
            }
            _ => Adoption::Gone,
        }
    }

    async fn reap_orphans(&self) -> Vec<u32> {
        let mut w = self.world();
        let orphans: Vec<String> = w.alive.keys().filter(|id| !w.supervised.contains(*id)).cloned().collect();
        for id in &orphans {
            w.alive.remove(id);
            w.log.push(format!("reap {id}"));
        }
        orphans.iter().map(|_| 0).collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.events.subscribe()
    }

    fn logs(&self, _service: &str, _env: &str, _lines: usize) -> std::io::Result<(Vec<LogLines>, LogCursor)> {
        Ok((Vec::new(), LogCursor::default()))
    }

    fn logs_since(&self, _service: &str, _env: &str, _cursor: &mut LogCursor) -> std::io::Result<Vec<LogLines>> {
        Ok(Vec::new())
    }

    fn running(&self) -> Vec<Instance> {
        let w = self.world();
        w.alive.values().filter(|i| w.supervised.contains(&i.id)).cloned().collect()
    }
}
