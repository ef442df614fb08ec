//! `pave flags …`: feature flags from the command line — create, enable, disable, roll out,
//! show, list, archive, find flag debt — and SDK tokens for the services that read them.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::ClientArgs;
use pave_api::FlagDocument;

use crate::client::{Client, read};
use crate::output::{self, Format, show as oshow};

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
fn environments(f: &FlagDocument) -> String {
    if f.spec.environments.is_empty() {
        return "-".into();
    }
    f.spec
        .environments
        .iter()
        .map(|(env, cfg)| {
            let env = output::clean(env);
            let state = if cfg.enabled { "on" } else { "off" };
            if exposure(f, &env) == "partial" { format!("{env}={state}(partial)") } else { format!("{env}={state}") }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `off`, `partial` or `on` in `env` (`-` when the server did not say).
fn exposure(f: &FlagDocument, env: &str) -> String {
    f.status.environments.get(env).map_or("-".into(), |e| output::clean(&e.exposure).into_owned())
}

fn show(format: Format, v: &Value) -> Result<()> {
    if format.structured() {
        output::json(v);
        return Ok(());
    }
    let f: FlagDocument = read(v, "the flag")?;
    println!("flag {} ({}, project {})", oshow(&f.metadata.name), oshow(&f.spec.flag_type), oshow(&f.spec.project));
    if let Some(d) = &f.spec.description {
        println!("  {}", output::clean(d));
    }
    if let Some(at) = &f.status.archived_at {
        println!("  archived at {}", oshow(at));
    }
    for (env, cfg) in &f.spec.environments {
        let since = f.status.environments.get(env).map(|e| e.since);
        println!(
            "  {}: {} - {} since {}",
            output::clean(env),
            if cfg.enabled { "enabled" } else { "disabled" },
            exposure(&f, env),
            oshow(&since)
        );
        for s in &cfg.strategies {
            let params: Vec<String> = s.parameters.iter().map(|(k, v)| format!("{k}={}", output::clean(v))).collect();
            let n = s.constraints.len();
            println!(
                "    - {} {}{}",
                oshow(&s.name),
                params.join(" "),
                if n > 0 { format!(" ({n} constraints)") } else { String::new() }
            );
        }
        for var in &cfg.variants {
            println!("    variant {} weight {}", oshow(&var.name), oshow(&var.weight));
        }
    }
    for w in &f.status.warnings {
        println!("  warning: {}", oshow(&w.message));
    }
    for u in &f.status.usage {
        println!("  evaluated in {}: {} yes, {} no, last {}", oshow(&u.environment), u.yes, u.no, oshow(&u.last_seen));
    }
    Ok(())
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
                    let f: FlagDocument = read(&v, "the flag")?;
                    if !f.spec.environments.get(&env).is_some_and(|e| e.enabled) {
                        println!("note: it is disabled in {env}; `pave flags enable {name} --env {env}` turns it on");
                    }
                }
            }
        }
        FlagsCommand::Show { name, client } => {
            let v = Client::new(&client)?.get(&format!("/api/v1/flags/{}", pave_percent::encode(&name))).await?;
            show(client.output, &v)?;
        }
        FlagsCommand::List { project, archived, client } => {
            let mut path = format!("/api/v1/flags?archived={archived}");
            if let Some(p) = project {
                path.push_str(&format!("&project={}", pave_percent::encode(&p)));
            }
            let v = Client::new(&client)?.get(&path).await?;
            let list: pave_api::FlagList = read(&v, "the flags")?;
            let headers = ["NAME", "PROJECT", "TYPE", "ENVIRONMENTS", "LAST SEEN"];
            output::typed_list(client.output, &v, &list.flags, &headers, |f| {
                vec![
                    oshow(&f.metadata.name),
                    oshow(&f.spec.project),
                    oshow(&f.spec.flag_type),
                    environments(f),
                    oshow(&f.status.last_seen),
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
            let stale: pave_api::StaleFlags = read(&v, "the stale flags")?;
            output::typed_list(client.output, &v, &stale.stale, &["NAME", "TYPE", "OWNER", "DAYS", "WHY"], |f| {
                vec![oshow(&f.name), oshow(&f.flag_type), oshow(&f.owner), f.days.to_string(), oshow(&f.reason)]
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
            let exposure = exposure(&read(&v, "the flag")?, env);
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
            let body = serde_json::to_value(pave_api::flags::NewSdkToken {
                name,
                kind: kind.clone(),
                project: project.clone(),
                environment: env.clone(),
            })?;
            let v = Client::new(&client)?.call(Method::POST, "/api/v1/sdk-tokens", Some(&body)).await?;
            match client.output {
                Format::Json | Format::Yaml => output::json(&v),
                Format::Table => {
                    let t: pave_api::SdkToken = read(&v, "the new SDK token")?;
                    println!(
                        "{} SDK token {} ({}) for project {project}, environment {env}:",
                        kind,
                        oshow(&t.name),
                        oshow(&t.id)
                    );
                    println!("{}", oshow(&t.secret));
                    println!("(shown once; SDKs send it as the Authorization header)");
                }
            }
        }
        SdkTokenCommand::List { client } => {
            let v = Client::new(&client)?.get("/api/v1/sdk-tokens").await?;
            let list: pave_api::SdkTokenList = read(&v, "the SDK tokens")?;
            output::typed_list(
                client.output,
                &v,
                &list.tokens,
                &["ID", "NAME", "KIND", "PROJECT", "ENVIRONMENT", "REVOKED"],
                |t| {
                    vec![
                        oshow(&t.id),
                        oshow(&t.name),
                        oshow(&t.kind),
                        oshow(&t.project),
                        oshow(&t.environment),
                        oshow(&t.revoked_at),
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
