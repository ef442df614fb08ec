//! OSV advisories (https://ossf.github.io/osv-schema/): the fields an audit needs, whether a
//! package version is affected, the version that fixes it, and its severity.
//!
//! A version is affected when an `affected` entry for its package lists it in `versions`, or
//! when one of its `SEMVER`/`ECOSYSTEM` ranges contains it: the range's events, sorted by
//! version (`introduced: "0"` first), switch "vulnerable" on at `introduced` (v >= it) and off
//! at `fixed` (v >= it, exclusive) or after `last_affected` (v > it, inclusive). `GIT` ranges
//! name commits and are skipped. Withdrawn records are ignored.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::Value;

use crate::version::{Ecosystem, compare_semver};

#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub modified: Option<String>,
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    #[serde(default)]
    pub database_specific: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeverityEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    #[serde(default)]
    pub package: Option<Package>,
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    #[serde(default)]
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub ecosystem_specific: Option<Value>,
    #[serde(default)]
    pub database_specific: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub ecosystem: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub introduced: Option<String>,
    #[serde(default)]
    pub fixed: Option<String>,
    #[serde(default)]
    pub last_affected: Option<String>,
    #[serde(default)]
    pub limit: Option<String>,
}

/// Qualitative severity, as CVSS bands name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Unknown,
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Reads `low`, `medium` (or GHSA's `moderate`), `high`, `critical`, any case.
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "none" => Severity::None,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            "unknown" => Severity::Unknown,
            _ => return None,
        })
    }

    /// The band of a CVSS v3/v4 base score.
    pub fn of_score(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::None,
        }
    }
}

/// The CVSS v3.0/v3.1 base score of a vector (`CVSS:3.1/AV:N/AC:L/…`); temporal and
/// environmental metrics are ignored. `None` when a base metric is missing or unknown.
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.split('/');
    if !parts.next()?.starts_with("CVSS:3") {
        return None;
    }
    let mut m = std::collections::HashMap::new();
    for p in parts {
        let (k, v) = p.split_once(':')?;
        m.insert(k, v);
    }
    let changed = match *m.get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match *m.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *m.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (*m.get("PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *m.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match *m.get(k)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed { 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02f64).powi(15) } else { 6.42 * iss };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if changed { (1.08 * (impact + exploitability)).min(10.0) } else { (impact + exploitability).min(10.0) };
    Some(roundup(raw))
}

/// CVSS v3.1's Roundup: the smallest one-decimal number >= x, computed on integers so
/// floating-point noise does not round 4.000000001 up to 4.1.
fn roundup(x: f64) -> f64 {
    let i = (x * 100_000.0).round() as i64;
    if i % 10_000 == 0 { i as f64 / 100_000.0 } else { ((i / 10_000) + 1) as f64 / 10.0 }
}

/// What a matched advisory says about one package version.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The version that ends the vulnerable interval, when one is known.
    pub fixed: Option<String>,
    pub severity: Severity,
    /// The CVSS score behind the severity, when there is one.
    pub score: Option<f64>,
    /// RustSec's informational kind (`unmaintained`, `unsound`, `notice`) when the advisory
    /// is a notice rather than a vulnerability: cargo-audit reports those as warnings.
    pub informational: Option<String>,
}

/// The CVSS v4.0 base score of a vector (`CVSS:4.0/AV:N/AC:L/AT:N/…`), by FIRST's
/// macro-vector lookup; `None` when the vector does not parse.
pub fn cvss4_base_score(vector: &str) -> Option<f64> {
    if !vector.starts_with("CVSS:4.0/") {
        return None;
    }
    vector.parse::<cvss::v4::Vector>().ok().map(|v| v.score().value())
}

/// The severity of the first CVSS vector that scores, v3 before v4 (the one most advisories
/// and tools still quote); a v2-only record falls back to the advisory's word.
fn severity_of(entries: &[SeverityEntry]) -> Option<(Severity, Option<f64>)> {
    for (kind, score_of) in [("CVSS_V3", cvss3_base_score as fn(&str) -> Option<f64>), ("CVSS_V4", cvss4_base_score)] {
        for e in entries.iter().filter(|e| e.kind == kind) {
            if let Some(score) = score_of(&e.score) {
                return Some((Severity::of_score(score), Some(score)));
            }
        }
    }
    None
}

/// RustSec's OSV export marks notices in `affected[].database_specific.informational`
/// (`null` for a vulnerability); the record's own `database_specific` is read as well.
fn informational_of(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| v.get("informational")).and_then(Value::as_str).map(|s| s.trim().to_ascii_lowercase())
}

fn word_severity(v: Option<&Value>) -> Option<Severity> {
    v.and_then(|v| v.get("severity")).and_then(Value::as_str).and_then(Severity::parse)
}

impl Record {
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }

    /// Whether `version` of package `name` in `eco` is affected, with the fix and severity.
    /// `name` must already be normalised as the ecosystem compares names.
    pub fn check(&self, eco: Ecosystem, name: &str, version: &str) -> Option<Hit> {
        if self.is_withdrawn() {
            return None;
        }
        let mut best: Option<Hit> = None;
        for a in &self.affected {
            let Some(p) = &a.package else { continue };
            if Ecosystem::from_osv(&p.ecosystem) != Some(eco) || crate::normalize_name(eco, &p.name) != name {
                continue;
            }
            let listed = a.versions.iter().any(|v| eco.compare(v, version) == Some(Ordering::Equal) || v == version);
            let in_range = a.ranges.iter().find_map(|r| range_hit(eco, r, version));
            let fixed = match (in_range, listed) {
                (Some(fixed), _) => fixed,
                (None, true) => None,
                (None, false) => continue,
            };
            let (severity, score) = severity_of(&a.severity)
                .or_else(|| severity_of(&self.severity))
                .or_else(|| word_severity(self.database_specific.as_ref()).map(|s| (s, None)))
                .or_else(|| word_severity(a.ecosystem_specific.as_ref()).map(|s| (s, None)))
                .or_else(|| word_severity(a.database_specific.as_ref()).map(|s| (s, None)))
                .unwrap_or((Severity::Unknown, None));
            let informational = informational_of(a.database_specific.as_ref())
                .or_else(|| informational_of(self.database_specific.as_ref()))
                .filter(|k| !k.is_empty());
            let hit = Hit { fixed, severity, score, informational };
            best = Some(match best {
                // Several entries can match (one per branch): keep the one with a fix.
                Some(b) if b.fixed.is_some() => b,
                _ => hit,
            });
        }
        best
    }
}

/// `Some(fix)` when `version` lies in the range (the fix that ends its interval, if any).
fn range_hit(eco: Ecosystem, range: &Range, version: &str) -> Option<Option<String>> {
    let cmp = |a: &str, b: &str| -> Option<Ordering> {
        match range.kind.as_str() {
            "SEMVER" => compare_semver(a, b),
            "ECOSYSTEM" => eco.compare(a, b),
            _ => None,
        }
    };
    if !matches!(range.kind.as_str(), "SEMVER" | "ECOSYSTEM") {
        return None;
    }
    // Events sorted by version; "0" before all; at equal versions `introduced` first.
    let mut events: Vec<(&str, u8, &Event)> = range
        .events
        .iter()
        .filter_map(|e| {
            if let Some(v) = &e.introduced {
                Some((v.as_str(), 0, e))
            } else if let Some(v) = &e.fixed {
                Some((v.as_str(), 1, e))
            } else {
                e.last_affected.as_deref().map(|v| (v, 1, e))
            }
        })
        .collect();
    events.sort_by(|a, b| {
        let key = |v: &str| v == "0";
        match (key(a.0), key(b.0)) {
            (true, true) => a.1.cmp(&b.1),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => cmp(a.0, b.0).unwrap_or(Ordering::Equal).then(a.1.cmp(&b.1)),
        }
    });
    let limits: Vec<&str> = range.events.iter().filter_map(|e| e.limit.as_deref()).collect();
    if !limits.is_empty() && !limits.iter().any(|l| *l == "*" || cmp(version, l) == Some(Ordering::Less)) {
        return None;
    }
    let mut vulnerable = false;
    let mut fix = None;
    for (v, _, e) in &events {
        if e.introduced.is_some() {
            if *v == "0" || cmp(version, v).is_some_and(|o| o != Ordering::Less) {
                vulnerable = true;
                fix = None;
            }
        } else if e.fixed.is_some() {
            if cmp(version, v).is_some_and(|o| o != Ordering::Less) {
                vulnerable = false;
            } else if vulnerable && fix.is_none() {
                fix = Some(v.to_string());
            }
        } else if e.last_affected.is_some() && cmp(version, v) == Some(Ordering::Greater) {
            vulnerable = false;
        }
    }
    vulnerable.then_some(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss3_scores_and_bands() {
        for (v, score, band) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, Severity::Critical),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H", 7.4, Severity::High),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:L", 5.6, Severity::Medium),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:N", 8.6, Severity::High),
            ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:N/A:N", 4.9, Severity::Medium),
            ("CVSS:3.1/AV:A/AC:H/PR:L/UI:R/S:C/C:L/I:N/A:N", 2.6, Severity::Low),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0, Severity::None),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, Severity::Critical),
        ] {
            let s = cvss3_base_score(v).expect(v);
            assert!((s - score).abs() < 1e-9, "{v}: {s}");
            assert_eq!(Severity::of_score(s), band, "{v}");
        }
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:N/AC:L"), None);
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), None);
    }

    /// 400 random v4.0 base vectors scored by an independent implementation (the `cvss`
    /// PyPI library 3.6, from FIRST's reference lookup tables).
    #[test]
    fn cvss4_base_scores_match_a_reference_implementation() {
        let data = include_str!("../tests/data/cvss40_base_sample.tsv");
        let mut n = 0;
        for line in data.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let mut cols = line.split('\t');
            let (vector, score, band) = (cols.next().unwrap(), cols.next().unwrap(), cols.next().unwrap());
            let got = cvss4_base_score(vector).unwrap_or_else(|| panic!("{vector} does not score"));
            assert_eq!(format!("{got:.1}"), score, "{vector}");
            assert_eq!(Severity::of_score(got).as_str(), band, "{vector}");
            n += 1;
        }
        assert_eq!(n, 400);
        assert_eq!(cvss4_base_score("CVSS:4.0/AV:N"), None);
        assert_eq!(cvss4_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), None);
    }

    fn record(events: Value) -> Record {
        serde_json::from_value(serde_json::json!({"id": "T-1", "affected": [{
            "package": {"ecosystem": "npm", "name": "p"}, "ranges": [{"type": "SEMVER", "events": events}]}]}))
        .expect("record")
    }

    #[test]
    fn ranges_fixed_last_affected_and_several_intervals() {
        let r = record(
            serde_json::json!([{"introduced": "0.6.3"}, {"fixed": "0.6.14"}, {"introduced": "1.0.0"}, {"fixed": "1.6.1"}]),
        );
        let fix = |v: &str| r.check(Ecosystem::Npm, "p", v).map(|h| h.fixed);
        assert_eq!(fix("0.6.2"), None);
        assert_eq!(fix("0.6.3"), Some(Some("0.6.14".into())));
        assert_eq!(fix("0.6.14"), None);
        assert_eq!(fix("0.9.0"), None);
        assert_eq!(fix("1.2.0"), Some(Some("1.6.1".into())));
        assert_eq!(fix("1.6.1"), None);
        assert_eq!(fix("1.6.1-rc.1"), Some(Some("1.6.1".into())), "a pre-release of the fix is before it");
        let r = record(serde_json::json!([{"introduced": "0"}, {"last_affected": "0.6.0"}]));
        assert_eq!(r.check(Ecosystem::Npm, "p", "0.6.0").map(|h| h.fixed), Some(None));
        assert_eq!(r.check(Ecosystem::Npm, "p", "0.6.1"), None);
        let r = record(serde_json::json!([{"introduced": "2.0.0"}]));
        assert!(r.check(Ecosystem::Npm, "p", "9.9.9").is_some() && r.check(Ecosystem::Npm, "p", "1.0.0").is_none());
        assert!(r.check(Ecosystem::Npm, "other", "9.9.9").is_none());
    }
}
