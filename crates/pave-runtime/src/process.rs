//! The built-in runtime: each replica is a child process leading its own process group (so a
//! stop reaches everything it forked), on its own loopback port, with its output in a log
//! file. One supervisor task per replica waits for it to exit, probes its health, rotates its
//! log and restarts it with backoff when it crashes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, watch};

use crate::{
    Adoption, Instance, LogCursor, LogLines, ReplicaSpec, Runtime, RuntimeError, RuntimeEvent, StopOutcome, logs, probe,
};

/// Settings of the process runtime.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Root of the replicas' log files.
    pub logs_dir: PathBuf,
    /// A log file is rotated when it grows past this.
    pub log_max_bytes: u64,
    /// Rotated files kept per replica.
    pub log_keep: u32,
    /// First restart delay after a crash; doubles per crash in a row up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Marks every replica's environment (`PAVE_OWNER`), so [`Runtime::reap_orphans`] finds
    /// replicas this control plane started but never recorded — and never touches another's.
    pub owner: String,
}

impl ProcessConfig {
    pub fn new(logs_dir: impl Into<PathBuf>) -> Self {
        ProcessConfig {
            logs_dir: logs_dir.into(),
            log_max_bytes: 10 << 20,
            log_keep: 3,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            owner: String::new(),
        }
    }
}

/// Variables passed through from the control plane's own environment. Nothing else is: a
/// replica must not see the control plane's database URL, tokens or master key.
const PASSED_THROUGH: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/// `VERSION rN` of a replica's log file (`…/VERSION/rN.log`).
fn log_label(f: &Path) -> String {
    let replica = f.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    let version = f.parent().and_then(|p| p.file_name()).and_then(|s| s.to_str()).unwrap_or("?");
    format!("{version} {replica}")
}

/// What the process runtime records of a replica, inside its [`Instance`]'s `detail`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Process {
    /// Process id; also the process group id (each replica leads its own group).
    pub pid: u32,
    /// The kernel's start time of `pid` (clock ticks since boot): tells our process from a
    /// later one that reused the pid.
    pub proc_start: u64,
    pub port: u16,
    pub log: PathBuf,
}

impl Process {
    /// The process an instance made by this runtime is (zeros for a record that is not one).
    pub fn of(instance: &Instance) -> Process {
        serde_json::from_value(serde_json::Value::Object(instance.detail.clone())).unwrap_or(Process {
            pid: 0,
            proc_start: 0,
            port: instance.endpoint.port(),
            log: PathBuf::new(),
        })
    }

    fn detail(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }
}

struct Slot {
    spec: ReplicaSpec,
    instance: Mutex<Instance>,
    stopping: AtomicBool,
    /// Becomes true when the supervisor has seen the last process exit and ended.
    done: watch::Receiver<bool>,
}

struct Inner {
    config: ProcessConfig,
    events: broadcast::Sender<RuntimeEvent>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// Runs replicas as local processes. Cheap to clone; clones share the replicas.
#[derive(Clone)]
pub struct ProcessRuntime {
    inner: Arc<Inner>,
}

impl ProcessRuntime {
    pub fn new(config: ProcessConfig) -> Self {
        let (events, _) = broadcast::channel(1024);
        ProcessRuntime { inner: Arc::new(Inner { config, events, slots: Mutex::new(HashMap::new()) }) }
    }
}

use pave_sync::lock;

/// A free loopback port. Another process could take it before the replica binds it; the
/// replica then fails to start and the start is retried on a new port by the engine.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// `(state, start time)` of a process from `/proc/<pid>/stat`; `None` when it does not exist.
/// What `/proc/<pid>/stat` says of a process.
struct ProcStat {
    /// Not a zombie or dead.
    running: bool,
    /// Process group id.
    group: u32,
    /// Start time in clock ticks since boot.
    start: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields after it follow
    // the last ')'. Field 3 is the state, field 5 the process group, field 22 the start time.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    Some(ProcStat {
        running: state != 'Z' && state != 'X',
        group: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The kernel's start time of `pid` (clock ticks since boot) while it runs (not a zombie):
/// what tells a process from a later one that reused its pid. The delivery engine's lease
/// uses it too.
pub fn process_start(pid: u32) -> Option<u64> {
    proc_stat(pid).filter(|p| p.running).map(|p| p.start)
}

/// Whether the process recorded as `pid` started at `start` still runs (zombies do not count).
fn alive(pid: u32, start: u64) -> bool {
    proc_stat(pid).is_some_and(|p| p.running && p.start == start)
}

/// The line the runtime writes to a replica's log before each start.
const START_MARKER: &str = "--- pave: starting";

fn signal_group(pid: u32, signal: Signal) {
    // Group 1 would be kill(-1): every process this user may signal. No replica is pid 0 or 1.
    if pid <= 1 {
        return;
    }
    if let Some(pid) = Pid::from_raw(pid as i32) {
        // ESRCH (already gone) is the normal case after a clean exit.
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

fn spawn(config: &ProcessConfig, spec: &ReplicaSpec, port: u16) -> Result<(Child, Instance), RuntimeError> {
    let id = spec.id();
    let log_path = logs::path(&config.logs_dir, &spec.service, &spec.env, &spec.version, spec.replica);
    let io_err = |context: String| move |source| RuntimeError::Io { context, source };
    let mut out = logs::open(&log_path).map_err(io_err(format!("open log {}", log_path.display())))?;
    {
        use std::io::Write;
        let _ = writeln!(out, "{START_MARKER} {id} on port {port} ---");
    }
    let err = out.try_clone().map_err(io_err(format!("open log {}", log_path.display())))?;
    let program = if spec.program.contains('/') && !Path::new(&spec.program).is_absolute() {
        spec.cwd.join(&spec.program).to_string_lossy().into_owned()
    } else {
        spec.program.clone()
    };
    let mut cmd = Command::new(&program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        // The supervisor decides when a replica ends; dropping a handle must not kill it.
        .kill_on_drop(false);
    for name in PASSED_THROUGH {
        if let Ok(v) = std::env::var(name) {
            cmd.env(name, v);
        }
    }
    cmd.envs(&spec.vars);
    for (name, value) in &spec.secrets {
        cmd.env(name, value.expose());
    }
    // Last, so neither a variable nor a secret can shadow the port or the identity.
    cmd.env(&spec.port_env, port.to_string())
        .env("PAVE_SERVICE", &spec.service)
        .env("PAVE_ENV", &spec.env)
        .env("PAVE_VERSION", &spec.version)
        .env("PAVE_REPLICA", spec.replica.to_string());
    if !config.owner.is_empty() {
        cmd.env("PAVE_OWNER", &config.owner);
    }
    let child = cmd.spawn().map_err(|source| RuntimeError::Spawn { id: id.clone(), program, source })?;
    let pid = child.id().unwrap_or(0);
    let proc_start = proc_stat(pid).map_or(0, |p| p.start);
    let instance = Instance {
        id,
        service: spec.service.clone(),
        env: spec.env.clone(),
        version: spec.version.clone(),
        replica: spec.replica,
        endpoint: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)),
        config_rev: spec.config_rev,
        detail: Process { pid, proc_start, port, log: log_path }.detail(),
    };
    Ok((child, instance))
}

/// The last lines this start of the replica logged, scrubbed of its secrets. Lines of an
/// earlier run on the same slot (which may print older secret values) are left out.
fn start_tail(spec: &ReplicaSpec, instance: &Instance) -> String {
    let tail = logs::tail(&Process::of(instance).log, 10).unwrap_or_default();
    let own = tail.rfind(START_MARKER).map_or(&tail[..], |i| &tail[i..]);
    spec.scrub(own)
}

/// Waits until `threshold` checks in a row pass, the child exits, or the start timeout ends.
async fn await_healthy(spec: &ReplicaSpec, child: &mut Child, instance: &Instance) -> Result<(), RuntimeError> {
    let started = Instant::now();
    let mut passes = 0;
    let mut last = "not checked yet".to_owned();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(RuntimeError::ExitedEarly {
                id: instance.id.clone(),
                status: exit_text(status),
                tail: start_tail(spec, instance),
            });
        }
        match probe(Process::of(instance).port, &spec.health.path, spec.health.timeout).await {
            Ok(()) => {
                passes += 1;
                if passes >= spec.health.threshold {
                    return Ok(());
                }
            }
            Err(e) => {
                passes = 0;
                last = e;
            }
        }
        if started.elapsed() >= spec.start_timeout {
            return Err(RuntimeError::NeverHealthy {
                id: instance.id.clone(),
                waited: started.elapsed(),
                last: spec.scrub(&last),
                tail: start_tail(spec, instance),
            });
        }
        // Poll quickly while starting (a replica is usually up in milliseconds), but never
        // faster than the interval once the first check has passed.
        let pause = if passes == 0 { Duration::from_millis(50) } else { spec.health.interval };
        tokio::time::sleep(pause.min(spec.health.interval)).await;
    }
}

/// Kills a process group that failed to start: SIGTERM, a short grace, SIGKILL.
async fn discard(child: &mut Child, pid: u32) {
    signal_group(pid, Signal::TERM);
    if tokio::time::timeout(Duration::from_secs(2), child.wait()).await.is_err() {
        signal_group(pid, Signal::KILL);
        let _ = child.wait().await;
    }
    signal_group(pid, Signal::KILL);
}

/// Spawns and waits for health; on failure nothing is left running.
async fn start_healthy(
    config: &ProcessConfig,
    spec: &ReplicaSpec,
    port: u16,
) -> Result<(Child, Instance), RuntimeError> {
    let (mut child, instance) = spawn(config, spec, port)?;
    match await_healthy(spec, &mut child, &instance).await {
        Ok(()) => Ok((child, instance)),
        Err(e) => {
            discard(&mut child, Process::of(&instance).pid).await;
            Err(e)
        }
    }
}

/// The process a supervisor watches: our own child, or one adopted from an earlier control
/// plane (not our child, so its exit is noticed by polling `/proc`).
enum Watched {
    Child(Child),
    Adopted { pid: u32, start: u64 },
}

impl Watched {
    async fn exited(&mut self) -> String {
        match self {
            Watched::Child(c) => match c.wait().await {
                Ok(s) => exit_text(s),
                Err(e) => format!("wait failed: {e}"),
            },
            Watched::Adopted { pid, start } => {
                while alive(*pid, *start) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                "exited (adopted process; status unknown)".to_owned()
            }
        }
    }
}

async fn supervise(inner: Arc<Inner>, slot: Arc<Slot>, mut watched: Watched, done: watch::Sender<bool>) {
    let spec = &slot.spec;
    let config = &inner.config;
    let mut restarts: u32 = 0;
    let mut healthy_since = Instant::now();
    loop {
        // Run: wait for the exit while probing health and rotating the log.
        let mut tick = tokio::time::interval(spec.health.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        let mut unhealthy = false;
        let status = loop {
            tokio::select! {
                status = watched.exited() => break status,
                _ = tick.tick() => {
                    let (port, log) = {
                        let i = lock(&slot.instance);
                        (Process::of(&i).port, Process::of(&i).log.clone())
                    };
                    if slot.stopping.load(Ordering::SeqCst) {
                        continue;
                    }
                    match probe(port, &spec.health.path, spec.health.timeout).await {
                        Ok(()) => {
                            failures = 0;
                            if unhealthy {
                                unhealthy = false;
                                let _ = inner.events.send(RuntimeEvent::Healthy { id: spec.id() });
                            }
                        }
                        Err(reason) => {
                            failures += 1;
                            if failures >= spec.health.threshold && !unhealthy {
                                unhealthy = true;
                                let _ = inner.events.send(RuntimeEvent::Unhealthy { id: spec.id(), reason });
                            }
                        }
                    }
                    let (max, keep) = (config.log_max_bytes, config.log_keep);
                    let _ = tokio::task::spawn_blocking(move || logs::rotate(&log, max, keep)).await;
                }
            }
        };
        let pid = Process::of(&lock(&slot.instance)).pid;
        // Whatever the leader left behind in its group goes with it.
        signal_group(pid, Signal::KILL);
        if slot.stopping.load(Ordering::SeqCst) {
            break;
        }
        if healthy_since.elapsed() > Duration::from_secs(60) {
            restarts = 0;
        }
        let mut status = status;
        // Crashed: back off (longer for each crash in a row), then start again on the same
        // port so the router's address for this replica stays valid.
        let next = loop {
            restarts += 1;
            let backoff = config.min_backoff.saturating_mul(1 << (restarts - 1).min(16)).min(config.max_backoff);
            tracing::warn!(id = %spec.id(), %status, restarts, ?backoff, "replica crashed; restarting");
            let _ = inner.events.send(RuntimeEvent::Crashed {
                id: spec.id(),
                status: status.clone(),
                restarts,
                restart_in: backoff,
            });
            tokio::time::sleep(backoff).await;
            if slot.stopping.load(Ordering::SeqCst) {
                break None;
            }
            let port = Process::of(&lock(&slot.instance)).port;
            match start_healthy(config, spec, port).await {
                Ok((mut child, instance)) => {
                    if slot.stopping.load(Ordering::SeqCst) {
                        discard(&mut child, Process::of(&instance).pid).await;
                        break None;
                    }
                    *lock(&slot.instance) = instance.clone();
                    healthy_since = Instant::now();
                    tracing::info!(id = %spec.id(), pid = Process::of(&instance).pid, "replica restarted");
                    let _ = inner.events.send(RuntimeEvent::Restarted { instance });
                    break Some(Watched::Child(child));
                }
                Err(e) => status = format!("restart failed: {e}"),
            }
        };
        match next {
            Some(w) => watched = w,
            None => break,
        }
    }
    lock(&inner.slots).remove(&spec.id());
    let _ = done.send(true);
}

impl Runtime for ProcessRuntime {
    async fn start(&self, spec: ReplicaSpec) -> Result<Instance, RuntimeError> {
        // Callers serialise the starts of one slot (the engine works on one service and
        // environment at a time); a slot that already runs is returned as it is.
        let id = spec.id();
        if let Some(slot) = lock(&self.inner.slots).get(&id)
            && !slot.stopping.load(Ordering::SeqCst)
        {
            return Ok(lock(&slot.instance).clone());
        }
        let mut attempt = 0;
        let (child, instance) = loop {
            let port = free_port().map_err(|source| RuntimeError::Io { context: "find a free port".into(), source })?;
            match start_healthy(&self.inner.config, &spec, port).await {
                Ok(ok) => break ok,
                // A port taken between our check and the replica's bind: try another once.
                Err(RuntimeError::ExitedEarly { ref tail, .. }) if attempt == 0 && tail.contains("in use") => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        self.install(spec, instance.clone(), Watched::Child(child));
        Ok(instance)
    }

    async fn stop(&self, id: &str) -> Result<StopOutcome, RuntimeError> {
        let Some(slot) = lock(&self.inner.slots).get(id).cloned() else {
            return Ok(StopOutcome::NotRunning);
        };
        slot.stopping.store(true, Ordering::SeqCst);
        let pid = Process::of(&lock(&slot.instance)).pid;
        let mut done = slot.done.clone();
        signal_group(pid, Signal::TERM);
        let graceful = tokio::time::timeout(slot.spec.stop_timeout, done.wait_for(|d| *d)).await.is_ok();
        if graceful {
            return Ok(StopOutcome::Graceful);
        }
        tracing::warn!(id, timeout = ?slot.spec.stop_timeout, "replica ignored SIGTERM; killing it");
        signal_group(pid, Signal::KILL);
        let _ = tokio::time::timeout(Duration::from_secs(5), done.wait_for(|d| *d)).await;
        Ok(StopOutcome::Killed)
    }

    async fn adopt(&self, spec: ReplicaSpec, previous: Instance) -> Adoption {
        if !alive(Process::of(&previous).pid, Process::of(&previous).proc_start) {
            return Adoption::Gone;
        }
        // Give a busy replica a few chances before calling it unhealthy.
        let mut passes = 0;
        for _ in 0..(spec.health.threshold * 3).max(3) {
            if probe(Process::of(&previous).port, &spec.health.path, spec.health.timeout).await.is_ok() {
                passes += 1;
                if passes >= spec.health.threshold {
                    self.install(
                        spec,
                        previous.clone(),
                        Watched::Adopted { pid: Process::of(&previous).pid, start: Process::of(&previous).proc_start },
                    );
                    return Adoption::Adopted(previous);
                }
            } else {
                passes = 0;
            }
            tokio::time::sleep(spec.health.interval.min(Duration::from_millis(200))).await;
        }
        signal_group(Process::of(&previous).pid, Signal::TERM);
        let deadline = Instant::now() + spec.stop_timeout;
        while alive(Process::of(&previous).pid, Process::of(&previous).proc_start) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        signal_group(Process::of(&previous).pid, Signal::KILL);
        Adoption::Stopped
    }

    async fn reap_orphans(&self) -> Vec<u32> {
        let owner = self.inner.config.owner.clone();
        if owner.is_empty() {
            return Vec::new();
        }
        let known: Vec<u32> = self.running().iter().map(|i| Process::of(i).pid).collect();
        let marker = format!("PAVE_OWNER={owner}");
        let found = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let Ok(dir) = std::fs::read_dir("/proc") else { return out };
            for entry in dir.flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
                if known.contains(&pid) || pid == std::process::id() {
                    continue;
                }
                // Only running group leaders: killing the group takes whatever they started too.
                if !proc_stat(pid).is_some_and(|p| p.running && p.group == pid) {
                    continue;
                }
                let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
                if environ.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()) {
                    out.push(pid);
                }
            }
            out
        })
        .await
        .unwrap_or_default();
        for &pid in &found {
            tracing::warn!(pid, "stopping a replica nobody recorded (left by a crash)");
            signal_group(pid, Signal::TERM);
        }
        // Wait for them to go (up to 2 s), not a fixed 2 s: a restarting control plane is
        // held up by this only as long as an orphan takes to exit.
        let deadline = Instant::now() + Duration::from_secs(2);
        let starts: Vec<(u32, Option<u64>)> = found.iter().map(|&p| (p, proc_stat(p).map(|s| s.start))).collect();
        while Instant::now() < deadline && starts.iter().any(|&(p, start)| start.is_some_and(|start| alive(p, start))) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Whatever of their groups is left (a child that ignored SIGTERM) goes now.
        for &pid in &found {
            signal_group(pid, Signal::KILL);
        }
        found
    }

    fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.inner.events.subscribe()
    }

    fn logs(&self, service: &str, env: &str, lines: usize) -> std::io::Result<(Vec<LogLines>, LogCursor)> {
        let mut cursor = LogCursor::default();
        let mut out = Vec::new();
        for f in logs::files(&self.inner.config.logs_dir, service, env)? {
            let text = logs::tail(&f, lines).unwrap_or_default();
            cursor.0.insert(f.display().to_string(), std::fs::metadata(&f).map_or(0, |m| m.len()));
            out.push(LogLines { label: log_label(&f), text });
        }
        Ok((out, cursor))
    }

    fn logs_since(&self, service: &str, env: &str, cursor: &mut LogCursor) -> std::io::Result<Vec<LogLines>> {
        let mut out = Vec::new();
        // A replica that started since the cursor was made is read from its beginning.
        for f in logs::files(&self.inner.config.logs_dir, service, env)? {
            let offset = cursor.0.entry(f.display().to_string()).or_insert(0);
            if let Ok((text, next)) = logs::read_from(&f, *offset) {
                *offset = next;
                if !text.is_empty() {
                    out.push(LogLines { label: log_label(&f), text });
                }
            }
        }
        Ok(out)
    }

    fn running(&self) -> Vec<Instance> {
        let mut all: Vec<Instance> = lock(&self.inner.slots).values().map(|s| lock(&s.instance).clone()).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }
}

impl ProcessRuntime {
    fn install(&self, spec: ReplicaSpec, instance: Instance, watched: Watched) {
        let (done_tx, done_rx) = watch::channel(false);
        let slot = Arc::new(Slot {
            spec: spec.clone(),
            instance: Mutex::new(instance),
            stopping: AtomicBool::new(false),
            done: done_rx,
        });
        lock(&self.inner.slots).insert(spec.id(), slot.clone());
        tokio::spawn(supervise(self.inner.clone(), slot, watched, done_tx));
    }
}
