//! The endpoints existing flag SDKs call, unchanged: Unleash's client API (server SDKs), its
//! frontend API (browsers and phones), a server-sent-events stream of flag changes, and the
//! OpenFeature Remote Evaluation Protocol (OFREP). They authenticate with SDK tokens
//! (`project:environment.secret`) against the in-memory served state, never the database,
//! and answer in each protocol's own shapes.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pave_flags::{Context, Properties, Resolved};
use pave_model::Timestamp;
use pave_store::{SdkClient, SdkTokenKind, UsageCount};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::flags::{Access, OfrepFlag, ValueType, View};
use crate::routes::deploy::ChannelBody;

/// Largest evaluation context accepted, in bytes of JSON or query string.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;
/// Most custom properties one context may carry.
pub const MAX_PROPERTIES: usize = 128;
/// Largest SDK report (metrics, registration) accepted, in bytes.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

fn secret(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    Some(v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).trim())
}

/// Why an SDK request is refused.
enum Refusal {
    Missing,
    Unknown,
    WrongKind(SdkTokenKind),
}

impl Refusal {
    fn detail(&self) -> String {
        match self {
            Refusal::Missing => "missing Authorization header; send an SDK token (project:environment.secret)".into(),
            Refusal::Unknown => "unknown or revoked SDK token".into(),
            Refusal::WrongKind(k) => format!("a {} token cannot be used here", k.as_str()),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::WrongKind(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

fn access(state: &AppState, headers: &HeaderMap, allowed: &[SdkTokenKind]) -> Result<Access, Refusal> {
    let secret = secret(headers).filter(|s| !s.is_empty()).ok_or(Refusal::Missing)?;
    let served = state.flags.current();
    let a = served.access(secret).ok_or(Refusal::Unknown)?;
    if !allowed.contains(&a.kind) {
        return Err(Refusal::WrongKind(a.kind));
    }
    Ok(a.clone())
}

fn unleash_access(state: &AppState, headers: &HeaderMap, allowed: &[SdkTokenKind]) -> Result<Access, ApiError> {
    access(state, headers, allowed).map_err(|r| {
        let problem = if r.status() == StatusCode::FORBIDDEN { Problem::Forbidden } else { Problem::Unauthorized };
        ApiError::new(problem, r.detail())
    })
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag))
}

fn not_modified(etag: &str) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    r.headers_mut().insert(header::ETAG, HeaderValue::from_str(etag).expect("etag is ASCII"));
    r
}

fn json_with_etag(body: Bytes, etag: &str) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::ETAG, HeaderValue::from_str(etag).expect("etag is ASCII"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /api/client/features`: the whole flag set of the token's project and environment.
pub async fn client_features(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let a = unleash_access(&state, &headers, &[SdkTokenKind::Client])?;
    if if_none_match(&headers, &a.view.etag) {
        return Ok(not_modified(&a.view.etag));
    }
    Ok(json_with_etag(a.view.body.clone(), &a.view.etag))
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn report_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.len() > MAX_REPORT_BYTES {
        return Err(ApiError::new(
            Problem::PayloadTooLarge,
            format!("the report is {} bytes; the limit is {MAX_REPORT_BYTES}", body.len()),
        ));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("the report must be a JSON object"));
    }
    Ok(v)
}

fn sdk_client(v: &Value, headers: &HeaderMap, a: &Access, now: i64) -> Result<SdkClient, ApiError> {
    let app_name = str_field(v, "appName")
        .or_else(|| header_str(headers, "unleash-appname"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("appName: missing (the SDK's application name)", vec![]))?;
    let instance_id = str_field(v, "instanceId")
        .or_else(|| header_str(headers, "unleash-instanceid"))
        .unwrap_or_else(|| "unknown".into());
    let started_at = str_field(v, "started").and_then(|s| Timestamp::parse_rfc3339(&s).ok());
    Ok(SdkClient {
        app_name: truncate(app_name, 200),
        instance_id: truncate(instance_id, 200),
        environment: a.view.environment.clone(),
        sdk: truncate(
            str_field(v, "sdkVersion").or_else(|| header_str(headers, "unleash-sdk")).unwrap_or_default(),
            100,
        ),
        started_at,
        interval_ms: v.get("interval").and_then(Value::as_i64),
        first_seen: Timestamp(now),
        last_seen: Timestamp(now),
    })
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// `POST /api/client/register`: an SDK instance introduces itself.
pub async fn client_register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let a = unleash_access(&state, &headers, &[SdkTokenKind::Client, SdkTokenKind::Frontend])?;
    let v = report_json(&body)?;
    let client = sdk_client(&v, &headers, &a, pave_model::clock::now_ms())?;
    state.store.register_sdk_client(&client).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Reads an Unleash metrics bucket (`bucket.toggles.NAME.{yes,no,variants}`).
fn usage_counts(v: &Value) -> Result<Vec<UsageCount>, ApiError> {
    let toggles = v
        .pointer("/bucket/toggles")
        .ok_or_else(|| ApiError::invalid("bucket.toggles: missing (the per-flag counts)", vec![]))?
        .as_object()
        .ok_or_else(|| ApiError::invalid("bucket.toggles: must be an object of flag name to counts", vec![]))?;
    if toggles.len() > 10_000 {
        return Err(ApiError::invalid(format!("bucket.toggles: {} flags; the limit is 10000", toggles.len()), vec![]));
    }
    let count = |t: &Value, name: &str, key: &str| -> Result<i64, ApiError> {
        match t.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(n) => n.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::invalid(format!("bucket.toggles.{name}.{key}: must be a count (a whole number >= 0)"), vec![])
            }),
        }
    };
    let mut out = Vec::with_capacity(toggles.len());
    for (name, t) in toggles {
        let mut c = UsageCount {
            flag: truncate(name.clone(), 200),
            yes: count(t, name, "yes")?,
            no: count(t, name, "no")?,
            ..Default::default()
        };
        if let Some(vs) = t.get("variants").and_then(Value::as_object) {
            for (variant, n) in vs {
                let n = n.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::invalid(format!("bucket.toggles.{name}.variants.{variant}: must be a count"), vec![])
                })?;
                if n > 0 {
                    c.variants.insert(truncate(variant.clone(), 200), n);
                }
            }
        }
        if c.yes > 0 || c.no > 0 || !c.variants.is_empty() {
            out.push(c);
        }
    }
    Ok(out)
}

/// `POST /api/client/metrics` (and the frontend's): how often each flag was evaluated.
pub async fn client_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let a = unleash_access(&state, &headers, &[SdkTokenKind::Client, SdkTokenKind::Frontend])?;
    let v = report_json(&body)?;
    let counts = usage_counts(&v)?;
    let now = pave_model::clock::now_ms();
    if !counts.is_empty() {
        state.store.record_flag_usage(&a.view.environment, &counts, now).await?;
    }
    if let Ok(client) = sdk_client(&v, &headers, &a, now) {
        state.store.register_sdk_client(&client).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Builds a context from JSON, mapping OpenFeature's `targetingKey` to `userId` and every
/// field Unleash does not name to a property. Objects and arrays are refused: flags compare
/// scalars.
fn context_from_json(v: &Map<String, Value>) -> Result<Context, String> {
    let mut ctx = Context::default();
    let mut props = Properties::default();
    let scalar = |k: &str, v: &Value| -> Result<Option<String>, String> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            _ => Err(format!("context field {k:?} must be a string, number or boolean")),
        }
    };
    for (k, val) in v {
        if k == "properties" {
            let Value::Object(p) = val else {
                return Err("context field \"properties\" must be an object".into());
            };
            for (pk, pv) in p {
                if let Some(s) = scalar(pk, pv)? {
                    props.insert(pk.clone(), s);
                }
            }
            continue;
        }
        let Some(s) = scalar(k, val)? else { continue };
        match k.as_str() {
            "userId" | "targetingKey" => ctx.user_id = Some(s),
            "sessionId" => ctx.session_id = Some(s),
            "remoteAddress" => ctx.remote_address = Some(s),
            "environment" => ctx.environment = Some(s),
            "appName" => ctx.app_name = Some(s),
            "currentTime" => ctx.current_time = Some(s),
            _ => {
                props.insert(k.clone(), s);
            }
        }
    }
    if props.len() > MAX_PROPERTIES {
        return Err(format!("the context has {} properties; the limit is {MAX_PROPERTIES}", props.len()));
    }
    ctx.properties = props;
    Ok(ctx)
}

/// Reads `userId=…&properties[plan]=pro&region=eu` as Unleash's frontend API does.
fn context_from_query(q: &str) -> Result<Context, String> {
    let mut m = Map::new();
    let mut props = Map::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| pave_percent::decode_query_value(s).map_err(|e| e.to_string());
        let (k, v) = (decode(k)?, decode(v)?);
        match k.strip_prefix("properties[").and_then(|r| r.strip_suffix(']')) {
            Some(p) => {
                props.insert(p.to_owned(), Value::String(v));
            }
            None => {
                m.insert(k, Value::String(v));
            }
        }
    }
    if !props.is_empty() {
        m.insert("properties".into(), Value::Object(props));
    }
    context_from_json(&m)
}

/// Evaluates in the token's environment whatever the context says, as Unleash's frontend API
/// does: SDKs fill `environment` in by themselves (browser SDKs send `"default"`, OpenFeature
/// providers pass whatever the application set), and refusing them would turn every flag off
/// for such callers where Unleash answers normally.
fn in_token_environment(mut ctx: Context, view: &View) -> Context {
    ctx.environment = Some(view.environment.clone());
    ctx
}

fn frontend_toggle(r: &Resolved<'_>) -> Value {
    json!({"name": r.name, "enabled": r.enabled, "variant": r.variant, "impressionData": r.impression_data})
}

/// `GET|POST /api/frontend`: the flags that are on for a context, evaluated here, so browsers
/// and phones never see the rules.
pub async fn frontend(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: axum::http::Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let a = unleash_access(&state, &headers, &[SdkTokenKind::Frontend, SdkTokenKind::Client])?;
    let ctx = if method == axum::http::Method::POST {
        if body.len() > MAX_CONTEXT_BYTES {
            return Err(ApiError::new(
                Problem::PayloadTooLarge,
                format!("the context is {} bytes; the limit is {MAX_CONTEXT_BYTES}", body.len()),
            ));
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
        let obj = match v.get("context").unwrap_or(&v) {
            Value::Object(m) => m.clone(),
            _ => return Err(ApiError::bad_request("the body must be a context object (or {\"context\": {…}})")),
        };
        context_from_json(&obj)
    } else {
        let q = query.unwrap_or_default();
        if q.len() > MAX_CONTEXT_BYTES {
            return Err(ApiError::bad_request(format!(
                "the query string is {} bytes; the limit is {MAX_CONTEXT_BYTES}",
                q.len()
            )));
        }
        context_from_query(&q)
    }
    .map_err(ApiError::bad_request)?;
    let ctx = in_token_environment(ctx, &a.view);
    let toggles: Vec<Value> =
        a.view.engine.resolve_all(&ctx).filter(|r| r.enabled).map(|r| frontend_toggle(&r)).collect();
    let body = Bytes::from(serde_json::to_vec(&json!({ "toggles": toggles })).expect("serialises"));
    let etag = short_etag(&body);
    if if_none_match(&headers, &etag) {
        return Ok(not_modified(&etag));
    }
    Ok(json_with_etag(body, &etag))
}

fn short_etag(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("\"{}\"", &hex::encode(Sha256::digest(body))[..32])
}

// ---------------------------------------------------------------------------------------
// Streaming

/// Unleash's delta events between two views of the same token's flags.
fn delta(old: &View, new: &View, event_id: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for f in &new.features.features {
        if old.features.features.iter().find(|o| o.name == f.name) != Some(f) {
            out.push(json!({"type": "feature-updated", "eventId": event_id, "feature": f}));
        }
    }
    for o in &old.features.features {
        if !new.features.features.iter().any(|f| f.name == o.name) {
            out.push(
                json!({"type": "feature-removed", "eventId": event_id, "featureName": o.name, "project": o.project}),
            );
        }
    }
    for s in &new.features.segments {
        if old.features.segments.iter().find(|o| o.id == s.id) != Some(s) {
            out.push(json!({"type": "segment-updated", "eventId": event_id, "segment": s}));
        }
    }
    for o in &old.features.segments {
        if !new.features.segments.iter().any(|s| s.id == o.id) {
            out.push(json!({"type": "segment-removed", "eventId": event_id, "segmentId": o.id}));
        }
    }
    out
}

/// `GET /api/client/streaming`: server-sent events in Unleash's streaming format — an
/// `unleash-connected` hydration, then `unleash-updated` deltas as flags change. The stream
/// ends when the token is revoked or the server shuts down.
pub async fn client_streaming(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let a = unleash_access(&state, &headers, &[SdkTokenKind::Client])?;
    let secret = secret(&headers).unwrap_or_default().to_owned();
    let mut changes = state.flags.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let flags = state.flags.clone();
    tokio::spawn(async move {
        let rev = flags.current().revision;
        let hydration = json!({"events": [{"type": "hydration", "eventId": rev,
            "features": a.view.features.features, "segments": a.view.features.segments}]});
        let first = format!("id: {rev}\nevent: unleash-connected\ndata: {hydration}\n\n");
        if tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        let mut view = a.view.clone();
        changes.borrow_and_update();
        loop {
            let woke = tokio::time::timeout(Duration::from_secs(15), changes.changed()).await;
            match woke {
                // A comment line keeps proxies from timing the stream out.
                Err(_) => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(Err(_)) => return,
                Ok(Ok(())) => {}
            }
            let rev = *changes.borrow_and_update();
            if rev == crate::flags::CLOSING {
                return;
            }
            let served = flags.current();
            let Some(now) = served.access(&secret).map(|a| a.view.clone()) else {
                let _ = tx.send(Bytes::from_static(b"event: end\ndata: {\"reason\": \"token revoked\"}\n\n")).await;
                return;
            };
            if std::sync::Arc::ptr_eq(&now, &view) {
                continue;
            }
            let events = delta(&view, &now, served.revision);
            view = now;
            if events.is_empty() {
                continue;
            }
            let data = json!({ "events": events });
            let chunk = format!("id: {}\nevent: unleash-updated\ndata: {data}\n\n", served.revision);
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::new(ChannelBody(rx)))
        .into_response())
}

// ---------------------------------------------------------------------------------------
// OFREP

/// An OFREP error answer: `{"key", "errorCode", "errorDetails"}` with the protocol's status.
struct OfrepError {
    status: StatusCode,
    key: Option<String>,
    code: &'static str,
    details: String,
}

impl IntoResponse for OfrepError {
    fn into_response(self) -> Response {
        let mut body = json!({"errorCode": self.code, "errorDetails": self.details});
        if let Some(k) = self.key {
            body["key"] = json!(k);
        }
        (self.status, Json(body)).into_response()
    }
}

fn ofrep_error(status: StatusCode, key: Option<&str>, code: &'static str, details: impl Into<String>) -> OfrepError {
    OfrepError { status, key: key.map(str::to_owned), code, details: details.into() }
}

fn ofrep_refusal(r: Refusal) -> Response {
    (r.status(), Json(json!({"errorDetails": r.detail()}))).into_response()
}

/// Reads OFREP's `{"context": {…}}` body (an empty body is an empty context).
fn ofrep_context(body: &Bytes, key: Option<&str>) -> Result<Context, OfrepError> {
    if body.len() > MAX_CONTEXT_BYTES {
        return Err(ofrep_error(
            StatusCode::BAD_REQUEST,
            key,
            "INVALID_CONTEXT",
            format!("the request is {} bytes; the limit is {MAX_CONTEXT_BYTES}", body.len()),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Context::default());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ofrep_error(StatusCode::BAD_REQUEST, key, "PARSE_ERROR", format!("malformed JSON: {e}")))?;
    let ctx = match v.get("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(ofrep_error(StatusCode::BAD_REQUEST, key, "INVALID_CONTEXT", "\"context\" must be an object"));
        }
    };
    context_from_json(&ctx).map_err(|e| ofrep_error(StatusCode::BAD_REQUEST, key, "INVALID_CONTEXT", e))
}

/// One flag's OFREP answer, its `value` always of the flag's one type ([`ValueType`]): whether
/// it is on for a flag without variants; for a flag with variants, the chosen variant's payload
/// or name. When a flag with variants is off, or on without a variant for this context, `value`
/// is left out (OFREP's deferral to the code's default, ADR 6), so a typed OpenFeature call
/// answers its default without a TYPE_MISMATCH.
fn ofrep_value(r: &Resolved<'_>, view: &View) -> Value {
    let flag = view.ofrep.get(r.name).copied().unwrap_or(OfrepFlag { enabled: false, value_type: ValueType::Boolean });
    let value = match flag.value_type {
        ValueType::Boolean => Some(json!(r.enabled)),
        _ if !r.variant.enabled => None,
        ValueType::VariantName => Some(json!(r.variant.name)),
        t => r.variant.payload.and_then(|p| match t {
            ValueType::Object => serde_json::from_str(&p.value).ok(),
            ValueType::Number => p.value.trim().parse::<f64>().ok().map(|n| json!(n)),
            _ => Some(json!(p.value)),
        }),
    };
    let variant = match flag.value_type {
        ValueType::Boolean if r.enabled => "on",
        ValueType::Boolean => "off",
        _ => r.variant.name,
    };
    let reason = match (flag.enabled, r.enabled, &value) {
        (false, _, _) => "DISABLED",
        (true, false, _) | (true, true, None) => "DEFAULT",
        (true, true, Some(_)) if flag.value_type == ValueType::Boolean => "TARGETING_MATCH",
        (true, true, Some(_)) => "SPLIT",
    };
    let mut answer = json!({"key": r.name, "reason": reason, "variant": variant,
        "metadata": {"environment": view.environment, "project": view.project, "valueType": flag.value_type.as_str()}});
    if let Some(v) = value {
        answer["value"] = v;
    }
    answer
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn ofrep_one(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let a = match access(&state, &headers, &[SdkTokenKind::Client, SdkTokenKind::Frontend]) {
        Ok(a) => a,
        Err(r) => return ofrep_refusal(r),
    };
    let ctx = match ofrep_context(&body, Some(&key)) {
        Ok(c) => in_token_environment(c, &a.view),
        Err(e) => return e.into_response(),
    };
    match a.view.engine.resolve(&key, &ctx) {
        Some(r) => Json(ofrep_value(&r, &a.view)).into_response(),
        None => ofrep_error(
            StatusCode::NOT_FOUND,
            Some(&key),
            "FLAG_NOT_FOUND",
            format!("flag {key:?} does not exist in project {:?}", a.view.project),
        )
        .into_response(),
    }
}

/// `POST /ofrep/v1/evaluate/flags`: every flag for a context, with an ETag.
pub async fn ofrep_bulk(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let a = match access(&state, &headers, &[SdkTokenKind::Client, SdkTokenKind::Frontend]) {
        Ok(a) => a,
        Err(r) => return ofrep_refusal(r),
    };
    let ctx = match ofrep_context(&body, None) {
        Ok(c) => in_token_environment(c, &a.view),
        Err(e) => return e.into_response(),
    };
    let flags: Vec<Value> = a.view.engine.resolve_all(&ctx).map(|r| ofrep_value(&r, &a.view)).collect();
    let body = Bytes::from(serde_json::to_vec(&json!({ "flags": flags })).expect("serialises"));
    let etag = short_etag(&body);
    if if_none_match(&headers, &etag) {
        return not_modified(&etag);
    }
    json_with_etag(body, &etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_contexts_read_like_unleash() {
        let c = context_from_query("userId=u%201&properties[plan]=pro&region=eu+west&sessionId=s").expect("ok");
        assert_eq!(c.user_id.as_deref(), Some("u 1"));
        assert_eq!(c.session_id.as_deref(), Some("s"));
        assert_eq!(c.properties.get("plan"), Some("pro"));
        assert_eq!(c.properties.get("region"), Some("eu west"));
        assert!(context_from_query("userId=%zz").is_err());
        assert!(context_from_query("userId=%4").is_err());
    }

    #[test]
    fn json_contexts_map_targeting_key_and_refuse_objects() {
        let m = json!({"targetingKey": "u1", "tier": 3, "beta": true, "properties": {"plan": "pro"}});
        let c = context_from_json(m.as_object().expect("object")).expect("ok");
        assert_eq!(c.user_id.as_deref(), Some("u1"));
        assert_eq!(c.properties.get("tier"), Some("3"));
        assert_eq!(c.properties.get("beta"), Some("true"));
        assert_eq!(c.properties.get("plan"), Some("pro"));
        let m = json!({"address": {"city": "x"}});
        assert!(context_from_json(m.as_object().expect("object")).expect_err("object").contains("\"address\""));
        let many: Map<String, Value> = (0..=MAX_PROPERTIES).map(|i| (format!("p{i}"), json!("x"))).collect();
        assert!(context_from_json(&many).expect_err("too many").contains("limit"));
    }
}
