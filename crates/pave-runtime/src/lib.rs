//! Runs the replicas of a service version. The deployment engine speaks only to the
//! [`Runtime`] trait, so the built-in [`ProcessRuntime`] (local child processes) and a later
//! Kubernetes runtime are interchangeable.
//!
//! A runtime's promise, whatever it runs on:
//! - [`Runtime::start`] returns only once the replica passed its health check the required
//!   number of times in a row, so the router never sends traffic to a replica that is not
//!   ready; a replica that never gets there is stopped and the error says why;
//! - a replica that dies is restarted with exponential backoff, and every crash, restart and
//!   change of health is published as a [`RuntimeEvent`] (the engine records them as events
//!   and takes the replica out of the router while it is down);
//! - [`Runtime::stop`] is graceful: SIGTERM, then SIGKILL after the stop timeout;
//! - a replica outlives the control plane: a new control plane [`Runtime::adopt`]s what the
//!   database says is running, or learns it is gone and starts it again.

#[cfg(feature = "fake")]
pub mod fake;
mod health;
pub mod logs;
mod process;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use health::probe;
pub use process::{Process, ProcessConfig, ProcessRuntime, process_start};

/// How to check that a replica can take traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes before the replica counts as healthy (and failures before it
    /// counts as unhealthy again).
    pub threshold: u32,
}

/// Everything needed to run one replica of one version of a service in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSpec {
    pub service: String,
    pub env: String,
    pub version: String,
    pub replica: u32,
    /// The program: absolute, relative to `cwd` (when it contains a `/`), or found on `PATH`.
    pub program: String,
    pub args: Vec<String>,
    /// Working directory: the release's unpacked artifact.
    pub cwd: PathBuf,
    /// Variables from the runtime spec; the runtime adds the port and `PAVE_*` identity.
    pub vars: BTreeMap<String, String>,
    /// The service's secrets in this environment, set after `vars` (a secret wins over a
    /// variable of the same name). Their values print as `<redacted>`.
    pub secrets: BTreeMap<String, pave_vault::SecretValue>,
    /// Which configuration (secret versions) the replica starts with; recorded on its
    /// [`Instance`] so the engine can tell which replicas to roll when a secret changes.
    pub config_rev: i64,
    pub port_env: String,
    pub health: Health,
    /// How long a new replica may take to become healthy before it counts as failed.
    pub start_timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub stop_timeout: Duration,
}

impl ReplicaSpec {
    /// The replica's stable identity: one slot per service, environment, version and index.
    pub fn id(&self) -> String {
        instance_id(&self.service, &self.env, &self.version, self.replica)
    }

    /// `text` (a replica's log lines, say, which end up in errors and events) with every
    /// secret value of 4 bytes or more replaced by `<redacted NAME>`: an application that
    /// prints its connection string on a failed start must not put the password in Pave's
    /// event log. Longer values go first (one value may contain another), and each line of a multi-line
    /// value (a PEM key) goes too, since a log tail may hold only part of it.
    pub fn scrub(&self, text: &str) -> String {
        scrub(text, &self.secrets)
    }
}

/// `text` with every value of `secrets` of 4 bytes or more replaced by `<redacted NAME>`, the
/// longest first and each line of a multi-line value too: what [`ReplicaSpec::scrub`] does for
/// one replica, and what the logs API does before serving a replica's log lines.
pub fn scrub(text: &str, secrets: &BTreeMap<String, pave_vault::SecretValue>) -> String {
    let mut pieces: Vec<(&str, &str)> = Vec::new();
    for (name, value) in secrets {
        let v = value.expose();
        pieces.push((name, v));
        if v.contains('\n') {
            pieces.extend(v.lines().map(|l| (name.as_str(), l.trim_end_matches('\r'))));
        }
    }
    pieces.retain(|(_, p)| p.len() >= 4);
    pieces.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
    let mut out = text.to_owned();
    for (name, piece) in pieces {
        if out.contains(piece) {
            out = out.replace(piece, &format!("<redacted {name}>"));
        }
    }
    out
}

/// The stable id of a replica slot.
pub fn instance_id(service: &str, env: &str, version: &str, replica: u32) -> String {
    format!("{service}/{env}/{version}/r{replica}")
}

/// The `(service, env, version, replica)` an [`instance_id`] was made of.
pub fn parse_instance_id(id: &str) -> Option<(&str, &str, &str, u32)> {
    let (rest, replica) = id.rsplit_once('/')?;
    let replica = replica.strip_prefix('r')?.parse().ok()?;
    let mut parts = rest.splitn(3, '/');
    Some((parts.next()?, parts.next()?, parts.next()?, replica))
}

/// A running replica, as recorded in the database so a restarted control plane can find it:
/// which slot it fills, where the router sends its traffic, which configuration it runs,
/// and — opaque to everyone but the runtime that made it — what that runtime needs to find it
/// again (the process runtime: its pid, the pid's start time, its port and log file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "InstanceDoc")]
pub struct Instance {
    pub id: String,
    pub service: String,
    pub env: String,
    pub version: String,
    pub replica: u32,
    /// Where the router sends this replica's traffic: any address the router can reach.
    pub endpoint: SocketAddr,
    /// The [`ReplicaSpec::config_rev`] it was started with (0 in records from before secrets).
    pub config_rev: i64,
    /// The runtime's own record of it, kept beside the fields above (flat, so the API shows a
    /// process replica's pid where it always did).
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// An [`Instance`] as stored, in this shape or the one before endpoints (a loopback `port`).
#[derive(Deserialize)]
struct InstanceDoc {
    id: String,
    service: String,
    env: String,
    version: String,
    replica: u32,
    #[serde(default)]
    endpoint: Option<SocketAddr>,
    #[serde(default)]
    config_rev: i64,
    #[serde(flatten)]
    detail: serde_json::Map<String, serde_json::Value>,
}

impl From<InstanceDoc> for Instance {
    fn from(d: InstanceDoc) -> Self {
        let port = d.detail.get("port").and_then(serde_json::Value::as_u64).unwrap_or(0) as u16;
        Instance {
            endpoint: d.endpoint.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            id: d.id,
            service: d.service,
            env: d.env,
            version: d.version,
            replica: d.replica,
            config_rev: d.config_rev,
            detail: d.detail,
        }
    }
}

impl Instance {
    /// Where the router sends this replica's traffic.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint
    }
}

/// One replica's log lines, labelled `VERSION rN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLines {
    pub label: String,
    pub text: String,
}

/// Where a reader of a service's logs has got to, per replica log; opaque to the reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCursor(pub(crate) BTreeMap<String, u64>);

/// What happened to a replica after it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEvent {
    /// The process exited on its own; it will be started again after `restart_in`.
    Crashed { id: String, status: String, restarts: u32, restart_in: Duration },
    /// A crashed replica runs again and passed its health check.
    Restarted { instance: Instance },
    /// A running replica failed its health check `threshold` times in a row.
    Unhealthy { id: String, reason: String },
    /// An unhealthy replica passes its health check again.
    Healthy { id: String },
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopOutcome {
    /// Exited within the stop timeout after SIGTERM.
    Graceful,
    /// Still running at the timeout: killed with SIGKILL.
    Killed,
    /// Was not running.
    NotRunning,
}

/// What [`Runtime::adopt`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    /// The recorded process still runs and is healthy: it is supervised again.
    Adopted(Instance),
    /// Nothing of it runs any more.
    Gone,
    /// It ran but was not healthy: it was stopped, so nothing is left orphaned.
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start {id}: {program}: {source}")]
    Spawn { id: String, program: String, source: std::io::Error },
    #[error("{id} exited before it became healthy ({status}); last log lines:\n{tail}")]
    ExitedEarly { id: String, status: String, tail: String },
    #[error("{id} did not become healthy within {waited:?} (last check: {last}); last log lines:\n{tail}")]
    NeverHealthy { id: String, waited: Duration, last: String, tail: String },
    #[error("no running replica {0}")]
    Unknown(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

/// Where replicas run. Implementations must be safe to call from many tasks at once.
pub trait Runtime: Send + Sync + 'static {
    /// Starts a replica and returns once it is healthy. Starting a slot that already runs
    /// returns the running instance (the engine's steps are idempotent).
    fn start(&self, spec: ReplicaSpec) -> impl Future<Output = Result<Instance, RuntimeError>> + Send;
    /// Stops a replica gracefully (SIGTERM, then SIGKILL after its stop timeout).
    fn stop(&self, id: &str) -> impl Future<Output = Result<StopOutcome, RuntimeError>> + Send;
    /// Takes over a replica recorded by an earlier control plane.
    fn adopt(&self, spec: ReplicaSpec, previous: Instance) -> impl Future<Output = Adoption> + Send;
    /// Stops replicas this control plane started that are neither supervised nor adopted (a
    /// crash between starting one and recording it); returns their pids.
    fn reap_orphans(&self) -> impl Future<Output = Vec<u32>> + Send;
    /// Crash, restart and health events of every replica.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RuntimeEvent>;
    /// The replicas this runtime supervises now.
    fn running(&self) -> Vec<Instance>;
    /// The last `lines` lines each replica of `service` in `env` printed (every version, the
    /// stopped ones' too while the runtime keeps them), and a cursor to follow from.
    fn logs(&self, service: &str, env: &str, lines: usize) -> std::io::Result<(Vec<LogLines>, LogCursor)>;
    /// What was printed since `cursor` (new replicas included), moving it on.
    fn logs_since(&self, service: &str, env: &str, cursor: &mut LogCursor) -> std::io::Result<Vec<LogLines>>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_from_before_endpoints_read_back() {
        let old = serde_json::json!({"id": "s/e/1/r0", "service": "s", "env": "e", "version": "1", "replica": 0,
                                     "pid": 5, "proc_start": 7, "port": 4000, "log": "/x/r0.log", "config_rev": 2});
        let inst: super::Instance = serde_json::from_value(old).expect("an old record");
        assert_eq!(inst.endpoint, "127.0.0.1:4000".parse().expect("addr"));
        assert_eq!(inst.config_rev, 2);
        let p = super::Process::of(&inst);
        assert_eq!((p.pid, p.proc_start, p.port), (5, 7, 4000));
        // Written back in today's shape, read back the same.
        let again: super::Instance = serde_json::from_value(serde_json::to_value(&inst).expect("json")).expect("back");
        assert_eq!(again, inst);
        let json = serde_json::to_value(&inst).expect("json");
        assert_eq!((json["pid"].as_u64(), json["endpoint"].as_str()), (Some(5), Some("127.0.0.1:4000")));
    }

    #[test]
    fn instance_ids_read_back() {
        let id = super::instance_id("shop", "dev", "1.2.0-rc.1", 3);
        assert_eq!(super::parse_instance_id(&id), Some(("shop", "dev", "1.2.0-rc.1", 3)));
        assert_eq!(super::parse_instance_id("shop/dev/r1"), None);
        assert_eq!(super::parse_instance_id("shop/dev/1.0/x1"), None);
    }
}

#[cfg(test)]
mod scrub_tests {
    use super::*;

    #[test]
    fn scrubbing_takes_longer_values_first_and_the_lines_of_multi_line_ones() {
        let mut spec = ReplicaSpec {
            service: "s".into(),
            env: "e".into(),
            version: "1".into(),
            replica: 0,
            program: "x".into(),
            args: vec![],
            cwd: PathBuf::from("/"),
            vars: BTreeMap::new(),
            secrets: BTreeMap::new(),
            config_rev: 0,
            port_env: "PORT".into(),
            health: Health { path: "/".into(), interval: Duration::ZERO, timeout: Duration::ZERO, threshold: 1 },
            start_timeout: Duration::ZERO,
            stop_timeout: Duration::ZERO,
        };
        let put = |spec: &mut ReplicaSpec, k: &str, v: &str| {
            spec.secrets.insert(k.into(), pave_vault::SecretValue::new(v.into()));
        };
        put(&mut spec, "A_SHORT", "hunter");
        put(&mut spec, "B_LONG", "hunter2-and-more");
        put(&mut spec, "KEY", "-----BEGIN KEY-----\r\nMIIEabcdefgh\r\nijklmnopqrst\r\n-----END KEY-----");
        put(&mut spec, "TINY", "abc");
        let out = spec.scrub("pw=hunter2-and-more user=hunter tail: ijklmnopqrst abc");
        assert_eq!(out, "pw=<redacted B_LONG> user=<redacted A_SHORT> tail: <redacted KEY> abc");
    }
}
