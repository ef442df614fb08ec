//! The apply planner: from what the user declares and what the catalog holds, decide what to
//! create, update, delete or leave alone — and refuse, naming the resource, anything that would
//! leave a dangling reference. Pure; the store runs it inside the write transaction.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use crate::diff::{FieldChange, diff};
use crate::event::NewEvent;
use crate::{FieldError, Kind, Resource, Selector};

/// The catalog as the planner sees it. The caller guarantees it holds every existing resource
/// that the request names or references, every resource that references something the
/// request may delete, and, when pruning, every resource.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub resources: BTreeMap<(Kind, String), Resource>,
}

impl Snapshot {
    pub fn insert(&mut self, r: Resource) {
        self.resources.insert((r.kind(), r.name().to_string()), r);
    }

    pub fn get(&self, kind: Kind, name: &str) -> Option<&Resource> {
        self.resources.get(&(kind, name.to_string()))
    }
}

/// What the caller asks for.
#[derive(Debug, Default, Clone)]
pub struct Request {
    /// Resources to create or update.
    pub desired: Vec<Resource>,
    /// Resources to delete by name.
    pub deletes: Vec<(Kind, String)>,
    /// Delete every existing resource matching this selector that `desired` does not declare.
    pub prune: Option<Selector>,
    /// Refuse to touch a desired resource that already exists (`POST` semantics).
    pub create_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
}

impl Action {
    /// As the wire spells it: `create`, `update`, `delete`, `unchanged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedChange {
    pub kind: Kind,
    pub name: String,
    pub action: Action,
    /// For updates, the fields that change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// The resource to write, for creates and updates.
    #[serde(skip)]
    pub resource: Option<Resource>,
}

impl PlannedChange {
    /// The event this change appends, or `None` when nothing changes.
    pub fn event(&self) -> Option<NewEvent> {
        let kind = crate::event::kinds::catalog(self.kind, self.action)?;
        let mut data = json!({});
        if let Some(r) = &self.resource {
            data["resource"] = r.to_value();
        }
        if !self.fields.is_empty() {
            data["changes"] = serde_json::to_value(&self.fields).expect("field changes serialize");
        }
        Some(NewEvent::new(kind, format!("{}/{}", self.kind.noun(), self.name), data))
    }
}

/// The changes to make, creates and updates first in dependency order (teams, environments,
/// services), then deletes in the reverse order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub changes: Vec<PlannedChange>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.changes.iter().all(|c| c.action == Action::Unchanged)
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Documents that are invalid in context (duplicates, references to nothing).
    #[error("{} invalid document(s): {}", .0.len(), .0.iter().map(|(r, e)| format!("{r}: {e}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, FieldError)>),
    /// A delete that would leave other resources pointing at nothing.
    #[error("{0}")]
    Conflict(String),
    /// A named resource does not exist.
    #[error("{kind} {name:?} does not exist")]
    NotFound { kind: Kind, name: String },
}

pub fn plan(snapshot: &Snapshot, request: &Request) -> Result<Plan, PlanError> {
    let mut invalid = Vec::new();
    let mut desired: BTreeMap<(Kind, String), &Resource> = BTreeMap::new();
    for r in &request.desired {
        if desired.insert((r.kind(), r.name().to_string()), r).is_some() {
            invalid.push((label(r.kind(), r.name()), FieldError::new("metadata.name", "declared more than once")));
        }
    }

    let mut deletes: BTreeSet<(Kind, String)> = BTreeSet::new();
    for (kind, name) in &request.deletes {
        if snapshot.get(*kind, name).is_none() {
            return Err(PlanError::NotFound { kind: *kind, name: name.clone() });
        }
        deletes.insert((*kind, name.clone()));
    }
    if let Some(selector) = &request.prune {
        for (key, r) in &snapshot.resources {
            if !desired.contains_key(key) && selector.matches(&r.metadata().labels) {
                deletes.insert(key.clone());
            }
        }
    }

    // References to something that exists but is being deleted are reported as conflicts below.
    let exists = |kind: Kind, name: &str| {
        let key = (kind, name.to_string());
        desired.contains_key(&key) || snapshot.resources.contains_key(&key)
    };

    // Every kind's references, as its description says (`KindInfo::references`).
    for r in desired.values() {
        for x in (r.kind().info().references)(r) {
            if !exists(x.kind, &x.name) {
                invalid.push((
                    label(r.kind(), r.name()),
                    FieldError::new(x.field, format!("{} {:?} does not exist", x.kind.noun(), x.name)),
                ));
            }
        }
    }
    if !invalid.is_empty() {
        return Err(PlanError::Invalid(invalid));
    }

    // A delete must not strand a resource that stays.
    let staying = desired.values().copied().chain(
        snapshot.resources.iter().filter(|(k, _)| !deletes.contains(*k) && !desired.contains_key(*k)).map(|(_, r)| r),
    );
    let mut conflicts = Vec::new();
    for r in staying {
        for x in (r.kind().info().references)(r) {
            if deletes.contains(&(x.kind, x.name.clone())) {
                conflicts.push(x.broken);
            }
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort();
        return Err(PlanError::Conflict(format!("cannot delete: {}", conflicts.join("; "))));
    }

    if request.create_only
        && let Some((kind, name)) = desired.keys().find(|k| snapshot.resources.contains_key(*k))
    {
        return Err(PlanError::Conflict(format!("{} {name:?} already exists", kind.noun())));
    }

    let mut changes = Vec::with_capacity(desired.len() + deletes.len());
    for ((kind, name), r) in &desired {
        let new = r.to_value();
        let change = match snapshot.get(*kind, name) {
            None => PlannedChange {
                kind: *kind,
                name: name.clone(),
                action: Action::Create,
                fields: vec![],
                resource: Some((*r).clone()),
            },
            Some(cur) => {
                let fields = diff(&cur.to_value(), &new);
                let action = if fields.is_empty() { Action::Unchanged } else { Action::Update };
                let resource = (action == Action::Update).then(|| (*r).clone());
                PlannedChange { kind: *kind, name: name.clone(), action, fields, resource }
            }
        };
        changes.push(change);
    }
    for (kind, name) in deletes.iter().rev() {
        changes.push(PlannedChange {
            kind: *kind,
            name: name.clone(),
            action: Action::Delete,
            fields: vec![],
            resource: None,
        });
    }
    Ok(Plan { changes })
}

fn label(kind: Kind, name: &str) -> String {
    format!("{}/{name}", kind.noun())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn team(name: &str) -> Resource {
        Resource::from_value(json!({"kind": "Team", "metadata": {"name": name, "labels": {"src": "repo"}}, "spec": {"type": "platform"}}))
            .expect("valid team")
    }

    fn service(name: &str, owner: &str, deps: &[&str]) -> Resource {
        Resource::from_value(json!({"kind": "Service", "metadata": {"name": name, "labels": {"src": "repo"}},
            "spec": {"owner": owner, "dependsOn": deps}}))
        .expect("valid service")
    }

    fn actions(p: &Plan) -> Vec<(String, Action)> {
        p.changes.iter().map(|c| (format!("{}/{}", c.kind.noun(), c.name), c.action)).collect()
    }

    #[test]
    fn creates_in_dependency_order_then_is_idempotent() {
        let req = Request {
            desired: vec![service("web", "core", &["api"]), service("api", "core", &[]), team("core")],
            ..Default::default()
        };
        let p = plan(&Snapshot::default(), &req).expect("plan");
        assert_eq!(
            actions(&p),
            [
                ("team/core".into(), Action::Create),
                ("service/api".into(), Action::Create),
                ("service/web".into(), Action::Create),
            ]
        );
        let mut snap = Snapshot::default();
        for r in &req.desired {
            snap.insert(r.clone());
        }
        let again = plan(&snap, &req).expect("plan");
        assert!(again.is_noop());
        assert!(again.changes.iter().all(|c| c.event().is_none()));
    }

    #[test]
    fn update_lists_changed_fields() {
        let mut snap = Snapshot::default();
        snap.insert(team("core"));
        snap.insert(service("api", "core", &[]));
        let mut changed = service("api", "core", &[]);
        if let Resource::Service(s) = &mut changed {
            s.spec.tier = Some(1);
        }
        let p = plan(&snap, &Request { desired: vec![changed], ..Default::default() }).expect("plan");
        assert_eq!(p.changes[0].action, Action::Update);
        assert_eq!(p.changes[0].fields[0].path, "spec.tier");
        assert_eq!(p.changes[0].event().expect("event").kind, "service.updated");
    }

    #[test]
    fn refuses_dangling_references() {
        let req = Request { desired: vec![service("web", "ghost", &["nowhere"])], ..Default::default() };
        let Err(PlanError::Invalid(errs)) = plan(&Snapshot::default(), &req) else { panic!("should be invalid") };
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].1.to_string(), "spec.owner: team \"ghost\" does not exist");
        assert_eq!(errs[1].1.to_string(), "spec.dependsOn[0]: service \"nowhere\" does not exist");
    }

    #[test]
    fn create_only_refuses_existing() {
        let mut snap = Snapshot::default();
        snap.insert(team("core"));
        let req = Request { desired: vec![team("core")], create_only: true, ..Default::default() };
        assert_eq!(plan(&snap, &req).expect_err("exists"), PlanError::Conflict("team \"core\" already exists".into()));
    }

    #[test]
    fn refuses_duplicates() {
        let req = Request { desired: vec![team("a"), team("a")], ..Default::default() };
        assert!(matches!(plan(&Snapshot::default(), &req), Err(PlanError::Invalid(_))));
    }

    #[test]
    fn prune_deletes_only_selected_and_undeclared_and_respects_references() {
        let mut snap = Snapshot::default();
        snap.insert(team("core"));
        snap.insert(service("api", "core", &[]));
        snap.insert(service("web", "core", &["api"]));
        let mut other = service("other", "core", &[]);
        if let Resource::Service(s) = &mut other {
            s.metadata.labels.clear();
        }
        snap.insert(other);
        // Declaring only the team and web: api is pruned, but web depends on it.
        let req = Request {
            desired: vec![team("core"), service("web", "core", &["api"])],
            prune: Some(Selector::parse("src=repo").expect("selector")),
            ..Default::default()
        };
        let Err(PlanError::Conflict(msg)) = plan(&snap, &req) else { panic!("should conflict") };
        assert_eq!(msg, "cannot delete: service \"web\" still depends on service \"api\"");
        // Without the dependency the prune goes through; `other` is not selected, so it stays.
        let req = Request {
            desired: vec![team("core"), service("web", "core", &[])],
            prune: Some(Selector::parse("src=repo").expect("selector")),
            ..Default::default()
        };
        let p = plan(&snap, &req).expect("plan");
        assert_eq!(
            actions(&p),
            [
                ("team/core".into(), Action::Unchanged),
                ("service/web".into(), Action::Update),
                ("service/api".into(), Action::Delete),
            ]
        );
    }

    #[test]
    fn deleting_an_owning_team_is_a_conflict() {
        let mut snap = Snapshot::default();
        snap.insert(team("core"));
        snap.insert(service("api", "core", &[]));
        let req = Request { deletes: vec![(Kind::Team, "core".into())], ..Default::default() };
        assert_eq!(
            plan(&snap, &req).expect_err("conflict"),
            PlanError::Conflict("cannot delete: team \"core\" still owns service \"api\"".into())
        );
        let req = Request { deletes: vec![(Kind::Team, "nope".into())], ..Default::default() };
        assert!(matches!(plan(&snap, &req), Err(PlanError::NotFound { .. })));
    }
}
