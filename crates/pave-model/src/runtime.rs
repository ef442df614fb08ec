//! How a service runs: the process to start, its health check, replicas and environment.
//! Durations are written as text (`500ms`, `10s`, `2m`) so documents stay readable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// Parses `250ms`, `10s`, `2m`, `1h` into milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a duration such as 500ms, 10s or 2m"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{text:?} has no unit; write it as 500ms, 10s, 2m or 1h")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too long"))
}

/// Writes milliseconds the way [`parse_duration`] reads them (the largest whole unit).
pub fn format_duration(ms: u64) -> String {
    match ms {
        0 => "0s".into(),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

fn default_port_env() -> String {
    "PORT".into()
}
fn default_replicas() -> u32 {
    1
}
fn default_stop_timeout() -> String {
    "10s".into()
}
fn default_path() -> String {
    "/healthz".into()
}
fn default_interval() -> String {
    "1s".into()
}
fn default_timeout() -> String {
    "500ms".into()
}
fn default_threshold() -> u32 {
    2
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    /// HTTP path answered with 2xx when the replica can take traffic.
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_interval")]
    pub interval: String,
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Consecutive successes before a replica gets traffic.
    #[serde(default = "default_threshold")]
    pub healthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: default_path(),
            interval: default_interval(),
            timeout: default_timeout(),
            healthy_threshold: default_threshold(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuntimeSpec {
    /// The program, relative to the release's artifact (or absolute).
    pub command: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Each replica gets its own free port, passed in this variable.
    #[serde(default = "default_port_env")]
    pub port_env: String,
    #[serde(default)]
    pub health_check: HealthCheck,
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Time between SIGTERM and SIGKILL when a replica stops.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: String,
    /// How long a new replica may take to pass its health check before the deployment fails.
    #[serde(default = "default_start_timeout")]
    pub start_timeout: String,
}

fn default_start_timeout() -> String {
    "30s".into()
}

fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl RuntimeSpec {
    /// Field checks; `prefix` is where the spec sits in its document (`spec.runtime`).
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let mut e = Vec::new();
        let f = |field: &str| format!("{prefix}.{field}");
        if self.command.trim().is_empty() {
            e.push(FieldError::new(f("command"), "must name the program to run"));
        }
        if !env_name_ok(&self.port_env) {
            e.push(FieldError::new(f("portEnv"), format!("{:?} is not an environment variable name", self.port_env)));
        }
        if !(1..=64).contains(&self.replicas) {
            e.push(FieldError::new(f("replicas"), format!("{} is out of range 1-64", self.replicas)));
        }
        for key in self.env.keys() {
            if !env_name_ok(key) {
                e.push(FieldError::new(f(&format!("env.{key}")), "is not an environment variable name"));
            } else if *key == self.port_env {
                e.push(FieldError::new(f(&format!("env.{key}")), "is set by the runtime to the replica's port"));
            }
        }
        let hc = &self.health_check;
        if !hc.path.starts_with('/') {
            e.push(FieldError::new(f("healthCheck.path"), "must start with /"));
        }
        let interval = parse_duration(&hc.interval);
        let timeout = parse_duration(&hc.timeout);
        match &interval {
            Err(m) => e.push(FieldError::new(f("healthCheck.interval"), m.clone())),
            Ok(ms) if *ms < 100 => e.push(FieldError::new(f("healthCheck.interval"), "must be at least 100ms")),
            Ok(_) => {}
        }
        match (&timeout, &interval) {
            (Err(m), _) => e.push(FieldError::new(f("healthCheck.timeout"), m.clone())),
            (Ok(t), Ok(i)) if t > i => {
                e.push(FieldError::new(f("healthCheck.timeout"), "must not be longer than the interval"))
            }
            _ => {}
        }
        if !(1..=10).contains(&hc.healthy_threshold) {
            e.push(FieldError::new(f("healthCheck.healthyThreshold"), "must be 1-10"));
        }
        if let Err(m) = parse_duration(&self.stop_timeout) {
            e.push(FieldError::new(f("stopTimeout"), m));
        }
        match parse_duration(&self.start_timeout) {
            Err(m) => e.push(FieldError::new(f("startTimeout"), m)),
            Ok(0) => e.push(FieldError::new(f("startTimeout"), "must be longer than 0")),
            Ok(_) => {}
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("10s"), Ok(10_000));
        assert_eq!(parse_duration("2m"), Ok(120_000));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn validates_with_field_paths() {
        let spec: RuntimeSpec = serde_json::from_value(serde_json::json!({
            "command": "", "replicas": 0, "env": {"PORT": "1", "9x": "y"},
            "healthCheck": {"path": "healthz", "interval": "50ms", "timeout": "1s"}
        }))
        .expect("shape");
        let fields: Vec<String> = spec.validate("spec.runtime").into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "spec.runtime.command",
                "spec.runtime.replicas",
                "spec.runtime.env.9x",
                "spec.runtime.env.PORT",
                "spec.runtime.healthCheck.path",
                "spec.runtime.healthCheck.interval",
                "spec.runtime.healthCheck.timeout",
            ]
        );
    }
}
