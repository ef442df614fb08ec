//! Webhook payloads from GitHub and GitLab turned into delivery facts. Pure: the payload and
//! what the catalog and the store already know go in, reports come out.
//!
//! | source | event | becomes |
//! | --- | --- | --- |
//! | GitHub | `push` to the default branch | a change per commit |
//! | GitHub | `pull_request` closed and merged | a change for the merge commit, committed when the PR opened, merged when it merged |
//! | GitHub | `deployment_status` success / failure / error | a deployment (succeeded / failed) |
//! | GitHub | `issues` carrying the `incident` label | an incident, resolved when the issue closes |
//! | GitLab | `Push Hook` to the default branch | a change per commit |
//! | GitLab | `Merge Request Hook` merged | a change for the merge commit |
//! | GitLab | `Deployment Hook` success / failed | a deployment |
//! | GitLab | `Issue Hook` of type incident or labelled `incident` | an incident |
//!
//! Other events and actions are acknowledged and ignored.

use hmac::{Hmac, Mac};
use pave_model::Timestamp;
use pave_model::delivery::{Change, Deployment, DeploymentKind, DeploymentStatus, Incident, Report};
use serde_json::Value;
use sha2::Sha256;

/// The label that marks an issue as an incident.
pub const INCIDENT_LABEL: &str = "incident";

/// Checks GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body, in constant time.
pub fn github_signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Compares GitLab's `X-Gitlab-Token` with the configured one in constant time.
pub fn gitlab_token_ok(expected: &[u8], header: Option<&str>) -> bool {
    let Some(got) = header.map(str::as_bytes) else {
        return false;
    };
    if got.len() != expected.len() {
        return false;
    }
    got.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// `github.com/acme/shop.git/` → `github.com/acme/shop`: what repository URLs are compared by.
pub fn normalize_repository(url: &str) -> String {
    let s = url.trim().to_ascii_lowercase();
    let s = s.split_once("://").map_or(s.as_str(), |(_, rest)| rest).to_owned();
    let s = s.strip_prefix("git@").map(|r| r.replacen(':', "/", 1)).unwrap_or(s);
    let s = s.trim_end_matches('/');
    s.strip_suffix(".git").unwrap_or(s).to_owned()
}

/// What a payload turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Reports(Vec<Report>),
    /// Acknowledged without storing anything, with the reason.
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    #[error("payload field `{0}` is missing or malformed")]
    Field(&'static str),
    #[error("no service has repository {0:?}; set spec.repository on its service")]
    UnknownRepository(String),
}

fn s<'a>(v: &'a Value, path: &[&str], name: &'static str) -> Result<&'a str, WebhookError> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p).ok_or(WebhookError::Field(name))?;
    }
    cur.as_str().ok_or(WebhookError::Field(name))
}

fn time(v: &Value, path: &[&str], name: &'static str) -> Result<Timestamp, WebhookError> {
    let text = s(v, path, name)?;
    Timestamp::parse_rfc3339(text).or_else(|_| gitlab_time(text)).map_err(|_| WebhookError::Field(name))
}

/// GitLab sometimes writes `2024-01-01 10:00:00 UTC` or `2024-01-01 10:00:00 +0100`.
fn gitlab_time(text: &str) -> Result<Timestamp, String> {
    let t = text.trim();
    if let Some(base) = t.strip_suffix(" UTC") {
        return Timestamp::parse_rfc3339(&format!("{}Z", base.replacen(' ', "T", 1)));
    }
    if let Some((base, off)) = t.rsplit_once(' ')
        && off.len() == 5
        && (off.starts_with('+') || off.starts_with('-'))
    {
        return Timestamp::parse_rfc3339(&format!("{}{}:{}", base.replacen(' ', "T", 1), &off[..3], &off[3..]));
    }
    Err(format!("unrecognised time {text:?}"))
}

fn labels_include(labels: Option<&Value>, wanted: &str) -> bool {
    labels.and_then(Value::as_array).is_some_and(|a| {
        a.iter().any(|l| {
            l.get("name")
                .or_else(|| l.get("title"))
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        })
    })
}

/// Context the mapping needs from the catalog and the store.
pub trait Lookup {
    /// The service whose repository is `normalized` (see [`normalize_repository`]).
    fn service_for(&self, normalized: &str) -> Option<String>;
}

fn service(lookup: &dyn Lookup, candidates: &[&str]) -> Result<String, WebhookError> {
    for c in candidates {
        if let Some(s) = lookup.service_for(&normalize_repository(c)) {
            return Ok(s);
        }
    }
    Err(WebhookError::UnknownRepository(candidates.first().copied().unwrap_or("").to_owned()))
}

fn commit_changes(commits: &[Value], service: &str) -> Result<Vec<Report>, WebhookError> {
    commits
        .iter()
        .map(|c| {
            let at = time(c, &["timestamp"], "commits[].timestamp")?;
            let author = s(c, &["author", "name"], "commits[].author");
            Ok(Report::Change(Change {
                sha: s(c, &["id"], "commits[].id")?.to_owned(),
                service: service.to_owned(),
                author: author.unwrap_or("").to_owned(),
                message: s(c, &["message"], "commits[].message").unwrap_or("").chars().take(1000).collect(),
                authored_at: at,
                committed_at: at,
                merged_at: None,
            }))
        })
        .collect()
}

/// A push (same shape on GitHub and GitLab): a change per commit, default branch only.
fn push(p: &Value, default_branch: &str, repos: &[&str], lookup: &dyn Lookup) -> Result<Outcome, WebhookError> {
    let pushed = s(p, &["ref"], "ref")?;
    if pushed != format!("refs/heads/{default_branch}") {
        return Ok(Outcome::Ignored(format!("push to {pushed} is not the default branch")));
    }
    let svc = service(lookup, repos)?;
    let commits = p.get("commits").and_then(Value::as_array).ok_or(WebhookError::Field("commits"))?;
    Ok(Outcome::Reports(commit_changes(commits, &svc)?))
}

/// Maps a GitHub delivery (`X-GitHub-Event: kind`).
pub fn github(kind: &str, p: &Value, lookup: &dyn Lookup) -> Result<Outcome, WebhookError> {
    let repo_candidates = |p: &Value| -> Vec<String> {
        ["html_url", "clone_url", "full_name"]
            .iter()
            .filter_map(|k| p.get("repository").and_then(|r| r.get(k)).and_then(Value::as_str))
            .map(|v| {
                if v.contains('/') && !v.contains("://") && !v.starts_with("github.com") {
                    format!("github.com/{v}")
                } else {
                    v.to_owned()
                }
            })
            .collect()
    };
    let candidates = repo_candidates(p);
    let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
    match kind {
        "ping" => Ok(Outcome::Ignored("ping".into())),
        "push" => push(p, s(p, &["repository", "default_branch"], "repository.default_branch")?, &refs, lookup),
        "pull_request" => {
            let pr = p.get("pull_request").ok_or(WebhookError::Field("pull_request"))?;
            let merged = pr.get("merged").and_then(Value::as_bool).unwrap_or(false);
            if s(p, &["action"], "action")? != "closed" || !merged {
                return Ok(Outcome::Ignored("pull request not merged".into()));
            }
            let svc = service(lookup, &refs)?;
            let opened = time(pr, &["created_at"], "pull_request.created_at")?;
            Ok(Outcome::Reports(vec![Report::Change(Change {
                sha: s(pr, &["merge_commit_sha"], "pull_request.merge_commit_sha")?.to_owned(),
                service: svc,
                author: s(pr, &["user", "login"], "pull_request.user.login").unwrap_or("").to_owned(),
                message: s(pr, &["title"], "pull_request.title").unwrap_or("").to_owned(),
                authored_at: opened,
                committed_at: opened,
                merged_at: Some(time(pr, &["merged_at"], "pull_request.merged_at")?),
            })]))
        }
        "deployment_status" => {
            let state = s(p, &["deployment_status", "state"], "deployment_status.state")?;
            let status = match state {
                "success" => DeploymentStatus::Succeeded,
                "failure" | "error" => DeploymentStatus::Failed,
                other => return Ok(Outcome::Ignored(format!("deployment state {other} is not final"))),
            };
            let svc = service(lookup, &refs)?;
            let d = p.get("deployment").ok_or(WebhookError::Field("deployment"))?;
            let id = d.get("id").and_then(Value::as_i64).ok_or(WebhookError::Field("deployment.id"))?;
            let sha = s(d, &["sha"], "deployment.sha")?;
            Ok(Outcome::Reports(vec![Report::Deployment(Deployment {
                id: format!("github-deployment-{id}"),
                service: svc,
                environment: s(d, &["environment"], "deployment.environment")?.to_owned(),
                version: s(d, &["ref"], "deployment.ref").unwrap_or(sha).to_owned(),
                commit: Some(sha.to_owned()),
                previous_commit: None,
                commits: vec![],
                started_at: time(d, &["created_at"], "deployment.created_at")?,
                finished_at: time(p, &["deployment_status", "created_at"], "deployment_status.created_at")?,
                status,
                kind: DeploymentKind::Planned,
            })]))
        }
        "issues" => {
            let issue = p.get("issue").ok_or(WebhookError::Field("issue"))?;
            if !labels_include(issue.get("labels"), INCIDENT_LABEL) {
                return Ok(Outcome::Ignored("issue is not labelled incident".into()));
            }
            let svc = service(lookup, &refs)?;
            let number = issue.get("number").and_then(Value::as_i64).ok_or(WebhookError::Field("issue.number"))?;
            let id = format!("github-{}-{number}", svc);
            let opened = time(issue, &["created_at"], "issue.created_at")?;
            // Labelling is when it was recognised as an incident; the receiver keeps an earlier
            // detection time it already has.
            let detected = time(issue, &["updated_at"], "issue.updated_at").ok();
            let resolved = if s(issue, &["state"], "issue.state").unwrap_or("") == "closed" {
                time(issue, &["closed_at"], "issue.closed_at").ok()
            } else {
                None
            };
            Ok(Outcome::Reports(vec![Report::Incident(Incident {
                id,
                service: svc,
                opened_at: opened,
                detected_at: detected.map(|d| d.max(opened)),
                resolved_at: resolved.map(|r| r.max(opened)),
                severity: "unknown".into(),
                deployment: None,
                title: s(issue, &["title"], "issue.title").ok().map(str::to_owned),
            })]))
        }
        other => Ok(Outcome::Ignored(format!("event {other} is not used"))),
    }
}

/// Maps a GitLab delivery (`X-Gitlab-Event: kind`).
pub fn gitlab(kind: &str, p: &Value, lookup: &dyn Lookup) -> Result<Outcome, WebhookError> {
    let candidates: Vec<&str> =
        [&["project", "web_url"][..], &["project", "git_http_url"], &["repository", "homepage"]]
            .iter()
            .filter_map(|path| s(p, path, "project.web_url").ok())
            .collect();
    match kind {
        "Push Hook" => push(p, s(p, &["project", "default_branch"], "project.default_branch")?, &candidates, lookup),
        "Merge Request Hook" => {
            let mr = p.get("object_attributes").ok_or(WebhookError::Field("object_attributes"))?;
            if s(mr, &["state"], "object_attributes.state")? != "merged" {
                return Ok(Outcome::Ignored("merge request not merged".into()));
            }
            let svc = service(lookup, &candidates)?;
            let opened = time(mr, &["created_at"], "object_attributes.created_at")?;
            let merged = time(mr, &["merged_at"], "object_attributes.merged_at")
                .or_else(|_| time(mr, &["updated_at"], "object_attributes.updated_at"))?;
            Ok(Outcome::Reports(vec![Report::Change(Change {
                sha: s(mr, &["merge_commit_sha"], "object_attributes.merge_commit_sha")?.to_owned(),
                service: svc,
                author: s(p, &["user", "username"], "user.username").unwrap_or("").to_owned(),
                message: s(mr, &["title"], "object_attributes.title").unwrap_or("").to_owned(),
                authored_at: opened,
                committed_at: opened,
                merged_at: Some(merged.max(opened)),
            })]))
        }
        "Deployment Hook" => {
            let status = match s(p, &["status"], "status")? {
                "success" => DeploymentStatus::Succeeded,
                "failed" => DeploymentStatus::Failed,
                other => return Ok(Outcome::Ignored(format!("deployment status {other} is not final"))),
            };
            let svc = service(lookup, &candidates)?;
            let id = p.get("deployment_id").and_then(Value::as_i64).ok_or(WebhookError::Field("deployment_id"))?;
            let finished = time(p, &["status_changed_at"], "status_changed_at")?;
            let sha = s(p, &["short_sha"], "short_sha").or_else(|_| s(p, &["commit_sha"], "commit_sha"))?;
            Ok(Outcome::Reports(vec![Report::Deployment(Deployment {
                id: format!("gitlab-deployment-{id}"),
                service: svc,
                environment: s(p, &["environment"], "environment")?.to_owned(),
                version: s(p, &["ref"], "ref").unwrap_or(sha).to_owned(),
                commit: Some(sha.to_owned()),
                previous_commit: None,
                commits: vec![],
                started_at: time(p, &["deployable_started_at"], "deployable_started_at")
                    .unwrap_or(finished)
                    .min(finished),
                finished_at: finished,
                status,
                kind: DeploymentKind::Planned,
            })]))
        }
        "Issue Hook" => {
            let issue = p.get("object_attributes").ok_or(WebhookError::Field("object_attributes"))?;
            let is_incident = s(issue, &["issue_type"], "issue_type").is_ok_and(|t| t == "incident")
                || labels_include(p.get("labels"), INCIDENT_LABEL);
            if !is_incident {
                return Ok(Outcome::Ignored("issue is not an incident".into()));
            }
            let svc = service(lookup, &candidates)?;
            let iid = issue.get("iid").and_then(Value::as_i64).ok_or(WebhookError::Field("object_attributes.iid"))?;
            let id = format!("gitlab-{svc}-{iid}");
            let opened = time(issue, &["created_at"], "object_attributes.created_at")?;
            let detected = opened;
            let resolved = if s(issue, &["state"], "state").unwrap_or("") == "closed" {
                time(issue, &["closed_at"], "object_attributes.closed_at")
                    .or_else(|_| time(issue, &["updated_at"], "updated_at"))
                    .ok()
            } else {
                None
            };
            Ok(Outcome::Reports(vec![Report::Incident(Incident {
                id,
                service: svc,
                opened_at: opened,
                detected_at: Some(detected.max(opened)),
                resolved_at: resolved.map(|r| r.max(opened)),
                severity: s(issue, &["severity"], "severity").unwrap_or("unknown").to_owned(),
                deployment: None,
                title: s(issue, &["title"], "title").ok().map(str::to_owned),
            })]))
        }
        other => Ok(Outcome::Ignored(format!("event {other} is not used"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Catalog;
    impl Lookup for Catalog {
        fn service_for(&self, normalized: &str) -> Option<String> {
            (normalized == "github.com/acme/shop" || normalized == "gitlab.example.com/acme/shop")
                .then(|| "shop".into())
        }
    }

    #[test]
    fn signatures() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").expect("key");
        mac.update(body);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(github_signature_ok(b"s3cret", body, Some(&good)));
        assert!(!github_signature_ok(b"other", body, Some(&good)));
        assert!(!github_signature_ok(b"s3cret", b"tampered", Some(&good)));
        assert!(!github_signature_ok(b"s3cret", body, None));
        assert!(!github_signature_ok(b"s3cret", body, Some("sha1=abc")));
        assert!(gitlab_token_ok(b"tok", Some("tok")));
        assert!(!gitlab_token_ok(b"tok", Some("tok2")));
        assert!(!gitlab_token_ok(b"tok", None));
    }

    #[test]
    fn normalizes_repository_urls() {
        for u in [
            "https://github.com/Acme/Shop",
            "https://github.com/acme/shop.git",
            "git@github.com:acme/shop.git",
            "github.com/acme/shop/",
        ] {
            assert_eq!(normalize_repository(u), "github.com/acme/shop", "{u}");
        }
    }

    #[test]
    fn github_push_and_ignored_branches() {
        let p = json!({"ref": "refs/heads/main", "repository": {"html_url": "https://github.com/acme/shop", "default_branch": "main"},
            "commits": [{"id": "abcdef1234567", "message": "fix", "timestamp": "2024-01-01T10:00:00+01:00", "author": {"name": "ana"}}]});
        let Outcome::Reports(r) = github("push", &p, &Catalog).expect("ok") else { panic!("ignored") };
        let Report::Change(c) = &r[0] else { panic!("not a change") };
        assert_eq!((c.sha.as_str(), c.service.as_str()), ("abcdef1234567", "shop"));
        assert_eq!(c.committed_at.to_string(), "2024-01-01T09:00:00.000Z");
        let mut other = p.clone();
        other["ref"] = json!("refs/heads/feature");
        assert!(matches!(github("push", &other, &Catalog), Ok(Outcome::Ignored(_))));
        let mut unknown = p;
        unknown["repository"]["html_url"] = json!("https://github.com/acme/other");
        assert!(matches!(github("push", &unknown, &Catalog), Err(WebhookError::UnknownRepository(_))));
    }

    #[test]
    fn gitlab_times_and_deployments() {
        assert_eq!(
            gitlab_time("2024-01-01 10:00:00 UTC").map(|t| t.to_string()),
            Ok("2024-01-01T10:00:00.000Z".into())
        );
        assert_eq!(
            gitlab_time("2024-01-01 10:00:00 +0100").map(|t| t.to_string()),
            Ok("2024-01-01T09:00:00.000Z".into())
        );
        let p = json!({"object_kind": "deployment", "status": "success", "deployment_id": 15, "environment": "production",
            "short_sha": "279484c0", "ref": "main", "status_changed_at": "2024-01-01 10:05:00 +0000",
            "deployable_started_at": "2024-01-01 10:00:00 +0000", "project": {"web_url": "https://gitlab.example.com/acme/shop"}});
        let Outcome::Reports(r) = gitlab("Deployment Hook", &p, &Catalog).expect("ok") else { panic!("ignored") };
        let Report::Deployment(d) = &r[0] else { panic!("not a deployment") };
        assert_eq!(d.id, "gitlab-deployment-15");
        assert_eq!((d.finished_at.0 - d.started_at.0) / 1000, 300);
    }
}
