//! The engine's logic, one step at a time, over a fake runtime and a fake router: a real
//! store (SQLite in a temporary directory, or PostgreSQL under `PAVE_TEST_DATABASE_URL`), a
//! frozen clock, no process and no socket. The end-to-end tests in `crates/pave/tests/it`
//! prove the real thing; these prove the logic, in milliseconds.

use pave_model::auth::Role;
use pave_model::clock::ManualClock;
use pave_model::rollout::Strategy;
use pave_router::fake::FakeRouter;
use pave_runtime::fake::FakeRuntime;
use serde_json::Value;

use super::*;
use crate::commands::{Actor, DeployRequest};

const T0: i64 = 1_800_000_000_000;

struct Fixture {
    _db: pave_store::testing::TestDatabase,
    _artifacts: tempfile::TempDir,
    store: Store,
    runtime: FakeRuntime,
    router: Arc<FakeRouter>,
    clock: Arc<ManualClock>,
    config: EngineConfig,
    engine: Arc<Engine<FakeRuntime>>,
}

fn admin() -> Actor {
    Actor { name: "alice".into(), role: Role::Admin, request_id: None }
}

impl Fixture {
    /// A store holding service `shop` (`replicas` replicas, `rollout` as its rollout spec) in
    /// environment `dev`, releases 1.0.0 to 3.0.0 with real artifacts, and an engine that holds
    /// the lease.
    async fn new(rollout: Value, replicas: u32) -> Fixture {
        let db = pave_store::testing::fresh().await;
        let store = Store::open(&db.options).await.expect("store");
        let clock = Arc::new(ManualClock::new(T0));
        let ctx = WriteContext { actor: "test".into(), request_id: None, now: T0 };
        let docs = [
            json!({"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}}),
            json!({"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}}),
            json!({"kind": "Service", "metadata": {"name": "shop"}, "spec": {"owner": "core",
                "runtime": {"command": "shop", "replicas": replicas,
                            "healthCheck": {"path": "/healthz", "interval": "100ms", "timeout": "100ms", "healthyThreshold": 1}},
                "rollout": rollout}}),
        ];
        let request = pave_model::apply::Request {
            desired: docs.into_iter().map(|d| Resource::from_value(d).expect("a resource")).collect(),
            ..Default::default()
        };
        store.apply(&request, &ctx, false, &|_, _| Ok(())).await.expect("apply");
        let artifacts = tempfile::tempdir().expect("tempdir");
        let shelf = ArtifactStore::new(artifacts.path());
        for version in ["1.0.0", "2.0.0", "3.0.0"] {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join("VERSION"), version).expect("write");
            let mut tar = Vec::new();
            pave_artifacts::pack(dir.path(), &mut tar).expect("pack");
            let stored = shelf.put_tar(&tar[..], pave_artifacts::Limits::bytes(1 << 20)).expect("store artifact");
            let release = pave_model::release::Release {
                service: "shop".into(),
                version: version.into(),
                digest: stored.digest,
                commit: None,
                files: stored.files,
                bytes: stored.bytes,
                created_at: Timestamp(T0),
                created_by: "test".into(),
            };
            store.create_release(&release, &ctx).await.expect("release");
        }
        let mut config = EngineConfig::new(artifacts.path(), "test/1/1/x");
        config.router_ports = 7800..=7810;
        config.clock = clock.clone();
        let runtime = FakeRuntime::new();
        let router = Arc::new(FakeRouter::new());
        let engine = Engine::new(store.clone(), runtime.clone(), RouterHandle::new(router.clone()), config.clone());
        engine.leader.store(true, Ordering::SeqCst);
        Fixture { _db: db, _artifacts: artifacts, store, runtime, router, clock, config, engine }
    }

    async fn deploy(&self, version: &str, strategy: Option<Strategy>) -> i64 {
        let req = DeployRequest {
            service: "shop".into(),
            environment: "dev".into(),
            version: version.into(),
            strategy,
            override_reason: None,
        };
        crate::commands::deploy(&self.store, &req, &admin(), self.clock.now_ms()).await.expect("deploy").rollout.id
    }

    /// Ticks rollout `id` until it stops, checking after every step that the router routes
    /// exactly what the stored desired state says, to healthy replicas only.
    async fn run(&self, id: i64) -> Rollout {
        for _ in 0..100 {
            let tick = self.engine.tick(id).await;
            self.check_router().await;
            if tick == Tick::Stop {
                return self.store.rollout(id).await.expect("read").expect("rollout");
            }
        }
        panic!("rollout {id} did not stop within 100 ticks");
    }

    async fn check_router(&self) {
        let Some(state) = self.store.route_state("shop", "dev").await.expect("route") else { return };
        let table = self.router.table("shop", "dev").expect("the router serves the route");
        let running = self.runtime.running();
        let want: Vec<(String, u8, usize)> = state
            .versions
            .iter()
            .map(|v| {
                let n = running.iter().filter(|i| i.version == v.version && i.replica < v.replicas).count();
                (v.version.clone(), v.weight, n)
            })
            .collect();
        let got: Vec<(String, u8, usize)> =
            table.versions.iter().map(|v| (v.version.clone(), v.weight, v.backends.len())).collect();
        // A version with no share and no replica routes nothing, listed or not.
        let live =
            |v: &Vec<(String, u8, usize)>| v.iter().filter(|(_, w, n)| *w > 0 || *n > 0).cloned().collect::<Vec<_>>();
        let (got, want) = (live(&got), live(&want));
        assert_eq!(got, want, "router table vs desired state {state:?}");
    }

    fn versions_running(&self) -> Vec<String> {
        let mut v: Vec<String> = self.runtime.running().into_iter().map(|i| i.version).collect();
        v.sort();
        v
    }

    async fn kinds(&self) -> Vec<String> {
        let q = pave_store::EventQuery { after: 0, kinds: vec![], subject: None, limit: 1000 };
        self.store.events(&q).await.expect("events").into_iter().map(|e| e.kind).collect()
    }

    fn serving(&self) -> Vec<(String, u8)> {
        let table = self.router.table("shop", "dev").unwrap_or_default();
        table.versions.into_iter().filter(|v| v.weight > 0).map(|v| (v.version, v.weight)).collect()
    }
}

#[tokio::test]
async fn every_strategy_runs_step_by_step_to_the_new_version() {
    let canary = json!({"strategy": "canary", "steps": [{"setWeight": 5}, {"setWeight": 50}]});
    for (rollout, strategy) in [
        (json!({"strategy": "recreate"}), None),
        (json!({"strategy": "rolling"}), None),
        (json!({"strategy": "blue-green", "keepWarm": "0s"}), None),
        (canary, None),
    ] {
        let f = Fixture::new(rollout.clone(), 3).await;
        let first = f.run(f.deploy("1.0.0", Some(Strategy::Rolling)).await).await;
        assert_eq!(first.state, RolloutState::Succeeded, "{rollout}");
        assert_eq!(f.serving(), [("1.0.0".to_owned(), 100)]);
        let id = f.deploy("2.0.0", strategy).await;
        let done = f.run(id).await;
        assert_eq!(done.state, RolloutState::Succeeded, "{rollout}: {done:?}");
        assert_eq!(done.step, done.steps.len());
        assert_eq!(f.serving(), [("2.0.0".to_owned(), 100)], "{rollout}");
        assert_eq!(f.versions_running(), ["2.0.0", "2.0.0", "2.0.0"], "{rollout}: the old version is stopped");
        let kinds = f.kinds().await;
        for k in ["deployment.started", "deployment.step", "route.switched", "replica.started", "replica.stopped"] {
            assert!(kinds.iter().any(|x| x == k), "{rollout}: no {k} in {kinds:?}");
        }
        let ended: Vec<&String> = kinds.iter().filter(|k| k.as_str() != "deployment.reported").collect();
        assert_eq!(ended.last().map(|k| k.as_str()), Some("deployment.succeeded"), "{rollout}: {kinds:?}");
        // Reported to DORA as a deployment finished at the frozen time.
        let facts = f.store.delivery_facts(&[]).await.expect("facts");
        let fact = facts.deployments.iter().find(|d| d.id == format!("pave-rollout-{id}")).expect("reported");
        assert_eq!(fact.finished_at, Timestamp(T0), "{rollout}");
    }
}

#[tokio::test]
async fn a_canary_takes_its_weights_in_order() {
    let f = Fixture::new(json!({"strategy": "canary", "steps": [{"setWeight": 5}, {"setWeight": 50}]}), 2).await;
    f.run(f.deploy("1.0.0", Some(Strategy::Rolling)).await).await;
    let id = f.deploy("2.0.0", None).await;
    let mut seen = Vec::new();
    loop {
        let tick = f.engine.tick(id).await;
        let s = f.serving();
        if seen.last() != Some(&s) {
            seen.push(s);
        }
        if tick == Tick::Stop {
            break;
        }
    }
    let w = |a: u8, b: u8| {
        let mut v = vec![];
        if b > 0 {
            v.push(("1.0.0".to_owned(), b));
        }
        if a > 0 {
            v.push(("2.0.0".to_owned(), a));
        }
        v.sort();
        v
    };
    let seen: Vec<Vec<(String, u8)>> = seen
        .into_iter()
        .map(|mut s| {
            s.sort();
            s
        })
        .collect();
    assert_eq!(seen, [w(0, 100), w(5, 95), w(50, 50), w(100, 0)]);
}

#[tokio::test]
async fn a_release_that_never_becomes_healthy_is_reverted_and_the_old_one_keeps_serving() {
    let f = Fixture::new(json!({"strategy": "rolling"}), 2).await;
    f.run(f.deploy("1.0.0", None).await).await;
    f.runtime.fail_health("2.0.0", "/healthz answered 503");
    let done = f.run(f.deploy("2.0.0", None).await).await;
    assert_eq!(done.state, RolloutState::Failed, "{done:?}");
    assert!(done.reason.as_deref().is_some_and(|r| r.contains("answered 503")), "{:?}", done.reason);
    assert_eq!(f.serving(), [("1.0.0".to_owned(), 100)]);
    assert_eq!(f.versions_running(), ["1.0.0", "1.0.0"]);
    let kinds = f.kinds().await;
    assert!(kinds.iter().any(|k| k == "deployment.rolling-back"), "{kinds:?}");
    let ended: Vec<&String> = kinds.iter().filter(|k| k.as_str() != "deployment.reported").collect();
    assert_eq!(ended.last().map(|k| k.as_str()), Some("deployment.failed"), "{kinds:?}");
}

#[tokio::test]
async fn a_router_that_does_not_answer_holds_the_step_and_reverts_nothing() {
    let f = Fixture::new(json!({"strategy": "blue-green", "keepWarm": "0s"}), 1).await;
    f.run(f.deploy("1.0.0", None).await).await;
    let id = f.deploy("2.0.0", None).await;
    // Scale the new colour, then the router goes away before the switch.
    assert_eq!(f.engine.tick(id).await, Tick::Again);
    f.router.set_unreachable(true);
    let tick = f.engine.tick(id).await;
    assert!(matches!(tick, Tick::Wait(_)), "{tick:?}");
    let r = f.store.rollout(id).await.expect("read").expect("rollout");
    assert_eq!((r.state, r.step), (RolloutState::Progressing, 1), "held at the switch, not reverted");
    f.router.set_unreachable(false);
    f.engine.check_router(true).await;
    assert_eq!(f.run(id).await.state, RolloutState::Succeeded);
    assert_eq!(f.serving(), [("2.0.0".to_owned(), 100)]);
}

/// The engine stores the desired state before it acts on it. A control plane that dies in
/// between (here: the switch stored, the router never told) leaves a state the next one
/// completes: it adopts the replicas that still run and routes what the store says.
#[tokio::test]
async fn a_crash_between_storing_a_switch_and_acting_on_it_is_completed_by_the_next_engine() {
    let f = Fixture::new(json!({"strategy": "blue-green", "autoPromote": false, "keepWarm": "0s"}), 2).await;
    f.run(f.deploy("1.0.0", None).await).await;
    let id = f.deploy("2.0.0", None).await;
    let waiting = f.run(id).await;
    assert_eq!(waiting.state, RolloutState::AwaitingPromotion);
    crate::commands::promote(&f.store, id, &admin(), T0).await.expect("promote");
    // What the switch step does first: store the new weights (and its event) ...
    let mut state = f.store.route_state("shop", "dev").await.expect("read").expect("route");
    state.set_weights(&[("2.0.0".to_owned(), 100)].into_iter().collect());
    f.store.save_route("shop", "dev", &state, &[], &f.engine.ctx()).await.expect("save");
    // ... and then the control plane dies: the router still sends everything to 1.0.0.
    assert_eq!(f.serving(), [("1.0.0".to_owned(), 100)]);
    f.engine.halt();
    f.runtime.control_plane_died();
    let next = Engine::new(f.store.clone(), f.runtime.clone(), RouterHandle::new(f.router.clone()), f.config.clone());
    next.leader.store(true, Ordering::SeqCst);
    next.check_router(false).await;
    next.recover().await;
    assert_eq!(f.serving(), [("2.0.0".to_owned(), 100)], "the stored switch is in force");
    let log = f.runtime.log();
    assert_eq!(log.iter().filter(|l| l.starts_with("adopt ")).count(), 4, "every replica adopted: {log:?}");
    assert!(!log.iter().any(|l| l.starts_with("reap ")), "nothing reaped: {log:?}");
    // The step runs again (idempotent) and the rollout finishes.
    let mut tick = Tick::Again;
    for _ in 0..20 {
        tick = next.tick(id).await;
        if tick == Tick::Stop {
            break;
        }
    }
    assert_eq!(tick, Tick::Stop);
    let done = f.store.rollout(id).await.expect("read").expect("rollout");
    assert_eq!(done.state, RolloutState::Succeeded, "{done:?}");
    assert_eq!(f.versions_running(), ["2.0.0", "2.0.0"]);
}

/// A replica started but not yet recorded when the control plane died is an orphan: the next
/// engine stops it rather than leave it running unseen.
#[tokio::test]
async fn a_replica_started_but_not_recorded_is_reaped_on_recovery() {
    let f = Fixture::new(json!({"strategy": "rolling"}), 1).await;
    f.run(f.deploy("1.0.0", None).await).await;
    let spec = f.engine.spec("shop", "dev", "2.0.0", 0).await.expect("spec");
    let orphan = f.runtime.start(spec).await.expect("start");
    f.runtime.control_plane_died();
    let next = Engine::new(f.store.clone(), f.runtime.clone(), RouterHandle::new(f.router.clone()), f.config.clone());
    next.check_router(false).await;
    next.recover().await;
    assert!(f.runtime.log().contains(&format!("reap {}", orphan.id)), "{:?}", f.runtime.log());
    assert_eq!(f.versions_running(), ["1.0.0"]);
    assert_eq!(f.serving(), [("1.0.0".to_owned(), 100)]);
}

/// The frozen clock decides when a warm colour is retired: not a moment before its time.
#[tokio::test]
async fn a_warm_colour_is_retired_when_its_keep_warm_time_is_over() {
    let f = Fixture::new(json!({"strategy": "blue-green", "keepWarm": "60s"}), 1).await;
    f.run(f.deploy("1.0.0", None).await).await;
    assert_eq!(f.run(f.deploy("2.0.0", None).await).await.state, RolloutState::Succeeded);
    let state = f.store.route_state("shop", "dev").await.expect("read").expect("route");
    let old = state.versions.iter().find(|v| v.version == "1.0.0").expect("warm");
    assert_eq!(old.retire_at, Some(Timestamp(T0 + 60_000)));
    assert_eq!(f.versions_running(), ["1.0.0", "2.0.0"]);
    f.clock.set(T0 + 59_999);
    f.engine.retire_due().await;
    assert_eq!(f.versions_running(), ["1.0.0", "2.0.0"], "still warm");
    f.clock.set(T0 + 60_000);
    f.engine.retire_due().await;
    assert_eq!(f.versions_running(), ["2.0.0"], "retired on time");
    assert!(f.kinds().await.iter().any(|k| k == "route.retired"));
}

/// A router that restarts without its saved tables gets every route back from the engine.
#[tokio::test]
async fn a_restarted_router_is_given_every_route_again() {
    let f = Fixture::new(json!({"strategy": "rolling"}), 2).await;
    f.run(f.deploy("1.0.0", None).await).await;
    f.engine.check_router(false).await;
    let port = f.router.port("shop", "dev").expect("served");
    f.router.restart();
    assert_eq!(f.router.table("shop", "dev"), None);
    f.engine.check_router(true).await;
    assert_eq!(f.router.port("shop", "dev"), Some(port), "the same port");
    assert_eq!(f.serving(), [("1.0.0".to_owned(), 100)]);
    f.check_router().await;
}

/// A port something else holds is skipped when a route is created.
#[tokio::test]
async fn a_new_route_skips_ports_the_router_cannot_bind() {
    let f = Fixture::new(json!({"strategy": "rolling"}), 1).await;
    f.router.take_port(7800);
    f.router.take_port(7801);
    f.run(f.deploy("1.0.0", None).await).await;
    assert_eq!(f.router.port("shop", "dev"), Some(7802));
    let state = f.store.route_state("shop", "dev").await.expect("read").expect("route");
    assert_eq!(state.port, 7802);
}
