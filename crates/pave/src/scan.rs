//! `pave scan secrets`: the secret scan as a pipeline gate. Exit 0 when clean, 1 when
//! something was found (and not accepted), 2 when the scan could not run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use pave_secrets::{Accepted, Finding, Ruleset, Source, Summary, walk};

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Find secrets in a working tree, or with --git in every version of every file in history.
    Secrets(SecretsArgs),
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
    /// Scan the repository's whole history: every blob reachable from any reference, once,
    /// reported with the commit that introduced it.
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
            let set =
                pave_secrets::load(&path).with_context(|| format!("cannot load the rules in {}", path.display()))?;
            Ok((set, path.display().to_string()))
        }
        None => Ok((pave_secrets::builtin(), "built-in rules".into())),
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
    let commits: Vec<pave_secrets::Commit> = history
        .commits
        .iter()
        .map(|c| pave_secrets::Commit {
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
        findings.extend(set.scan(data, &Source { path: &b.path, commit: Some(&commits[b.commit as usize]) }));
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok((findings, summary))
}

fn secrets(args: &SecretsArgs) -> Result<ExitCode> {
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
    let report = match args.format {
        ReportFormat::Json => {
            serde_json::to_string_pretty(&pave_secrets::json_report(&findings, &summary)).expect("serializes") + "\n"
        }
        ReportFormat::Sarif => {
            serde_json::to_string_pretty(&pave_secrets::sarif_report(&findings, set.rules())).expect("serializes")
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
