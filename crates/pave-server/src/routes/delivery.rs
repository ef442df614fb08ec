//! Delivery facts in (`POST /api/v1/events`) and DORA metrics out (`/api/v1/dora`).

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use pave_dora::{Benchmark, Facts, Granularity, Query};
use pave_model::delivery::Report;
use pave_model::{Kind, Resource, Timestamp};
use pave_store::ListQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Caller;
use crate::AppState;
use crate::auth::AuditDetail;
use crate::error::ApiError;
use crate::extract::{ApiQuery, JsonBody, parse_batch};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// Deployments, incidents and changes: `{"type": "deployment", …}`.
    events: Vec<Value>,
}

/// Records reported facts, all or nothing; reporting the same fact twice is a no-op.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ReportBody>,
) -> Result<Response, ApiError> {
    let label = |v: &Value| {
        let kind = v.get("type").and_then(Value::as_str)?;
        let id = v.get("id").or_else(|| v.get("sha")).and_then(Value::as_str).unwrap_or("?");
        Some(format!("{kind}/{id}"))
    };
    let reports = parse_batch(body.events, label, Report::from_value)?;
    let actions = state.store.report(&reports, &caller.write_context()).await?;
    let results: Vec<Value> =
        reports.iter().zip(&actions).map(|(r, a)| json!({"type": r.noun(), "id": r.key(), "action": a})).collect();
    let count = |a: pave_store::ReportAction| actions.iter().filter(|x| **x == a).count();
    let summary = json!({
        "created": count(pave_store::ReportAction::Created),
        "updated": count(pave_store::ReportAction::Updated),
        "unchanged": count(pave_store::ReportAction::Unchanged),
    });
    let mut resp = Json(json!({ "results": results, "summary": summary })).into_response();
    resp.extensions_mut().insert(AuditDetail(json!({ "summary": summary })));
    Ok(resp)
}

/// The DORA query, from a query string or a JSON body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoraParams {
    /// Start of the window: RFC 3339, or a span before `to` such as `30d`, `12w`, `6h`.
    from: Option<String>,
    /// End of the window (exclusive): RFC 3339 or `now` (default).
    to: Option<String>,
    team: Option<String>,
    service: Option<String>,
    /// The environment whose deployments count (default: every production environment).
    environment: Option<String>,
    /// `week` or `month`: add a series of windows.
    series: Option<String>,
    /// Add the deployments, commits and incidents behind every figure.
    explain: Option<bool>,
    /// Built-in benchmark table name (`dora-2024`, the default, or `dora-2023`).
    benchmark: Option<String>,
    /// A whole benchmark table, in the built-in tables' format (JSON body only).
    #[serde(rename = "benchmarkTable")]
    benchmark_table: Option<Value>,
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

pub async fn dora_get(State(state): State<AppState>, ApiQuery(p): ApiQuery<DoraParams>) -> Result<Response, ApiError> {
    if p.benchmark_table.is_some() {
        return Err(ApiError::bad_request("benchmarkTable is only accepted in a POST body"));
    }
    dora(state, p).await
}

pub async fn dora_post(State(state): State<AppState>, JsonBody(p): JsonBody<DoraParams>) -> Result<Response, ApiError> {
    dora(state, p).await
}

async fn dora(state: AppState, p: DoraParams) -> Result<Response, ApiError> {
    let to = match p.to.as_deref() {
        None | Some("now") => Timestamp(crate::now_millis()),
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
            let prod: Vec<String> = envs
                .into_iter()
                .filter_map(|e| match e.resource {
                    Resource::Environment(env) if env.spec.production => Some(env.metadata.name),
                    _ => None,
                })
                .collect();
            if prod.is_empty() {
                return Err(ApiError::invalid(
                    "no environment is marked production; mark one (spec.production: true) or pass environment=",
                    vec![],
                ));
            }
            prod
        }
    };
    let services: Option<HashSet<String>> = match (&p.team, &p.service) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("pass team or service, not both")),
        (Some(team), None) => {
            if state.store.get(Kind::Team, team).await?.is_none() {
                return Err(ApiError::not_found(format!("team {team:?} does not exist")));
            }
            let owned =
                state.store.list(Kind::Service, &ListQuery { owner: Some(team.clone()), selector: None }).await?;
            Some(owned.into_iter().map(|s| s.resource.name().to_owned()).collect())
        }
        (None, Some(service)) => {
            if state.store.get(Kind::Service, service).await?.is_none() {
                return Err(ApiError::not_found(format!("service {service:?} does not exist")));
            }
            Some([service.clone()].into_iter().collect())
        }
        (None, None) => None,
    };
    let facts = state.facts.current(&state.store).await?;
    let query = Query {
        from,
        to,
        services,
        environments: environments.iter().cloned().collect(),
        series,
        explain: p.explain.unwrap_or(false),
        explicit_commits: false,
    };
    let report = tokio::task::spawn_blocking(move || {
        let f = Facts { deployments: &facts.deployments, incidents: &facts.incidents, changes: &facts.changes };
        pave_dora::compute(f, &query, &bench)
    })
    .await
    .map_err(|e| ApiError::new(crate::error::Problem::Internal, format!("metrics computation failed: {e}")))?;
    let mut value = serde_json::to_value(&report).expect("reports serialize");
    value["scope"] = json!({"environments": environments, "team": p.team, "service": p.service});
    Ok(Json(value).into_response())
}
