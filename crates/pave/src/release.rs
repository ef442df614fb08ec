//! `pave release …`: publish an artifact as an immutable release of a service.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use crate::ClientArgs;
use crate::client::Client;
use crate::output::{self, Format, cell};

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Upload an artifact (a file or a directory) as release VERSION of SERVICE.
    Create {
        service: String,
        #[arg(long)]
        version: String,
        /// The file or directory to release; it is stored by content, so later changes to
        /// this path do not affect the release.
        #[arg(long)]
        artifact: PathBuf,
        /// The commit it was built from.
        #[arg(long)]
        commit: Option<String>,
        /// Scan the artifact before it is published (secrets, dependency audit, SBOM) and
        /// attach the results, which environments' release policies read.
        #[arg(long)]
        scan: bool,
        /// With --scan: the OSV database for the dependency audit (a directory or zip).
        #[arg(long, env = "PAVE_OSV_DB")]
        db: Option<PathBuf>,
        /// With --scan: secret rules in gitleaks' TOML format [default: the artifact's
        /// .pave-secrets.toml or .gitleaks.toml, else the built-in rules].
        #[arg(long)]
        rules: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Attach scan reports made elsewhere (CI) to a release: `pave scan secrets -f json`,
    /// gitleaks' JSON, `pave scan deps -f json`, a CycloneDX SBOM.
    Attach {
        service: String,
        version: String,
        #[arg(long)]
        secrets: Option<PathBuf>,
        #[arg(long)]
        deps: Option<PathBuf>,
        #[arg(long)]
        sbom: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A release, the scans it carries, and whether each environment's policy admits it.
    Show {
        service: String,
        version: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A service's releases, newest first.
    List {
        service: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(cmd: ReleaseCommand) -> Result<ExitCode> {
    match cmd {
        ReleaseCommand::Create { service, version, artifact, commit, scan, db, rules, client } => {
            // Scanned first: a release whose scan cannot run is not published half-done.
            let reports = if scan {
                let db = db.context(
                    "--scan audits dependencies too: give the OSV database with --db or PAVE_OSV_DB (a directory or zip of OSV records)",
                )?;
                let (path, name) = (artifact.clone(), service.clone());
                Some(tokio::task::spawn_blocking(move || scan_reports(&path, &name, Some(&db), rules)).await??)
            } else {
                None
            };
            let path = artifact.clone();
            let tar = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                pave_artifacts::pack(&path, &mut out).map(|()| out)
            })
            .await?
            .with_context(|| format!("cannot read the artifact {}", artifact.display()))?;
            let mut url = format!("/api/v1/services/{service}/releases?version={}", crate::commands::encode(&version));
            if let Some(c) = &commit {
                url.push_str(&format!("&commit={}", crate::commands::encode(c)));
            }
            let api = Client::new(&client)?;
            let mut v = api.post_bytes(&url, "application/x-tar", tar).await?;
            if let Some(mut body) = reports {
                body["digest"] = v["release"]["digest"].clone();
                body["source"] = "pave".into();
                let scans = api.call(Method::POST, &scans_path(&service, &version), Some(&body)).await?;
                v["scans"] = scans["scans"].clone();
            }
            match client.output {
                Format::Json => output::json(&v),
                Format::Table => {
                    let r = &v["release"];
                    let what =
                        if v["created"].as_bool() == Some(true) { "created" } else { "already exists, unchanged" };
                    println!(
                        "release {} {} {what}: {} ({} files, {} bytes)",
                        cell(&r["service"]),
                        cell(&r["version"]),
                        cell(&r["digest"]),
                        r["files"],
                        r["bytes"]
                    );
                    if !v["scans"].is_null() {
                        print_scans(&v["scans"]);
                        let shown = Client::new(&client)?.get(&release_path(&service, &version)).await?;
                        print_policy(&shown["policy"]);
                    }
                }
            }
        }
        ReleaseCommand::Attach { service, version, secrets, deps, sbom, client } => {
            let mut body = serde_json::json!({"source": "upload"});
            for (key, file) in [("secrets", secrets), ("deps", deps), ("sbom", sbom)] {
                if let Some(f) = file {
                    let text = std::fs::read_to_string(&f)
                        .with_context(|| format!("cannot read the {key} report {}", f.display()))?;
                    body[key] = serde_json::from_str(&text)
                        .with_context(|| format!("the {key} report {} is not JSON", f.display()))?;
                }
            }
            if body.as_object().is_some_and(|o| o.len() == 1) {
                anyhow::bail!("nothing to attach: give --secrets, --deps or --sbom");
            }
            let api = Client::new(&client)?;
            let v = api.call(Method::POST, &scans_path(&service, &version), Some(&body)).await?;
            match client.output {
                Format::Json => output::json(&v),
                Format::Table => {
                    println!("attached to release {service} {version}:");
                    print_scans(&v["scans"]);
                    print_policy(&api.get(&release_path(&service, &version)).await?["policy"]);
                }
            }
        }
        ReleaseCommand::Show { service, version, client } => {
            let v = Client::new(&client)?.get(&release_path(&service, &version)).await?;
            match client.output {
                Format::Json => output::json(&v),
                Format::Table => {
                    println!(
                        "release {} {}: {} ({} files, {} bytes), created {} by {}",
                        cell(&v["service"]),
                        cell(&v["version"]),
                        cell(&v["digest"]),
                        v["files"],
                        v["bytes"],
                        cell(&v["createdAt"]),
                        cell(&v["createdBy"])
                    );
                    print_scans(&v["scans"]);
                    print_policy(&v["policy"]);
                }
            }
        }
        ReleaseCommand::List { service, client } => {
            let v = Client::new(&client)?.get(&format!("/api/v1/services/{service}/releases")).await?;
            output::list(
                client.output,
                &v,
                "releases",
                &["VERSION", "DIGEST", "COMMIT", "FILES", "CREATED", "BY"],
                |r| {
                    vec![
                        cell(&r["version"]),
                        cell(&r["digest"]).chars().take(19).collect(),
                        cell(&r["commit"]),
                        cell(&r["files"]),
                        cell(&r["createdAt"]),
                        cell(&r["createdBy"]),
                    ]
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn release_path(service: &str, version: &str) -> String {
    format!("/api/v1/services/{service}/releases/{}", crate::commands::encode(version))
}

fn scans_path(service: &str, version: &str) -> String {
    format!("{}/scans", release_path(service, version))
}

/// Runs the scans on an artifact; the body `POST …/scans` takes. Without an OSV database
/// (`db`) the dependency audit is left out, and the SBOM is still made.
pub fn scan_reports(path: &Path, service: &str, db: Option<&Path>, rules: Option<PathBuf>) -> Result<Value> {
    let args = crate::scan::SecretsArgs {
        path: path.to_path_buf(),
        git: false,
        config: rules,
        baseline: None,
        ignore_file: None,
        format: crate::scan::ReportFormat::Json,
        output: None,
        no_redact: false,
        max_file_mb: 32,
        threads: 0,
    };
    let (findings, summary, set, origin) = crate::scan::secret_scan(&args)?;
    eprintln!(
        "secret scan: {} finding(s) in {} files with {origin} ({} rules)",
        findings.len(),
        summary.files,
        set.rules().len()
    );
    let (packages, lockfiles) = crate::scan::find_installed(path)?;
    let mut body = serde_json::json!({
        "secrets": pave_secrets::json_report(&findings, &summary),
        "sbom": crate::scan::sbom_document(path, Some(service), &packages),
    });
    if let Some(db) = db {
        let database = pave_deps::Database::open(db).with_context(|| "cannot read the OSV database")?;
        let vulns = database.audit(&packages);
        eprintln!(
            "dependency audit: {} vulnerabilit{} in {} packages of {} lockfile(s)",
            vulns.len(),
            if vulns.len() == 1 { "y" } else { "ies" },
            packages.len(),
            lockfiles.len()
        );
        body["deps"] = crate::scan::deps_json(&lockfiles, packages.len(), &vulns, &database);
    }
    Ok(body)
}

pub fn print_scans(scans: &Value) {
    let origin = |o: &Value| format!("by {} at {}, {}", cell(&o["by"]), cell(&o["at"]), cell(&o["tool"]));
    match scans.get("secrets") {
        Some(s) => println!(
            "  secrets: {} finding(s){}  ({})",
            s["findings"].as_array().map_or(0, Vec::len),
            s["files"].as_u64().map(|f| format!(" in {f} files")).unwrap_or_default(),
            origin(&s["origin"])
        ),
        None => println!("  secrets: not scanned"),
    }
    match scans.get("deps") {
        Some(d) => {
            let vulns = d["vulnerabilities"].as_array().cloned().unwrap_or_default();
            println!(
                "  deps:    {} vulnerabilit{} in {} packages  ({})",
                vulns.len(),
                if vulns.len() == 1 { "y" } else { "ies" },
                d["packages"],
                origin(&d["origin"])
            );
            for v in vulns.iter().take(10) {
                println!(
                    "           {:<8} {} {} {} {}",
                    cell(&v["severity"]),
                    cell(&v["package"]),
                    cell(&v["version"]),
                    cell(&v["id"]),
                    v["fix"].as_str().map(|f| format!("-> {f}")).unwrap_or_default()
                );
            }
        }
        None => println!("  deps:    not audited"),
    }
    match scans.get("sbom") {
        Some(b) => println!(
            "  sbom:    {} with {} components  ({})",
            cell(&b["format"]),
            b["components"],
            origin(&b["origin"])
        ),
        None => println!("  sbom:    none"),
    }
}

pub fn print_policy(policy: &Value) {
    for p in policy.as_array().into_iter().flatten() {
        let ok = p["passed"].as_bool() == Some(true);
        println!("  policy of {}: {}", cell(&p["environment"]), if ok { "passes" } else { "FAILS" });
        for g in p["gates"].as_array().into_iter().flatten() {
            let gate = match &g["gate"] {
                Value::String(s) => s.clone(),
                Value::Object(o) => o.iter().map(|(k, v)| format!("{k}: {}", cell(v))).collect::<Vec<_>>().join(", "),
                other => other.to_string(),
            };
            let mark = if g["passed"].as_bool() == Some(true) { "ok  " } else { "FAIL" };
            println!("    {mark} {gate}: {}", cell(&g["reason"]));
        }
    }
}
