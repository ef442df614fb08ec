//! Benchmark: all five DORA metrics over N deployment facts held in the store (default one
//! million), the way `GET /api/v1/dora` computes them: the first query after a start reads
//! every fact from the store; later ones check the store for changes and catch up. The store
//! is filled once (through the same `report` path the API uses) and kept in `bench/out/`.
//!
//!     cargo run --release -p pave-server --example dora_store -- [N] [postgres://…]

use std::time::Instant;

use pave_model::Resource;
use pave_model::Timestamp;
use pave_model::apply::Request;
use pave_model::delivery::{Change, Deployment, DeploymentKind, DeploymentStatus, Incident, Report};
use pave_store::{Store, StoreOptions, WriteContext, allow_all};
use serde_json::json;

const SERVICES: usize = 20;

fn reports_for(i: usize) -> Vec<Report> {
    let service = format!("svc-{}", i % SERVICES);
    let start = 1_600_000_000_000 + i as i64 * 60_000;
    let sha = format!("{:040x}", i + 1);
    let status = match i % 23 {
        0 => DeploymentStatus::Failed,
        11 => DeploymentStatus::RolledBack,
        _ => DeploymentStatus::Succeeded,
    };
    let mut out = Vec::with_capacity(3);
    if i.is_multiple_of(10) {
        out.push(Report::Change(Change {
            sha: sha.clone(),
            service: service.clone(),
            author: "dev".into(),
            message: "change".into(),
            authored_at: Timestamp(start - 3_600_000),
            committed_at: Timestamp(start - 3_600_000),
            merged_at: Some(Timestamp(start - 1_800_000)),
        }));
    }
    let id = format!("d{i}");
    out.push(Report::Deployment(Deployment {
        id: id.clone(),
        service: service.clone(),
        environment: "production".into(),
        version: format!("1.0.{i}"),
        commit: Some(sha),
        previous_commit: None,
        commits: vec![],
        started_at: Timestamp(start),
        finished_at: Timestamp(start + 30_000),
        status,
        kind: if i.is_multiple_of(31) { DeploymentKind::Unplanned } else { DeploymentKind::Planned },
    }));
    if i % 100 == 50 {
        out.push(Report::Incident(Incident {
            id: format!("inc-{i}"),
            service,
            opened_at: Timestamp(start + 60_000),
            detected_at: Some(Timestamp(start + 120_000)),
            resolved_at: Some(Timestamp(start + 1_200_000)),
            severity: "sev2".into(),
            deployment: Some(id),
            title: None,
        }));
    }
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let url = args.get(1).cloned();
    let dir = std::path::PathBuf::from(format!("bench/out/dora-store-{n}"));
    let mut opts = StoreOptions::new(&dir);
    opts.database_url = url.clone();
    let store = Store::open(&opts).await.expect("open store");
    let ctx = WriteContext::system(0);

    let have = store.delivery_facts(&["production".to_owned()]).await.expect("read").deployments.len();
    if have < n {
        let mut docs = vec![
            Resource::from_value(json!({"kind": "Team", "metadata": {"name": "bench"}, "spec": {"type": "platform"}})).expect("team"),
            Resource::from_value(json!({"kind": "Environment", "metadata": {"name": "production"}, "spec": {"order": 1, "production": true}}))
                .expect("env"),
        ];
        for s in 0..SERVICES {
            docs.push(
                Resource::from_value(
                    json!({"kind": "Service", "metadata": {"name": format!("svc-{s}")}, "spec": {"owner": "bench"}}),
                )
                .expect("service"),
            );
        }
        store.apply(&Request { desired: docs, ..Default::default() }, &ctx, false, &allow_all).await.expect("catalog");
        let t = Instant::now();
        let batch = 10_000;
        for start in (have..n).step_by(batch) {
            let reports: Vec<Report> = (start..(start + batch).min(n)).flat_map(reports_for).collect();
            store.report(&reports, &ctx).await.expect("report");
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "filled the {} store with {} deployments in {secs:.1} s ({:.0} deployments/s)",
            store.backend_name(),
            n - have,
            (n - have) as f64 / secs
        );
    }

    let bench = pave_dora::Benchmark::builtin("dora-2024").expect("benchmark");
    let q = pave_dora::Query {
        from: Timestamp(0),
        to: Timestamp(i64::MAX / 2),
        services: None,
        environments: ["production".to_owned()].into_iter().collect(),
        series: None,
        explain: false,
        explicit_commits: false,
        flag_owners: None,
    };
    let run = |f: &pave_store::DeliveryFacts| {
        let t = Instant::now();
        let report = pave_dora::compute(
            pave_dora::Facts {
                deployments: &f.deployments,
                incidents: &f.incidents,
                changes: &f.changes,
                flag_changes: &[],
            },
            &q,
            &bench,
        );
        assert_eq!(report.totals.change_failure_rate.total, f.deployments.len());
        t.elapsed().as_secs_f64()
    };
    let cache = pave_server::facts::FactsCache::default();
    let t = Instant::now();
    let facts = cache.current(&store).await.expect("read");
    let cold_read = t.elapsed().as_secs_f64();
    let cold_compute = run(&facts);
    println!(
        "[{}] first query after start over {} deployments: {:.3} s (read {:.3} s, compute {:.3} s)",
        store.backend_name(),
        facts.deployments.len(),
        cold_read + cold_compute,
        cold_read,
        cold_compute
    );
    drop(facts);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let facts = cache.current(&store).await.expect("read");
        let check = t.elapsed().as_secs_f64();
        best = best.min(check + run(&facts));
    }
    println!(
        "[{}] every later query (store checked for changes, then computed): {best:.3} s, best of 3   (target < 1 s)",
        store.backend_name()
    );
    store.report(&reports_for(n + 7), &WriteContext::system(1)).await.expect("one more");
    let t = Instant::now();
    let facts = cache.current(&store).await.expect("read");
    let catch_up = t.elapsed().as_secs_f64();
    println!(
        "[{}] after a new deployment: caught up in {catch_up:.3} s, total {:.3} s",
        store.backend_name(),
        catch_up + run(&facts)
    );
}
