//! Store conformance tests. Each runs against SQLite, and against PostgreSQL too when
//! `PAVE_TEST_DATABASE_URL` is set (CI sets it), so both backends are proven to behave alike.

mod flags;
mod secrets;
mod tokens;

use pave_model::apply::Request;
use pave_model::{Action, Kind, Resource, Role, Selector};
use pave_store::testing::{TestDatabase, fresh};
use pave_store::{AuditQuery, EventQuery, NewAuditEntry, NewToken, Store, StoreError, WriteContext, allow_all};
use serde_json::json;

async fn open() -> (Store, TestDatabase) {
    let db = fresh().await;
    let store = Store::open(&db.options).await.expect("open store");
    assert_eq!(store.backend_name(), db.backend());
    (store, db)
}

fn ctx(now: i64) -> WriteContext {
    WriteContext { actor: "tester".into(), request_id: Some("req-1".into()), now }
}

fn team(name: &str) -> Resource {
    Resource::from_value(json!({"kind": "Team", "metadata": {"name": name, "labels": {"repo": "a"}},
        "spec": {"type": "stream-aligned", "members": ["ana"]}}))
    .expect("team")
}

fn service(name: &str, owner: &str, deps: &[&str]) -> Resource {
    Resource::from_value(json!({"kind": "Service", "metadata": {"name": name, "labels": {"repo": "a"}},
        "spec": {"owner": owner, "dependsOn": deps, "tier": 2}}))
    .expect("service")
}

fn env(name: &str, order: u32, production: bool) -> Resource {
    Resource::from_value(json!({"kind": "Environment", "metadata": {"name": name},
        "spec": {"order": order, "production": production}}))
    .expect("environment")
}

fn desired(rs: Vec<Resource>) -> Request {
    Request { desired: rs, ..Default::default() }
}

#[tokio::test]
async fn apply_is_transactional_and_idempotent() {
    let (store, _db) = open().await;
    let req = desired(vec![
        team("core"),
        service("web", "core", &["api"]),
        service("api", "core", &[]),
        env("staging", 1, false),
        env("prod", 2, true),
    ]);
    let (plan, ids) = store.apply(&req, &ctx(1000), false, &allow_all).await.expect("apply");
    assert_eq!(plan.count(Action::Create), 5);
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "event ids increase: {ids:?}");

    // Same request again: nothing changes and no event is appended.
    let before = store.event_count().await.expect("count");
    let (plan, ids) = store.apply(&req, &ctx(2000), false, &allow_all).await.expect("apply again");
    assert!(plan.is_noop());
    assert!(ids.is_empty());
    assert_eq!(store.event_count().await.expect("count"), before);

    let web = store.get(Kind::Service, "web").await.expect("get").expect("web exists");
    assert_eq!(web.created_at.0, 1000);
    let envs = store.list(Kind::Environment, &Default::default()).await.expect("list");
    assert_eq!(envs.iter().map(|e| e.resource.name()).collect::<Vec<_>>(), ["staging", "prod"]);
}

#[tokio::test]
async fn update_records_changed_fields_and_keeps_created_at() {
    let (store, _db) = open().await;
    store
        .apply(&desired(vec![team("core"), service("api", "core", &[])]), &ctx(1000), false, &allow_all)
        .await
        .expect("apply");
    let mut changed = service("api", "core", &[]);
    if let Resource::Service(s) = &mut changed {
        s.spec.tier = Some(1);
    }
    let (plan, ids) = store.apply(&desired(vec![changed]), &ctx(5000), false, &allow_all).await.expect("update");
    assert_eq!(plan.changes[0].action, Action::Update);
    let events =
        store.events(&EventQuery { after: ids[0] - 1, limit: 10, ..Default::default() }).await.expect("events");
    assert_eq!(events[0].kind, "service.updated");
    assert_eq!(events[0].data["changes"][0]["path"], "spec.tier");
    assert_eq!(events[0].actor, "tester");
    assert_eq!(events[0].request_id.as_deref(), Some("req-1"));
    let api = store.get(Kind::Service, "api").await.expect("get").expect("exists");
    assert_eq!((api.created_at.0, api.updated_at.0), (1000, 5000));
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let (store, _db) = open().await;
    let (plan, ids) = store.apply(&desired(vec![team("core")]), &ctx(1), true, &allow_all).await.expect("dry run");
    assert_eq!(plan.count(Action::Create), 1);
    assert!(ids.is_empty());
    assert!(store.get(Kind::Team, "core").await.expect("get").is_none());
    assert_eq!(store.event_count().await.expect("count"), 0);
}

#[tokio::test]
async fn refused_apply_leaves_everything_as_it_was() {
    let (store, _db) = open().await;
    store.apply(&desired(vec![team("core")]), &ctx(1), false, &allow_all).await.expect("apply");
    // One good service and one pointing at a missing team: all or nothing.
    let err = store
        .apply(&desired(vec![service("good", "core", &[]), service("bad", "ghost", &[])]), &ctx(2), false, &allow_all)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("team \"ghost\" does not exist"), "{err}");
    assert!(store.get(Kind::Service, "good").await.expect("get").is_none());
    assert_eq!(store.event_count().await.expect("count"), 1);
}

#[tokio::test]
async fn prune_and_reference_conflicts() {
    let (store, _db) = open().await;
    let all = vec![team("core"), service("api", "core", &[]), service("web", "core", &["api"])];
    store.apply(&desired(all), &ctx(1), false, &allow_all).await.expect("apply");

    // Deleting a team that still owns services is refused, naming them.
    let req = Request { deletes: vec![(Kind::Team, "core".into())], ..Default::default() };
    let err = store.apply(&req, &ctx(2), false, &allow_all).await.expect_err("conflict");
    assert!(matches!(err, StoreError::Plan(pave_model::PlanError::Conflict(_))), "{err}");

    // Declaring only the team with prune removes both services (they depend only on each other).
    let req = Request {
        desired: vec![team("core")],
        prune: Some(Selector::parse("repo=a").expect("sel")),
        ..Default::default()
    };
    let (plan, _) = store.apply(&req, &ctx(3), false, &allow_all).await.expect("prune");
    assert_eq!(plan.count(Action::Delete), 2);
    assert_eq!(store.count(Kind::Service).await.expect("count"), 0);
    let events =
        store.events(&EventQuery { kinds: vec!["service.deleted".into()], limit: 10, ..Default::default() }).await;
    assert_eq!(events.expect("events").len(), 2);
}

#[tokio::test]
async fn targeted_delete_of_a_depended_on_service_is_refused() {
    let (store, _db) = open().await;
    let all = vec![team("core"), service("api", "core", &[]), service("web", "core", &["api"])];
    store.apply(&desired(all), &ctx(1), false, &allow_all).await.expect("apply");
    let req = Request { deletes: vec![(Kind::Service, "api".into())], ..Default::default() };
    let err = store.apply(&req, &ctx(2), false, &allow_all).await.expect_err("conflict");
    assert_eq!(err.to_string(), "cannot delete: service \"web\" still depends on service \"api\"");
    let req =
        Request { deletes: vec![(Kind::Service, "web".into()), (Kind::Service, "api".into())], ..Default::default() };
    store.apply(&req, &ctx(3), false, &allow_all).await.expect("delete both");
    assert_eq!(store.count(Kind::Service).await.expect("count"), 0);
}

#[tokio::test]
async fn events_page_and_filter() {
    let (store, _db) = open().await;
    let many: Vec<Resource> =
        std::iter::once(team("core")).chain((0..30).map(|i| service(&format!("s{i:02}"), "core", &[]))).collect();
    store.apply(&desired(many), &ctx(1), false, &allow_all).await.expect("apply");
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .events(&EventQuery { after, kinds: vec!["service.*".into()], limit: 7, ..Default::default() })
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        after = page.last().expect("non-empty").id;
        seen.extend(page.into_iter().map(|e| e.subject));
    }
    assert_eq!(seen.len(), 30);
    assert_eq!(seen[0], "service/s00");
    let teams =
        store.events(&EventQuery { kinds: vec!["team.created".into()], limit: 100, ..Default::default() }).await;
    assert_eq!(teams.expect("events").len(), 1);
    let one = store.events(&EventQuery { subject: Some("service/s07".into()), limit: 100, ..Default::default() }).await;
    assert_eq!(one.expect("events").len(), 1);
}

#[tokio::test]
async fn tokens_bootstrap_once_and_revoke() {
    let (store, _db) = open().await;
    let t = |id: &str, role| NewToken {
        id: id.into(),
        name: id.into(),
        role,
        scope: pave_model::auth::Scope::Unscoped,
        hash: format!("hash-{id}"),
    };
    assert!(store.bootstrap_token(&t("admin", Role::Admin), &ctx(1)).await.expect("bootstrap"));
    assert!(!store.bootstrap_token(&t("admin2", Role::Admin), &ctx(1)).await.expect("second bootstrap"));
    store.create_token(&t("ci", Role::Developer), &ctx(2)).await.expect("create");
    let err = store.create_token(&t("ci", Role::Developer), &ctx(2)).await.expect_err("duplicate name");
    assert!(matches!(err, StoreError::Conflict(_)));
    let found = store.token_by_hash("hash-ci").await.expect("lookup").expect("found");
    assert_eq!(found.role, Role::Developer);
    store.revoke_token("ci", &ctx(3)).await.expect("revoke");
    let found = store.token_by_hash("hash-ci").await.expect("lookup").expect("still listed");
    assert_eq!(found.revoked_at.map(|t| t.0), Some(3));
    assert!(store.revoke_token("nope", &ctx(3)).await.is_err());
    assert_eq!(store.list_tokens().await.expect("list").len(), 2);
    let kinds: Vec<String> = store
        .events(&EventQuery { limit: 10, ..Default::default() })
        .await
        .expect("ev")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["token.created", "token.created", "token.revoked"]);
}

#[tokio::test]
async fn audit_is_newest_first_and_filterable() {
    let (store, _db) = open().await;
    for (i, outcome) in ["allowed", "denied", "allowed"].iter().enumerate() {
        store
            .append_audit(&NewAuditEntry {
                time: i as i64,
                actor: format!("a{i}"),
                role: None,
                action: "POST /api/v1/teams".into(),
                target: "/api/v1/teams".into(),
                outcome: outcome.to_string(),
                status: 201,
                request_id: format!("r{i}"),
                detail: Some(json!({"n": i})),
            })
            .await
            .expect("append");
    }
    let all = store.audit(&AuditQuery { limit: 10, ..Default::default() }).await.expect("audit");
    assert_eq!(all.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(), ["a2", "a1", "a0"]);
    let denied = store.audit(&AuditQuery { outcome: Some("denied".into()), limit: 10, ..Default::default() }).await;
    assert_eq!(denied.expect("audit").len(), 1);
    let older = store.audit(&AuditQuery { before: Some(all[0].id), limit: 1, ..Default::default() }).await;
    assert_eq!(older.expect("audit")[0].actor, "a1");
}

#[tokio::test]
async fn reopening_applies_no_migration_twice() {
    let db = fresh().await;
    let store = Store::open(&db.options).await.expect("open");
    store.apply(&desired(vec![team("core")]), &ctx(1), false, &allow_all).await.expect("apply");
    store.close().await;
    let again = Store::open(&db.options).await.expect("reopen");
    assert!(again.get(Kind::Team, "core").await.expect("get").is_some());
}

#[tokio::test]
async fn concurrent_writers_keep_event_order_consistent() {
    // Two stores on one database stand for two `pave serve` replicas.
    let db = fresh().await;
    let a = Store::open(&db.options).await.expect("open a");
    let b = Store::open(&db.options).await.expect("open b");
    a.apply(&desired(vec![team("core")]), &ctx(1), false, &allow_all).await.expect("team");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.apply(&desired(vec![service(&format!("svc{i}"), "core", &[])]), &ctx(10 + i), false, &allow_all).await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("apply");
    }
    assert_eq!(a.count(Kind::Service).await.expect("count"), 20);
    let events = b.events(&EventQuery { limit: 100, ..Default::default() }).await.expect("events");
    assert_eq!(events.len(), 21);
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
}

#[tokio::test]
async fn delivery_facts_are_idempotent_and_readable_since_a_sequence() {
    use pave_model::delivery::Report;
    let (store, _db) = open().await;
    store
        .apply(&desired(vec![team("core"), service("api", "core", &[])]), &ctx(1), false, &allow_all)
        .await
        .expect("catalog");
    let dep = |id: &str, status: &str| {
        Report::from_value(
            json!({"type": "deployment", "id": id, "service": "api", "environment": "prod", "version": "1",
            "startedAt": "2024-01-01T00:00:00Z", "finishedAt": "2024-01-01T00:01:00Z", "status": status}),
        )
        .expect("valid")
    };
    let actions = store.report(&[dep("d1", "succeeded"), dep("d2", "failed")], &ctx(2)).await.expect("report");
    assert_eq!(actions, [pave_store::ReportAction::Created, pave_store::ReportAction::Created]);
    let all = store.delivery_facts(&[]).await.expect("facts");
    assert_eq!(all.deployments.len(), 2);
    let seq = store.delivery_seq().await.expect("seq");
    assert_eq!(seq, all.seq);
    // The same facts again: nothing changes, the sequence stays.
    let actions = store.report(&[dep("d1", "succeeded")], &ctx(3)).await.expect("again");
    assert_eq!(actions, [pave_store::ReportAction::Unchanged]);
    assert_eq!(store.delivery_seq().await.expect("seq"), seq);
    // A changed fact moves past the sequence, alone.
    store.report(&[dep("d1", "rolled-back")], &ctx(4)).await.expect("update");
    let delta = store.delivery_changes_since(seq, &[]).await.expect("since");
    assert_eq!(delta.deployments.len(), 1);
    assert_eq!(delta.deployments[0].id, "d1");
    assert!(delta.seq > seq);
    // Unknown services refuse the whole batch.
    let bad = Report::from_value(
        json!({"type": "incident", "id": "i", "service": "ghost", "openedAt": "2024-01-01T00:00:00Z"}),
    )
    .expect("valid shape");
    assert!(matches!(store.report(&[bad], &ctx(5)).await, Err(StoreError::Invalid(_))));
}
