//! Flags, segments, SDK tokens and usage on both backends.

use pave_model::flags::{Exposure, Flag, Segment};
use pave_store::{EventQuery, SdkToken, SdkTokenKind, StoreError, UsageCount};
use serde_json::{Value, json};

use super::{ctx, env, open};

fn flag(name: &str, spec: Value) -> Flag {
    Flag::from_value(json!({"kind": "Flag", "metadata": {"name": name}, "spec": spec})).expect("valid flag")
}

fn segment(name: &str) -> Segment {
    Segment::from_value(json!({"kind": "Segment", "metadata": {"name": name},
        "spec": {"constraints": [{"contextName": "plan", "operator": "IN", "values": ["beta"]}]}}))
    .expect("valid segment")
}

#[tokio::test]
async fn flags_are_checked_against_what_exists_and_never_stored_broken() {
    let (store, _db) = open().await;
    store
        .apply(
            &super::desired(vec![env("staging", 1, false), env("production", 2, true)]),
            &ctx(1),
            false,
            &pave_store::allow_all,
        )
        .await
        .expect("environments");
    let rev0 = store.flag_revision().await.expect("revision");
    let bad = flag(
        "checkout",
        json!({"dependencies": [{"feature": "missing"}],
        "environments": {"qa": {"enabled": true, "strategies": [{"name": "default", "segments": ["beta"]}]}}}),
    );
    let err = store.apply_flags(&[], &[bad], &ctx(2), false).await.expect_err("refused");
    let msg = err.to_string();
    for want in [
        "environment \"qa\" does not exist",
        "segment \"beta\" does not exist",
        "parent flag \"missing\" does not exist",
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    assert!(matches!(err, StoreError::Invalid(_)));
    assert!(store.flags(None, true).await.expect("list").is_empty(), "nothing stored");
    assert_eq!(store.flag_revision().await.expect("revision"), rev0);

    // The segment and the parent in the same request count as existing.
    let parent = flag("payments-v2", json!({"environments": {"production": {"enabled": true}}}));
    let child = flag(
        "checkout",
        json!({"type": "experiment", "dependencies": [{"feature": "payments-v2"}],
        "environments": {"production": {"enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": 30}, "segments": ["beta"]}]}}}),
    );
    let changes =
        store.apply_flags(&[segment("beta")], &[parent.clone(), child.clone()], &ctx(10), true).await.expect("dry run");
    assert_eq!(changes.iter().map(|c| c.action).collect::<Vec<_>>(), ["create", "create", "create"]);
    assert!(store.flags(None, true).await.expect("list").is_empty(), "a dry run stores nothing");

    store.apply_flags(&[segment("beta")], &[parent.clone(), child.clone()], &ctx(10), false).await.expect("apply");
    let rev1 = store.flag_revision().await.expect("revision");
    assert!(rev1 > rev0);
    let snap = store.flag_snapshot().await.expect("snapshot");
    assert_eq!(snap.revision, rev1);
    assert_eq!(snap.flags.len(), 2);
    assert_eq!(snap.segments[0].1.name(), "beta");
    let stored = store.flag("checkout").await.expect("get").expect("exists");
    assert_eq!(stored.exposure["production"], (Exposure::Partial, pave_model::Timestamp(10)));
    assert_eq!(stored.flag.spec.environments["production"].strategies[0].parameters["groupId"], "checkout");

    // The same again changes nothing and appends nothing.
    let events_before = store.event_count().await.expect("count");
    let again = store.apply_flags(&[segment("beta")], &[parent, child], &ctx(20), false).await.expect("again");
    assert!(again.iter().all(|c| c.action == "unchanged"), "{again:?}");
    assert_eq!(store.event_count().await.expect("count"), events_before);
    assert_eq!(store.flag_revision().await.expect("revision"), rev1);

    // A child's child would be two levels deep.
    let grandchild = flag("checkout-button", json!({"dependencies": [{"feature": "checkout"}]}));
    let err = store.apply_flags(&[], &[grandchild], &ctx(30), false).await.expect_err("two levels");
    assert!(err.to_string().contains("dependencies are one level deep"), "{err}");
    // Archiving a parent others depend on is refused.
    let err = store.set_flag_archived("payments-v2", true, &ctx(30)).await.expect_err("has children");
    assert!(err.to_string().contains("\"checkout\" depends on"), "{err}");
}

#[tokio::test]
async fn toggles_record_events_and_exposure_since_the_last_change() {
    let (store, _db) = open().await;
    store
        .apply(&super::desired(vec![env("production", 1, true)]), &ctx(1), false, &pave_store::allow_all)
        .await
        .expect("environment");
    let f = flag(
        "search",
        json!({"environments": {"production": {"enabled": false,
        "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": 100}}]}}}),
    );
    store.apply_flags(&[], &[f], &ctx(100), false).await.expect("create");
    let (stored, change) = store
        .modify_flag("search", &ctx(200), |f| {
            f.spec.environments.get_mut("production").expect("env").enabled = true;
            Ok(())
        })
        .await
        .expect("enable");
    assert_eq!(change.action, "update");
    assert_eq!(change.fields[0].path, "spec.environments.production.enabled");
    assert_eq!(stored.exposure["production"], (Exposure::On, pave_model::Timestamp(200)));
    // A change that leaves the exposure as it is keeps its `since`.
    let (stored, _) = store
        .modify_flag("search", &ctx(300), |f| {
            f.spec.description = Some("new search".into());
            Ok(())
        })
        .await
        .expect("describe");
    assert_eq!(stored.exposure["production"].1, pave_model::Timestamp(200));
    // An invalid change is refused and nothing is written.
    let err = store
        .modify_flag("search", &ctx(400), |f| {
            let s = &mut f.spec.environments.get_mut("production").expect("env").strategies[0];
            s.parameters.insert("rollout".into(), "101".into());
            Ok(())
        })
        .await
        .expect_err("bad rollout");
    assert!(err.to_string().contains("not a whole percentage"), "{err}");
    assert_eq!(store.flag("search").await.expect("get").expect("exists").updated_at.0, 300);

    let events = store
        .events(&EventQuery { kinds: vec!["flag.*".into()], limit: 100, ..Default::default() })
        .await
        .expect("events");
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["flag.created", "flag.updated", "flag.updated"]);
    assert_eq!(events[1].data["environments"][0]["enabled"], true);
    assert_eq!(events[1].data["environments"][0]["enabledBefore"], false);
    assert_eq!(events[1].subject, "flag/search");

    // Archived flags are not served and cannot change until revived.
    store.set_flag_archived("search", true, &ctx(500)).await.expect("archive");
    assert!(store.flag_snapshot().await.expect("snapshot").flags.is_empty());
    let err = store.modify_flag("search", &ctx(600), |_| Ok(())).await.expect_err("archived");
    assert!(err.to_string().contains("archived"), "{err}");
    store.set_flag_archived("search", false, &ctx(700)).await.expect("revive");
    assert_eq!(store.flag_snapshot().await.expect("snapshot").flags.len(), 1);

    // The same changes as delivery facts, by time window.
    let t = pave_model::Timestamp;
    let changes = store.flag_changes(t(150), t(700), 100).await.expect("flag changes");
    let seen: Vec<_> = changes.iter().map(|c| (c.at.0, c.action.as_str(), c.environments.len())).collect();
    assert_eq!(seen, [(200, "updated", 1), (300, "updated", 0), (500, "archived", 0)]);
    let on = &changes[0].environments[0];
    assert_eq!((on.environment.as_str(), on.enabled, on.enabled_before), ("production", true, Some(false)));
    assert_eq!((on.exposure.as_str(), on.exposure_before.as_deref()), ("on", Some("off")));
    assert_eq!((changes[0].flag.as_str(), changes[0].project.as_str()), ("search", "default"));
    assert_eq!(store.flag_changes(t(0), t(1000), 2).await.expect("limited").len(), 2);
}

#[tokio::test]
async fn usage_accumulates_and_tokens_are_scoped() {
    let (store, _db) = open().await;
    store
        .apply(&super::desired(vec![env("production", 1, true)]), &ctx(1), false, &pave_store::allow_all)
        .await
        .expect("environment");
    let count = |yes, no, v: &[(&str, i64)]| UsageCount {
        flag: "search".into(),
        yes,
        no,
        variants: v.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
    };
    store.record_flag_usage("production", &[count(3, 1, &[("blue", 2), ("red", 1)])], 1000).await.expect("usage");
    store.record_flag_usage("production", &[count(5, 0, &[("blue", 5)])], 2000).await.expect("usage");
    let usage = store.flag_usage(Some("search")).await.expect("usage");
    let u = &usage["search"][0];
    assert_eq!((u.yes, u.no, u.first_seen.0, u.last_seen.0), (8, 1, 1000, 2000));
    assert_eq!(u.variants["blue"], 7);
    assert_eq!(u.variants["red"], 1);

    let token = |env: &str| SdkToken {
        id: "sdk_1".into(),
        name: "web".into(),
        kind: SdkTokenKind::Client,
        project: "default".into(),
        environment: env.into(),
        hash: "h1".into(),
        created_at: pave_model::Timestamp(0),
        created_by: String::new(),
        revoked_at: None,
    };
    let err = store.create_sdk_token(&token("qa"), &ctx(1)).await.expect_err("unknown environment");
    assert!(err.to_string().contains("environment \"qa\" does not exist"), "{err}");
    store.create_sdk_token(&token("production"), &ctx(1)).await.expect("token");
    assert_eq!(store.flag_snapshot().await.expect("snapshot").tokens.len(), 1);
    store.revoke_sdk_token("sdk_1", &ctx(2)).await.expect("revoke");
    assert!(store.flag_snapshot().await.expect("snapshot").tokens.is_empty());
}

/// Issue 16 item 2: of concurrent creates of one name, exactly one is stored; the others are
/// conflicts, and the log holds one `flag.created` and no `flag.updated`.
#[tokio::test]
async fn concurrent_creates_of_one_flag_make_one() {
    let (store, _db) = open().await;
    store
        .apply(&super::desired(vec![env("staging", 1, false)]), &ctx(1), false, &pave_store::allow_all)
        .await
        .expect("environments");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let f = flag(
                "race",
                json!({"description": format!("writer {i}"), "environments": {"staging": {"enabled": true}}}),
            );
            store.create_flag(&f, &ctx(10 + i)).await
        }));
    }
    let (mut created, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(change) => {
                assert_eq!(change.action, "create");
                created += 1;
            }
            Err(StoreError::Conflict(m)) => {
                assert!(m.contains("already exists"), "{m}");
                conflicts += 1;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((created, conflicts), (1, 19));
    let events = store
        .events(&EventQuery { after: 0, kinds: vec!["flag.*".into()], subject: None, limit: 100 })
        .await
        .expect("events");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["flag.created"], "{kinds:?}");
}
