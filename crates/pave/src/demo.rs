//! `pave demo`: a throwaway platform on an embedded store, loaded with a sample catalog
//! through the real API, to show what Pave does in one command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use pave_model::event::kinds;
use reqwest::Method;
use serde_json::{Value, json};

use crate::ClientArgs;
use crate::client::Client;
use crate::output::{self, cell};
use crate::serve::{LogFormat, Settings, shutdown_signal, start};

/// The sample catalog, compiled in so the demo needs no files.
const SAMPLE: &[(&str, &str)] = &[
    ("examples/catalog/teams.yaml", include_str!("../../../examples/catalog/teams.yaml")),
    ("examples/catalog/environments.yaml", include_str!("../../../examples/catalog/environments.yaml")),
    ("examples/catalog/services.yaml", include_str!("../../../examples/catalog/services.yaml")),
];

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to serve on; if it is taken, a free port is used instead.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: SocketAddr,
    /// Keep state here instead of a temporary directory removed at exit.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// End after the tour instead of serving until Ctrl-C (for scripts and tests).
    #[arg(long)]
    pub exit: bool,
}

fn step(title: &str) {
    println!("\n== {title}");
}

pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    crate::serve::init_logging(LogFormat::Pretty, "warn")?;
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("cannot create a temporary data directory")?),
    };
    let data_dir =
        args.data_dir.clone().unwrap_or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()).unwrap_or_default());
    let mut settings = Settings {
        listen: args.listen,
        data_dir: data_dir.clone(),
        database_url: None,
        log_format: LogFormat::Pretty,
        // The demo tells its own story; a reverting rollout's warning would interrupt it.
        log: "error".into(),
        max_body_bytes: 16 * 1024 * 1024,
        db_max_connections: 8,
        bootstrap_token: None,
        github_webhook_secret: None,
        gitlab_webhook_token: None,
        router_ports: (7800, 7999),
        router_threads: 0,
        router_socket: None,
        webhooks: Vec::new(),
        master_key_file: data_dir.join("master.key"),
        osv_db: None,
        secret_rules: None,
        header_read_timeout: pave_server::DEFAULT_HEADER_READ_TIMEOUT,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        tokio::select! {
            _ = stop_rx => {}
            () = shutdown_signal() => {}
        }
    };
    // Bind the requested address, or any free port if it is taken (and say so: a reader of
    // the README expects 7700).
    let probe = std::net::TcpListener::bind(settings.listen);
    if let Err(e) = &probe {
        println!("note: {} is not free ({e}); serving on a free port instead", settings.listen);
        settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    }
    drop(probe);
    let server = start(&settings, stop).await?;
    let url = format!("http://{}", server.addr);
    let token = match &server.new_admin_token {
        Some(t) => t.clone(),
        None => std::env::var("PAVE_TOKEN").context(
            "the data directory already has tokens; set PAVE_TOKEN to an admin token to rerun the demo on it",
        )?,
    };
    println!("Pave {} is serving on {url} (embedded SQLite in {})", env!("CARGO_PKG_VERSION"), data_dir.display());
    let client =
        Client::new(&ClientArgs { url: url.clone(), token: Some(token.clone()), output: output::Format::Table })?;

    step("1. Apply the sample catalog (pave apply -f examples/catalog/)");
    let mut docs = Vec::new();
    for (name, text) in SAMPLE {
        docs.extend(pave_catalog::documents::parse_str(text, name)?);
    }
    let (resources, _) =
        pave_catalog::resources(&docs).map_err(|e| anyhow::anyhow!("sample catalog invalid: {e:?}"))?;
    let documents: Vec<Value> = resources.iter().map(pave_model::Resource::to_value).collect();
    let result = client.call(Method::POST, "/api/v1/apply", Some(&json!({"documents": documents}))).await?;
    print_summary(&result)?;

    step("2. Apply it again: idempotent, nothing changes and no event is appended");
    let result = client.call(Method::POST, "/api/v1/apply", Some(&json!({"documents": documents}))).await?;
    print_summary(&result)?;

    step("3. Teams (Team Topologies types) and services with owners and dependencies");
    let teams = client.get("/api/v1/teams").await?;
    let rows: Vec<Vec<String>> = teams["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| vec![cell(&t["metadata"]["name"]), cell(&t["spec"]["type"]), cell(&t["spec"]["contact"])])
        .collect();
    output::table(&["TEAM", "TYPE", "CONTACT"], &rows);
    println!();
    let services = client.get("/api/v1/services").await?;
    let rows: Vec<Vec<String>> = services["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let spec = &s["spec"];
            vec![cell(&s["metadata"]["name"]), cell(&spec["owner"]), cell(&spec["tier"]), cell(&spec["dependsOn"])]
        })
        .collect();
    output::table(&["SERVICE", "OWNER", "TIER", "DEPENDS ON"], &rows);

    step("4. A dry run shows the diff of a change before it is made");
    let mut changed = documents.clone();
    for d in &mut changed {
        if d["metadata"]["name"] == "search-api" {
            d["spec"]["tier"] = json!(1);
        }
    }
    let result =
        client.call(Method::POST, "/api/v1/apply", Some(&json!({"documents": changed, "dryRun": true}))).await?;
    let result: pave_api::ApplyResult = crate::client::read(&result, "the dry run")?;
    for c in result.changes.iter().filter(|c| c.action != "unchanged") {
        for f in &c.fields {
            let shown = |v: &Option<Value>| v.as_ref().map_or("null".to_owned(), Value::to_string);
            println!(
                "service/{} would change: {}: {} -> {}",
                output::clean(&c.name),
                output::clean(&f.path),
                shown(&f.old),
                shown(&f.new)
            );
        }
    }

    step("5. Bad input is refused with the field and the reason; nothing is stored");
    let bad = json!({"documents": [{"kind": "Service", "metadata": {"name": "Bad_Name"}, "spec": {"owner": "nobody", "tier": 9}}]});
    if let Err(e) = client.call(Method::POST, "/api/v1/apply", Some(&bad)).await {
        println!("{e}");
    }

    step("6. Delivery facts in, DORA metrics out (what CI/CD, git and incident tools report)");
    let facts = sample_delivery_week(pave_model::clock::now_ms());
    let result = client.call(Method::POST, "/api/v1/events", Some(&json!({ "events": facts }))).await?;
    println!(
        "{} deployments, changes and incidents reported for checkout over the last week",
        result["summary"]["created"]
    );
    let dora = client.get("/api/v1/dora?from=7d").await?;
    crate::delivery::print_figures(&dora)?;

    deliver(&client, &data_dir).await?;
    flags(&client).await?;
    security(&client, &data_dir).await?;

    step("14. Every change is an event in one append-only log");
    let events = client.get("/api/v1/events?limit=1000").await?;
    let list = events["events"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = list
        .iter()
        .rev()
        .take(6)
        .rev()
        .map(|e| vec![cell(&e["id"]), cell(&e["kind"]), cell(&e["subject"]), cell(&e["actor"])])
        .collect();
    println!("{} events so far; the latest:", list.len());
    output::table(&["ID", "KIND", "SUBJECT", "ACTOR"], &rows);

    step("15. Every mutating request, allowed or denied, is audited");
    let audit = client.get("/api/v1/audit?limit=5").await?;
    let rows: Vec<Vec<String>> = audit["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| vec![cell(&e["actor"]), cell(&e["action"]), format!("{} {}", cell(&e["outcome"]), cell(&e["status"]))])
        .collect();
    output::table(&["ACTOR", "ACTION", "OUTCOME"], &rows);

    if args.exit {
        println!(
            "\nThe platform stops with the tour (--exit). Run `pave demo` without --exit to keep it serving and try it yourself."
        );
    } else {
        println!(
            "\nTry it yourself:\n    export PAVE_URL={url} PAVE_TOKEN={token}\n    pave get services\n    pave dora --from 7d --explain\n    pave events --kind 'service.*'\n    pave flags list\n    pave timeline --env dev\n    \
         pave rollout status storefront --env dev\n    pave rollout list\n    pave logs storefront --env dev --follow\n    \
         pave deploy storefront 1.0.0 --env dev --strategy blue-green\n    pave rollout undo storefront --env dev\n    \
         pave secret list storefront\n    pave release show storefront 5.0.0\n    \
         curl -H \"Authorization: Bearer $PAVE_TOKEN\" $PAVE_URL/api/v1/services/checkout\n    \
         curl $PAVE_URL/metrics\n    API description: $PAVE_URL/api/v1/openapi.json"
        );
    }
    if args.exit {
        let _ = stop_tx.send(());
    } else {
        println!("\nServing until Ctrl-C (the storefront replicas stop with it).");
    }
    server.task.await.context("server task failed")??;
    // The demo's replicas live in its temporary data directory: they end with it.
    server.router.release();
    server.engine.stop(true).await;
    drop(temp);
    Ok(ExitCode::SUCCESS)
}

/// Step 13: a secret set for storefront in dev (sealed, injected, the replicas rolled), and a
/// release with a leaked key scanned and held back by production's release policy.
async fn security(client: &Client, data_dir: &std::path::Path) -> Result<()> {
    step("13. Security gates: a secret rolled into running replicas; a leaky release held back by production's policy");
    let value: String = (0..24).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
    let before = replica_pids(client).await?;
    let v = client
        .send_bytes(
            Method::PUT,
            "/api/v1/services/storefront/secrets/DB_PASSWORD?environment=dev",
            "application/octet-stream",
            value.clone().into_bytes(),
        )
        .await?;
    println!(
        "pave secret set storefront DB_PASSWORD --env dev < value: version {}, sealed under {}",
        v["secret"]["version"],
        cell(&v["secret"]["keyId"])
    );
    let mut rolled = Value::Null;
    for _ in 0..200 {
        let events = client.get(&format!("/api/v1/events?kind={}&limit=10", kinds::REPLICAS_ROLLED)).await?;
        if let Some(e) = events["events"].as_array().and_then(|a| a.last()) {
            rolled = e.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let after = replica_pids(client).await?;
    let injected = after.iter().filter(|p| environ_has(**p, "DB_PASSWORD", &value)).count();
    println!(
        "{} replicas rolled one at a time behind an extra one (event {}): pids {before:?} -> {after:?}, \
         {injected} of {} started with DB_PASSWORD in their environment",
        rolled["data"]["replicas"],
        cell(&rolled["id"]),
        after.len()
    );
    let listed = client.get("/api/v1/services/storefront/secrets").await?;
    let rows: Vec<Vec<String>> = listed["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| vec![cell(&s["environment"]), cell(&s["name"]), cell(&s["version"]), cell(&s["updatedBy"])])
        .collect();
    println!("pave secret list storefront (names, versions, who; never values):");
    output::table(&["ENVIRONMENT", "NAME", "VERSION", "BY"], &rows);

    // A release whose artifact carries a cloud key: scanned before it is published.
    let dir = data_dir.join("demo-artifacts").join("5.0.0");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("sample.env"), "SAMPLE_LATENCY_MS=2\n")?;
    // Spelled in two halves so Pave's own sources stay clean for secret scanners.
    let key = concat!("AKIA", "QYLPMN5HHHFPZAM2");
    std::fs::write(dir.join("settings.ini"), format!("[aws]\naws_access_key_id = {key}\n"))?;
    let mut tar = Vec::new();
    pave_artifacts::pack(&dir, &mut tar)?;
    client.post_bytes("/api/v1/services/storefront/releases?version=5.0.0", "application/x-tar", tar).await?;
    // Pave scans the stored artifact itself: what `pave release create --scan` asks for.
    client.call(Method::POST, "/api/v1/services/storefront/releases/5.0.0/scan", None).await?;
    let shown = client.get("/api/v1/services/storefront/releases/5.0.0").await?;
    println!("pave release create storefront --version 5.0.0 --scan, then pave release show storefront 5.0.0:");
    crate::release::print_scans(&shown["scans"])?;
    crate::release::print_policy(&shown["policy"])?;
    let refused = client
        .call(
            Method::POST,
            "/api/v1/deployments",
            Some(&json!({"service": "storefront", "environment": "production", "version": "5.0.0"})),
        )
        .await;
    match refused {
        Err(e) => println!("pave deploy storefront 5.0.0 --env production:\n{e}"),
        Ok(_) => anyhow::bail!("production accepted a release that fails its policy"),
    }
    Ok(())
}

async fn replica_pids(client: &Client) -> Result<Vec<u64>> {
    let status = client.get("/api/v1/services/storefront/environments/dev/status").await?;
    let mut pids: Vec<u64> =
        status["replicas"].as_array().into_iter().flatten().filter_map(|r| r["pid"].as_u64()).collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Whether process `pid` was started with `name=value` (Linux `/proc`).
fn environ_has(pid: u64, name: &str, value: &str) -> bool {
    let wanted = format!("{name}={value}");
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()))
}

/// Step 12: a flag rolled out to a quarter of users and killed, as SDKs see it (OFREP, the
/// protocol OpenFeature providers speak), and the flag changes on the timeline beside the
/// deployments.
async fn flags(client: &Client) -> Result<()> {
    step("12. Feature flags: storefront.new-checkout at 25 % in dev, evaluated as SDKs do (OFREP), then killed");
    let doc = json!({"kind": "Flag", "metadata": {"name": "storefront.new-checkout"}, "spec": {
        "type": "release", "owner": "payments", "description": "The new checkout flow, dark until ready",
        "environments": {"dev": {"enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": 25, "stickiness": "userId"}}]}}}});
    client.call(Method::PUT, "/api/v1/flags/storefront.new-checkout", Some(&doc)).await?;
    let token = client
        .call(
            Method::POST,
            "/api/v1/sdk-tokens",
            Some(&json!({"name": "storefront-sdk", "kind": "client", "environment": "dev"})),
        )
        .await?;
    let secret = token["secret"].as_str().context("the SDK token has no secret")?.to_owned();
    let http = reqwest::Client::new();
    let on_for = |users: u32| {
        let (http, secret) = (http.clone(), secret.clone());
        async move {
            let mut on = 0;
            for u in 0..users {
                let v: Value = http
                    .post(format!("{}/ofrep/v1/evaluate/flags/storefront.new-checkout", client.base()))
                    .header("authorization", &secret)
                    .json(&json!({"context": {"targetingKey": format!("user-{u}")}}))
                    .send()
                    .await?
                    .json()
                    .await?;
                on += u32::from(v["value"] == json!(true));
            }
            anyhow::Ok(on)
        }
    };
    println!("OFREP evaluations for 400 users at 25 %: {} on (sticky by user id)", on_for(400).await?);
    client.call(Method::POST, "/api/v1/flags/storefront.new-checkout/environments/dev/disable", None).await?;
    println!("after pave flags disable storefront.new-checkout --env dev: {} of 400 on", on_for(400).await?);
    let timeline = client.get("/api/v1/timeline?environment=dev&from=1h&limit=6").await?;
    println!("pave timeline --env dev (the newest entries: flag changes beside the deployments):");
    let rows: Vec<Vec<String>> = timeline["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| match e["type"].as_str() {
            Some("flag") => vec![
                cell(&e["at"]),
                format!("flag {} {}", cell(&e["flag"]), cell(&e["action"])),
                e["environments"][0]["exposure"].as_str().unwrap_or("*").to_owned(),
            ],
            _ => vec![
                cell(&e["at"]),
                format!("deploy {} {}", cell(&e["service"]), cell(&e["version"])),
                cell(&e["status"]),
            ],
        })
        .collect();
    output::table(&["TIME", "WHAT", "RESULT"], &rows);
    Ok(())
}

/// Steps 7-11: the sample service deployed for real — releases, the process runtime, the
/// router — v1 by rolling update, v2 blue-green, a good v3 canary promoted on its metrics and
/// a bad v4 canary rolled back by its analysis, all under continuous traffic.
async fn deliver(client: &Client, data_dir: &std::path::Path) -> Result<()> {
    step("7. Register storefront with a runtime spec and canary steps, and publish releases 1.0.0 to 4.0.0");
    let exe = std::env::current_exe().context("cannot find the pave executable")?;
    let service = json!({"kind": "Service", "metadata": {"name": "storefront"}, "spec": {
        "owner": "payments", "description": "The sample service, run by Pave's process runtime",
        "runtime": {"command": exe.display().to_string(), "args": ["sample"], "replicas": 2,
                    "healthCheck": {"path": "/healthz", "interval": "250ms", "timeout": "250ms", "healthyThreshold": 2},
                    "stopTimeout": "5s"},
        "rollout": {"strategy": "rolling", "keepWarm": "3s", "steps": [
            {"setWeight": 10},
            {"analysis": {"metrics": [
                {"name": "error-rate", "provider": {"router": {"signal": "error-rate", "minSamples": 30}},
                 "interval": "1s", "count": 2, "failureCondition": "result > stable + 0.02"},
                {"name": "latency", "provider": {"judge": {"test": "latency", "minSamples": 30, "tolerance": 0.2}}, "interval": "1s", "count": 2}]}},
            {"setWeight": 50},
            {"pause": {"duration": "1s"}}
        ]}
    }});
    client.call(Method::POST, "/api/v1/apply", Some(&json!({"documents": [service]}))).await?;
    // The commits behind the two releases, as the CI would report them.
    let ago = |minutes: i64| pave_model::Timestamp(pave_model::clock::now_ms() - minutes * 60_000).to_string();
    let changes = json!({"events": [
        {"type": "change", "sha": "5afe0001", "service": "storefront", "author": "ana", "message": "feat: storefront",
         "authoredAt": ago(95), "committedAt": ago(90), "mergedAt": ago(60)},
        {"type": "change", "sha": "5afe0002", "service": "storefront", "author": "ben", "message": "feat: faster search",
         "authoredAt": ago(40), "committedAt": ago(35), "mergedAt": ago(10)},
        {"type": "change", "sha": "5afe0003", "service": "storefront", "author": "ana", "message": "feat: wish lists",
         "authoredAt": ago(30), "committedAt": ago(25), "mergedAt": ago(8)},
        {"type": "change", "sha": "5afe0004", "service": "storefront", "author": "cy", "message": "refactor: cart storage",
         "authoredAt": ago(20), "committedAt": ago(15), "mergedAt": ago(5)},
    ]});
    client.call(Method::POST, "/api/v1/events", Some(&changes)).await?;
    // 4.0.0 has a bug: a fifth of its answers are errors.
    let releases = [
        ("1.0.0", "5afe0001", ""),
        ("2.0.0", "5afe0002", ""),
        ("3.0.0", "5afe0003", ""),
        ("4.0.0", "5afe0004", "SAMPLE_FAIL_RATE=0.2\n"),
    ];
    for (version, commit, bug) in releases {
        let dir = data_dir.join("demo-artifacts").join(version);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("sample.env"),
            format!("# storefront {version}: what this release does\nSAMPLE_LATENCY_MS=2\n{bug}"),
        )?;
        let mut tar = Vec::new();
        pave_artifacts::pack(&dir, &mut tar)?;
        let path = format!("/api/v1/services/storefront/releases?version={version}&commit={commit}");
        let v = client.post_bytes(&path, "application/x-tar", tar).await?;
        println!("release storefront {version}: {}", cell(&v["release"]["digest"]));
    }

    step("8. pave deploy storefront 1.0.0 --env dev (rolling: 2 replicas, health-gated)");
    let deploy = |version: &str, strategy: &str| json!({"service": "storefront", "environment": "dev", "version": version, "strategy": strategy});
    let r = client.call(Method::POST, "/api/v1/deployments", Some(&deploy("1.0.0", "rolling"))).await?;
    crate::rollout::follow(client, r["rollout"]["id"].as_i64().unwrap_or(0), output::Format::Table).await?;
    let status = client.get("/api/v1/services/storefront/environments/dev/status").await?;
    let router = status["url"].as_str().unwrap_or_default().to_owned();
    println!("storefront answers at its router: {router}");

    step("9. Under continuous traffic, pave deploy storefront 2.0.0 --env dev --strategy blue-green");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counts = std::sync::Arc::new([std::sync::atomic::AtomicU64::new(0), std::sync::atomic::AtomicU64::new(0)]);
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, counts, router) = (stop.clone(), counts.clone(), router.clone());
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ok = matches!(http.get(&router).send().await, Ok(r) if r.status().is_success());
                counts[usize::from(!ok)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = client.call(Method::POST, "/api/v1/deployments", Some(&deploy("2.0.0", "blue-green"))).await?;
    crate::rollout::follow(client, r["rollout"]["id"].as_i64().unwrap_or(0), output::Format::Table).await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let tally =
        || (counts[0].load(std::sync::atomic::Ordering::Relaxed), counts[1].load(std::sync::atomic::Ordering::Relaxed));
    let (sent, failed) = tally();
    println!("traffic during the switch: {} requests, {failed} failed", sent + failed);

    step("10. A good canary: pave deploy storefront 3.0.0 --env dev --strategy canary");
    println!("10 % of traffic, analysis (router error rate vs stable; Mann-Whitney U on latency), 50 %, then all");
    let r = client.call(Method::POST, "/api/v1/deployments", Some(&deploy("3.0.0", "canary"))).await?;
    crate::rollout::follow(client, r["rollout"]["id"].as_i64().unwrap_or(0), output::Format::Table).await?;
    let (ok3, failed3) = tally();

    step("11. A bad canary: storefront 4.0.0 fails 20 % of its requests");
    let r = client.call(Method::POST, "/api/v1/deployments", Some(&deploy("4.0.0", "canary"))).await?;
    let id = r["rollout"]["id"].as_i64().unwrap_or(0);
    crate::rollout::follow(client, id, output::Format::Table).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }
    let (ok4, failed4) = tally();
    println!(
        "traffic during the good canary: {} requests, {} failed; during the bad one: {} requests, {} failed \
         (only the canary's 10 % share, until the rollback)",
        (ok3 - sent) + (failed3 - failed),
        failed3 - failed,
        (ok4 - ok3) + (failed4 - failed3),
        failed4 - failed3
    );
    let status = client.get("/api/v1/services/storefront/environments/dev/status").await?;
    crate::rollout::print_status(&status)?;
    println!("\nDORA for dev (four rollouts: one failed, recovered by its automatic rollback):");
    let dora = client.get("/api/v1/dora?environment=dev&from=1d").await?;
    crate::delivery::print_figures(&dora)?;
    println!(
        "\nEvery step and judgement is in the event log (pave events --kind 'analysis.*'), and live as \
         server-sent events: GET /api/v1/rollouts/{id}/events"
    );
    Ok(())
}

fn print_summary(result: &Value) -> Result<()> {
    let r: pave_api::ApplyResult = crate::client::read(result, "the apply")?;
    let s = r.summary;
    println!(
        "{} created, {} updated, {} deleted, {} unchanged; {} events appended",
        s.created, s.updated, s.deleted, s.unchanged, r.events
    );
    Ok(())
}

/// A week of delivery for `checkout`, ending now: commits, daily deployments (one failed and
/// fixed by an unplanned deployment), and an incident caused by a deployment.
fn sample_delivery_week(now: i64) -> Vec<Value> {
    let at = |hours_ago: f64| pave_model::Timestamp(now - (hours_ago * 3_600_000.0) as i64).to_string();
    let mut facts = Vec::new();
    for day in 0..6 {
        let h = 24.0 * (6 - day) as f64;
        let sha = format!("{:07x}", 0xc0ffee0 + day);
        facts.push(json!({"type": "change", "sha": sha, "service": "checkout", "author": "ana",
            "message": format!("feat: step {day}"), "authoredAt": at(h + 5.0), "committedAt": at(h + 4.0), "mergedAt": at(h + 2.0)}));
        let failed = day == 3;
        facts.push(json!({"type": "deployment", "id": format!("demo-{day}"), "service": "checkout", "environment": "production",
            "version": format!("1.{day}.0"), "commit": sha, "startedAt": at(h), "finishedAt": at(h - 0.2),
            "status": if failed { "failed" } else { "succeeded" }}));
        if failed {
            facts.push(
                json!({"type": "deployment", "id": "demo-3-fix", "service": "checkout", "environment": "production",
                "version": "1.3.1", "commit": sha, "startedAt": at(h - 1.5), "finishedAt": at(h - 1.7),
                "status": "succeeded", "kind": "unplanned"}),
            );
        }
    }
    facts.push(json!({"type": "incident", "id": "demo-inc-1", "service": "checkout", "openedAt": at(23.5),
        "detectedAt": at(23.3), "resolvedAt": at(22.0), "severity": "sev2", "deployment": "demo-5",
        "title": "Checkout errors after 1.5.0"}));
    facts
}
