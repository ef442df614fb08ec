//! Delivery facts in (`POST /api/v1/events`); DORA metrics (`/api/v1/dora`) and the change
//! timeline (`/api/v1/timeline`) out.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use pave_api as api;
use pave_dora::scope::Scope;
use pave_dora::{Benchmark, Facts, Granularity, Query};
use pave_model::delivery::{Report, TimelineScope};
use pave_model::{Kind, Resource, Timestamp};
use pave_store::ListQuery;
use serde_json::{Value, json};

use super::Caller;
use crate::AppState;
use crate::auth::AuditDetail;
use crate::error::ApiError;
use crate::extract::{ApiQuery, JsonBody, parse_batch};

fn action(a: pave_store::ReportAction) -> &'static str {
    match a {
        pave_store::ReportAction::Created => "created",
        pave_store::ReportAction::Updated => "updated",
        pave_store::ReportAction::Unchanged => "unchanged",
    }
}

/// Records reported facts, all or nothing; reporting the same fact twice is a no-op.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<api::ReportRequest>,
) -> Result<Response, ApiError> {
    let label = |v: &Value| {
        let kind = v.get("type").and_then(Value::as_str)?;
        let id = v.get("id").or_else(|| v.get("sha")).and_then(Value::as_str).unwrap_or("?");
        Some(format!("{kind}/{id}"))
    };
    let reports = parse_batch(body.events, label, Report::from_value)?;
    let actions = state.store.report(&reports, &caller.write_context()).await?;
    let results: Vec<api::ReportedFact> = reports
        .iter()
        .zip(&actions)
        .map(|(r, a)| api::ReportedFact {
            kind: r.noun().to_owned(),
            id: r.key().to_owned(),
            action: action(*a).to_owned(),
        })
        .collect();
    let count = |a: pave_store::ReportAction| actions.iter().filter(|x| **x == a).count();
    let summary = api::ReportSummary {
        created: count(pave_store::ReportAction::Created),
        updated: count(pave_store::ReportAction::Updated),
        unchanged: count(pave_store::ReportAction::Unchanged),
    };
    let mut resp = Json(api::ReportResult { results, summary }).into_response();
    resp.extensions_mut().insert(AuditDetail(json!({ "summary": summary })));
    Ok(resp)
}

/// A report as `/api/v1/dora` answers it: `pave-dora`'s figures and what they cover
/// (`pave_api::DoraReport` reads it back).
#[derive(serde::Serialize)]
struct DoraAnswer<'a> {
    #[serde(flatten)]
    report: &'a pave_dora::Report,
    scope: api::dora::DoraScope,
}

/// Most flag changes one report or timeline reads.
const MAX_FLAG_CHANGES: i64 = 100_000;

/// The services in scope for a team or a service, and the teams whose flags' changes count
/// (`pave_dora::scope`), after checking that the team or service exists.
async fn scope(state: &AppState, team: Option<&str>, service: Option<&str>) -> Result<Scope, ApiError> {
    match (team, service) {
        (Some(_), Some(_)) => Err(ApiError::bad_request("pass team or service, not both")),
        (Some(team), None) => {
            if state.store.get(Kind::Team, team).await?.is_none() {
                return Err(ApiError::not_found(format!("team {team:?} does not exist")));
            }
            let owned =
                state.store.list(Kind::Service, &ListQuery { owner: Some(team.to_owned()), selector: None }).await?;
            Ok(Scope::team(team, owned.into_iter().map(|s| s.resource.name().to_owned())))
        }
        (None, Some(service)) => {
            let Some(stored) = state.store.get(Kind::Service, service).await? else {
                return Err(ApiError::not_found(format!("service {service:?} does not exist")));
            };
            let owner = match &stored.resource {
                Resource::Service(s) => s.spec.owner.as_str(),
                _ => "",
            };
            Ok(Scope::service(service, owner))
        }
        (None, None) => Ok(Scope::all()),
    }
}

fn parse_span(s: &str) -> Option<i64> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = num.parse().ok().filter(|n: &i64| *n > 0)?;
    let ms = match unit {
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms)
}

fn parse_time(field: &str, s: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(s).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

pub async fn dora_get(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<api::DoraQuery>,
) -> Result<Response, ApiError> {
    if p.benchmark_table.is_some() {
        return Err(ApiError::bad_request("benchmarkTable is only accepted in a POST body"));
    }
    dora(state, p).await
}

pub async fn dora_post(
    State(state): State<AppState>,
    JsonBody(p): JsonBody<api::DoraQuery>,
) -> Result<Response, ApiError> {
    dora(state, p).await
}

async fn dora(state: AppState, p: api::DoraQuery) -> Result<Response, ApiError> {
    let to = match p.to.as_deref() {
        None | Some("now") => Timestamp(pave_model::clock::now_ms()),
        Some(s) => parse_time("to", s)?,
    };
    let from = match p.from.as_deref() {
        None => Timestamp(to.0 - 30 * 86_400_000),
        Some(s) => match parse_span(s) {
            Some(ms) => Timestamp(to.0 - ms),
            None => parse_time("from", s)?,
        },
    };
    if from >= to {
        return Err(ApiError::bad_request(format!("from ({from}) must be before to ({to})")));
    }
    let series = match p.series.as_deref() {
        None => None,
        Some("week") => Some(Granularity::Week),
        Some("month") => Some(Granularity::Month),
        Some(other) => return Err(ApiError::bad_request(format!("series {other:?} is not week or month"))),
    };
    let bench = match (p.benchmark_table, p.benchmark.as_deref()) {
        (Some(table), _) => {
            Benchmark::parse(&table.to_string()).map_err(|e| ApiError::invalid(e.to_string(), vec![]))?
        }
        (None, name) => {
            Benchmark::builtin(name.unwrap_or("dora-2024")).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
    };

    let environments: Vec<String> = match &p.environment {
        Some(e) => {
            if state.store.get(Kind::Environment, e).await?.is_none() {
                return Err(ApiError::not_found(format!("environment {e:?} does not exist")));
            }
            vec![e.clone()]
        }
        None => {
            let envs = state.store.list(Kind::Environment, &ListQuery::default()).await?;
            let marked = envs.iter().filter_map(|e| match &e.resource {
                Resource::Environment(env) => Some((env.metadata.name.as_str(), env.spec.production)),
                _ => None,
            });
            pave_dora::scope::default_environments(marked).map_err(|e| ApiError::invalid(e, vec![]))?
        }
    };
    let Scope { services, flag_owners } = scope(&state, p.team.as_deref(), p.service.as_deref()).await?;
    let facts = state.facts.current(&state.store).await?;
    let query = Query {
        from,
        to,
        services,
        environments: environments.iter().cloned().collect(),
        series,
        explain: p.explain.unwrap_or(false),
        explicit_commits: false,
        flag_owners,
    };
    let flag_changes = state.store.flag_changes(from, to, MAX_FLAG_CHANGES).await?;
    let report = tokio::task::spawn_blocking(move || {
        let f = Facts {
            deployments: &facts.deployments,
            incidents: &facts.incidents,
            changes: &facts.changes,
            flag_changes: &flag_changes,
        };
        pave_dora::compute(f, &query, &bench)
    })
    .await
    .map_err(|e| ApiError::new(crate::error::Problem::Internal, format!("metrics computation failed: {e}")))?;
    let scope = api::dora::DoraScope { environments, team: p.team, service: p.service };
    Ok(Json(DoraAnswer { report: &report, scope }).into_response())
}

/// `GET /api/v1/timeline`: deployments, incidents and flag changes in one time-ordered list —
/// "what changed?" when something breaks, since a flag flip changes production as surely as a
/// deployment does.
pub async fn timeline(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<api::delivery::TimelineQuery>,
) -> Result<Response, ApiError> {
    let limit = p.limit.unwrap_or(500);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit {limit} is out of range 1..=5000")));
    }
    let now = Timestamp(pave_model::clock::now_ms());
    let facts = state.facts.current(&state.store).await?;
    let (from, to, incident) = match &p.incident {
        Some(id) => {
            if p.from.is_some() || p.to.is_some() {
                return Err(ApiError::bad_request("pass incident or from/to, not both"));
            }
            let Some(inc) = facts.incidents.iter().find(|i| &i.id == id) else {
                return Err(ApiError::not_found(format!("incident {id:?} does not exist")));
            };
            let before = match p.before.as_deref() {
                None => 86_400_000,
                Some(s) => parse_span(s)
                    .ok_or_else(|| ApiError::bad_request(format!("before {s:?} is not a span such as 2h, 1d or 1w")))?,
            };
            let end = inc.resolved_at.map_or(now, |r| Timestamp(r.0 + 1));
            (Timestamp(inc.opened_at.0 - before), end.max(Timestamp(inc.opened_at.0 + 1)), Some(inc.clone()))
        }
        None => {
            if p.before.is_some() {
                return Err(ApiError::bad_request("before is only used with incident"));
            }
            let to = match p.to.as_deref() {
                None | Some("now") => now,
                Some(s) => parse_time("to", s)?,
            };
            let from = match p.from.as_deref() {
                None => Timestamp(to.0 - 86_400_000),
                Some(s) => match parse_span(s) {
                    Some(ms) => Timestamp(to.0 - ms),
                    None => parse_time("from", s)?,
                },
            };
            (from, to, None)
        }
    };
    if from >= to {
        return Err(ApiError::bad_request(format!("from ({from}) must be before to ({to})")));
    }
    if let Some(e) = &p.environment
        && state.store.get(Kind::Environment, e).await?.is_none()
    {
        return Err(ApiError::not_found(format!("environment {e:?} does not exist")));
    }
    let scoped = scope(&state, p.team.as_deref(), p.service.as_deref()).await?;
    let flag_changes = state.store.flag_changes(from, to, MAX_FLAG_CHANGES).await?;
    let (total, entries) = pave_model::delivery::timeline(
        &facts.deployments,
        &facts.incidents,
        &flag_changes,
        &TimelineScope {
            from,
            to,
            environment: p.environment.as_deref(),
            services: scoped.services.as_ref(),
            flag_owners: scoped.flag_owners.as_ref(),
            limit,
        },
    );
    Ok(Json(api::Timeline { from, to, incident, total, truncated: total > entries.len(), entries }).into_response())
}

#[cfg(test)]
mod tests {
    use pave_model::delivery::{Deployment, DeploymentKind, DeploymentStatus};

    use super::*;

    /// What the server sends is what `pave_api::DoraReport` reads, field for field: with a
    /// series, explanations and levels, and with the levels a short window withholds.
    #[test]
    fn the_dora_answer_is_the_api_type() {
        let t = |s: &str| Timestamp::parse_rfc3339(s).expect("time");
        let deployments: Vec<Deployment> = (1..=9)
            .map(|d| Deployment {
                id: format!("d{d}"),
                service: "api".into(),
                environment: "prod".into(),
                version: format!("1.{d}"),
                commit: None,
                previous_commit: None,
                commits: vec![],
                started_at: t(&format!("2024-01-0{d}T10:00:00Z")),
                finished_at: t(&format!("2024-01-0{d}T10:05:00Z")),
                status: if d == 3 { DeploymentStatus::Failed } else { DeploymentStatus::Succeeded },
                kind: DeploymentKind::Planned,
            })
            .collect();
        let facts = Facts { deployments: &deployments, incidents: &[], changes: &[], flag_changes: &[] };
        let query = Query {
            from: t("2024-01-01T00:00:00Z"),
            to: t("2024-01-15T00:00:00Z"),
            services: None,
            environments: ["prod".to_owned()].into_iter().collect(),
            series: Some(Granularity::Week),
            explain: true,
            explicit_commits: false,
            flag_owners: None,
        };
        let bench = Benchmark::builtin("dora-2024").expect("built in");
        let mut report = pave_dora::compute(facts, &query, &bench);
        for _ in 0..2 {
            let scope =
                api::dora::DoraScope { environments: vec!["prod".into()], team: None, service: Some("api".into()) };
            let sent = serde_json::to_value(DoraAnswer { report: &report, scope }).expect("serialises");
            let read: api::DoraReport = serde_json::from_value(sent.clone()).expect("the API type reads it");
            assert_eq!(serde_json::to_value(&read).expect("serialises"), sent);
            report.withhold_levels();
        }
    }
}
