//! Pave's built-in rules against gitleaks' default rules, measured on the same text with the
//! same engine (with gitleaks' config Pave finds exactly what gitleaks finds, so what differs
//! here is the rules):
//!
//! - recall, over `tests/data/planted`: realistic secrets of 20-odd providers in the file
//!   types they leak in (`expected.tsv` names each file, line and provider). A secret counts
//!   as found when any rule reports its line. Built-in recall must be at least gitleaks';
//! - false positives, over clean real code: the registry sources of crates this workspace's
//!   Cargo.lock pins (present wherever the tests build), and Python's standard library when
//!   the machine has one. Every finding there is a false positive; the built-in rules must
//!   raise no more than gitleaks' do.
//!
//! Without gitleaks' rules (../shared/data) the comparison is skipped loudly, unless
//! PAVE_REQUIRE_SHARED_DATA=1 makes that a failure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pave_secret_scan::{Ruleset, walk};

fn gitleaks() -> Option<Ruleset> {
    let path = pave_testkit::shared_data("gitleaks/gitleaks.toml", "PAVE_GITLEAKS_RULES", Path::is_file)?;
    Some(pave_secret_scan::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

fn planted_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/planted")
}

/// `(file, line, provider)` of every planted secret.
fn expected() -> Vec<(String, usize, String)> {
    let text = std::fs::read_to_string(planted_dir().join("expected.tsv")).expect("expected.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            let mut col = || cols.next().unwrap_or_else(|| panic!("expected.tsv: {l:?} has fewer than 3 columns"));
            let (file, line, provider) = (col(), col(), col());
            (file.to_owned(), line.parse().expect("line number"), provider.to_owned())
        })
        .collect()
}

/// The planted secrets a rule set misses, as `provider file:line`.
fn missed(set: &Ruleset) -> BTreeSet<String> {
    let (findings, _) = walk::scan_tree(&planted_dir(), set, &walk::Options::default()).expect("scan");
    let hits: BTreeSet<(String, usize)> = findings.iter().map(|f| (f.file.clone(), f.start_line)).collect();
    expected()
        .into_iter()
        .filter(|(file, line, _)| !hits.contains(&(file.clone(), *line)))
        .map(|(file, line, provider)| format!("{provider} {file}:{line}"))
        .collect()
}

#[test]
fn builtin_rules_find_every_planted_secret_and_all_that_gitleaks_finds() {
    let total = expected().len();
    assert!(total >= 30, "{total} planted secrets");
    let builtin = missed(&pave_secret_scan::builtin());
    eprintln!("built-in rules: {}/{total} planted secrets found; missed {builtin:?}", total - builtin.len());
    if let Some(set) = gitleaks() {
        let theirs = missed(&set);
        eprintln!("gitleaks' default rules: {}/{total} found; missed {theirs:?}", total - theirs.len());
        let only_ours_missed: Vec<&String> = builtin.difference(&theirs).collect();
        assert!(only_ours_missed.is_empty(), "gitleaks' rules find what the built-in ones miss: {only_ours_missed:?}");
    }
    assert!(builtin.is_empty(), "the built-in rules miss:\n{}", builtin.iter().cloned().collect::<Vec<_>>().join("\n"));
}

/// Registry sources of crates Cargo.lock pins: the same bytes on every machine that builds.
fn pinned_crates() -> Vec<PathBuf> {
    const CRATES: [&str; 33] = [
        "serde_json",
        "regex-automata",
        "regex-syntax",
        "tokio",
        "hyper",
        "hyper-util",
        "sqlx-core",
        "sqlx-postgres",
        "sqlx-sqlite",
        "clap_builder",
        "reqwest",
        "tower",
        "tower-http",
        "axum",
        "tracing-subscriber",
        "tracing-core",
        "zip",
        "toml_edit",
        "toml",
        "serde",
        "base64",
        "url",
        "http",
        "mio",
        "libc",
        "rustix",
        "gix-config",
        "cvss",
        "hmac",
        "aho-corasick",
        "serde_yaml",
        "unsafe-libyaml",
        "idna",
    ];
    let lock = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"))
        .expect("the workspace's Cargo.lock");
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("a cargo home");
    let indexes: Vec<PathBuf> = std::fs::read_dir(home.join("registry/src"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for name in CRATES {
        let header = format!("name = \"{name}\"\nversion = \"");
        let Some(at) = lock.find(&header) else { continue };
        let version = lock[at + header.len()..].split('"').next().unwrap_or("");
        if let Some(dir) = indexes.iter().map(|i| i.join(format!("{name}-{version}"))).find(|d| d.is_dir()) {
            out.push(dir);
        }
    }
    out
}

fn python_stdlib() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.strip_prefix("python3.").is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
            })
        })
        .filter(|p| p.join("os.py").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn false_positives(roots: &[PathBuf], set: &Ruleset) -> Vec<String> {
    let mut out = Vec::new();
    for root in roots {
        let (findings, _) = walk::scan_tree(root, set, &walk::Options::default()).expect("scan");
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.extend(
            findings.iter().map(|f| format!("{name}/{}:{} {} {:?}", f.file, f.start_line, f.rule_id, f.matched)),
        );
    }
    out
}

#[test]
fn builtin_rules_raise_no_more_false_positives_on_real_code_than_gitleaks() {
    let mut roots = pinned_crates();
    assert!(roots.len() >= 30, "the pinned crates' sources are in the cargo registry: {roots:?}");
    match python_stdlib() {
        Some(p) => roots.push(p),
        None => eprintln!("no Python standard library under /usr/lib: only the crates are scanned"),
    }
    let bytes: u64 = roots.iter().map(|r| dir_bytes(r)).sum();
    let builtin = false_positives(&roots, &pave_secret_scan::builtin());
    eprintln!("{:.1} MB of real code in {} trees", bytes as f64 / 1e6, roots.len());
    eprintln!("built-in rules: {} false positives\n  {}", builtin.len(), builtin.join("\n  "));
    let Some(set) = gitleaks() else {
        assert!(builtin.is_empty(), "without gitleaks' rules to compare, none is allowed");
        return;
    };
    let theirs = false_positives(&roots, &set);
    eprintln!("gitleaks' default rules: {} false positives\n  {}", theirs.len(), theirs.join("\n  "));
    assert!(builtin.len() <= theirs.len(), "built-in {} > gitleaks {}", builtin.len(), theirs.len());
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}
