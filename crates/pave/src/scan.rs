//! `pave scan secrets`: the secret scan as a pipeline gate. Exit 0 when clean, 1 when
//! something was found (and not accepted), 2 when the scan could not run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use pave_secret_scan::{Accepted, Finding, Ruleset, Source, Summary, walk};

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Find secrets in a working tree, or with --git in every version of every file in history.
    Secrets(SecretsArgs),
    /// Audit the packages every lockfile under PATH installs against an offline OSV database.
    Deps(DepsArgs),
}

#[derive(Debug, Args)]
pub struct DepsArgs {
    /// A project directory (searched for lockfiles) or one lockfile.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The OSV database: a directory of OSV JSON records or a zip of them (osv.dev's all.zip).
    #[arg(long, env = "PAVE_OSV_DB")]
    pub db: PathBuf,
    /// Exit 1 when a vulnerability at or above this severity is found (unknown counts as medium).
    /// Warnings (RustSec's unmaintained and unsound notices) never count, unless --deny-warnings.
    #[arg(long, value_enum, default_value_t = FailOn::Low)]
    pub fail_on: FailOn,
    /// Exit 1 on warnings too: packages with an unmaintained, unsound or other notice.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Report format: text for people, json, or sarif for code-scanning UIs.
    #[arg(long, short = 'f', value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Write the report here instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Low,
    Medium,
    High,
    Critical,
    /// Report, never fail.
    Never,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// A project directory (searched for lockfiles) or one lockfile.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Write the SBOM here instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// A directory, a file, or (with --git) a repository.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Scan the repository's whole history: every blob reachable from any reference, once;
    /// each secret (rule, value, path) is reported once, with the commit that introduced it.
    #[arg(long)]
    pub git: bool,
    /// Rules in gitleaks' TOML format [default: PATH/.pave-secrets.toml, PATH/.gitleaks.toml,
    /// else the built-in rules].
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// A previous JSON report (Pave's or gitleaks'): its findings are accepted.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Accepted findings, one fingerprint or secret hash per line [default: PATH/.paveignore
    /// and PATH/.gitleaksignore when present].
    #[arg(long)]
    pub ignore_file: Option<PathBuf>,
    /// Report format: text for people, json, or sarif for code-scanning UIs.
    #[arg(long, short = 'f', value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Write the report here instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Show secrets in full (they are redacted by default).
    #[arg(long)]
    pub no_redact: bool,
    /// Skip files larger than this many MB.
    #[arg(long, default_value_t = 32)]
    pub max_file_mb: u64,
    /// Scanning threads [default: one per core].
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

pub fn run(cmd: ScanCommand) -> ExitCode {
    let result = match cmd {
        ScanCommand::Secrets(args) => secrets(&args),
        ScanCommand::Deps(args) => deps(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn rules(args: &SecretsArgs) -> Result<(Ruleset, String)> {
    let dir = if args.path.is_dir() {
        args.path.clone()
    } else {
        args.path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let chosen = match &args.config {
        Some(c) => Some(c.clone()),
        None => [".pave-secrets.toml", ".gitleaks.toml"].iter().map(|n| dir.join(n)).find(|p| p.is_file()),
    };
    match chosen {
        Some(path) => {
            let set = pave_secret_scan::load(&path)
                .with_context(|| format!("cannot load the rules in {}", path.display()))?;
            Ok((set, path.display().to_string()))
        }
        None => Ok((pave_secret_scan::builtin(), "built-in rules".into())),
    }
}

fn accepted(args: &SecretsArgs) -> Result<Accepted> {
    let mut acc = Accepted::default();
    if let Some(b) = &args.baseline {
        let text = std::fs::read_to_string(b).with_context(|| format!("cannot read the baseline {}", b.display()))?;
        acc.extend(Accepted::parse_report(&text).map_err(|e| anyhow::anyhow!("baseline {}: {e}", b.display()))?);
    }
    let lists: Vec<PathBuf> = match &args.ignore_file {
        Some(f) => {
            if !f.is_file() {
                bail!("the ignore file {} does not exist", f.display());
            }
            vec![f.clone()]
        }
        None if args.path.is_dir() => {
            [".paveignore", ".gitleaksignore"].iter().map(|n| args.path.join(n)).filter(|p| p.is_file()).collect()
        }
        None => vec![],
    };
    for f in lists {
        let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        acc.extend(Accepted::parse_list(&text));
    }
    Ok(acc)
}

/// Every version of every file in history, each scanned once.
fn scan_history(path: &Path, set: &Ruleset, max_bytes: u64) -> Result<(Vec<Finding>, Summary)> {
    let started = Instant::now();
    let repo = pave_git::Repo::open(path)?;
    let history = repo.blobs()?;
    let commits: Vec<pave_secret_scan::Commit> = history
        .commits
        .iter()
        .map(|c| pave_secret_scan::Commit {
            sha: c.id.to_string(),
            author: c.author.clone(),
            email: c.email.clone(),
            date: pave_model::Timestamp(c.time.saturating_mul(1000)).to_string(),
            message: c.summary.clone(),
        })
        .collect();
    let mut summary = Summary { commits: Some(commits.len() as u64), ..Summary::default() };
    let mut findings = Vec::new();
    let mut buf = Vec::new();
    // Versions come parents first, so the first version with a secret is the commit that
    // introduced it; later versions repeat it and are not reported again.
    let mut introductions = pave_secret_scan::history::Introductions::default();
    for b in &history.blobs {
        if set.path_allowed(&b.path) {
            summary.skipped += 1;
            continue;
        }
        let data = repo.blob(&b.blob, &mut buf)?;
        if data.len() as u64 > max_bytes || walk::is_binary(data) {
            summary.skipped += 1;
            continue;
        }
        summary.files += 1;
        summary.bytes += data.len() as u64;
        let found = set.scan(data, &Source { path: &b.path, commit: Some(&commits[b.commit as usize]) });
        findings.extend(introductions.introduced(found));
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok((findings, summary))
}

/// A secret scan as `args` asks: the findings left after the accepted ones, what was
/// covered, the rule set and where its rules came from.
pub fn secret_scan(args: &SecretsArgs) -> Result<(Vec<Finding>, Summary, Ruleset, String)> {
    if !args.path.exists() {
        bail!("{} does not exist", args.path.display());
    }
    let (set, origin) = rules(args)?;
    let accepted = accepted(args)?;
    let max_bytes = args.max_file_mb.saturating_mul(1 << 20);
    let (mut findings, mut summary) = if args.git {
        scan_history(&args.path, &set, max_bytes)?
    } else {
        walk::scan_tree(&args.path, &set, &walk::Options { max_file_bytes: max_bytes, threads: args.threads })?
    };
    let before = findings.len();
    findings.retain(|f| !accepted.accepts(f));
    summary.accepted = (before - findings.len()) as u64;
    if !args.no_redact {
        findings.iter_mut().for_each(Finding::redact);
    }
    Ok((findings, summary, set, origin))
}

fn secrets(args: &SecretsArgs) -> Result<ExitCode> {
    let (findings, summary, set, origin) = secret_scan(args)?;
    let report = match args.format {
        ReportFormat::Json => {
            serde_json::to_string_pretty(&pave_secret_scan::json_report(&findings, &summary)).expect("serializes")
                + "\n"
        }
        ReportFormat::Sarif => {
            serde_json::to_string_pretty(&pave_secret_scan::sarif_report(&findings, set.rules())).expect("serializes")
                + "\n"
        }
        ReportFormat::Text => {
            let mut s = String::new();
            for f in &findings {
                s.push_str(&f.text_line());
                s.push('\n');
            }
            s
        }
    };
    match &args.output {
        Some(p) => std::fs::write(p, &report).with_context(|| format!("cannot write {}", p.display()))?,
        None => std::io::stdout().write_all(report.as_bytes()).context("cannot write the report")?,
    }
    let what = match summary.commits {
        Some(c) => format!("{} file versions in {c} commits", summary.files),
        None => format!("{} files", summary.files),
    };
    eprintln!(
        "{} secret(s) found in {what} ({:.1} MB in {:.2} s, {} skipped, {} accepted) with {} ({} rules)",
        findings.len(),
        summary.bytes as f64 / 1e6,
        summary.seconds,
        summary.skipped,
        summary.accepted,
        origin,
        set.rules().len()
    );
    Ok(if findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub use pave_deps::discover::Installed;

/// Every lockfile under `root` (or `root` itself), parsed; finding none is an error. A
/// lockfile that cannot be read (malformed, hostile) is a warning on stderr naming it, and
/// the others are still read.
fn installed(root: &Path) -> Result<pave_deps::discover::Discovered> {
    if !root.exists() {
        bail!("{} does not exist", root.display());
    }
    if root.is_file() && pave_deps::Format::detect(&root.file_name().unwrap_or_default().to_string_lossy()).is_none() {
        bail!("{} is not a lockfile Pave reads", root.display());
    }
    let found = pave_deps::discover::installed(root)?;
    if found.lockfiles.is_empty() {
        bail!(
            "no lockfile under {} (Cargo.lock, package-lock.json, yarn.lock, pnpm-lock.yaml, requirements*.txt, poetry.lock, Pipfile.lock, go.mod, Gemfile.lock, composer.lock)",
            root.display()
        );
    }
    for e in &found.unreadable {
        eprintln!("warning: lockfile {e}; it is skipped, the other lockfiles are read");
    }
    Ok(found)
}

fn deps(args: &DepsArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let db = pave_deps::Database::open(&args.db).with_context(|| "cannot read the OSV database")?;
    for w in &db.warnings {
        eprintln!("warning: {w}");
    }
    let found = installed(&args.path)?;
    let (packages, lockfiles) = (&found.installed, &found.lockfiles);
    let findings = db.audit(packages);
    let threshold = match args.fail_on {
        FailOn::Low => Some(pave_deps::Severity::Low),
        FailOn::Medium => Some(pave_deps::Severity::Medium),
        FailOn::High => Some(pave_deps::Severity::High),
        FailOn::Critical => Some(pave_deps::Severity::Critical),
        FailOn::Never => None,
    };
    let counted =
        |s: pave_deps::Severity| if s == pave_deps::Severity::Unknown { pave_deps::Severity::Medium } else { s };
    let warnings = findings.iter().filter(|f| f.is_warning()).count();
    let failing = findings
        .iter()
        .filter(|f| if f.is_warning() { args.deny_warnings } else { threshold.is_some_and(|t| counted(f.level) >= t) })
        .count();
    let registry = packages.iter().filter(|(p, _)| p.origin == pave_deps::Origin::Registry).count();
    let report = match args.format {
        ReportFormat::Json => {
            serde_json::to_string_pretty(&db.json_report(lockfiles, &found.unreadable, packages.len(), &findings))
                .expect("serializes")
                + "\n"
        }
        ReportFormat::Sarif => {
            serde_json::to_string_pretty(&deps_sarif(&findings, &found.unreadable)).expect("serializes") + "\n"
        }
        ReportFormat::Text => {
            let mut s = String::new();
            for f in &findings {
                let fix = match (&f.fixed, &f.upgrade_to) {
                    (_, Some(u)) => format!("upgrade to {u}"),
                    (Some(x), None) => format!("fixed in {x}"),
                    (None, None) => "no fixed version".into(),
                };
                let label = match &f.informational {
                    Some(kind) => format!("warning {kind}"),
                    None => f.severity.to_owned(),
                };
                s.push_str(&format!(
                    "{:<8} {} {} {} ({})  {}  {}  [{}]\n",
                    label,
                    f.ecosystem,
                    f.package,
                    f.version,
                    f.ids.join(", "),
                    fix,
                    f.summary,
                    f.lockfiles.join(", ")
                ));
            }
            s
        }
    };
    match &args.output {
        Some(p) => std::fs::write(p, &report).with_context(|| format!("cannot write {}", p.display()))?,
        None => std::io::stdout().write_all(report.as_bytes()).context("cannot write the report")?,
    }
    let vulns = findings.len() - warnings;
    let unreadable = if found.unreadable.is_empty() {
        String::new()
    } else {
        format!(" ({} unreadable, not audited)", found.unreadable.len())
    };
    eprintln!(
        "{vulns} vulnerabilit{} and {warnings} warning(s) ({failing} failing) in {} packages ({registry} from registries) \
         of {} lockfile(s){unreadable}, {} advisories, {:.2} s",
        if vulns == 1 { "y" } else { "ies" },
        packages.len(),
        lockfiles.len(),
        db.len(),
        started.elapsed().as_secs_f64()
    );
    // An unreadable lockfile leaves the audit incomplete: the scan did not fully run.
    Ok(if !found.unreadable.is_empty() {
        ExitCode::from(2)
    } else if failing > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// SARIF of an audit; lockfiles that could not be read are the run's tool notifications, and
/// make it unsuccessful.
fn deps_sarif(findings: &[pave_deps::Finding], unreadable: &[pave_deps::discover::DiscoverError]) -> serde_json::Value {
    let mut rules: Vec<serde_json::Value> = Vec::new();
    let mut results = Vec::new();
    for f in findings {
        let id = f.ids[0].clone();
        let index = match rules.iter().position(|r| r["id"] == id.as_str()) {
            Some(i) => i,
            None => {
                let mut properties = serde_json::json!({"aliases": f.aliases});
                if let Some(score) = f.score {
                    properties["security-severity"] = format!("{score:.1}").into();
                }
                if let Some(kind) = &f.informational {
                    properties["informational"] = kind.as_str().into();
                }
                rules.push(
                    serde_json::json!({"id": id, "shortDescription": {"text": f.summary}, "properties": properties}),
                );
                rules.len() - 1
            }
        };
        let level = match f.level {
            _ if f.is_warning() => "warning",
            pave_deps::Severity::Critical | pave_deps::Severity::High => "error",
            pave_deps::Severity::Medium | pave_deps::Severity::Unknown => "warning",
            _ => "note",
        };
        let what = match &f.informational {
            Some(kind) if kind == "notice" => "has a notice".to_owned(),
            Some(kind) => format!("is {kind}"),
            None => "is vulnerable".to_owned(),
        };
        let fix = f
            .upgrade_to
            .as_deref()
            .or(f.fixed.as_deref())
            .map_or("no fixed version is known".to_owned(), |v| format!("upgrade to {v}"));
        for lock in &f.lockfiles {
            results.push(serde_json::json!({
                "ruleId": id, "ruleIndex": index, "level": level,
                "message": {"text": format!("{} {} {} {what} ({}): {fix}", f.ecosystem, f.package, f.version, f.ids.join(", "))},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": lock}}}],
                "partialFingerprints": {"package/v1": format!("{}:{}:{}:{}", f.ecosystem, f.package, f.version, id)},
            }));
        }
    }
    let notifications: Vec<serde_json::Value> = unreadable
        .iter()
        .map(|e| {
            serde_json::json!({"level": "error", "message": {"text": format!("lockfile {e}: not audited")},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": e.path}}}]})
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "pave", "semanticVersion": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "invocations": [{"executionSuccessful": unreadable.is_empty(), "toolExecutionNotifications": notifications}],
            "results": results}],
    })
}

/// The CycloneDX SBOM of `packages`, named after `path` (or `name`).
pub fn sbom_document(path: &Path, name: Option<&str>, packages: &Installed) -> serde_json::Value {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = name
        .map(str::to_owned)
        .unwrap_or_else(|| abs.file_name().map_or_else(|| "project".to_owned(), |n| n.to_string_lossy().into_owned()));
    let now = pave_model::Timestamp(pave_model::clock::now_ms()).to_string();
    pave_deps::sbom::document(&name, &now, packages)
}

/// `pave sbom`: the CycloneDX 1.5 SBOM of what the lockfiles install.
pub fn sbom(args: &SbomArgs) -> ExitCode {
    let run = || -> Result<()> {
        let found = installed(&args.path)?;
        let (packages, lockfiles) = (&found.installed, &found.lockfiles);
        let bom = sbom_document(&args.path, None, packages);
        let text = serde_json::to_string_pretty(&bom).expect("serializes") + "\n";
        match &args.output {
            Some(p) => std::fs::write(p, &text).with_context(|| format!("cannot write {}", p.display()))?,
            None => std::io::stdout().write_all(text.as_bytes()).context("cannot write the SBOM")?,
        }
        eprintln!(
            "{} components from {} lockfile(s)",
            bom["components"].as_array().map_or(0, Vec::len),
            lockfiles.len()
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
