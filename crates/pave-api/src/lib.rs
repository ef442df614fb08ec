//! The wire types of Pave's HTTP API: what `pave-server` answers and what the CLI (and the
//! coming portal) read, in one place so both sides name each field once. Serde only, plus the
//! domain types of `pave-model` where they are the wire shape already (a rollout, an event, a
//! release): no HTTP, no async, no I/O, so it compiles to WebAssembly as it is.
//!
//! Field names and shapes are the contract (`openapi.yaml` documents them, and a test drives
//! a real server and checks every response field against it): renaming a field here is an
//! API change.

pub mod admin;
pub mod catalog;
pub mod delivery;
pub mod deploy;
pub mod dora;
pub mod flags;
pub mod problem;
pub mod releases;
pub mod secrets;

pub use admin::{AuditEntry, AuditPage, CreatedToken, EventPage, NewToken, Token, TokenList, TokenOne, WhoAmI};
pub use catalog::{ApplyResult, ApplySummary, ResourceList};
pub use delivery::{ReportRequest, ReportResult, ReportSummary, ReportedFact, Timeline};
pub use deploy::{DeployRequest, DeployStatus, RolloutList, RolloutOne};
pub use dora::{DoraQuery, DoraReport};
pub use flags::{FlagDocument, FlagList, SdkToken, SdkTokenList, StaleFlags};
pub use problem::{InvalidField, ProblemDocument};
pub use releases::{ReleaseDetail, ReleaseList, ReleaseScans, ReleaseUpload};
pub use secrets::{SecretList, SecretWrite};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Each type reads the JSON the server sends and writes it back field for field.
    fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(wire: serde_json::Value) {
        let typed: T = serde_json::from_value(wire.clone()).expect("reads the wire shape");
        assert_eq!(serde_json::to_value(&typed).expect("writes"), wire);
    }

    #[test]
    fn wire_shapes_read_and_write_unchanged() {
        let time = "2024-01-01T10:00:00.000Z";
        round_trip::<TokenList>(json!({"tokens": [
            {"id": "t1", "name": "ci", "role": "developer", "scope": "team", "team": "web",
             "createdAt": time, "createdBy": "admin", "revokedAt": time},
            {"id": "t2", "name": "old", "role": "developer", "scope": "unscoped", "note": "unscoped: …",
             "createdAt": time, "createdBy": "admin"},
        ]}));
        round_trip::<WhoAmI>(json!({"tokenId": "t1", "name": "ana", "role": "developer", "scope": "user",
            "user": "ana@example.com", "teams": ["web"], "platform": false}));
        round_trip::<CreatedToken>(json!({"secret": "s", "token": {"id": "t", "name": "n", "role": "admin",
            "scope": "unscoped", "createdAt": time, "createdBy": "system"}}));
        round_trip::<AuditPage>(json!({"entries": [{"id": 3, "time": time, "actor": "admin", "role": "admin",
            "action": "POST /api/v1/teams", "target": "/api/v1/teams", "outcome": "allowed", "status": 201,
            "requestId": "r", "detail": {"action": "create"}}], "next": 3}));
        round_trip::<EventPage>(json!({"events": [{"id": 1, "kind": "team.created", "subject": "team/core",
            "time": time, "actor": "admin", "requestId": "r", "data": {}}], "next": 1}));
        round_trip::<ApplyResult>(json!({"dryRun": true, "events": 0,
            "summary": {"created": 0, "updated": 1, "deleted": 0, "unchanged": 2},
            "changes": [{"kind": "Service", "name": "api", "action": "update",
                "fields": [{"path": "spec.tier", "old": 2, "new": 1}, {"path": "spec.repository", "new": "x"}]}]}));
        round_trip::<ReportResult>(json!({"results": [{"type": "incident", "id": "i1", "action": "created"}],
            "summary": {"created": 1, "updated": 0, "unchanged": 0}}));
        round_trip::<DeployRequest>(json!({"service": "shop", "environment": "prod", "version": "1.0.0",
            "override": "hotfix"}));
        round_trip::<Timeline>(json!({"from": time, "to": time, "incident": null, "total": 1, "truncated": false,
            "entries": [{"type": "deployment", "at": time, "id": "d1", "service": "shop", "environment": "prod",
                "version": "1.0", "status": "succeeded", "kind": "planned", "finishedAt": time}]}));
    }
}
