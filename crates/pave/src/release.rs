//! `pave release …`: publish an artifact as an immutable release of a service.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use crate::ClientArgs;
use crate::client::Client;
use crate::output::{self, Format, cell, show};

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Upload an artifact (a file or a directory) as release VERSION of SERVICE.
    Create {
        /// The service's name, as in the catalog.
        service: String,
        /// The release's version (`1.4.0`).
        #[arg(long)]
        version: String,
        /// The file or directory to release; it is stored by content, so later changes to
        /// this path do not affect the release.
        #[arg(long)]
        artifact: PathBuf,
        /// The commit it was built from.
        #[arg(long)]
        commit: Option<String>,
        /// Have Pave scan the stored artifact (secrets with the platform's rules, the
        /// dependency audit against the server's OSV database, the SBOM) and attach the
        /// results, which environments' release policies read.
        #[arg(long)]
        scan: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Have Pave scan a release's stored artifact again (after the server's advisory database
    /// or rules changed, say) and attach the results.
    Scan {
        /// The service's name, as in the catalog.
        service: String,
        /// The release's version (`1.4.0`).
        version: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Attach scan reports made elsewhere (CI) to a release: `pave scan secrets -f json`,
    /// gitleaks' JSON, `pave scan deps -f json`, a CycloneDX SBOM.
    Attach {
        /// The service's name, as in the catalog.
        service: String,
        /// The release's version (`1.4.0`).
        version: String,
        /// A secret scan report: `pave scan secrets -f json`, or gitleaks' JSON.
        #[arg(long)]
        secrets: Option<PathBuf>,
        /// A dependency audit report: `pave scan deps -f json`.
        #[arg(long)]
        deps: Option<PathBuf>,
        /// A CycloneDX SBOM (1.4-1.6, JSON): `pave sbom`.
        #[arg(long)]
        sbom: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A release, the scans it carries, and whether each environment's policy admits it.
    Show {
        /// The service's name, as in the catalog.
        service: String,
        /// The release's version (`1.4.0`).
        version: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A service's releases, newest first.
    List {
        /// The service's name, as in the catalog.
        service: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(cmd: ReleaseCommand) -> Result<ExitCode> {
    match cmd {
        ReleaseCommand::Create { service, version, artifact, commit, scan, client } => {
            let path = artifact.clone();
            let tar = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                pave_artifacts::pack(&path, &mut out).map(|()| out)
            })
            .await?
            .with_context(|| format!("cannot read the artifact {}", artifact.display()))?;
            let mut url = format!("/api/v1/services/{service}/releases?version={}", pave_percent::encode(&version));
            if let Some(c) = &commit {
                url.push_str(&format!("&commit={}", pave_percent::encode(c)));
            }
            let api = Client::new(&client)?;
            let mut v = api.post_bytes(&url, "application/x-tar", tar).await?;
            if scan {
                let scanned =
                    api.call(Method::POST, &format!("{}/scan", release_path(&service, &version)), None).await?;
                v["scans"] = scanned["scans"].clone();
                v["notes"] = scanned["notes"].clone();
            }
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => {
                    let up: pave_api::ReleaseUpload = crate::client::read(&v, "the release")?;
                    let r = &up.release;
                    let what = if up.created { "created" } else { "already exists, unchanged" };
                    println!(
                        "release {} {} {what}: {} ({} files, {} bytes)",
                        output::show(&r.service),
                        output::show(&r.version),
                        output::show(&r.digest),
                        r.files,
                        r.bytes
                    );
                    if !v["scans"].is_null() {
                        for n in v["notes"].as_array().into_iter().flatten() {
                            println!("note: {}", cell(n));
                        }
                        print_scans(&v["scans"])?;
                        let shown = Client::new(&client)?.get(&release_path(&service, &version)).await?;
                        print_policy(&shown["policy"])?;
                    }
                }
            }
        }
        ReleaseCommand::Scan { service, version, client } => {
            let api = Client::new(&client)?;
            let v = api.call(Method::POST, &format!("{}/scan", release_path(&service, &version)), None).await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => {
                    println!("scanned release {service} {version}:");
                    for n in v["notes"].as_array().into_iter().flatten() {
                        println!("note: {}", cell(n));
                    }
                    print_scans(&v["scans"])?;
                    print_policy(&api.get(&release_path(&service, &version)).await?["policy"])?;
                }
            }
        }
        ReleaseCommand::Attach { service, version, secrets, deps, sbom, client } => {
            let mut body = serde_json::json!({});
            for (key, file) in [("secrets", secrets), ("deps", deps), ("sbom", sbom)] {
                if let Some(f) = file {
                    let text = std::fs::read_to_string(&f)
                        .with_context(|| format!("cannot read the {key} report {}", f.display()))?;
                    body[key] = serde_json::from_str(&text)
                        .with_context(|| format!("the {key} report {} is not JSON", f.display()))?;
                }
            }
            if body.as_object().is_some_and(serde_json::Map::is_empty) {
                anyhow::bail!("nothing to attach: give --secrets, --deps or --sbom");
            }
            let api = Client::new(&client)?;
            let v = api.call(Method::POST, &scans_path(&service, &version), Some(&body)).await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => {
                    println!("attached to release {service} {version}:");
                    print_scans(&v["scans"])?;
                    print_policy(&api.get(&release_path(&service, &version)).await?["policy"])?;
                }
            }
        }
        ReleaseCommand::Show { service, version, client } => {
            let v = Client::new(&client)?.get(&release_path(&service, &version)).await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
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
                    print_scans(&v["scans"])?;
                    print_policy(&v["policy"])?;
                }
            }
        }
        ReleaseCommand::List { service, client } => {
            let v = Client::new(&client)?.get(&format!("/api/v1/services/{service}/releases")).await?;
            let list: pave_api::ReleaseList = crate::client::read(&v, "the releases")?;
            output::typed_list(
                client.output,
                &v,
                &list.releases,
                &["VERSION", "DIGEST", "COMMIT", "FILES", "CREATED", "BY"],
                |r| {
                    vec![
                        output::show(&r.version),
                        output::show(&r.digest).chars().take(19).collect(),
                        output::show(&r.commit),
                        r.files.to_string(),
                        output::show(&r.created_at),
                        output::show(&r.created_by),
                    ]
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn release_path(service: &str, version: &str) -> String {
    format!("/api/v1/services/{service}/releases/{}", pave_percent::encode(version))
}

fn scans_path(service: &str, version: &str) -> String {
    format!("{}/scans", release_path(service, version))
}

/// Prints the scans a release carries (`scans` of a release, an upload or a scan).
pub fn print_scans(scans: &Value) -> Result<()> {
    let scans: pave_model::policy::ReleaseScans = crate::client::read(scans, "the scans")?;
    let origin = |o: &pave_model::policy::ScanOrigin| {
        let how = if o.source == "pave" { "scanned by Pave" } else { "uploaded" };
        format!("{how}, by {} at {}, {}", show(&o.by), show(&o.at), show(&o.tool))
    };
    match &scans.secrets {
        Some(s) => println!(
            "  secrets: {} finding(s){}  ({})",
            s.findings.len(),
            s.files.map(|f| format!(" in {f} files")).unwrap_or_default(),
            origin(&s.origin)
        ),
        None => println!("  secrets: not scanned"),
    }
    match &scans.deps {
        Some(d) => {
            let vulns = &d.vulnerabilities;
            println!(
                "  deps:    {} vulnerabilit{} in {} packages  ({})",
                vulns.len(),
                if vulns.len() == 1 { "y" } else { "ies" },
                d.packages,
                origin(&d.origin)
            );
            for v in vulns.iter().take(10) {
                println!(
                    "           {:<8} {} {} {} {}",
                    show(&v.severity),
                    show(&v.package),
                    show(&v.version),
                    show(&v.id),
                    v.fix.as_deref().map(|f| format!("-> {}", output::clean(f))).unwrap_or_default()
                );
            }
            for n in d.notices.iter().take(10) {
                println!(
                    "           warning {} {} {} {}",
                    show(&n.kind),
                    show(&n.package),
                    show(&n.version),
                    show(&n.id)
                );
            }
            for u in &d.unreadable {
                println!("           unreadable {}: {}", show(&u.file), show(&u.problem));
            }
        }
        None => println!("  deps:    not audited"),
    }
    match &scans.sbom {
        Some(b) => println!("  sbom:    {} with {} components  ({})", show(&b.format), b.components, origin(&b.origin)),
        None => println!("  sbom:    none"),
    }
    Ok(())
}

/// Prints, for each environment with a release policy, whether the release passes each gate.
pub fn print_policy(policy: &Value) -> Result<()> {
    let policy: Vec<pave_api::releases::PolicyResult> = crate::client::read(policy, "the release policy")?;
    for p in &policy {
        println!("  policy of {}: {}", show(&p.environment), if p.passed { "passes" } else { "FAILS" });
        for g in &p.gates {
            let gate = match &g.gate {
                Value::String(s) => s.clone(),
                Value::Object(o) => o.iter().map(|(k, v)| format!("{k}: {}", cell(v))).collect::<Vec<_>>().join(", "),
                other => other.to_string(),
            };
            let mark = if g.passed { "ok  " } else { "FAIL" };
            println!("    {mark} {gate}: {}", show(&g.reason));
        }
    }
    Ok(())
}
