//! The catalog API: teams, services and environments, one resource at a time (REST) or many
//! at once (`/apply`, the declarative path behind `pave apply`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pave_model::apply::Request;
use pave_model::auth::{Access, ServiceAct, Target, may, role_to_write};
use pave_model::{Action, Kind, Plan, Resource, Selector, Snapshot};
use pave_store::{ListQuery, StoredResource};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Caller;
use crate::AppState;
use crate::auth::AuditDetail;
use crate::error::{ApiError, InvalidField};
use crate::extract::{ApiQuery, JsonBody, parse_batch};

/// The refusal, if any, of a plan some of whose changes need more than the caller's role, or
/// touch a service whose owner (before or after the change) the caller's scope does not own.
fn authorize(access: Access) -> impl Fn(&Plan, &Snapshot) -> Result<(), String> + Sync {
    move |plan: &Plan, snapshot: &Snapshot| {
        let role = access.role;
        let denied: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| c.action != Action::Unchanged && !role.allows(role_to_write(c.kind)))
            .map(|c| format!("{}/{}", c.kind.noun(), c.name))
            .collect();
        if !denied.is_empty() {
            return Err(format!(
                "role {role} may not change {}; teams and environments need the admin role",
                denied.join(", ")
            ));
        }
        let owner = |r: Option<&Resource>| match r {
            Some(Resource::Service(s)) => Some(s.spec.owner.clone()),
            _ => None,
        };
        let mut refused = Vec::new();
        for c in plan.changes.iter().filter(|c| c.kind == Kind::Service && c.action != Action::Unchanged) {
            let act = if c.action == Action::Delete { ServiceAct::Delete } else { ServiceAct::Change };
            let mut owners = vec![owner(snapshot.get(Kind::Service, &c.name)), owner(c.resource.as_ref())];
            owners.dedup();
            for o in owners.into_iter().flatten() {
                if let Err(d) = may(&access, act, &Target { service: &c.name, owner: &o, environment: None }) {
                    refused.push(d.to_string());
                }
            }
        }
        if refused.is_empty() { Ok(()) } else { Err(refused.join("; ")) }
    }
}

fn parse_document(kind: Kind, value: Value) -> Result<Resource, ApiError> {
    let resource = Resource::from_value(value).map_err(|e| ApiError::from_fields(None, None, e))?;
    if resource.kind() != kind {
        return Err(ApiError::invalid(
            format!("this endpoint takes {kind} documents, not {}", resource.kind()),
            vec![InvalidField {
                document: None,
                resource: None,
                field: "kind".into(),
                reason: format!("expected {kind}"),
            }],
        ));
    }
    Ok(resource)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only services owned by this team.
    owner: Option<String>,
    /// A label selector (`app=shop,tier!=3`).
    selector: Option<String>,
}

pub async fn list(kind: Kind, state: AppState, params: ListParams) -> Result<Response, ApiError> {
    let selector = params.selector.as_deref().map(Selector::parse).transpose().map_err(ApiError::bad_request)?;
    let items = state.store.list(kind, &ListQuery { owner: params.owner, selector }).await?;
    let items = items.iter().map(StoredResource::to_value).collect();
    Ok(Json(pave_api::ResourceList { items }).into_response())
}

pub async fn get_one(kind: Kind, state: AppState, name: String) -> Result<Response, ApiError> {
    match state.store.get(kind, &name).await? {
        Some(r) => Ok(Json(r.to_value()).into_response()),
        None => Err(ApiError::not_found(format!("{} {name:?} does not exist", kind.noun()))),
    }
}

async fn write_one(
    kind: Kind,
    state: &AppState,
    caller: &Caller,
    resource: Resource,
    create_only: bool,
) -> Result<Response, ApiError> {
    let name = resource.name().to_owned();
    let request = Request { desired: vec![resource], create_only, ..Default::default() };
    let (plan, _) =
        state.store.apply(&request, &caller.write_context(), false, &authorize(caller.access(state).await?)).await?;
    let action = plan.changes.first().map(|c| c.action).unwrap_or(Action::Unchanged);
    let stored = state
        .store
        .get(kind, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} {name:?} vanished after it was written", kind.noun())))?;
    let status = if action == Action::Create { StatusCode::CREATED } else { StatusCode::OK };
    let mut resp = (status, Json(stored.to_value())).into_response();
    resp.extensions_mut().insert(AuditDetail(json!({"action": action})));
    Ok(resp)
}

pub async fn create(kind: Kind, state: AppState, caller: Caller, body: Value) -> Result<Response, ApiError> {
    let resource = parse_document(kind, body)?;
    write_one(kind, &state, &caller, resource, true).await
}

pub async fn put(kind: Kind, state: AppState, caller: Caller, name: String, body: Value) -> Result<Response, ApiError> {
    let resource = parse_document(kind, body)?;
    if resource.name() != name {
        return Err(ApiError::invalid(
            format!("metadata.name {:?} does not match the URL's {name:?}", resource.name()),
            vec![InvalidField {
                document: None,
                resource: None,
                field: "metadata.name".into(),
                reason: format!("must be {name:?}"),
            }],
        ));
    }
    write_one(kind, &state, &caller, resource, false).await
}

pub async fn delete(kind: Kind, state: AppState, caller: Caller, name: String) -> Result<Response, ApiError> {
    let request = Request { deletes: vec![(kind, name)], ..Default::default() };
    state.store.apply(&request, &caller.write_context(), false, &authorize(caller.access(&state).await?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The REST routes of one kind at `/api/v1/{plural}`.
pub fn routes(kind: Kind) -> crate::Routes {
    use axum::http::Method;
    let collection = format!("/api/v1/{}", kind.plural());
    let item = format!("/api/v1/{}/{{name}}", kind.plural());
    crate::Routes::new()
        .on(Method::GET, &collection, move |State(s): State<AppState>, ApiQuery(p): ApiQuery<ListParams>| {
            list(kind, s, p)
        })
        .on(Method::POST, &collection, move |State(s): State<AppState>, c: Caller, JsonBody(b): JsonBody<Value>| {
            create(kind, s, c, b)
        })
        .on(Method::GET, &item, move |State(s): State<AppState>, Path(n): Path<String>| get_one(kind, s, n))
        .on(
            Method::PUT,
            &item,
            move |State(s): State<AppState>, c: Caller, Path(n): Path<String>, JsonBody(b): JsonBody<Value>| {
                put(kind, s, c, n, b)
            },
        )
        .on(Method::DELETE, &item, move |State(s): State<AppState>, c: Caller, Path(n): Path<String>| {
            delete(kind, s, c, n)
        })
}

/// Applies many documents in one transaction: all or nothing.
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<pave_api::catalog::ApplyRequest>,
) -> Result<Response, ApiError> {
    let label = |doc: &Value| {
        let name = doc.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str)?;
        Some(format!("{}/{name}", doc.get("kind").and_then(Value::as_str).unwrap_or("?").to_lowercase()))
    };
    // Every kind in one batch, each document read by its kind (indices stay the request's).
    enum Doc {
        Catalog(Resource),
        Flag(pave_model::flags::Flag),
        Segment(pave_model::flags::Segment),
    }
    let docs = parse_batch(body.documents, label, |v| match v.get("kind").and_then(Value::as_str) {
        Some("Flag") => pave_model::flags::Flag::from_value(v).map(Doc::Flag),
        Some("Segment") => pave_model::flags::Segment::from_value(v).map(Doc::Segment),
        _ => Resource::from_value(v).map(Doc::Catalog),
    })?;
    let (mut desired, mut flags, mut segments) = (Vec::new(), Vec::new(), Vec::new());
    for d in docs {
        match d {
            Doc::Catalog(r) => desired.push(r),
            Doc::Flag(f) => flags.push(f),
            Doc::Segment(s) => segments.push(s),
        }
    }
    let prune = match (body.prune, body.selector) {
        (false, None) => None,
        (false, Some(_)) => return Err(ApiError::bad_request("selector only applies with prune: true")),
        (true, None) => {
            return Err(ApiError::bad_request(
                "prune needs a selector bounding what may be deleted (use \"\" to select everything)",
            ));
        }
        (true, Some(s)) => Some(Selector::parse(&s).map_err(ApiError::bad_request)?),
    };
    let request = Request { desired, prune, ..Default::default() };
    if !flags.is_empty() {
        caller.may_write_flags(&state, &flags).await?;
    }
    // One transaction for every kind: a refused flag leaves the catalog part unwritten too.
    let (plan, events, flag_changes) = state
        .store
        .apply_all(
            &request,
            &segments,
            &flags,
            &caller.write_context(),
            body.dry_run,
            &authorize(caller.access(&state).await?),
        )
        .await?;
    if !body.dry_run && !flag_changes.is_empty() {
        state.flags.written(&state.store).await;
    }
    let flagged = |a: &str| flag_changes.iter().filter(|c| c.action == a).count();
    let summary = pave_api::ApplySummary {
        created: plan.count(Action::Create) + flagged("create"),
        updated: plan.count(Action::Update) + flagged("update"),
        deleted: plan.count(Action::Delete),
        unchanged: plan.count(Action::Unchanged) + flagged("unchanged"),
    };
    let field = |f: &pave_model::diff::FieldChange| pave_api::catalog::FieldChange {
        path: f.path.clone(),
        old: f.old.clone(),
        new: f.new.clone(),
    };
    let changes = plan
        .changes
        .iter()
        .map(|c| pave_api::catalog::AppliedChange {
            kind: c.kind.to_string(),
            name: c.name.clone(),
            action: c.action.as_str().to_owned(),
            fields: c.fields.iter().map(field).collect(),
        })
        .chain(flag_changes.iter().map(|c| pave_api::catalog::AppliedChange {
            kind: c.kind.to_owned(),
            name: c.name.clone(),
            action: c.action.to_owned(),
            fields: c.fields.iter().map(field).collect(),
        }))
        .collect();
    let warnings =
        if flags.is_empty() { Vec::new() } else { super::flags::warnings_of(&state, &segments, &flags).await? };
    let mut resp =
        Json(pave_api::ApplyResult { dry_run: body.dry_run, summary, events: events.len(), changes, warnings })
            .into_response();
    resp.extensions_mut().insert(AuditDetail(json!({"dryRun": body.dry_run, "summary": summary})));
    Ok(resp)
}
