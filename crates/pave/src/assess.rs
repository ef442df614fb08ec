//! `pave assess PATH`: a DORA baseline from a git repository's history, with no server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use pave_dora::assess::{self, Heuristics, HistoryCommit, Release};
use pave_dora::{Benchmark, Facts, Granularity, Query};
use pave_model::Timestamp;

#[derive(Debug, Args)]
pub struct AssessArgs {
    /// The repository (any directory inside it).
    pub path: PathBuf,
    /// Release tags to count, as a glob (`release-*`) [default: semver-like tags: v1.2.3, 1.2.3].
    #[arg(long)]
    pub tag_pattern: Option<String>,
    /// Count first-parent merges to this branch as the deployments, instead of tags.
    #[arg(long, conflicts_with = "tag_pattern")]
    pub branch: Option<String>,
    /// Monorepo: only commits touching this subdirectory count, and only releases shipping one.
    #[arg(long = "path")]
    pub subdir: Option<String>,
    /// Name of the service in the report [default: the repository's or subdirectory's name].
    #[arg(long)]
    pub service: Option<String>,
    /// Start of the window (RFC 3339) [default: the first release].
    #[arg(long)]
    pub since: Option<String>,
    /// End of the window (RFC 3339) [default: just after the last release].
    #[arg(long)]
    pub until: Option<String>,
    /// Do not read reverts as failures.
    #[arg(long)]
    pub no_reverts: bool,
    /// Do not read patch releases as hotfixes.
    #[arg(long)]
    pub no_hotfixes: bool,
    /// Do not read releases of only `fix:` commits as fixes.
    #[arg(long)]
    pub no_fix_commits: bool,
    /// A patch release counts as a hotfix only within this many days of the release before.
    #[arg(long, default_value_t = 7.0, value_parser = non_negative, allow_hyphen_values = true)]
    pub hotfix_window_days: f64,
    /// Print the whole assessment as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Price recovery time in the HTML report at this revenue per hour.
    #[arg(long, value_parser = non_negative, allow_hyphen_values = true)]
    pub revenue_per_hour: Option<f64>,
    /// The unit of --revenue-per-hour, shown with every amount (EUR, USD, ...).
    #[arg(long, default_value = "currency units")]
    pub currency: String,
    /// Benchmark table: dora-2024 (default) or dora-2023.
    #[arg(long, default_value = "dora-2024")]
    pub benchmark: String,
}

/// A number of days or of money: finite and not negative (NaN, inf and -1 are refused, not
/// turned into a window of zero or a price of NaN).
fn non_negative(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{s:?} must be a finite number, zero or more"));
    }
    Ok(v)
}

pub fn run(args: AssessArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let repo = pave_git::Repo::open(&args.path)?;
    let mut notes = Vec::new();
    // What the reader must see before trusting the figures: printed first, in the JSON and
    // at the top of the HTML page.
    let mut warnings: Vec<String> = Vec::new();

    let releases: Vec<Release> = match &args.branch {
        Some(branch) => {
            let tip = repo.resolve(branch)?;
            let chain = repo.first_parent_chain(tip)?;
            notes.push(format!("Deployments are the first-parent merges to {branch}."));
            let commits = chain.len();
            let merges: Vec<Release> = chain
                .into_iter()
                .rev()
                .filter(|(_, parents, _)| *parents > 1)
                .map(|(id, _, time)| Release {
                    name: format!("merge-{}", &id.to_string()[..10]),
                    time,
                    tip: id.to_string(),
                })
                .collect();
            if merges.is_empty() {
                bail!(
                    "no releases found in {}: the first-parent history of {branch} ({commits} commit(s)) has no merge; \
                     count tags instead (drop --branch, or use --tag-pattern)",
                    args.path.display()
                );
            }
            merges
        }
        None => {
            let pattern = args.tag_pattern.as_deref();
            notes.push(match pattern {
                Some(p) => format!("Deployments are the tags matching {p:?}, at their tag time."),
                None => "Deployments are the semver-like tags (v1.2.3 or 1.2.3), at their tag time.".to_owned(),
            });
            let tags: Vec<Release> = repo
                .tags()?
                .into_iter()
                .filter(|t| pattern.map_or_else(|| assess::is_semver_tag(&t.name), |p| assess::glob(p, &t.name)))
                .map(|t| Release { name: t.name, time: t.time, tip: t.commit.to_string() })
                .collect();
            if tags.is_empty() {
                bail!(
                    "no releases found in {}: no tag matches {} (try --tag-pattern, or --branch to count merges)",
                    args.path.display(),
                    pattern
                        .map_or_else(|| "the semver-like pattern (v1.2.3 or 1.2.3)".to_owned(), |p| format!("{p:?}"))
                );
            }
            let lines = assess::release_lines(tags.iter().map(|t| t.name.as_str()));
            if lines.len() > 1 {
                let shown: Vec<String> = lines.iter().take(5).map(|(line, n)| format!("{line}* ({n})")).collect();
                warnings.push(format!(
                    "the release tags belong to {} release lines ({}{}): their releases are mixed into one stream of \
                     deployments; assess one line at a time with a --tag-pattern that matches only that line's \
                     tags (the largest is {}*)",
                    lines.len(),
                    shown.join(", "),
                    if lines.len() > 5 { ", ..." } else { "" },
                    lines[0].0
                ));
            }
            tags
        }
    };

    let tips: Vec<pave_git::ObjectId> = releases
        .iter()
        .map(|r| pave_git::ObjectId::from_hex(r.tip.as_bytes()).context("release tip is not an object id"))
        .collect::<Result<_>>()?;
    let history = pave_git::assign(&repo, &tips, assess::wants_summary)?;
    if repo.is_shallow() {
        warnings.push(format!(
            "this is a shallow clone: history stops at {} boundary commit(s); older commits and releases are not counted",
            history.shallow_boundary
        ));
    }
    if !history.ambiguous_reverts.is_empty() {
        let shown: Vec<String> = history
            .ambiguous_reverts
            .iter()
            .take(5)
            .map(|(revert, prefix)| format!("{} reverts {prefix}", &revert.to_string()[..10]))
            .collect();
        warnings.push(format!(
            "{} revert(s) name an abbreviated commit id that several commits share, so what they revert is unknown and \
             they are not counted: {}",
            history.ambiguous_reverts.len(),
            shown.join(", ")
        ));
    }
    let dir: Vec<&[u8]> = args
        .subdir
        .as_deref()
        .map(|d| d.trim_matches('/').split('/').filter(|p| !p.is_empty()).map(str::as_bytes).collect())
        .unwrap_or_default();
    if let Some(d) = &args.subdir {
        if dir.is_empty() {
            bail!("--path {d:?} names no subdirectory");
        }
        let mut present = false;
        for tip in &tips {
            if repo.has_path(tip, &dir)? {
                present = true;
                break;
            }
        }
        if !present {
            bail!("--path {d}: no release of {} contains {d}", args.path.display());
        }
    }
    let mut commits = Vec::with_capacity(history.commits.len());
    for i in 0..history.commits.len() {
        let c = &history.commits[i];
        let relevant = if dir.is_empty() {
            true
        } else {
            let parent = c.first_parent.map(|p| history.commits[p as usize].id);
            repo.touches(&c.id, parent.as_ref(), &dir)?
        };
        commits.push(HistoryCommit {
            sha: c.id.to_string(),
            author_time: c.author_time,
            commit_time: c.commit_time,
            summary: c.summary.clone(),
            reverts: c.reverts.map(|r| r.to_string()),
            release: history.shipped_by[i] as usize,
            relevant,
        });
    }
    drop(history);
    let heuristics = Heuristics {
        reverts: !args.no_reverts,
        hotfixes: !args.no_hotfixes,
        fix_commits: !args.no_fix_commits,
        hotfix_window_seconds: (args.hotfix_window_days * 86_400.0) as i64,
    };
    let service = args.service.clone().unwrap_or_else(|| {
        let base = args
            .subdir
            .as_deref()
            .map(PathBuf::from)
            .unwrap_or_else(|| std::fs::canonicalize(&args.path).unwrap_or(args.path.clone()));
        base.file_name().map_or("repository".into(), |n| n.to_string_lossy().into_owned())
    });
    let a = assess::assess(&releases, &commits, heuristics, &service);
    if a.deployments.is_empty() {
        // Only a path filter can leave no release counted.
        bail!(
            "no release ships a commit touching {}: none of the {} releases is a deployment of {service}",
            args.subdir.as_deref().unwrap_or("the path"),
            releases.len()
        );
    }
    let relevant_commits = commits.iter().filter(|c| c.relevant).count();
    drop(commits);
    notes.push("A release ships the commits reachable from it and from no earlier release (merges followed through every parent).".into());
    notes.push("The first release ships no attributed commits: the history before it would swamp lead time.".into());
    if heuristics.reverts {
        notes.push("revert: a commit reverting one shipped by an earlier release marks that release failed; the release shipping the revert recovered it and is rework.".into());
    }
    if heuristics.hotfixes {
        notes.push(format!(
            "hotfix: a release that only bumps the patch number within {} days of the release before (or is named hotfix) marks that release failed, and is rework.",
            args.hotfix_window_days
        ));
    }
    if heuristics.fix_commits {
        notes.push(
            "fix-only: a release of only conventional fix: commits marks the release before it failed, and is rework."
                .into(),
        );
    }
    if let Some(d) = &args.subdir {
        notes.push(format!(
            "Only commits touching {d}/ count; {} release(s) shipped none and are not deployments of {service}.",
            a.skipped
        ));
    }

    let first = a.deployments.first().map_or(0, |d| d.finished_at.0);
    let last = a.deployments.last().map_or(0, |d| d.finished_at.0);
    let parse = |s: &Option<String>| s.as_deref().map(Timestamp::parse_rfc3339).transpose().map_err(anyhow::Error::msg);
    let from = parse(&args.since)?.unwrap_or(Timestamp(first));
    let to = parse(&args.until)?.unwrap_or(Timestamp(last + 1000));
    if from >= to {
        bail!("the window is empty: --since must be before --until");
    }
    let bench = Benchmark::builtin(&args.benchmark)?;
    let query = Query {
        from,
        to,
        services: None,
        environments: ["production".to_owned()].into_iter().collect(),
        series: Some(Granularity::Month),
        explain: false,
        explicit_commits: true,
        flag_owners: None,
    };
    let facts = Facts { deployments: &a.deployments, incidents: &a.incidents, changes: &a.changes, flag_changes: &[] };
    let mut report = pave_dora::compute(facts, &query, &bench);
    let in_window = report.totals.deployment_frequency.deployments;
    let too_short = assess::too_short_to_judge(from.0, to.0, in_window);
    if let Some(why) = &too_short {
        report.withhold_levels();
        warnings.insert(0, why.clone());
    }
    let elapsed = started.elapsed();

    let title = format!("DORA baseline of {service}");
    let subtitle = format!(
        "{} releases and {} commits of {}, {} to {}; assessed in {:.2} s",
        a.deployments.len(),
        relevant_commits,
        args.path.display(),
        from,
        to,
        elapsed.as_secs_f64()
    );
    if let Some(path) = &args.html {
        let page = pave_dora::html::Page {
            title: &title,
            subtitle: subtitle.clone(),
            report: &report,
            findings: &a.findings,
            notes: &notes,
            revenue_per_hour: args.revenue_per_hour,
            currency: &args.currency,
            warnings: &warnings,
        };
        std::fs::write(path, pave_dora::html::render(&page))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut value = serde_json::json!({
        "service": service,
        "repository": args.path.display().to_string(),
        "releases": a.deployments.len(),
        "commits": relevant_commits,
        "heuristics": heuristics,
        "judged": too_short.is_none(),
        "warnings": warnings,
        "findings": a.findings,
        "notes": notes,
        "report": report,
    });
    if too_short.is_some() {
        // A rate over a window too short to judge is no figure (one release in one second
        // is not 86,400 a day).
        value["report"]["deploymentFrequency"]["perDay"] = serde_json::Value::Null;
        value["report"]["deploymentFrequency"]["perWeek"] = serde_json::Value::Null;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{title}\n{subtitle}\n");
    for w in &warnings {
        println!("warning: {w}");
    }
    if !warnings.is_empty() {
        println!();
    }
    crate::delivery::print_figures(&value["report"])?;
    if !a.findings.is_empty() {
        println!("\nFailures read from the history (each fix of each failed release):");
        for f in &a.findings {
            let after = match f.recovery_seconds {
                Some(s) => format!("restored after {}", crate::delivery::human_duration(s as f64)),
                None => "again, rework only".to_owned(),
            };
            println!("  {} -> fixed by {} {} [{}]: {}", f.failed, f.fixed_by, after, f.heuristic, f.detail);
        }
    }
    println!("\nHow:");
    for n in &notes {
        println!("  - {n}");
    }
    if let Some(path) = &args.html {
        println!("\nHTML report: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
