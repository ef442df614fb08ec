//! `pave flags …`: feature flags from the command line — create, enable, disable, roll out,
//! show, list, archive, find flag debt — and SDK tokens for the services that read them.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::ClientArgs;
use crate::client::Client;
use crate::output::{self, Format, cell};

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// Create a flag (off everywhere until enabled). Richer flags: `pave apply` a Flag document.
    Create {
        /// The flag's name.
        name: String,
        /// The project the flag belongs to [default: default].
        #[arg(long, default_value = "default")]
        project: String,
        /// release, experiment, operational, kill-switch or permission.
        #[arg(long = "type", default_value = "release")]
        flag_type: String,
        /// What the flag is for, for whoever finds it later.
        #[arg(long)]
        description: Option<String>,
        /// The team or service answerable for it.
        #[arg(long)]
        owner: Option<String>,
        /// Environments to configure (off, on for everyone once enabled).
        #[arg(long = "env")]
        envs: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Turn a flag on in an environment.
    Enable {
        /// The flag's name.
        name: String,
        /// The environment's name (`production`).
        #[arg(long)]
        env: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Turn a flag off in an environment (the kill switch: SDKs see it within a second).
    Disable {
        /// The flag's name.
        name: String,
        /// The environment's name (`production`).
        #[arg(long)]
        env: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set the share of users (0-100 %, sticky per user) a flag is on for in an environment.
    Rollout {
        /// The flag's name.
        name: String,
        /// Share of users to turn it on for, 0-100 (sticky per user: the same users stay in).
        percent: u32,
        /// The environment's name (`production`).
        #[arg(long)]
        env: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One flag: its configuration per environment, exposure and usage.
    Show {
        /// The flag's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// All flags, with their state per environment and when SDKs last evaluated them.
    List {
        /// The project the flag belongs to [default: default].
        #[arg(long)]
        project: Option<String>,
        /// Include archived flags.
        #[arg(long)]
        archived: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop serving a flag (kept for the record; `revive` brings it back).
    Archive {
        /// The flag's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Serve an archived flag again.
    Revive {
        /// The flag's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Flag debt: flags fully on or off, or unevaluated, for longer than their type allows.
    Stale {
        /// Use this many days for every type instead of each type's expected lifetime.
        #[arg(long)]
        days: Option<i64>,
        /// The project the flag belongs to [default: default].
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// SDK tokens (`project:environment.secret`) for Unleash SDKs and OFREP providers (admin).
    #[command(subcommand)]
    Token(SdkTokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum SdkTokenCommand {
    /// Create an SDK token; its secret is printed once.
    Create {
        /// A name that says who uses it (`checkout-backend`).
        name: String,
        /// The environment whose flags it reads.
        #[arg(long)]
        env: String,
        /// The project the flag belongs to [default: default].
        #[arg(long, default_value = "default")]
        project: String,
        /// client (server SDKs, the whole flag set) or frontend (evaluated answers only).
        #[arg(long, default_value = "client")]
        kind: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List SDK tokens: name, kind, environment, who made them, whether revoked (never secrets).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke an SDK token: SDKs using it are refused from then on.
    Revoke {
        /// The token's id, as `pave flags token list` shows it.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// One line per environment: `production: on (partial)`.
fn environments(v: &Value) -> String {
    let envs = v["spec"]["environments"].as_object().cloned().unwrap_or_default();
    if envs.is_empty() {
        return "-".into();
    }
    envs.iter()
        .map(|(env, cfg)| {
            let exposure = cell(&v["status"]["environments"][env]["exposure"]);
            let state = if cfg["enabled"].as_bool() == Some(true) { "on" } else { "off" };
            if exposure == "partial" { format!("{env}={state}(partial)") } else { format!("{env}={state}") }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn show(format: Format, v: &Value) {
    if format.structured() {
        output::json(v);
        return;
    }
    println!(
        "flag {} ({}, project {})",
        cell(&v["metadata"]["name"]),
        cell(&v["spec"]["type"]),
        cell(&v["spec"]["project"])
    );
    if let Some(d) = v["spec"]["description"].as_str() {
        println!("  {}", output::clean(d));
    }
    if v["status"]["archivedAt"].is_string() {
        println!("  archived at {}", cell(&v["status"]["archivedAt"]));
    }
    for (env, cfg) in v["spec"]["environments"].as_object().into_iter().flatten() {
        let st = &v["status"]["environments"][env];
        println!(
            "  {env}: {} - {} since {}",
            if cfg["enabled"].as_bool() == Some(true) { "enabled" } else { "disabled" },
            cell(&st["exposure"]),
            cell(&st["since"])
        );
        for s in cfg["strategies"].as_array().into_iter().flatten() {
            let params: Vec<String> =
                s["parameters"].as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", cell(v))).collect();
            let n = s["constraints"].as_array().map_or(0, Vec::len);
            println!(
                "    - {} {}{}",
                cell(&s["name"]),
                params.join(" "),
                if n > 0 { format!(" ({n} constraints)") } else { String::new() }
            );
        }
        for var in cfg["variants"].as_array().into_iter().flatten() {
            println!("    variant {} weight {}", cell(&var["name"]), cell(&var["weight"]));
        }
    }
    for w in v["status"]["warnings"].as_array().into_iter().flatten() {
        println!("  warning: {}", cell(&w["message"]));
    }
    for u in v["status"]["usage"].as_array().into_iter().flatten() {
        println!(
            "  evaluated in {}: {} yes, {} no, last {}",
            cell(&u["environment"]),
            u["yes"],
            u["no"],
            cell(&u["lastSeen"])
        );
    }
}

pub async fn run(cmd: FlagsCommand) -> Result<ExitCode> {
    match cmd {
        FlagsCommand::Create { name, project, flag_type, description, owner, envs, client } => {
            let environments: serde_json::Map<String, Value> =
                envs.iter().map(|e| (e.clone(), json!({"enabled": false}))).collect();
            let mut spec = json!({"project": project, "type": flag_type, "environments": environments});
            if let Some(d) = description {
                spec["description"] = json!(d);
            }
            if let Some(o) = owner {
                spec["owner"] = json!(o);
            }
            let doc = json!({"kind": "Flag", "metadata": {"name": name}, "spec": spec});
            let v = Client::new(&client)?.call(Method::POST, "/api/v1/flags", Some(&doc)).await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => println!("flag {name} created (off until `pave flags enable {name} --env ENV`)"),
            }
        }
        FlagsCommand::Enable { name, env, client } => toggle(&name, &env, "enable", &client).await?,
        FlagsCommand::Disable { name, env, client } => toggle(&name, &env, "disable", &client).await?,
        FlagsCommand::Rollout { name, percent, env, client } => {
            let path = format!(
                "/api/v1/flags/{}/environments/{}/rollout",
                pave_percent::encode(&name),
                pave_percent::encode(&env)
            );
            let v = Client::new(&client)?.call(Method::POST, &path, Some(&json!({"percent": percent}))).await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => {
                    println!("flag {name} in {env}: rolled out to {percent} % of users");
                    if v["spec"]["environments"][&env]["enabled"].as_bool() != Some(true) {
                        println!("note: it is disabled in {env}; `pave flags enable {name} --env {env}` turns it on");
                    }
                }
            }
        }
        FlagsCommand::Show { name, client } => {
            let v = Client::new(&client)?.get(&format!("/api/v1/flags/{}", pave_percent::encode(&name))).await?;
            show(client.output, &v);
        }
        FlagsCommand::List { project, archived, client } => {
            let mut path = format!("/api/v1/flags?archived={archived}");
            if let Some(p) = project {
                path.push_str(&format!("&project={}", pave_percent::encode(&p)));
            }
            let v = Client::new(&client)?.get(&path).await?;
            output::list(client.output, &v, "flags", &["NAME", "PROJECT", "TYPE", "ENVIRONMENTS", "LAST SEEN"], |f| {
                vec![
                    cell(&f["metadata"]["name"]),
                    cell(&f["spec"]["project"]),
                    cell(&f["spec"]["type"]),
                    environments(f),
                    cell(&f["status"]["lastSeen"]),
                ]
            });
        }
        FlagsCommand::Archive { name, client } => archive(&name, "archive", &client).await?,
        FlagsCommand::Revive { name, client } => archive(&name, "revive", &client).await?,
        FlagsCommand::Stale { days, project, client } => {
            let mut q = Vec::new();
            if let Some(d) = days {
                q.push(format!("days={d}"));
            }
            if let Some(p) = project {
                q.push(format!("project={}", pave_percent::encode(&p)));
            }
            let v = Client::new(&client)?.get(&format!("/api/v1/flags/stale?{}", q.join("&"))).await?;
            output::list(client.output, &v, "stale", &["NAME", "TYPE", "OWNER", "DAYS", "WHY"], |f| {
                vec![cell(&f["name"]), cell(&f["type"]), cell(&f["owner"]), cell(&f["days"]), cell(&f["reason"])]
            });
        }
        FlagsCommand::Token(cmd) => token(cmd).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn toggle(name: &str, env: &str, action: &str, client: &ClientArgs) -> Result<()> {
    let path =
        format!("/api/v1/flags/{}/environments/{}/{action}", pave_percent::encode(name), pave_percent::encode(env));
    let v = Client::new(client)?.call(Method::POST, &path, None).await?;
    match client.output {
        Format::Json | Format::Yaml => output::json(&v),
        Format::Table => {
            let exposure = cell(&v["status"]["environments"][env]["exposure"]);
            println!(
                "flag {name} {action}d in {env} (on for: {})",
                match exposure.as_str() {
                    "on" => "everyone",
                    "partial" => "some users",
                    _ => "no one",
                }
            );
        }
    }
    Ok(())
}

async fn archive(name: &str, action: &str, client: &ClientArgs) -> Result<()> {
    let v = Client::new(client)?
        .call(Method::POST, &format!("/api/v1/flags/{}/{action}", pave_percent::encode(name)), None)
        .await?;
    match client.output {
        Format::Json | Format::Yaml => output::json(&v),
        Format::Table => println!("flag {name} {}", if action == "archive" { "archived" } else { "revived" }),
    }
    Ok(())
}

async fn token(cmd: SdkTokenCommand) -> Result<()> {
    match cmd {
        SdkTokenCommand::Create { name, env, project, kind, client } => {
            let body = json!({"name": name, "kind": kind, "project": project, "environment": env});
            let v = Client::new(&client)?.call(Method::POST, "/api/v1/sdk-tokens", Some(&body)).await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => {
                    println!(
                        "{} SDK token {} ({}) for project {project}, environment {env}:",
                        kind,
                        cell(&v["name"]),
                        cell(&v["id"])
                    );
                    println!("{}", cell(&v["secret"]));
                    println!("(shown once; SDKs send it as the Authorization header)");
                }
            }
        }
        SdkTokenCommand::List { client } => {
            let v = Client::new(&client)?.get("/api/v1/sdk-tokens").await?;
            output::list(
                client.output,
                &v,
                "tokens",
                &["ID", "NAME", "KIND", "PROJECT", "ENVIRONMENT", "REVOKED"],
                |t| {
                    vec![
                        cell(&t["id"]),
                        cell(&t["name"]),
                        cell(&t["kind"]),
                        cell(&t["project"]),
                        cell(&t["environment"]),
                        cell(&t["revokedAt"]),
                    ]
                },
            );
        }
        SdkTokenCommand::Revoke { id, client } => {
            let v = Client::new(&client)?
                .call(Method::DELETE, &format!("/api/v1/sdk-tokens/{}", pave_percent::encode(&id)), None)
                .await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => println!("SDK token {id} revoked"),
            }
        }
    }
    Ok(())
}
