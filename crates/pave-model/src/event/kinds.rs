//! Every kind of event Pave appends, spelled once. A kind is `<noun>.<verb>` and part of the
//! API: clients filter the log by kind (`GET /api/v1/events?kind=deployment.*`), webhooks
//! carry it, and read models select on it, so code names the constant, never the string.
//! A pattern `<noun>.*` matches every kind of one noun ([`matches`], and the store's
//! `EventQuery` in SQL).

use crate::apply::Action;
use crate::catalog::Kind;
use crate::delivery::Report;

// Catalog resources, appended by an apply (`apply::PlannedChange::event`).
pub const TEAM_CREATED: &str = "team.created";
pub const TEAM_UPDATED: &str = "team.updated";
pub const TEAM_DELETED: &str = "team.deleted";
pub const ENVIRONMENT_CREATED: &str = "environment.created";
pub const ENVIRONMENT_UPDATED: &str = "environment.updated";
pub const ENVIRONMENT_DELETED: &str = "environment.deleted";
pub const SERVICE_CREATED: &str = "service.created";
pub const SERVICE_UPDATED: &str = "service.updated";
pub const SERVICE_DELETED: &str = "service.deleted";

// Delivery facts reported from outside (`POST /api/v1/events`, webhooks): `reported` the first
// time, `updated` when reported again with new content.
pub const DEPLOYMENT_REPORTED: &str = "deployment.reported";
pub const DEPLOYMENT_UPDATED: &str = "deployment.updated";
pub const INCIDENT_REPORTED: &str = "incident.reported";
pub const INCIDENT_UPDATED: &str = "incident.updated";
pub const CHANGE_REPORTED: &str = "change.reported";
pub const CHANGE_UPDATED: &str = "change.updated";

// Rollouts Pave runs: the requests (`pave-deploy::commands`) and the engine's progress.
/// Every kind about a rollout (and reported deployments, which share the noun).
pub const DEPLOYMENT_ANY: &str = "deployment.*";
pub const DEPLOYMENT_REQUESTED: &str = "deployment.requested";
/// A gate of the release policy overridden by an admin, with the reason.
pub const DEPLOYMENT_OVERRIDE: &str = "deployment.override";
pub const DEPLOYMENT_UNDO_REQUESTED: &str = "deployment.undo-requested";
pub const DEPLOYMENT_APPROVED: &str = "deployment.approved";
pub const DEPLOYMENT_PROMOTED: &str = "deployment.promoted";
pub const DEPLOYMENT_PAUSED: &str = "deployment.paused";
pub const DEPLOYMENT_RESUMED: &str = "deployment.resumed";
pub const DEPLOYMENT_ABORT_REQUESTED: &str = "deployment.abort-requested";
pub const DEPLOYMENT_STARTED: &str = "deployment.started";
pub const DEPLOYMENT_STEP: &str = "deployment.step";
pub const DEPLOYMENT_REVERT_STEP: &str = "deployment.revert-step";
pub const DEPLOYMENT_AWAITING_PROMOTION: &str = "deployment.awaiting-promotion";
pub const DEPLOYMENT_ROLLING_BACK: &str = "deployment.rolling-back";
pub const DEPLOYMENT_SUCCEEDED: &str = "deployment.succeeded";
pub const DEPLOYMENT_FAILED: &str = "deployment.failed";
pub const DEPLOYMENT_ABORTED: &str = "deployment.aborted";
/// An undo finished: the rollout it undid is marked rolled back.
pub const DEPLOYMENT_ROLLED_BACK: &str = "deployment.rolled-back";

// A canary analysis step.
pub const ANALYSIS_ANY: &str = "analysis.*";
pub const ANALYSIS_STARTED: &str = "analysis.started";
/// One measurement of one metric (not carried by notifications: there are many).
pub const ANALYSIS_MEASUREMENT: &str = "analysis.measurement";
pub const ANALYSIS_SUCCEEDED: &str = "analysis.succeeded";
pub const ANALYSIS_FAILED: &str = "analysis.failed";
pub const ANALYSIS_INCONCLUSIVE: &str = "analysis.inconclusive";

// Replicas the runtime runs, mirrored by the engine.
pub const REPLICA_STARTED: &str = "replica.started";
pub const REPLICA_STOPPED: &str = "replica.stopped";
pub const REPLICA_CRASHED: &str = "replica.crashed";
pub const REPLICA_RESTARTED: &str = "replica.restarted";
pub const REPLICA_UNHEALTHY: &str = "replica.unhealthy";
pub const REPLICA_HEALTHY: &str = "replica.healthy";
/// A route's replicas restarted with new secrets.
pub const REPLICAS_ROLLED: &str = "replicas.rolled";
pub const REPLICAS_ROLL_FAILED: &str = "replicas.roll-failed";

// Routes: the router's entry point of a service in an environment.
pub const ROUTE_CREATED: &str = "route.created";
pub const ROUTE_SWITCHED: &str = "route.switched";
pub const ROUTE_RETIRE_SCHEDULED: &str = "route.retire-scheduled";
pub const ROUTE_RETIRED: &str = "route.retired";
pub const ROUTE_REMOVED: &str = "route.removed";

/// The engine took its lease and recovered what ran before.
pub const ENGINE_RECOVERED: &str = "engine.recovered";

// Releases and their scans.
pub const RELEASE_CREATED: &str = "release.created";
pub const RELEASE_SCANNED: &str = "release.scanned";

// Secrets (names and revisions only, never values).
pub const SECRET_SET: &str = "secret.set";
pub const SECRET_REMOVED: &str = "secret.removed";
/// Secrets sealed under an earlier master key sealed again under the current one.
pub const SECRETS_RESEALED: &str = "secrets.resealed";

// API tokens and SDK tokens.
pub const TOKEN_CREATED: &str = "token.created";
pub const TOKEN_REVOKED: &str = "token.revoked";
/// Appended by migration 0007 (its SQL spells the kind itself): tokens gained scopes.
pub const TOKEN_SCOPES_INTRODUCED: &str = "token.scopes-introduced";
pub const SDK_TOKEN_CREATED: &str = "sdk-token.created";
pub const SDK_TOKEN_REVOKED: &str = "sdk-token.revoked";

// Feature flags and segments.
pub const FLAG_CREATED: &str = "flag.created";
pub const FLAG_UPDATED: &str = "flag.updated";
pub const FLAG_ARCHIVED: &str = "flag.archived";
pub const FLAG_REVIVED: &str = "flag.revived";
/// The kinds that are flag changes for DORA's timeline (`delivery::FlagChange`).
pub const FLAG_CHANGES: [&str; 4] = [FLAG_CREATED, FLAG_UPDATED, FLAG_ARCHIVED, FLAG_REVIVED];
pub const SEGMENT_CREATED: &str = "segment.created";
pub const SEGMENT_UPDATED: &str = "segment.updated";

/// Every exact kind above, for listings and the checks below.
pub const ALL: &[&str] = &[
    TEAM_CREATED,
    TEAM_UPDATED,
    TEAM_DELETED,
    ENVIRONMENT_CREATED,
    ENVIRONMENT_UPDATED,
    ENVIRONMENT_DELETED,
    SERVICE_CREATED,
    SERVICE_UPDATED,
    SERVICE_DELETED,
    DEPLOYMENT_REPORTED,
    DEPLOYMENT_UPDATED,
    INCIDENT_REPORTED,
    INCIDENT_UPDATED,
    CHANGE_REPORTED,
    CHANGE_UPDATED,
    DEPLOYMENT_REQUESTED,
    DEPLOYMENT_OVERRIDE,
    DEPLOYMENT_UNDO_REQUESTED,
    DEPLOYMENT_APPROVED,
    DEPLOYMENT_PROMOTED,
    DEPLOYMENT_PAUSED,
    DEPLOYMENT_RESUMED,
    DEPLOYMENT_ABORT_REQUESTED,
    DEPLOYMENT_STARTED,
    DEPLOYMENT_STEP,
    DEPLOYMENT_REVERT_STEP,
    DEPLOYMENT_AWAITING_PROMOTION,
    DEPLOYMENT_ROLLING_BACK,
    DEPLOYMENT_SUCCEEDED,
    DEPLOYMENT_FAILED,
    DEPLOYMENT_ABORTED,
    DEPLOYMENT_ROLLED_BACK,
    ANALYSIS_STARTED,
    ANALYSIS_MEASUREMENT,
    ANALYSIS_SUCCEEDED,
    ANALYSIS_FAILED,
    ANALYSIS_INCONCLUSIVE,
    REPLICA_STARTED,
    REPLICA_STOPPED,
    REPLICA_CRASHED,
    REPLICA_RESTARTED,
    REPLICA_UNHEALTHY,
    REPLICA_HEALTHY,
    REPLICAS_ROLLED,
    REPLICAS_ROLL_FAILED,
    ROUTE_CREATED,
    ROUTE_SWITCHED,
    ROUTE_RETIRE_SCHEDULED,
    ROUTE_RETIRED,
    ROUTE_REMOVED,
    ENGINE_RECOVERED,
    RELEASE_CREATED,
    RELEASE_SCANNED,
    SECRET_SET,
    SECRET_REMOVED,
    SECRETS_RESEALED,
    TOKEN_CREATED,
    TOKEN_REVOKED,
    TOKEN_SCOPES_INTRODUCED,
    SDK_TOKEN_CREATED,
    SDK_TOKEN_REVOKED,
    FLAG_CREATED,
    FLAG_UPDATED,
    FLAG_ARCHIVED,
    FLAG_REVIVED,
    SEGMENT_CREATED,
    SEGMENT_UPDATED,
];

/// The kind an apply appends for `action` on a catalog resource; `None` when nothing changes.
pub fn catalog(kind: Kind, action: Action) -> Option<&'static str> {
    Some(match (kind, action) {
        (_, Action::Unchanged) => return None,
        (Kind::Team, Action::Create) => TEAM_CREATED,
        (Kind::Team, Action::Update) => TEAM_UPDATED,
        (Kind::Team, Action::Delete) => TEAM_DELETED,
        (Kind::Environment, Action::Create) => ENVIRONMENT_CREATED,
        (Kind::Environment, Action::Update) => ENVIRONMENT_UPDATED,
        (Kind::Environment, Action::Delete) => ENVIRONMENT_DELETED,
        (Kind::Service, Action::Create) => SERVICE_CREATED,
        (Kind::Service, Action::Update) => SERVICE_UPDATED,
        (Kind::Service, Action::Delete) => SERVICE_DELETED,
    })
}

/// The kind appended when a delivery fact is stored: first seen, or seen again changed.
pub fn fact(report: &Report, updated: bool) -> &'static str {
    match (report, updated) {
        (Report::Deployment(_), false) => DEPLOYMENT_REPORTED,
        (Report::Deployment(_), true) => DEPLOYMENT_UPDATED,
        (Report::Incident(_), false) => INCIDENT_REPORTED,
        (Report::Incident(_), true) => INCIDENT_UPDATED,
        (Report::Change(_), false) => CHANGE_REPORTED,
        (Report::Change(_), true) => CHANGE_UPDATED,
    }
}

/// Whether `kind` is `pattern`, or has its noun when the pattern is `<noun>.*`.
pub fn matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => kind == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_unique_nouns_and_verbs() {
        let mut seen = std::collections::BTreeSet::new();
        for k in ALL {
            assert!(seen.insert(*k), "{k} listed twice");
            let (noun, verb) = k.split_once('.').unwrap_or_else(|| panic!("{k} has no verb"));
            let word = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
            assert!(word(noun) && word(verb), "{k} is not <noun>.<verb> in lowercase words");
        }
    }

    #[test]
    fn catalog_kinds_are_the_noun_and_the_verb() {
        for kind in Kind::ALL {
            for (action, verb) in
                [(Action::Create, "created"), (Action::Update, "updated"), (Action::Delete, "deleted")]
            {
                assert_eq!(catalog(kind, action), Some(format!("{}.{verb}", kind.noun()).as_str()));
            }
            assert_eq!(catalog(kind, Action::Unchanged), None);
        }
    }

    #[test]
    fn patterns_match_one_noun() {
        assert!(matches(DEPLOYMENT_ANY, DEPLOYMENT_STARTED));
        assert!(matches(DEPLOYMENT_ANY, DEPLOYMENT_REPORTED));
        assert!(!matches(DEPLOYMENT_ANY, ANALYSIS_STARTED));
        assert!(matches(FLAG_CREATED, "flag.created") && !matches(FLAG_CREATED, "flag.created2"));
        // `.*` keeps the dot: `replica.*` is not `replicas.rolled`.
        assert!(!matches("replica.*", REPLICAS_ROLLED));
    }
}
