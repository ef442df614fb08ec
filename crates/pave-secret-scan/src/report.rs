//! Findings, their fingerprints, redaction, accepted-findings lists, and the text, JSON and
//! SARIF 2.1.0 reports.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ruleset::{Rule, Source};

/// The commit a finding was introduced in (history scans).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    pub sha: String,
    pub author: String,
    pub email: String,
    /// RFC 3339.
    pub date: String,
    pub message: String,
}

/// One secret found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub rule_id: String,
    pub description: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<Commit>,
    pub start_line: usize,
    pub end_line: usize,
    pub start_column: usize,
    pub end_column: usize,
    /// The secret itself, or its redacted form.
    pub secret: String,
    #[serde(rename = "match")]
    pub matched: String,
    /// The lines the match spans (redacted with the secret).
    pub line_text: String,
    pub entropy: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// gitleaks' fingerprint: `[commit:]file:rule:line`.
    pub fingerprint: String,
    /// `sha256:` and the first 16 hex digits of the secret's SHA-256: the same secret
    /// wherever it moves, so an accepted finding stays accepted when lines shift.
    pub secret_hash: String,
    #[serde(skip)]
    redacted: bool,
}

/// Columns count characters (code points), 1-based.
fn column(text: &[u8], line_start: usize, at: usize) -> usize {
    String::from_utf8_lossy(&text[line_start..at]).chars().count() + 1
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Longest line text kept in a finding (minified files have megabyte lines).
const MAX_LINE_TEXT: usize = 400;

impl Finding {
    pub(crate) fn new(
        rule: &Rule,
        text: &[u8],
        start: usize,
        end: usize,
        secret: &[u8],
        entropy: f64,
        src: &Source<'_>,
    ) -> Finding {
        let newlines_before = memchr::memchr_iter(b'\n', &text[..start]).count();
        let start_line = newlines_before + 1;
        let end_line = start_line + memchr::memchr_iter(b'\n', &text[start..end]).count();
        let first = memchr::memrchr(b'\n', &text[..start]).map_or(0, |i| i + 1);
        let last = memchr::memrchr(b'\n', &text[..end]).map_or(0, |i| i + 1).max(first);
        let line_end = memchr::memchr(b'\n', &text[end..]).map_or(text.len(), |i| end + i);
        let mut line_text = lossy(&text[first..line_end]);
        if line_text.len() > MAX_LINE_TEXT {
            line_text = lossy(&text[start..end]);
        }
        let secret = lossy(secret);
        let fingerprint = match src.commit {
            Some(c) => format!("{}:{}:{}:{start_line}", c.sha, src.path, rule.id),
            None => format!("{}:{}:{start_line}", src.path, rule.id),
        };
        Finding {
            rule_id: rule.id.clone(),
            description: rule.description.clone(),
            file: src.path.to_owned(),
            commit: src.commit.cloned(),
            start_line,
            end_line,
            start_column: column(text, first, start),
            end_column: column(text, last, end).saturating_sub(1).max(1),
            secret_hash: secret_hash(&secret),
            secret,
            matched: lossy(&text[start..end]),
            line_text,
            entropy: (entropy * 1000.0).round() / 1000.0,
            tags: rule.tags.clone(),
            fingerprint,
            redacted: false,
        }
    }

    /// A path-only rule's finding: the file itself.
    pub(crate) fn of_file(rule: &Rule, src: &Source<'_>) -> Finding {
        let fingerprint = match src.commit {
            Some(c) => format!("{}:{}:{}:0", c.sha, src.path, rule.id),
            None => format!("{}:{}:0", src.path, rule.id),
        };
        Finding {
            rule_id: rule.id.clone(),
            description: rule.description.clone(),
            file: src.path.to_owned(),
            commit: src.commit.cloned(),
            start_line: 0,
            end_line: 0,
            start_column: 0,
            end_column: 0,
            secret: String::new(),
            matched: format!("file detected: {}", src.path),
            line_text: String::new(),
            entropy: 0.0,
            tags: rule.tags.clone(),
            secret_hash: secret_hash(src.path),
            fingerprint,
            redacted: false,
        }
    }

    pub(crate) fn secret_contains(&self, other: &Finding) -> bool {
        !other.secret.is_empty() && self.secret.contains(&other.secret)
    }

    /// Replaces the secret everywhere in the finding by a redacted form: its first four
    /// characters when it is long enough that they give nothing away, then asterisks.
    pub fn redact(&mut self) {
        if self.redacted || self.secret.is_empty() {
            return;
        }
        let shown: String =
            if self.secret.chars().count() >= 16 { self.secret.chars().take(4).collect() } else { String::new() };
        let masked = format!("{shown}*****");
        self.matched = self.matched.replace(&self.secret, &masked);
        self.line_text = self.line_text.replace(&self.secret, &masked);
        self.secret = masked;
        self.redacted = true;
    }

    /// One line of text output.
    pub fn text_line(&self) -> String {
        let place = if self.start_line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, self.start_line, self.start_column)
        };
        let mut s =
            format!("{place}  {}  {}", self.rule_id, if self.secret.is_empty() { &self.matched } else { &self.secret });
        if let Some(c) = &self.commit {
            s.push_str(&format!(
                "  (commit {} by {} <{}> on {})",
                &c.sha[..c.sha.len().min(12)],
                c.author,
                c.email,
                c.date
            ));
        }
        s
    }
}

/// The hash by which a secret is accepted wherever it appears.
pub fn secret_hash(secret: &str) -> String {
    format!("sha256:{}", &hex::encode(Sha256::digest(secret.as_bytes()))[..16])
}

/// Accepted findings: gitleaks fingerprints (`file:rule:line`, which then holds in every
/// commit, or `commit:file:rule:line`) and secret hashes (`sha256:…`), one per line, `#`
/// comments; or the fingerprints of an earlier JSON report (a baseline).
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    entries: HashSet<String>,
}

impl Accepted {
    /// Reads a `.paveignore` / `.gitleaksignore` file.
    pub fn parse_list(text: &str) -> Accepted {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.replace('\\', "/"))
            .collect();
        Accepted { entries }
    }

    /// Reads a baseline: a Pave JSON report (`{"findings": […]}`) or a gitleaks one (an
    /// array of objects with `Fingerprint`).
    pub fn parse_report(text: &str) -> Result<Accepted, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not a JSON report: {e}"))?;
        let list = match &v {
            Value::Array(a) => a,
            Value::Object(o) => o.get("findings").and_then(Value::as_array).ok_or("a JSON report has `findings`")?,
            _ => return Err("not a JSON report".into()),
        };
        let mut entries = HashSet::new();
        for f in list {
            for key in ["fingerprint", "Fingerprint", "secretHash"] {
                if let Some(s) = f.get(key).and_then(Value::as_str) {
                    entries.insert(s.to_owned());
                }
            }
        }
        Ok(Accepted { entries })
    }

    pub fn extend(&mut self, other: Accepted) {
        self.entries.extend(other.entries);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn accepts(&self, f: &Finding) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        if self.entries.contains(&f.fingerprint) || self.entries.contains(&f.secret_hash) {
            return true;
        }
        // A commit-less fingerprint accepts the finding in every commit.
        f.commit.is_some() && self.entries.contains(&format!("{}:{}:{}", f.file, f.rule_id, f.start_line))
    }
}

/// What a scan covered, for the reports.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commits: Option<u64>,
    pub skipped: u64,
    pub accepted: u64,
    pub seconds: f64,
}

/// The JSON report.
pub fn json_report(findings: &[Finding], summary: &Summary) -> Value {
    json!({"tool": "pave", "version": env!("CARGO_PKG_VERSION"), "findings": findings, "summary": summary})
}

/// A SARIF 2.1.0 log with one run: every rule of the set, one result per finding.
pub fn sarif_report(findings: &[Finding], rules: &[Rule]) -> Value {
    let driver_rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            let mut v = json!({"id": r.id, "name": r.id, "shortDescription": {"text": r.description}, "defaultConfiguration": {"level": "error"}});
            if !r.tags.is_empty() {
                v["properties"] = json!({"tags": r.tags});
            }
            v
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let index = rules.iter().position(|r| r.id == f.rule_id);
            let mut message = format!("{} ({}) in {}", f.description, f.rule_id, f.file);
            if let Some(c) = &f.commit {
                message.push_str(&format!(" at commit {}", c.sha));
            }
            let mut location = json!({"physicalLocation": {"artifactLocation": {"uri": f.file}}});
            if f.start_line > 0 {
                location["physicalLocation"]["region"] = json!({
                    "startLine": f.start_line, "startColumn": f.start_column,
                    "endLine": f.end_line, "endColumn": f.end_column + 1,
                    "snippet": {"text": f.secret},
                });
            }
            let mut r = json!({
                "ruleId": f.rule_id,
                "level": "error",
                "message": {"text": message},
                "locations": [location],
                "partialFingerprints": {"secretHash/v1": f.secret_hash, "gitleaks/v1": f.fingerprint},
            });
            if let Some(i) = index {
                r["ruleIndex"] = json!(i);
            }
            if let Some(c) = &f.commit {
                r["properties"] = json!({"commit": c});
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "pave", "informationUri": "https://example.invalid/pave",
                                "semanticVersion": env!("CARGO_PKG_VERSION"), "rules": driver_rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}
