//! `pave event …` reports delivery facts; `pave dora` shows the metrics.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use pave_api::dora::{Durations, Figures, Level, Rate};
use pave_model::Timestamp;
use pave_model::delivery::{Change, Deployment, DeploymentKind, DeploymentStatus, Incident, Report, TimelineEntry};
use reqwest::Method;
use serde_json::Value;

use crate::ClientArgs;
use crate::client::{Client, read};
use crate::output::{self, Format, show};

/// An RFC 3339 time, `now`, or `now-DURATION` (`now-3h`, `now-90m`): a report made after the
/// fact can say when things happened without a calendar.
fn time(s: &str) -> Result<Timestamp> {
    let now = pave_model::clock::now_ms;
    if s == "now" {
        return Ok(Timestamp(now()));
    }
    if let Some(ago) = s.strip_prefix("now-") {
        let ms = pave_model::runtime::parse_duration(ago).map_err(|e| anyhow::anyhow!("{s:?}: {e} (as in now-3h)"))?;
        return Ok(Timestamp(now() - ms as i64));
    }
    Timestamp::parse_rfc3339(s).map_err(|e| anyhow::anyhow!("{e} (or write now, or now-3h)"))
}

fn opt_time(s: &Option<String>) -> Result<Option<Timestamp>> {
    s.as_deref().map(time).transpose()
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Report a deployment (from any CI/CD system).
    Deployment {
        /// The service's name, as in the catalog.
        #[arg(long)]
        service: String,
        /// The environment's name (`production`).
        #[arg(long = "env")]
        environment: String,
        /// The release's version (`1.4.0`).
        #[arg(long)]
        version: String,
        /// The commit deployed.
        #[arg(long)]
        commit: Option<String>,
        /// The commit running before.
        #[arg(long)]
        previous_commit: Option<String>,
        /// Every commit shipped, comma-separated, when known exactly.
        #[arg(long, value_delimiter = ',')]
        commits: Vec<String>,
        /// RFC 3339 time, `now` or `now-DURATION` (`now-2h`).
        #[arg(long, default_value = "now")]
        started: String,
        /// RFC 3339 time, `now` or `now-DURATION` (`now-2h`).
        #[arg(long, default_value = "now")]
        finished: String,
        /// succeeded, failed or rolled-back.
        #[arg(long, default_value = "succeeded")]
        status: String,
        /// planned, or unplanned (a fix for a production problem).
        #[arg(long, default_value = "planned")]
        kind: String,
        /// Idempotency id: a report with the id of an earlier one updates it [default:
        /// SERVICE/ENV/VERSION, then /COMMIT when --commit is given and /STARTED (ms) when
        /// --started is not `now`; so a CI retry of the same deployment reports it once].
        #[arg(long)]
        id: Option<String>,
        /// A checkout of the service's repository: the commits shipped (reachable from
        /// --commit and not from --previous-commit) are read from it and reported too.
        #[arg(long, requires = "commit", conflicts_with = "commits")]
        repo: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Report an incident, or update one (same id) when it is detected or resolved.
    Incident {
        /// The incident's id in your incident tool (`INC-7`); reporting the same id again updates it.
        #[arg(long)]
        id: String,
        /// The service's name, as in the catalog.
        #[arg(long)]
        service: String,
        /// When the impact began.
        #[arg(long, default_value = "now")]
        opened: String,
        /// When someone or something noticed it: RFC 3339, `now` or `now-DURATION` [default: when it opened].
        #[arg(long)]
        detected: Option<String>,
        /// When service was restored: RFC 3339, `now` or `now-DURATION`; open until given.
        #[arg(long)]
        resolved: Option<String>,
        /// How bad: your incident tool's word for it (`sev1`, `critical`, …).
        #[arg(long, default_value = "unknown")]
        severity: String,
        /// The id of the deployment that caused it.
        #[arg(long)]
        deployment: Option<String>,
        /// A one-line summary.
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Report a change (a commit), with its merge time if it went through a pull request.
    Change {
        /// The commit's id.
        #[arg(long)]
        sha: String,
        /// The service's name, as in the catalog.
        #[arg(long)]
        service: String,
        /// Who wrote it (name or e-mail).
        #[arg(long, default_value = "")]
        author: String,
        /// The commit message (its first line is enough).
        #[arg(long, default_value = "")]
        message: String,
        /// Defaults to the commit time.
        #[arg(long)]
        authored: Option<String>,
        /// When it was committed: RFC 3339, `now` or `now-DURATION`.
        #[arg(long, default_value = "now")]
        committed: String,
        /// When its pull request was merged (lead time is measured from the commit either way).
        #[arg(long)]
        merged: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// What identifies a deployment when the reporter gives no id: the same call retried (a CI
/// job run again) must name the same deployment, so the time of the call is never part of it;
/// an explicit start time is.
fn default_deployment_id(
    service: &str,
    environment: &str,
    version: &str,
    commit: Option<&str>,
    explicit_start: bool,
    started: Timestamp,
) -> String {
    let mut id = format!("{service}/{environment}/{version}");
    if let Some(c) = commit {
        id.push('/');
        id.push_str(c);
    }
    if explicit_start {
        id.push('/');
        id.push_str(&started.0.to_string());
    }
    id
}

fn parse_enum<T: serde::de::DeserializeOwned>(flag: &str, value: &str) -> Result<T> {
    serde_json::from_value(Value::String(value.to_owned())).with_context(|| format!("--{flag} {value:?} is not valid"))
}

pub async fn event(cmd: EventCommand) -> Result<ExitCode> {
    let mut extra = Vec::new();
    let (report, client) = match cmd {
        EventCommand::Deployment {
            service,
            environment,
            version,
            commit,
            previous_commit,
            commits,
            started,
            finished,
            status,
            kind,
            id,
            repo,
            client,
        } => {
            let started_at = time(&started)?;
            let mut commits = commits;
            if let (Some(path), Some(sha)) = (&repo, &commit) {
                let (shipped, why) = shipped_commits(path, sha, previous_commit.as_deref(), &service)?;
                if let Some(why) = why {
                    eprintln!("note: {why}");
                }
                commits = shipped.iter().map(|c| c.key().to_owned()).collect();
                extra = shipped;
            }
            let status: DeploymentStatus = parse_enum("status", &status)?;
            let kind: DeploymentKind = parse_enum("kind", &kind)?;
            let id = id.unwrap_or_else(|| {
                default_deployment_id(&service, &environment, &version, commit.as_deref(), started != "now", started_at)
            });
            let d = Deployment {
                id,
                service,
                environment,
                version,
                commit,
                previous_commit,
                commits,
                started_at,
                finished_at: time(&finished)?,
                status,
                kind,
            };
            (Report::Deployment(d), client)
        }
        EventCommand::Incident { id, service, opened, detected, resolved, severity, deployment, title, client } => {
            let i = Incident {
                id,
                service,
                opened_at: time(&opened)?,
                detected_at: opt_time(&detected)?,
                resolved_at: opt_time(&resolved)?,
                severity,
                deployment,
                title,
            };
            (Report::Incident(i), client)
        }
        EventCommand::Change { sha, service, author, message, authored, committed, merged, client } => {
            let committed_at = time(&committed)?;
            let c = Change {
                sha,
                service,
                author,
                message,
                authored_at: opt_time(&authored)?.unwrap_or(committed_at),
                committed_at,
                merged_at: opt_time(&merged)?,
            };
            (Report::Change(c), client)
        }
    };
    let errors = report.validate();
    if !errors.is_empty() {
        bail!("invalid {}: {}", report.noun(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
    }
    let mut events: Vec<Value> = extra.iter().map(Report::to_value).collect();
    events.push(report.to_value());
    let body = serde_json::to_value(pave_api::ReportRequest { events })?;
    let v = Client::new(&client)?.call(Method::POST, "/api/v1/events", Some(&body)).await?;
    match client.output {
        Format::Json | Format::Yaml => output::json(&v),
        Format::Table => {
            let results = read::<pave_api::ReportResult>(&v, "the report")?.results;
            if let Some(r) = results.last() {
                println!("{} {} {}", show(&r.kind), show(&r.id), show(&r.action));
            }
            if results.len() > 1 {
                println!("with {} shipped commit(s) reported as changes", results.len() - 1);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the commits a deployment ships from a checkout (see [`pave_git::shipped`]).
fn shipped_commits(
    path: &std::path::Path,
    sha: &str,
    previous: Option<&str>,
    service: &str,
) -> Result<(Vec<Report>, Option<String>)> {
    let repo = pave_git::Repo::open(path)?;
    let id = |s: &str| -> Result<pave_git::ObjectId> {
        if s.len() == 40 {
            pave_git::ObjectId::from_hex(s.as_bytes())
                .map_err(|e| anyhow::anyhow!("{s:?} is not a full commit hash: {e}"))
        } else {
            repo.resolve(s).map_err(Into::into)
        }
    };
    let tip = id(sha).with_context(|| format!("--commit {sha}"))?;
    let previous = previous.map(|p| id(p).with_context(|| format!("--previous-commit {p}"))).transpose();
    // An unknown previous commit (a force-pushed history) is not an error: it is reported.
    let previous = match previous {
        Ok(p) => p,
        Err(e) => {
            eprintln!("note: {e:#}");
            None
        }
    };
    let (commits, why) = pave_git::shipped(&repo, tip, previous)?;
    let reports = commits
        .into_iter()
        .map(|c| {
            Report::Change(Change {
                sha: c.id.to_string(),
                service: service.to_owned(),
                author: String::new(),
                message: c.summary.map(String::from).unwrap_or_default(),
                authored_at: Timestamp(c.author_time * 1000),
                committed_at: Timestamp(c.commit_time * 1000),
                merged_at: None,
            })
        })
        .collect();
    Ok((reports, why))
}

#[derive(Debug, Args)]
pub struct DoraArgs {
    /// Window start: RFC 3339, or a span before --to such as 30d, 12w [default: 30d].
    #[arg(long)]
    pub from: Option<String>,
    /// Window end (exclusive): RFC 3339 [default: now].
    #[arg(long)]
    pub to: Option<String>,
    /// Only the services this team owns.
    #[arg(long)]
    pub team: Option<String>,
    /// The service's name, as in the catalog.
    #[arg(long)]
    pub service: Option<String>,
    /// Environment whose deployments count [default: the production ones].
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Also show a series: week or month.
    #[arg(long)]
    pub series: Option<String>,
    /// Include the deployments, commits and incidents behind each figure (JSON output).
    #[arg(long)]
    pub explain: bool,
    /// Built-in benchmark: dora-2024 (default) or dora-2023.
    #[arg(long, conflicts_with = "benchmark_file")]
    pub benchmark: Option<String>,
    /// Your own benchmark table (JSON, the built-in tables' format).
    #[arg(long)]
    pub benchmark_file: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `3h 20m`, `45s`, `2d 4h`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.round() as i64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn durations(d: &Durations) -> String {
    match (d.median, d.p90) {
        (Some(m), Some(p)) => format!("median {}, p90 {} ({} items)", human_duration(m), human_duration(p), d.count),
        _ => "no data".into(),
    }
}

fn pct(r: &Rate) -> String {
    match r.rate {
        Some(rate) => format!("{:.1}% ({} of {})", rate * 100.0, r.count, r.total),
        None => "no deployments".into(),
    }
}

fn lvl(l: &Option<Level>) -> String {
    l.as_ref().map_or("-".to_owned(), |l| output::clean(&l.level).into_owned())
}

/// Reads a report's figures (from the server, or `pave assess`'s own) and prints them.
pub fn print_figures(f: &Value) -> Result<()> {
    let f: Figures = read(f, "the report")?;
    let (df, lt, rt) = (&f.deployment_frequency, &f.lead_time, &f.recovery_time);
    let bucket = output::clean(&df.bucket);
    let rows = vec![
        vec![
            "Deployment frequency".into(),
            match (df.per_day, df.per_week) {
                (Some(day), Some(week)) => {
                    format!("{day:.2}/day, {week:.1}/week ({} deployments, {bucket})", df.deployments)
                }
                // No rate (`pave assess` over a window too short to judge).
                _ => format!("no rate ({} deployments, {bucket})", df.deployments),
            },
            lvl(&df.level),
        ],
        vec!["Lead time for changes".into(), durations(&lt.commits), lvl(&lt.level)],
        vec!["Change failure rate".into(), pct(&f.change_failure_rate), lvl(&f.change_failure_rate.level)],
        vec!["Failed deployment recovery".into(), format!("{}; {} open", durations(&rt.time), rt.open), lvl(&rt.level)],
        vec!["Rework rate".into(), pct(&f.rework_rate), lvl(&f.rework_rate.level)],
        vec!["Time to detect".into(), durations(&f.time_to_detect), "-".into()],
    ];
    output::table(&["METRIC", "VALUE", "LEVEL"], &rows);
    let fc = &f.flag_changes;
    if fc.count > 0 {
        println!(
            "Flag changes: {} to {} flags ({:.2}/day), {} switched something off",
            fc.count, fc.flags, fc.per_day, fc.turned_off
        );
    }
    let m = |d: &Durations| d.median.map_or("-".to_owned(), human_duration);
    println!(
        "Value stream (medians): commit -> merge {}, merge -> deploy start {}, deploy {}",
        m(&lt.commit_to_merge),
        m(&lt.merge_to_deploy),
        m(&lt.deploy_duration)
    );
    Ok(())
}

pub async fn dora(args: DoraArgs) -> Result<ExitCode> {
    let benchmark_table = match &args.benchmark_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?)
        }
        None => None,
    };
    let query = pave_api::DoraQuery {
        from: args.from,
        to: args.to,
        team: args.team,
        service: args.service,
        environment: args.environment,
        series: args.series,
        explain: Some(args.explain),
        benchmark: args.benchmark,
        benchmark_table,
    };
    let v = Client::new(&args.client)?.call(Method::POST, "/api/v1/dora", Some(&serde_json::to_value(&query)?)).await?;
    if args.client.output.structured() || args.explain {
        output::json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    let report: pave_api::DoraReport = read(&v, "the DORA report")?;
    let scope = &report.scope;
    let envs: Vec<String> = scope.environments.iter().map(|e| output::clean(e).into_owned()).collect();
    println!(
        "DORA metrics for {} in {}, {} to {} (benchmark {})\n",
        output::clean(scope.service.as_deref().or(scope.team.as_deref()).unwrap_or("the organisation")),
        envs.join(", "),
        show(&report.totals.from),
        show(&report.totals.to),
        show(&report.benchmark)
    );
    print_figures(&v)?;
    if !report.series.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = report
            .series
            .iter()
            .map(|f| {
                vec![
                    show(&f.from).chars().take(10).collect(),
                    f.deployment_frequency.deployments.to_string(),
                    f.lead_time.commits.median.map_or("-".into(), human_duration),
                    f.change_failure_rate.rate.map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
                    f.recovery_time.time.median.map_or("-".into(), human_duration),
                    f.rework_rate.rate.map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
                ]
            })
            .collect();
        output::table(&["FROM", "DEPLOYS", "LEAD TIME", "CFR", "RECOVERY", "REWORK"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// Window start: RFC 3339, or a span before --to such as 6h, 2d [default: 24h].
    #[arg(long, conflicts_with = "incident")]
    pub from: Option<String>,
    /// Window end (exclusive): RFC 3339 [default: now].
    #[arg(long, conflicts_with = "incident")]
    pub to: Option<String>,
    /// What changed around this incident: from --before its start to its resolution.
    #[arg(long)]
    pub incident: Option<String>,
    /// With --incident: how far back to look [default: 24h].
    #[arg(long, requires = "incident")]
    pub before: Option<String>,
    /// The environment's name (`production`).
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Only the services this team owns.
    #[arg(long)]
    pub team: Option<String>,
    /// The service's name, as in the catalog.
    #[arg(long)]
    pub service: Option<String>,
    /// Most entries, newest kept.
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `pave timeline`: deployments, incidents and flag changes in time order.
pub async fn timeline(args: TimelineArgs) -> Result<ExitCode> {
    let q = crate::commands::query_string(&[
        ("from", args.from),
        ("to", args.to),
        ("incident", args.incident),
        ("before", args.before),
        ("environment", args.environment),
        ("team", args.team),
        ("service", args.service),
        ("limit", args.limit.map(|l| l.to_string())),
    ]);
    let v = Client::new(&args.client)?.get(&format!("/api/v1/timeline{q}")).await?;
    if args.client.output.structured() {
        output::json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    let t: pave_api::Timeline = read(&v, "the timeline")?;
    if let Some(inc) = &t.incident {
        println!(
            "Incident {} ({}, {}): opened {}, resolved {}\n",
            show(&inc.id),
            show(&inc.service),
            show(&inc.severity),
            show(&inc.opened_at),
            show(&inc.resolved_at)
        );
    }
    let rows: Vec<Vec<String>> = t.entries.iter().map(timeline_row).collect();
    output::table(&["TIME", "WHAT", "WHERE", "DETAIL"], &rows);
    if t.truncated {
        println!("(showing the newest {} of {}; raise --limit or narrow the window)", rows.len(), t.total);
    }
    Ok(ExitCode::SUCCESS)
}

fn timeline_row(e: &TimelineEntry) -> Vec<String> {
    let at = show(&e.at());
    match e {
        TimelineEntry::Deployment(d) => vec![
            at,
            format!("deploy {} {}", show(&d.service), show(&d.version)),
            show(&d.environment),
            format!("{} ({})", show(&d.status), show(&d.kind)),
        ],
        TimelineEntry::Incident(i) => vec![
            at,
            format!("incident {}", show(&i.incident.id)),
            show(&i.incident.service),
            format!("{} {}", show(&i.incident.severity), output::clean(i.incident.title.as_deref().unwrap_or("")))
                .trim()
                .to_owned(),
        ],
        TimelineEntry::Flag(f) => {
            let envs: Vec<String> = f
                .environments
                .iter()
                .map(|m| {
                    let before = m.exposure_before.as_deref().unwrap_or("-");
                    format!("{}: {before} -> {}", show(&m.environment), show(&m.exposure))
                })
                .collect();
            vec![
                at,
                format!("flag {} {}", show(&f.flag), show(&f.action)),
                if envs.is_empty() { "*".into() } else { envs.join(", ") },
                format!("by {}", show(&f.actor)),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_durations() {
        assert_eq!(super::human_duration(45.0), "45s");
        assert_eq!(super::human_duration(7560.0), "2h 6m");
        assert_eq!(super::human_duration(200_000.0), "2d 7h");
    }
}
