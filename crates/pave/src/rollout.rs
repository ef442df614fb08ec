//! `pave deploy`, `pave rollout …` and `pave logs`: take a release into an environment, watch
//! and steer the rollout, read the replicas' output.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use crate::ClientArgs;
use crate::client::{Client, read};
use crate::output::{self, Format, show};
use pave_percent::encode;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The service's name, as in the catalog.
    pub service: String,
    /// The release's version (`1.4.0`): `pave release list SERVICE` shows them.
    pub version: String,
    /// The environment's name (`production`).
    #[arg(long = "env")]
    pub environment: String,
    /// recreate, rolling, blue-green or canary (a canary takes its steps from the service's
    /// spec.rollout) [default: the service's spec.rollout, else rolling]
    #[arg(long)]
    pub strategy: Option<String>,
    /// Admins: skip the promotion path and the approval, recording this reason.
    #[arg(long = "override", value_name = "REASON")]
    pub override_reason: Option<String>,
    /// Return once the rollout is recorded instead of following it to its end.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct Target {
    /// The service's name, as in the catalog.
    pub service: String,
    /// The environment's name (`production`).
    #[arg(long = "env")]
    pub environment: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A command that moves a rollout on, then follows it to its next stop.
#[derive(Debug, Args)]
pub struct Steer {
    #[command(flatten)]
    pub target: Target,
    /// Return at once instead of following the rollout to its end or next gate.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// The route, replicas, active rollout and golden signals of a service in an environment.
    Status {
        #[command(flatten)]
        target: Target,
        /// Refresh every second until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// Rollouts, newest first.
    List {
        /// The service's name, as in the catalog.
        #[arg(long)]
        service: Option<String>,
        /// The environment's name (`production`).
        #[arg(long = "env")]
        environment: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve the rollout waiting for approval: someone other than who requested it, or an
    /// admin (whose approval of their own rollout is recorded as self-approved).
    Approve(Steer),
    /// Let a rollout go past the step it waits in: a promotion gate (blue-green: switch
    /// traffic), a canary pause, or an analysis.
    Promote(Steer),
    /// Hold a progressing rollout where it is, traffic as it is, until resume or promote.
    Pause(Target),
    /// Let a paused rollout go on from its step.
    Resume(Steer),
    /// Stop the active rollout and restore the version that served before.
    Abort(Steer),
    /// Return to the release that served before the current one.
    Undo(Target),
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The service's name, as in the catalog.
    pub service: String,
    /// The environment's name (`production`).
    #[arg(long = "env")]
    pub environment: String,
    /// Lines per replica to show first.
    #[arg(long, default_value_t = 100)]
    pub lines: usize,
    /// Keep streaming new lines.
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Follows a rollout, printing each state change, until it ends or waits for a person.
pub(crate) async fn follow(c: &Client, id: i64, format: Format) -> Result<ExitCode> {
    let mut last = (String::new(), usize::MAX);
    loop {
        let v = c.get(&format!("/api/v1/rollouts/{id}")).await?;
        let r = read::<pave_api::RolloutOne>(&v, "the rollout")?.rollout;
        let state = r.state.as_str().to_owned();
        let step = r.step;
        if format == Format::Table && (state.clone(), step) != last {
            if r.state.is_terminal() {
                println!("rollout {id}: {state}");
            } else {
                let steps = if state == "rolling-back" { &r.revert } else { &r.steps };
                let doing = steps.get(step).map(pave_model::rollout::Step::describe).unwrap_or_default();
                println!("rollout {id}: {state} [{step}/{}] {doing}", steps.len());
            }
            last = (state.clone(), step);
        }
        if r.state.is_terminal() || state == "awaiting-approval" || state == "awaiting-promotion" || state == "paused" {
            if format.structured() {
                output::json(&v);
            } else if let Some(reason) = &r.reason {
                println!("reason: {}", output::clean(reason));
            }
            return Ok(if state == "succeeded" || state.starts_with("awaiting") || state == "paused" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub async fn deploy(a: DeployArgs) -> Result<ExitCode> {
    let c = Client::new(&a.client)?;
    let body = serde_json::to_value(pave_api::DeployRequest {
        service: a.service,
        environment: a.environment,
        version: a.version,
        strategy: a.strategy,
        override_reason: a.override_reason,
    })?;
    let v = c.call(Method::POST, "/api/v1/deployments", Some(&body)).await?;
    let r = read::<pave_api::RolloutOne>(&v, "the deployment")?.rollout;
    let id = r.id;
    if a.no_wait {
        match a.client.output {
            Format::Json | Format::Yaml => output::json(&v),
            Format::Table => println!("rollout {id}: {}", r.state.as_str()),
        }
        return Ok(ExitCode::SUCCESS);
    }
    follow(&c, id, a.client.output).await
}

async fn active(c: &Client, t: &Target) -> Result<i64> {
    let v = c
        .get(&format!("/api/v1/rollouts?service={}&environment={}&limit=1", encode(&t.service), encode(&t.environment)))
        .await?;
    match read::<pave_api::RolloutList>(&v, "the rollouts")?.rollouts.first() {
        Some(r) if !r.state.is_terminal() => Ok(r.id),
        _ => bail!("{} has no rollout in progress in {}", t.service, t.environment),
    }
}

pub async fn rollout(cmd: RolloutCommand) -> Result<ExitCode> {
    match cmd {
        RolloutCommand::Status { target, watch } => {
            let c = Client::new(&target.client)?;
            let path = format!("/api/v1/services/{}/environments/{}/status", target.service, target.environment);
            loop {
                let v = c.get(&path).await?;
                if target.client.output.structured() {
                    output::json(&v);
                } else {
                    if watch {
                        print!("\x1b[2J\x1b[H");
                    }
                    print_status(&v)?;
                }
                if !watch {
                    return Ok(ExitCode::SUCCESS);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        RolloutCommand::List { service, environment, client } => {
            let mut q = vec!["limit=50".to_owned()];
            if let Some(s) = &service {
                q.push(format!("service={}", encode(s)));
            }
            if let Some(e) = &environment {
                q.push(format!("environment={}", encode(e)));
            }
            let v = Client::new(&client)?.get(&format!("/api/v1/rollouts?{}", q.join("&"))).await?;
            let list: pave_api::RolloutList = read(&v, "the rollouts")?;
            output::typed_list(
                client.output,
                &v,
                &list.rollouts,
                &["ID", "SERVICE", "ENV", "VERSION", "FROM", "STRATEGY", "STATE", "BY"],
                |r| {
                    vec![
                        r.id.to_string(),
                        show(&r.service),
                        show(&r.environment),
                        show(&r.version),
                        show(&r.from_version),
                        show(&r.strategy),
                        r.state.as_str().to_owned(),
                        show(&r.requested_by),
                    ]
                },
            );
            Ok(ExitCode::SUCCESS)
        }
        RolloutCommand::Approve(s) => act(s.target, "approve", !s.no_wait).await,
        RolloutCommand::Promote(s) => act(s.target, "promote", !s.no_wait).await,
        RolloutCommand::Abort(s) => act(s.target, "abort", !s.no_wait).await,
        RolloutCommand::Pause(t) => act(t, "pause", false).await,
        RolloutCommand::Resume(s) => act(s.target, "resume", !s.no_wait).await,
        RolloutCommand::Undo(t) => {
            let c = Client::new(&t.client)?;
            let path = format!("/api/v1/services/{}/environments/{}/undo", t.service, t.environment);
            let v = c.call(Method::POST, &path, None).await?;
            let r = read::<pave_api::RolloutOne>(&v, "the undo")?.rollout;
            let id = r.id;
            if t.client.output == Format::Table {
                println!("undo: rollout {id} takes {} back to {}", t.service, show(&r.version));
            }
            follow(&c, id, t.client.output).await
        }
    }
}

async fn act(t: Target, action: &str, wait: bool) -> Result<ExitCode> {
    let c = Client::new(&t.client)?;
    let id = active(&c, &t).await?;
    let v = c.call(Method::POST, &format!("/api/v1/rollouts/{id}/{action}"), None).await?;
    if !wait {
        match t.client.output {
            Format::Json | Format::Yaml => output::json(&v),
            Format::Table => {
                println!("rollout {id}: {}", read::<pave_api::RolloutOne>(&v, "the rollout")?.rollout.state.as_str())
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    // An aborted rollout ended as asked: not a failure of this command.
    follow(&c, id, t.client.output).await.map(|code| if action == "abort" { ExitCode::SUCCESS } else { code })
}

pub(crate) fn print_status(v: &Value) -> Result<()> {
    let st: pave_api::DeployStatus = read(v, "the status")?;
    println!("{} in {}: {}", show(&st.service), show(&st.environment), show(&st.url));
    for ver in &st.desired.versions {
        println!("  {:<14} weight {:>3}%  replicas {}", show(&ver.version), ver.weight, ver.replicas);
    }
    for r in &st.replicas {
        // A process replica shows its pid and port; any other runtime's, its endpoint.
        match (r.detail.get("pid"), r.detail.get("port")) {
            (Some(pid), Some(port)) => println!("  replica {:<28} pid {:<8} port {}", show(&r.id), pid, port),
            _ => println!("  replica {:<28} at {}", show(&r.id), show(&r.endpoint)),
        }
    }
    if let Some(r) = &st.active_rollout {
        println!(
            "  rollout {}: {} -> {} ({}), {} at step {}",
            r.id,
            show(&r.from_version),
            show(&r.version),
            show(&r.strategy),
            r.state.as_str(),
            r.step
        );
    }
    for s in st.signals.iter().flatten() {
        println!(
            "  signals {:<10} requests {:>8}  5xx {:>6} ({:.2}%)  p50 {} ms  p99 {} ms",
            show(&s.version),
            s.requests,
            s.errors,
            s.error_rate * 100.0,
            ms(s.p50_ms),
            ms(s.p99_ms)
        );
    }
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.2}"))
}

pub async fn logs(a: LogsArgs) -> Result<ExitCode> {
    let c = Client::new(&a.client)?;
    let path = format!(
        "/api/v1/services/{}/environments/{}/logs?lines={}&follow={}",
        a.service, a.environment, a.lines, a.follow
    );
    let mut out = std::io::stdout();
    c.stream_text(&path, |chunk| {
        let _ = out.write_all(chunk);
        let _ = out.flush();
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
