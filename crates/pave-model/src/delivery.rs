//! Delivery facts reported by CI/CD, incident tools and git: deployments, incidents and
//! changes (commits). They are what the DORA metrics are computed from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{FieldError, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeploymentStatus {
    Succeeded,
    Failed,
    RolledBack,
}

/// Planned work, or an unplanned fix for a production problem (rework).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeploymentKind {
    #[default]
    Planned,
    Unplanned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Deployment {
    /// The reporter's id; reporting the same id again updates rather than duplicates.
    pub id: String,
    pub service: String,
    pub environment: String,
    pub version: String,
    /// The commit deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The commit that was running before, when the reporter knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_commit: Option<String>,
    /// The commits this deployment shipped, when the reporter knows them exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub status: DeploymentStatus,
    #[serde(default)]
    pub kind: DeploymentKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Incident {
    pub id: String,
    pub service: String,
    /// When the impact began.
    pub opened_at: Timestamp,
    /// When someone (or an alert) noticed; time to detect is `detectedAt - openedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    #[serde(default = "default_severity")]
    pub severity: String,
    /// The id of the deployment that caused it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

fn default_severity() -> String {
    "unknown".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Change {
    /// The commit's full or abbreviated hash; it identifies the change.
    pub sha: String,
    pub service: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub message: String,
    pub authored_at: Timestamp,
    pub committed_at: Timestamp,
    /// When its pull or merge request was merged, if it went through one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_at: Option<Timestamp>,
}

/// A change to a feature flag, as the event log records it: flags change what users see
/// without a deployment, so they belong beside deployments when delivery is measured and when
/// an incident is investigated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagChange {
    /// The event's id in the log.
    pub event: i64,
    pub flag: String,
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `created`, `updated`, `archived` or `revived`.
    pub action: String,
    pub at: Timestamp,
    pub actor: String,
    /// The environments whose configuration changed. Archiving or reviving a flag changes
    /// every environment and lists none; a change of description or owner lists none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<FlagEnvironmentChange>,
}

/// One environment's side of a [`FlagChange`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagEnvironmentChange {
    pub environment: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_before: Option<bool>,
    /// `off`, `partial` or `on`.
    pub exposure: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure_before: Option<String>,
}

impl FlagChange {
    /// Whether the change affects every environment: archiving stops serving the flag
    /// everywhere, reviving serves it everywhere again.
    pub fn touches_all(&self) -> bool {
        matches!(self.action.as_str(), "archived" | "revived")
    }

    /// Whether the change touched `environment`. An update of the description or owner
    /// touches none.
    pub fn touches(&self, environment: &str) -> bool {
        self.touches_all() || self.environments.iter().any(|e| e.environment == environment)
    }

    /// Reads a `flag.*` event; `None` for other kinds.
    pub fn from_event(e: &crate::Event) -> Option<FlagChange> {
        use crate::event::kinds;
        let action = match e.kind.as_str() {
            kinds::FLAG_CREATED => "created",
            kinds::FLAG_UPDATED => "updated",
            kinds::FLAG_ARCHIVED => "archived",
            kinds::FLAG_REVIVED => "revived",
            _ => return None,
        };
        let flag = e.subject.strip_prefix("flag/")?.to_owned();
        let str_of = |v: &Value| v.as_str().map(str::to_owned);
        let environments = e.data["environments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some(FlagEnvironmentChange {
                    environment: str_of(&m["environment"])?,
                    enabled: m["enabled"].as_bool().unwrap_or(false),
                    enabled_before: m["enabledBefore"].as_bool(),
                    exposure: str_of(&m["exposure"]).unwrap_or_else(|| "off".into()),
                    exposure_before: str_of(&m["exposureBefore"]),
                })
            })
            .collect();
        Some(FlagChange {
            event: e.id,
            flag,
            project: str_of(&e.data["project"]).unwrap_or_default(),
            owner: str_of(&e.data["owner"]),
            action: action.to_owned(),
            at: e.time,
            actor: e.actor.clone(),
            environments,
        })
    }
}

/// One reported fact, as `POST /api/v1/events` takes it: `{"type": "deployment", …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Deployment(Deployment),
    Incident(Incident),
    Change(Change),
}

impl Report {
    /// Reads one report, naming the failing field.
    pub fn from_value(mut value: Value) -> Result<Report, Vec<FieldError>> {
        let Some(obj) = value.as_object_mut() else {
            return Err(vec![FieldError::new("", "a report must be an object with a `type`")]);
        };
        let kind = match obj.remove("type") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(vec![FieldError::new("type", "must be a string")]),
            None => return Err(vec![FieldError::new("type", "missing: deployment, incident or change")]),
        };
        let parse = |v: Value| -> Result<Report, Vec<FieldError>> {
            let field_error = |e: serde_path_to_error::Error<serde_json::Error>| {
                let path = e.path().to_string();
                vec![FieldError::new(if path == "." { String::new() } else { path }, e.into_inner().to_string())]
            };
            match kind.as_str() {
                "deployment" => serde_path_to_error::deserialize(v).map(Report::Deployment).map_err(field_error),
                "incident" => serde_path_to_error::deserialize(v).map(Report::Incident).map_err(field_error),
                "change" => serde_path_to_error::deserialize(v).map(Report::Change).map_err(field_error),
                other => Err(vec![FieldError::new(
                    "type",
                    format!("unknown type {other:?}; expected deployment, incident or change"),
                )]),
            }
        };
        let report = parse(value)?;
        let errors = report.validate();
        if errors.is_empty() { Ok(report) } else { Err(errors) }
    }

    /// The id that makes reporting idempotent: the deployment's or incident's id, the
    /// change's sha.
    pub fn key(&self) -> &str {
        match self {
            Report::Deployment(d) => &d.id,
            Report::Incident(i) => &i.id,
            Report::Change(c) => &c.sha,
        }
    }

    pub fn noun(&self) -> &'static str {
        match self {
            Report::Deployment(_) => "deployment",
            Report::Incident(_) => "incident",
            Report::Change(_) => "change",
        }
    }

    pub fn service(&self) -> &str {
        match self {
            Report::Deployment(d) => &d.service,
            Report::Incident(i) => &i.service,
            Report::Change(c) => &c.service,
        }
    }

    pub fn to_value(&self) -> Value {
        let mut v = match self {
            Report::Deployment(d) => serde_json::to_value(d),
            Report::Incident(i) => serde_json::to_value(i),
            Report::Change(c) => serde_json::to_value(c),
        }
        .expect("reports serialize");
        v["type"] = Value::String(self.noun().into());
        v
    }

    /// Checks that need nothing but the report itself.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let id_ok = |id: &str| !id.is_empty() && id.len() <= 200 && !id.chars().any(char::is_control);
        match self {
            Report::Deployment(d) => {
                if !id_ok(&d.id) {
                    errors.push(FieldError::new("id", "must be 1-200 printable characters"));
                }
                if d.finished_at < d.started_at {
                    errors.push(FieldError::new(
                        "finishedAt",
                        format!("{} is before startedAt {}", d.finished_at, d.started_at),
                    ));
                }
                if d.version.is_empty() {
                    errors.push(FieldError::new("version", "must not be empty"));
                }
                for (field, sha) in [("commit", &d.commit), ("previousCommit", &d.previous_commit)] {
                    if let Some(s) = sha.as_deref().filter(|s| !is_sha(s)) {
                        errors.push(FieldError::new(field, format!("{s:?} is not a commit hash (7-64 hex digits)")));
                    }
                }
                for (i, s) in d.commits.iter().enumerate() {
                    if !is_sha(s) {
                        errors.push(FieldError::new(format!("commits[{i}]"), format!("{s:?} is not a commit hash")));
                    }
                }
            }
            Report::Incident(i) => {
                if !id_ok(&i.id) {
                    errors.push(FieldError::new("id", "must be 1-200 printable characters"));
                }
                if let Some(d) = i.detected_at.filter(|d| *d < i.opened_at) {
                    errors.push(FieldError::new("detectedAt", format!("{d} is before openedAt {}", i.opened_at)));
                }
                if let Some(r) = i.resolved_at.filter(|r| *r < i.opened_at) {
                    errors.push(FieldError::new("resolvedAt", format!("{r} is before openedAt {}", i.opened_at)));
                }
            }
            Report::Change(c) => {
                if !is_sha(&c.sha) {
                    errors.push(FieldError::new("sha", format!("{:?} is not a commit hash (7-64 hex digits)", c.sha)));
                }
                if let Some(m) = c.merged_at.filter(|m| *m < c.committed_at) {
                    errors.push(FieldError::new("mergedAt", format!("{m} is before committedAt {}", c.committed_at)));
                }
            }
        }
        errors
    }
}

/// One entry of the change timeline ("what changed?"): a deployment, an incident or a flag
/// change, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TimelineEntry {
    Deployment(DeploymentEntry),
    Incident(IncidentEntry),
    Flag(FlagChange),
}

/// A deployment as the timeline shows it: when it started (`at`) and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentEntry {
    pub at: Timestamp,
    pub id: String,
    pub service: String,
    pub environment: String,
    pub version: String,
    pub status: DeploymentStatus,
    pub kind: DeploymentKind,
    pub finished_at: Timestamp,
}

/// An incident as the timeline shows it: the incident, at the time it opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentEntry {
    pub at: Timestamp,
    #[serde(flatten)]
    pub incident: Incident,
}

impl TimelineEntry {
    pub fn at(&self) -> Timestamp {
        match self {
            TimelineEntry::Deployment(d) => d.at,
            TimelineEntry::Incident(i) => i.at,
            TimelineEntry::Flag(f) => f.at,
        }
    }

    /// Among entries at the same instant: deployments, then incidents, then flag changes
    /// (a deployment that opens an incident reads before it).
    fn rank(&self) -> u8 {
        match self {
            TimelineEntry::Deployment(_) => 0,
            TimelineEntry::Incident(_) => 1,
            TimelineEntry::Flag(_) => 2,
        }
    }
}

/// Which facts a timeline shows. `None` filters nothing.
#[derive(Debug, Clone, Copy)]
pub struct TimelineScope<'a> {
    /// The window, `to` exclusive.
    pub from: Timestamp,
    pub to: Timestamp,
    /// Only this environment's deployments and the flag changes that touch it.
    pub environment: Option<&'a str>,
    /// Only these services' deployments and incidents.
    pub services: Option<&'a std::collections::HashSet<String>>,
    /// Only the flags these teams own.
    pub flag_owners: Option<&'a std::collections::HashSet<String>>,
    /// Most entries kept: the newest.
    pub limit: usize,
}

/// The timeline of `scope` over the facts: every entry in the window and scope, oldest first,
/// of which the newest `scope.limit` are returned, with how many there were in all.
pub fn timeline(
    deployments: &[Deployment],
    incidents: &[Incident],
    flag_changes: &[FlagChange],
    scope: &TimelineScope<'_>,
) -> (usize, Vec<TimelineEntry>) {
    let in_window = |t: Timestamp| t >= scope.from && t < scope.to;
    let env_ok = |e: &str| scope.environment.is_none_or(|x| x == e);
    let service_ok = |s: &str| scope.services.is_none_or(|set| set.contains(s));
    let mut entries: Vec<TimelineEntry> = Vec::new();
    entries.extend(
        deployments.iter().filter(|d| in_window(d.started_at) && env_ok(&d.environment) && service_ok(&d.service)).map(
            |d| {
                TimelineEntry::Deployment(DeploymentEntry {
                    at: d.started_at,
                    id: d.id.clone(),
                    service: d.service.clone(),
                    environment: d.environment.clone(),
                    version: d.version.clone(),
                    status: d.status,
                    kind: d.kind,
                    finished_at: d.finished_at,
                })
            },
        ),
    );
    entries.extend(
        incidents
            .iter()
            .filter(|i| in_window(i.opened_at) && service_ok(&i.service))
            .map(|i| TimelineEntry::Incident(IncidentEntry { at: i.opened_at, incident: i.clone() })),
    );
    entries.extend(
        flag_changes
            .iter()
            .filter(|c| {
                let owner_ok = scope.flag_owners.is_none_or(|o| c.owner.as_ref().is_some_and(|x| o.contains(x)));
                let env_hit = scope.environment.is_none_or(|e| c.touches(e));
                owner_ok && env_hit
            })
            .cloned()
            .map(TimelineEntry::Flag),
    );
    // Stable: facts at one instant keep the order they were reported in.
    entries.sort_by_key(|e| (e.at(), e.rank()));
    let total = entries.len();
    let kept = entries.split_off(total.saturating_sub(scope.limit));
    (total, kept)
}

/// 7 to 64 hexadecimal digits: an abbreviated or full SHA-1 or SHA-256 object name.
pub fn is_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_each_type_and_names_bad_fields() {
        let d = Report::from_value(json!({"type": "deployment", "id": "d1", "service": "api", "environment": "prod",
            "version": "1.0", "commit": "abcdef1", "startedAt": "2024-01-01T10:00:00Z", "finishedAt": "2024-01-01T10:05:00Z",
            "status": "succeeded"}))
        .expect("valid");
        assert_eq!(d.key(), "d1");
        assert_eq!(Report::from_value(d.to_value()).expect("round trip"), d);

        let e = Report::from_value(json!({"type": "deployment", "id": "d1", "service": "api", "environment": "prod",
            "version": "1.0", "startedAt": "2024-01-01T10:00:00Z", "finishedAt": "2024-01-01T09:00:00Z", "status": "succeeded"}))
        .expect_err("finished before started");
        assert_eq!(e[0].field, "finishedAt");
        let e = Report::from_value(json!({"type": "incident", "id": "i", "service": "a", "openedAt": "bad"}))
            .expect_err("bad time");
        assert_eq!(e[0].field, "openedAt");
        let e = Report::from_value(json!({"type": "change", "sha": "xyz", "service": "a",
            "authoredAt": "2024-01-01T00:00:00Z", "committedAt": "2024-01-01T00:00:00Z"}))
        .expect_err("bad sha");
        assert_eq!(e[0].field, "sha");
        let e = Report::from_value(json!({"type": "deploy"})).expect_err("bad type");
        assert_eq!(e[0].field, "type");
        let e = Report::from_value(
            json!({"type": "incident", "id": "i", "service": "a", "openedAt": "2024-01-01T00:00:00Z", "sev": 1}),
        )
        .expect_err("unknown field");
        assert_eq!(e[0].field, "sev");
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("time")
    }

    fn deployment(id: &str, service: &str, env: &str, started: &str) -> Deployment {
        Deployment {
            id: id.into(),
            service: service.into(),
            environment: env.into(),
            version: "1.0".into(),
            commit: None,
            previous_commit: None,
            commits: vec![],
            started_at: at(started),
            finished_at: at(started),
            status: DeploymentStatus::Succeeded,
            kind: DeploymentKind::Planned,
        }
    }

    fn incident(id: &str, service: &str, opened: &str) -> Incident {
        Incident {
            id: id.into(),
            service: service.into(),
            opened_at: at(opened),
            detected_at: None,
            resolved_at: None,
            severity: "sev2".into(),
            deployment: None,
            title: Some("down".into()),
        }
    }

    fn flag(event: i64, owner: &str, when: &str, envs: &[&str]) -> FlagChange {
        FlagChange {
            event,
            flag: format!("f{event}"),
            project: "default".into(),
            owner: Some(owner.into()),
            action: "updated".into(),
            at: at(when),
            actor: "admin".into(),
            environments: envs
                .iter()
                .map(|e| FlagEnvironmentChange {
                    environment: (*e).into(),
                    enabled: true,
                    enabled_before: Some(false),
                    exposure: "on".into(),
                    exposure_before: Some("off".into()),
                })
                .collect(),
        }
    }

    #[test]
    fn the_timeline_merges_in_time_order_filters_and_keeps_the_newest() {
        let ds = [
            deployment("d1", "api", "prod", "2024-01-01T10:00:00Z"),
            deployment("d2", "web", "prod", "2024-01-01T11:00:00Z"),
            deployment("d3", "api", "staging", "2024-01-01T12:00:00Z"),
            deployment("old", "api", "prod", "2023-12-01T10:00:00Z"),
        ];
        let is = [incident("i1", "api", "2024-01-01T10:00:00Z")];
        let fs =
            [flag(7, "core", "2024-01-01T09:00:00Z", &["prod"]), flag(8, "other", "2024-01-01T10:00:00Z", &["dev"])];
        let all = TimelineScope {
            from: at("2024-01-01T00:00:00Z"),
            to: at("2024-01-02T00:00:00Z"),
            environment: None,
            services: None,
            flag_owners: None,
            limit: 100,
        };
        let (total, entries) = timeline(&ds, &is, &fs, &all);
        assert_eq!(total, 6);
        let ids: Vec<String> = entries
            .iter()
            .map(|e| match e {
                TimelineEntry::Deployment(d) => d.id.clone(),
                TimelineEntry::Incident(i) => i.incident.id.clone(),
                TimelineEntry::Flag(f) => f.flag.clone(),
            })
            .collect();
        // At 10:00 the deployment reads before the incident it may have caused, then the flag.
        assert_eq!(ids, ["f7", "d1", "i1", "f8", "d2", "d3"]);

        let services: std::collections::HashSet<String> = ["api".to_owned()].into();
        let owners: std::collections::HashSet<String> = ["core".to_owned()].into();
        let scoped =
            TimelineScope { environment: Some("prod"), services: Some(&services), flag_owners: Some(&owners), ..all };
        let (total, entries) = timeline(&ds, &is, &fs, &scoped);
        assert_eq!((total, entries.len()), (3, 3), "{entries:?}");

        let (total, entries) = timeline(&ds, &is, &fs, &TimelineScope { limit: 2, ..all });
        assert_eq!(total, 6);
        assert_eq!(
            entries.iter().map(TimelineEntry::at).collect::<Vec<_>>(),
            [at("2024-01-01T11:00:00Z"), at("2024-01-01T12:00:00Z")]
        );
    }

    #[test]
    fn timeline_entries_keep_their_wire_shape() {
        let e = TimelineEntry::Incident(IncidentEntry {
            at: at("2024-01-01T10:00:00Z"),
            incident: incident("i1", "api", "2024-01-01T10:00:00Z"),
        });
        let v = serde_json::to_value(&e).expect("serialises");
        assert_eq!(
            v,
            json!({"type": "incident", "at": "2024-01-01T10:00:00.000Z", "id": "i1", "service": "api",
                "openedAt": "2024-01-01T10:00:00.000Z", "severity": "sev2", "title": "down"})
        );
        assert_eq!(serde_json::from_value::<TimelineEntry>(v).expect("reads back"), e);
        let d = TimelineEntry::Deployment(DeploymentEntry {
            at: at("2024-01-01T10:00:00Z"),
            id: "d1".into(),
            service: "api".into(),
            environment: "prod".into(),
            version: "1.0".into(),
            status: DeploymentStatus::RolledBack,
            kind: DeploymentKind::Unplanned,
            finished_at: at("2024-01-01T10:05:00Z"),
        });
        let v = serde_json::to_value(&d).expect("serialises");
        assert_eq!(v["type"], "deployment");
        assert_eq!(v["status"], "rolled-back");
        assert_eq!(v["finishedAt"], "2024-01-01T10:05:00.000Z");
        assert_eq!(serde_json::from_value::<TimelineEntry>(v).expect("reads back"), d);
        let f = TimelineEntry::Flag(flag(3, "core", "2024-01-01T10:00:00Z", &["prod"]));
        let v = serde_json::to_value(&f).expect("serialises");
        assert_eq!((v["type"].as_str(), v["flag"].as_str(), v["event"].as_i64()), (Some("flag"), Some("f3"), Some(3)));
        assert_eq!(serde_json::from_value::<TimelineEntry>(v).expect("reads back"), f);
    }
}
