//! gitleaks' default rule set (`../shared/data/gitleaks/gitleaks.toml`, or PAVE_GITLEAKS_RULES)
//! loads unmodified and every rule compiles; a generated corpus with planted secrets of many
//! kinds is found, rule by rule; and a clean corpus of real source text (this workspace's
//! own Rust sources and the registry sources it builds from) yields no finding.
//!
//! Without the data the tests say so loudly and pass, unless PAVE_REQUIRE_SHARED_DATA=1
//! (CI) makes that a failure.

use std::path::PathBuf;

use pave_secret_scan::{RawConfig, Ruleset, Source, walk};

fn rules_path() -> Option<PathBuf> {
    pave_testkit::shared_data("gitleaks/gitleaks.toml", "PAVE_GITLEAKS_RULES", |p| p.is_file())
}

fn gitleaks() -> Option<Ruleset> {
    let path = rules_path()?;
    Some(pave_secret_scan::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn every_default_rule_loads_and_compiles() {
    let Some(path) = rules_path() else { return };
    let text = std::fs::read_to_string(&path).expect("read");
    let raw = RawConfig::parse(&text, "gitleaks.toml").expect("the file parses unmodified");
    let declared = text.lines().filter(|l| l.trim() == "[[rules]]").count();
    assert_eq!(raw.rules.len(), declared);
    assert!(declared >= 200, "{declared} rules");
    let set = Ruleset::compile(
        &pave_secret_scan::resolve(raw, "gitleaks.toml", &pave_secret_scan::NoFiles).expect("resolves"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.rules().len(), declared, "every rule compiled");
    let keyworded = set.rules().iter().filter(|r| !r.keywords.is_empty()).count();
    eprintln!("{declared} gitleaks rules compiled ({keyworded} with keywords)");
}

/// Secrets of many kinds, each in the setting it is usually leaked in, with the rule that
/// must find it (gitleaks' rule ids).
fn planted() -> Vec<(&'static str, String, String)> {
    // Made up for the test, shaped like the real thing; built at run time so this file does
    // not itself look like a leak.
    let pem_body = "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\nNMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n";
    let aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8v2LmX9p";
    vec![
        (
            "aws-access-token",
            "deploy/aws.env".into(),
            format!("AWS_ACCESS_KEY_ID={}\n", ["AKIA", "QYLPMN5HHHFPZAM2"].concat()),
        ),
        (
            "aws-access-token",
            "infra/main.tf".into(),
            format!("  access_key = \"{}\"\n", ["ASIA", "XQ7TZK3LBN4WV2RS"].concat()),
        ),
        (
            "github-pat",
            "scripts/release.sh".into(),
            format!("export GH_TOKEN={}\n", ["ghp_", "1wRf2KbC9xLq7NvT3mZp8YsD4hJ6gA0eU5oI"].concat()),
        ),
        (
            "github-oauth",
            "config/oauth.json".into(),
            format!("{{\"token\": \"{}\"}}\n", ["gho_", "9ZkQ2pL7xW4mN8vB3cT6yR1sD5fG0hJ2kL4z"].concat()),
        ),
        (
            "github-fine-grained-pat",
            "ci/.env".into(),
            format!(
                "TOKEN={}\n",
                ["github_pat_", "11AQ7ZKP2L0m9Vt4Ks8Wd3_Nc6Rb1Hf5Jg0Ka2Le8Mi4Pn7Qo3Rs9Tu6Vw1Xy5Za0Bc2De4Fg6Hi8Jk1Lm3"]
                    .concat()
            ),
        ),
        (
            "gitlab-pat",
            "deploy/gitlab.yml".into(),
            format!("private_token: {}\n", ["glpat-", "xK9mQ2vL7pW4nB8cT3zR"].concat()),
        ),
        (
            "slack-bot-token",
            "bot/settings.py".into(),
            format!(
                "SLACK_BOT_TOKEN = \"{}\"\n",
                ["xoxb-", "2873649125-4582716380512-Qw8ErT5yUi2OpAs9DfGh3Jk7"].concat()
            ),
        ),
        (
            "slack-webhook-url",
            "alerts/notify.go".into(),
            format!(
                "const hook = \"https://hooks.slack.com/services/{}\"\n",
                "T01ABCDEF/B02GHIJKL/Xq7Zp2Lm9Vt4Ks8Wd3Nc6Rb1"
            ),
        ),
        (
            "private-key",
            "keys/server.pem".into(),
            format!("-----BEGIN RSA PRIVATE KEY-----\n{pem_body}-----END RSA PRIVATE KEY-----\n"),
        ),
        (
            "jwt",
            "web/src/api.ts".into(),
            format!(
                "const session = '{}';\n",
                [
                    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
                    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSBMb3ZlbGFjZSIsImFkbWluIjp0cnVlfQ",
                    ".Zq4f9Rk2Lp7Wm3Xv8Tc1Bn6Yd0Hs5Ju2Ke9Gf4Qa7"
                ]
                .concat()
            ),
        ),
        (
            "stripe-access-token",
            "billing/config.rb".into(),
            format!("Stripe.api_key = '{}'\n", ["sk_live_", "51HqLyjWDarjtT1zdp7dcXq9Zk2"].concat()),
        ),
        (
            "gcp-api-key",
            "mobile/firebase.js".into(),
            format!("apiKey: \"{}\",\n", ["AIza", "SyD8kQ2pL7xW4mN8vB3cT6yR1sD5fG0hJ2k"].concat()),
        ),
        (
            "npm-access-token",
            ".npmrc.example".into(),
            format!("//registry.npmjs.org/:_authToken={}\n", ["npm_", "Zk3Qx8Lp2Wm7Vt4Ns9Rc6Yb1Hd5Jf0Ga2Ke8"].concat()),
        ),
        (
            "sendgrid-api-token",
            "mail/send.py".into(),
            format!(
                "sg = SendGridAPIClient('{}')\n",
                ["SG.", "Xq7Zp2Lm9Vt4Ks8Wd3Nc6R", ".", "b1Hf5Jg0Ka2Le8Mi4Pn7Qo3Rs9Tu6Vw1Xy5Za0Bc2De"].concat()
            ),
        ),
        (
            "generic-api-key",
            "service/settings.yaml".into(),
            format!("payment_api_secret: \"{}\"\n", "Zk3Qx8Lp2Wm7Vt4Ns9Rc6Yb1"),
        ),
        ("generic-api-key", "service/app.properties".into(), format!("db.password={}\n", "H7tkQ2zP9wX4vL8q")),
        (
            "aws-access-token",
            "notes/old.md".into(),
            format!("- key id {} and secret {aws_secret}\n", ["AKIA", "ZT4MQ2XKPL7BNW3V"].concat()),
        ),
    ]
}

#[test]
fn planted_secrets_are_found_by_their_rules() {
    let Some(set) = gitleaks() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let filler = "fn main() {\n    println!(\"hello\");\n}\n".repeat(50);
    for (i, (_, path, content)) in planted().iter().enumerate() {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        // The secret sits in the middle of ordinary text, far from the file's start.
        std::fs::write(&full, format!("{filler}// file {i}\n{content}{filler}")).expect("write");
    }
    let (findings, summary) = walk::scan_tree(dir.path(), &set, &walk::Options::default()).expect("scan");
    assert_eq!(summary.files as usize, planted().len());
    let mut missed = Vec::new();
    for (rule, path, content) in planted() {
        let hit = findings.iter().any(|f| f.rule_id == rule && f.file == path && f.start_line == 152);
        if !hit {
            let got: Vec<_> = findings.iter().filter(|f| f.file == path).map(|f| f.rule_id.as_str()).collect();
            missed.push(format!("{rule} in {path} ({content:?}); found there: {got:?}"));
        }
    }
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
    eprintln!("{} planted secrets found ({} findings in all)", planted().len(), findings.len());
}

/// Real source text: this workspace's crates and the registry sources of its dependencies
/// (tens of megabytes of Rust, TOML, Markdown and C written by many hands), scanned with
/// gitleaks' default rules and with Pave's built-in rules.
#[test]
fn clean_real_source_text_has_no_finding() {
    let Some(set) = gitleaks() else { return };
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut roots = vec![workspace.join("crates")];
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    for krate in ["serde_json", "regex-automata", "tokio", "hyper", "sqlx-core", "clap_builder", "gix"] {
        if let Some(src) = home.as_ref().and_then(|h| registry_source(h, krate)) {
            roots.push(src);
        }
    }
    let mut total = 0;
    let mut findings = Vec::new();
    // gitleaks' default rules, then Pave's built-in ones, over the same trees.
    let builtin = pave_secret_scan::builtin();
    for (root, set) in roots.iter().flat_map(|r| [(r, &set), (r, &builtin)]) {
        let (mut f, summary) = walk::scan_tree(root, set, &walk::Options::default()).expect("scan");
        total += summary.bytes / 2;
        // This crate's own tests plant secrets on purpose, and its built-in rules and the
        // flag tests carry token-shaped examples.
        f.retain(|f| !f.file.starts_with("pave-secret-scan/"));
        findings.extend(f.into_iter().map(|f| format!("{}: {} {:?}", root.display(), f.text_line(), f.matched)));
    }
    eprintln!("{:.1} MB of real source scanned in {} trees", total as f64 / 1e6, roots.len());
    assert!(total > 5_000_000, "a clean corpus of at least 5 MB ({total} bytes)");
    assert!(findings.is_empty(), "false positives:\n{}", findings.join("\n"));
}

fn registry_source(cargo_home: &std::path::Path, krate: &str) -> Option<PathBuf> {
    let src = cargo_home.join("registry/src");
    for index in std::fs::read_dir(src).ok()? {
        let index = index.ok()?.path();
        let mut versions: Vec<PathBuf> = std::fs::read_dir(&index)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.strip_prefix(krate)
                        .and_then(|r| r.strip_prefix('-'))
                        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
                })
            })
            .collect();
        versions.sort();
        if let Some(v) = versions.pop() {
            return Some(v);
        }
    }
    None
}

#[test]
fn the_rule_file_itself_and_a_gitleaks_allow_line_are_quiet() {
    let Some(set) = gitleaks() else { return };
    let line = format!("token = \"{}\" # gitleaks:allow\n", ["ghp_", "1wRf2KbC9xLq7NvT3mZp8YsD4hJ6gA0eU5oI"].concat());
    assert!(set.scan(line.as_bytes(), &Source { path: "a.sh", commit: None }).is_empty());
}
