//! Secrets and release scans in the store: versions that keep counting, a revision that moves
//! on every change (removals too), listings without values, and secrets that leave with their
//! service.

use pave_model::Kind;
use pave_model::apply::Request;
use pave_model::policy::{ReleaseScans, SbomInfo, ScanOrigin};
use pave_model::release::Release;
use pave_model::{Resource, Timestamp};
use pave_store::{StoreError, allow_all};

use super::{ctx, desired, env, open, service, team};

fn sealed(tag: &'static str) -> impl Fn(i64) -> Result<String, String> + Sync {
    move |version| Ok(format!("pave1:k-test:{tag}-v{version}"))
}

#[tokio::test]
async fn secrets_version_revise_list_without_values_and_leave_with_their_service() {
    let (store, _db) = open().await;
    let docs = desired(vec![team("core"), env("dev", 1, false), service("shop", "core", &[])]);
    store.apply(&docs, &ctx(1), false, &allow_all).await.expect("apply");
    assert_eq!(store.sealed_secrets("shop", "dev").await.expect("read").revision, 0);

    let a = store.set_secret("shop", "dev", "DB_PASSWORD", "k-test", &sealed("a"), &ctx(10)).await.expect("set");
    assert_eq!((a.version, a.created_by.as_str()), (1, "tester"));
    let b = store.set_secret("shop", "dev", "DB_PASSWORD", "k-test", &sealed("b"), &ctx(20)).await.expect("set");
    assert_eq!((b.version, b.created_at, b.updated_at), (2, Timestamp(10), Timestamp(20)));
    store.set_secret("shop", "dev", "API_KEY", "k-test", &sealed("c"), &ctx(30)).await.expect("set");
    let set = store.sealed_secrets("shop", "dev").await.expect("read");
    assert_eq!(set.secrets.len(), 2);
    assert_eq!(set.secrets[1].sealed, "pave1:k-test:b-v2", "the sealed value of the version written");
    let rev = set.revision;
    assert!(rev > 0);
    assert_eq!(store.secret_revisions().await.expect("revisions")[&("shop".into(), "dev".into())], rev);

    // Removal: gone from listings, the revision moves, the count continues on a later set.
    store.remove_secret("shop", "dev", "API_KEY", &ctx(40)).await.expect("rm");
    let after = store.sealed_secrets("shop", "dev").await.expect("read");
    assert_eq!(after.secrets.len(), 1);
    assert!(after.revision > rev);
    let err = store.remove_secret("shop", "dev", "API_KEY", &ctx(41)).await.expect_err("twice");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let again = store.set_secret("shop", "dev", "API_KEY", "k-test", &sealed("d"), &ctx(50)).await.expect("set");
    assert_eq!((again.version, again.created_at), (2, Timestamp(50)));
    let listed = store.secrets(Some("shop"), None).await.expect("list");
    assert_eq!(
        listed.iter().map(|s| (s.name.as_str(), s.version)).collect::<Vec<_>>(),
        [("API_KEY", 2), ("DB_PASSWORD", 2)]
    );

    // Unknown service or environment; a sealing failure writes nothing.
    for (svc, e) in [("nope", "dev"), ("shop", "nope")] {
        let err = store.set_secret(svc, e, "X", "k-test", &sealed("x"), &ctx(60)).await.expect_err("unknown");
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }
    let fail = |_: i64| Err::<String, String>("no randomness".into());
    assert!(store.set_secret("shop", "dev", "X", "k-test", &fail, &ctx(61)).await.is_err());
    assert_eq!(store.secrets(None, None).await.expect("list").len(), 2);
    let kinds: Vec<String> = store
        .events(&pave_store::EventQuery { kinds: vec!["secret.*".into()], limit: 100, ..Default::default() })
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["secret.set", "secret.set", "secret.set", "secret.removed", "secret.set"]);

    // A deleted service takes its secrets along.
    let del = Request { deletes: vec![(Kind::Service, "shop".into())], ..Default::default() };
    store.apply(&del, &ctx(70), false, &allow_all).await.expect("delete");
    assert!(store.secrets(None, None).await.expect("list").is_empty());
    assert_eq!(store.sealed_secrets("shop", "dev").await.expect("read").revision, 0);
}

#[tokio::test]
async fn release_scans_attach_replace_and_need_their_release() {
    let (store, _db) = open().await;
    let svc: Resource = service("shop", "core", &[]);
    store.apply(&desired(vec![team("core"), svc]), &ctx(1), false, &allow_all).await.expect("apply");
    let origin = ScanOrigin { at: Timestamp(5), by: "ci".into(), source: "upload".into(), tool: "pave".into() };
    let sbom = |components| ReleaseScans {
        sbom: Some(SbomInfo {
            origin: origin.clone(),
            format: "CycloneDX 1.5".into(),
            components,
            digest: "sha256:x".into(),
        }),
        ..Default::default()
    };
    let err = store.attach_scans("shop", "1.0.0", &sbom(1), Some("{}"), &ctx(2)).await.expect_err("no release");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let r = Release {
        service: "shop".into(),
        version: "1.0.0".into(),
        digest: "sha256:abc".into(),
        commit: None,
        files: 1,
        bytes: 1,
        created_at: Timestamp(0),
        created_by: String::new(),
    };
    store.create_release(&r, &ctx(3)).await.expect("release");
    let got = store.attach_scans("shop", "1.0.0", &sbom(3), Some("{\"a\":1}"), &ctx(4)).await.expect("attach");
    assert_eq!(got.sbom.as_ref().map(|b| b.components), Some(3));
    let got = store.attach_scans("shop", "1.0.0", &sbom(7), Some("{\"a\":2}"), &ctx(5)).await.expect("replace");
    assert_eq!((got.sbom.map(|b| b.components), got.secrets), (Some(7), None));
    assert_eq!(store.release_sbom("shop", "1.0.0").await.expect("sbom").as_deref(), Some("{\"a\":2}"));
    let empty = store.attach_scans("shop", "1.0.0", &ReleaseScans::default(), None, &ctx(6)).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))));
}

#[tokio::test]
async fn the_first_master_key_id_is_recorded_and_kept_until_a_rotation_moves_it() {
    let (store, _db) = open().await;
    assert_eq!(store.claim_master_key("k-a", 1).await.expect("claim"), "k-a");
    assert_eq!(store.claim_master_key("k-b", 2).await.expect("claim"), "k-a", "the first one stays");
    store.set_master_key("k-b", 3).await.expect("rotate");
    assert_eq!(store.claim_master_key("k-c", 4).await.expect("claim"), "k-b");
}
