//! Release policy: what a release must show before it may reach an environment.
//!
//! An environment names its gates (`policy: {require: [secrets-clean, no-vulns-above: high,
//! sbom]}`); a release carries the results of its scans (made by `pave release create --scan`
//! or uploaded from CI). [`evaluate`] judges one against the other, purely, and says for each
//! gate why it passed or failed, so the deployment error names the gate and the reason.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::Timestamp;

/// Vulnerability severity, as CVSS bands name it. An advisory without one ranks as
/// `Critical` for the gates: it may be, and nobody said it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
    Unknown,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
            Severity::Unknown => "unknown",
        }
    }

    /// `none`, `low`, `medium` (or GHSA's `moderate`), `high`, `critical`, `unknown`.
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "none" => Severity::None,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            "unknown" => Severity::Unknown,
            _ => return None,
        })
    }

    /// The rank a gate compares: unknown counts as critical.
    fn rank(self) -> Severity {
        if self == Severity::Unknown { Severity::Critical } else { self }
    }
}

/// The kinds of informational advisory (RustSec's `informational`) a `no-notices` gate
/// refuses: a notice is not a vulnerability, so only a policy that asks gates on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// Every notice: unmaintained, unsound and any other.
    Any,
    Unmaintained,
    Unsound,
}

impl NoticeKind {
    fn parse(s: &str) -> Result<NoticeKind, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "any" => Ok(NoticeKind::Any),
            "unmaintained" => Ok(NoticeKind::Unmaintained),
            "unsound" => Ok(NoticeKind::Unsound),
            other => Err(format!("no-notices takes unmaintained, unsound or any, not {other:?}")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Any => "any",
            NoticeKind::Unmaintained => "unmaintained",
            NoticeKind::Unsound => "unsound",
        }
    }

    fn covers(self, kind: &str) -> bool {
        match self {
            NoticeKind::Any => true,
            k => k.as_str() == kind,
        }
    }
}

/// One requirement of a release policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// A secret scan of the artifact is attached and found nothing.
    SecretsClean,
    /// A dependency audit is attached and found no vulnerability above this severity.
    NoVulnsAbove(Severity),
    /// A dependency audit is attached and found no informational advisory of this kind
    /// (an unmaintained or unsound package).
    NoNotices(NoticeKind),
    /// An SBOM of the artifact is attached.
    Sbom,
}

const GATES: &str = "`secrets-clean`, `sbom`, `no-vulns-above: none|low|medium|high|critical`, or `no-notices` \
                     (`no-notices: unmaintained|unsound|any`)";

impl Gate {
    fn parse(text: &str) -> Result<Gate, String> {
        let t = text.trim();
        match t {
            "secrets-clean" => return Ok(Gate::SecretsClean),
            "sbom" => return Ok(Gate::Sbom),
            _ => {}
        }
        if let Some(kind) = t.strip_prefix("no-notices").map(|r| r.trim_start_matches([':', '=', ' '])) {
            return NoticeKind::parse(kind).map(Gate::NoNotices);
        }
        if let Some(level) = t.strip_prefix("no-vulns-above").map(|r| r.trim_start_matches([':', '=', ' '])) {
            return Gate::vulns(level);
        }
        Err(format!("unknown gate {t:?}; gates are {GATES}"))
    }

    fn vulns(level: &str) -> Result<Gate, String> {
        match Severity::parse(level) {
            Some(Severity::Unknown) | None => {
                Err(format!("no-vulns-above needs a severity (none, low, medium, high or critical), not {level:?}"))
            }
            Some(s) => Ok(Gate::NoVulnsAbove(s)),
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gate::SecretsClean => f.write_str("secrets-clean"),
            Gate::Sbom => f.write_str("sbom"),
            Gate::NoVulnsAbove(s) => write!(f, "no-vulns-above: {}", s.as_str()),
            Gate::NoNotices(NoticeKind::Any) => f.write_str("no-notices"),
            Gate::NoNotices(k) => write!(f, "no-notices: {}", k.as_str()),
        }
    }
}

impl Serialize for Gate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Gate::NoVulnsAbove(level) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("no-vulns-above", level.as_str())?;
                m.end()
            }
            Gate::NoNotices(kind) if *kind != NoticeKind::Any => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("no-notices", kind.as_str())?;
                m.end()
            }
            other => s.serialize_str(&other.to_string()),
        }
    }
}

/// A gate is a word (`sbom`) or a one-entry map (`no-vulns-above: high`, which is what YAML
/// makes of that flow item); `"no-vulns-above: high"` as one string is read too.
impl<'de> Deserialize<'de> for Gate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Gate, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Gate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a gate: {GATES}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Gate, E> {
                Gate::parse(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Gate, A::Error> {
                let Some((key, value)) = map.next_entry::<String, String>()? else {
                    return Err(de::Error::custom(format!("an empty map is not a gate; gates are {GATES}")));
                };
                if map.next_entry::<String, String>()?.is_some() {
                    return Err(de::Error::custom("a gate is one `name: value` pair; list each gate on its own"));
                }
                match key.as_str() {
                    "no-vulns-above" => Gate::vulns(&value).map_err(de::Error::custom),
                    "no-notices" => NoticeKind::parse(&value).map(Gate::NoNotices).map_err(de::Error::custom),
                    other => Err(de::Error::custom(format!("unknown gate {other:?}; gates are {GATES}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An environment's release policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleasePolicy {
    /// Every gate must pass (or an admin overrides, with a reason).
    #[serde(default)]
    pub require: Vec<Gate>,
    /// Whether reports uploaded from elsewhere (CI) count. When false only scans Pave made of
    /// the stored artifact do, so nobody who may upload a report can vouch for a release.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub accept_uploads: bool,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl Default for ReleasePolicy {
    fn default() -> Self {
        ReleasePolicy { require: Vec::new(), accept_uploads: true }
    }
}

/// Where a scan result came from and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanOrigin {
    pub at: Timestamp,
    pub by: String,
    /// `pave` (made by `pave release create --scan`) or `upload` (a report from elsewhere).
    pub source: String,
    /// The tool that made the report (`pave 0.1.0`, `gitleaks`).
    pub tool: String,
}

/// A secret finding, as a release keeps it: where and which rule, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretHit {
    pub rule: String,
    pub file: String,
    pub line: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretScan {
    pub origin: ScanOrigin,
    /// Files scanned, when the report says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    pub findings: Vec<SecretHit>,
}

/// A vulnerable package, as a release keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vulnerability {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub ecosystem: String,
    pub package: String,
    pub version: String,
    pub severity: Severity,
    /// The version to move to, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// An informational advisory of a package (RustSec's unmaintained and unsound notices):
/// reported as a warning, counted only by a `no-notices` gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub id: String,
    /// `unmaintained`, `unsound`, `notice`, …
    pub kind: String,
    pub ecosystem: String,
    pub package: String,
    pub version: String,
}

/// A lockfile the audit could not read (malformed, hostile, too large or too deep).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreadableLockfile {
    pub file: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepsScan {
    pub origin: ScanOrigin,
    pub packages: u64,
    pub lockfiles: Vec<String>,
    pub vulnerabilities: Vec<Vulnerability>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// Lockfiles that could not be read: what they install was not audited, so the
    /// dependency gates fail rather than pass on a partial audit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<UnreadableLockfile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SbomInfo {
    pub origin: ScanOrigin,
    /// `CycloneDX 1.5`.
    pub format: String,
    pub components: u64,
    /// `sha256:` of the SBOM document as stored.
    pub digest: String,
}

/// Everything a release carries about its own safety.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseScans {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretScan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deps: Option<DepsScan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomInfo>,
}

/// One gate judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GateCheck {
    pub gate: Gate,
    pub passed: bool,
    pub reason: String,
}

const HOW_TO_SCAN: &str = "`pave release scan`, or `pave release attach` with a report from CI";

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Judges `scans` against every gate of `policy`, in the policy's order.
pub fn evaluate(policy: &ReleasePolicy, scans: &ReleaseScans) -> Vec<GateCheck> {
    if policy.accept_uploads {
        return policy.require.iter().map(|gate| check(*gate, scans)).collect();
    }
    let made_here = |o: &ScanOrigin| o.source == "pave";
    let trusted = ReleaseScans {
        secrets: scans.secrets.clone().filter(|s| made_here(&s.origin)),
        deps: scans.deps.clone().filter(|d| made_here(&d.origin)),
        sbom: scans.sbom.clone().filter(|b| made_here(&b.origin)),
    };
    policy
        .require
        .iter()
        .map(|gate| {
            let mut c = check(*gate, &trusted);
            let uploaded = match gate {
                Gate::SecretsClean => scans.secrets.as_ref().map(|s| &s.origin),
                Gate::NoVulnsAbove(_) | Gate::NoNotices(_) => scans.deps.as_ref().map(|d| &d.origin),
                Gate::Sbom => scans.sbom.as_ref().map(|b| &b.origin),
            }
            .filter(|o| !made_here(o));
            if let (false, Some(o)) = (c.passed, uploaded) {
                c.reason = format!(
                    "only scans Pave made of the artifact count here (`pave release scan`); the attached one was \
                     uploaded by {}",
                    o.by
                );
            }
            c
        })
        .collect()
}

fn check(gate: Gate, scans: &ReleaseScans) -> GateCheck {
    let (passed, reason) = match gate {
        Gate::SecretsClean => match &scans.secrets {
            None => (false, format!("no secret scan is attached to the release ({HOW_TO_SCAN})")),
            Some(s) if s.findings.is_empty() => (
                true,
                format!(
                    "the secret scan found nothing{}",
                    s.files.map(|f| format!(" in {}", plural(f as usize, "file", "files"))).unwrap_or_default()
                ),
            ),
            Some(s) => {
                let mut rules: Vec<&str> = s.findings.iter().map(|f| f.rule.as_str()).collect();
                rules.sort_unstable();
                rules.dedup();
                let first = &s.findings[0];
                (
                    false,
                    format!(
                        "the secret scan found {} ({}), first at {}:{}",
                        plural(s.findings.len(), "secret", "secrets"),
                        rules.join(", "),
                        first.file,
                        first.line
                    ),
                )
            }
        },
        Gate::NoVulnsAbove(_) | Gate::NoNotices(_)
            if let Some(d) = scans.deps.as_ref().filter(|d| !d.unreadable.is_empty()) =>
        {
            let first = &d.unreadable[0];
            (
                false,
                format!(
                    "the dependency audit is incomplete: {} could not be read, first {}: {}",
                    plural(d.unreadable.len(), "lockfile", "lockfiles"),
                    first.file,
                    first.problem
                ),
            )
        }
        Gate::NoNotices(kind) => match &scans.deps {
            None => (false, format!("no dependency audit is attached to the release ({HOW_TO_SCAN})")),
            Some(d) => {
                let hits: Vec<&Notice> = d.notices.iter().filter(|n| kind.covers(&n.kind)).collect();
                let what = match kind {
                    NoticeKind::Any => "notice".to_owned(),
                    k => format!("{} notice", k.as_str()),
                };
                if hits.is_empty() {
                    (true, format!("{} audited, no {what}", plural(d.packages as usize, "package", "packages")))
                } else {
                    let listed: Vec<String> = hits
                        .iter()
                        .take(5)
                        .map(|n| format!("{} ({}) in {} {} {}", n.id, n.kind, n.ecosystem, n.package, n.version))
                        .collect();
                    let more = if hits.len() > 5 { format!("; and {} more", hits.len() - 5) } else { String::new() };
                    (false, format!("{}: {}{more}", plural(hits.len(), &what, &format!("{what}s")), listed.join("; ")))
                }
            }
        },
        Gate::NoVulnsAbove(limit) => match &scans.deps {
            None => (false, format!("no dependency audit is attached to the release ({HOW_TO_SCAN})")),
            Some(d) => {
                let mut above: Vec<&Vulnerability> =
                    d.vulnerabilities.iter().filter(|v| v.severity.rank() > limit).collect();
                above.sort_by(|a, b| b.severity.rank().cmp(&a.severity.rank()).then_with(|| a.id.cmp(&b.id)));
                if above.is_empty() && d.lockfiles.is_empty() {
                    (true, "no lockfile in the artifact, so there was nothing to audit".to_owned())
                } else if above.is_empty() {
                    let notices = if d.notices.is_empty() {
                        String::new()
                    } else {
                        let mut kinds: Vec<&str> = d.notices.iter().map(|n| n.kind.as_str()).collect();
                        kinds.sort_unstable();
                        kinds.dedup();
                        format!(
                            "; {} ({}) not counted (a policy gates on them with `no-notices`)",
                            plural(d.notices.len(), "warning", "warnings"),
                            kinds.join(", ")
                        )
                    };
                    (
                        true,
                        format!(
                            "{} audited, {}, none above {}{notices}",
                            plural(d.packages as usize, "package", "packages"),
                            plural(d.vulnerabilities.len(), "vulnerability", "vulnerabilities"),
                            limit.as_str()
                        ),
                    )
                } else {
                    let listed: Vec<String> = above
                        .iter()
                        .take(5)
                        .map(|v| {
                            let sev = if v.severity == Severity::Unknown {
                                "no severity given, counted as critical".to_owned()
                            } else {
                                v.severity.as_str().to_owned()
                            };
                            let fix =
                                v.fix.as_deref().map_or_else(|| "no fix known".to_owned(), |f| format!("fix: {f}"));
                            format!("{} ({sev}) in {} {} {}, {fix}", v.id, v.ecosystem, v.package, v.version)
                        })
                        .collect();
                    let more = if above.len() > 5 { format!("; and {} more", above.len() - 5) } else { String::new() };
                    (
                        false,
                        format!(
                            "{} above {}: {}{more}",
                            plural(above.len(), "vulnerability", "vulnerabilities"),
                            limit.as_str(),
                            listed.join("; ")
                        ),
                    )
                }
            }
        },
        Gate::Sbom => match &scans.sbom {
            None => (false, format!("no SBOM is attached to the release ({HOW_TO_SCAN})")),
            Some(s) => {
                (true, format!("{} SBOM with {}", s.format, plural(s.components as usize, "component", "components")))
            }
        },
    };
    GateCheck { gate, passed, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> ScanOrigin {
        ScanOrigin { at: Timestamp(0), by: "ci".into(), source: "upload".into(), tool: "pave".into() }
    }

    fn vuln(id: &str, severity: Severity) -> Vulnerability {
        Vulnerability {
            id: id.into(),
            aliases: vec![],
            ecosystem: "npm".into(),
            package: "lodash".into(),
            version: "4.17.20".into(),
            severity,
            fix: Some("4.17.21".into()),
        }
    }

    #[test]
    fn gates_read_as_yaml_writes_them_and_bad_ones_are_named() {
        let p: ReleasePolicy =
            serde_yaml::from_str("require: [secrets-clean, no-vulns-above: high, sbom, 'no-vulns-above: none']")
                .unwrap();
        assert_eq!(
            p.require,
            vec![
                Gate::SecretsClean,
                Gate::NoVulnsAbove(Severity::High),
                Gate::Sbom,
                Gate::NoVulnsAbove(Severity::None)
            ]
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"require": ["secrets-clean", {"no-vulns-above": "high"}, "sbom", {"no-vulns-above": "none"}]})
        );
        assert_eq!(serde_json::from_value::<ReleasePolicy>(json).unwrap(), p);
        for (bad, says) in [
            ("require: [signed]", "unknown gate \"signed\""),
            ("require: [no-vulns-above: severe]", "not \"severe\""),
            ("require: [no-vulns-above: unknown]", "needs a severity"),
            ("require: [{no-vulns-above: high, sbom: x}]", "one `name: value` pair"),
            ("require: [{scanned: yes}]", "unknown gate \"scanned\""),
            ("require: [secrets-clean]\nextra: 1", "unknown field `extra`"),
        ] {
            let err = serde_yaml::from_str::<ReleasePolicy>(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn each_gate_says_why_it_passed_or_failed() {
        let policy = ReleasePolicy {
            require: vec![Gate::SecretsClean, Gate::NoVulnsAbove(Severity::High), Gate::Sbom],
            ..Default::default()
        };
        let none = evaluate(&policy, &ReleaseScans::default());
        assert!(none.iter().all(|c| !c.passed));
        assert!(none[0].reason.contains("no secret scan"), "{}", none[0].reason);
        assert!(none[1].reason.contains("no dependency audit"));
        assert!(none[2].reason.contains("no SBOM"));

        let mut scans = ReleaseScans {
            secrets: Some(SecretScan { origin: origin(), files: Some(12), findings: vec![] }),
            deps: Some(DepsScan {
                origin: origin(),
                packages: 40,
                lockfiles: vec!["package-lock.json".into()],
                vulnerabilities: vec![vuln("GHSA-low", Severity::Low), vuln("GHSA-high", Severity::High)],
                notices: vec![],
                unreadable: vec![],
            }),
            sbom: Some(SbomInfo {
                origin: origin(),
                format: "CycloneDX 1.5".into(),
                components: 40,
                digest: "sha256:x".into(),
            }),
        };
        let ok = evaluate(&policy, &scans);
        assert!(ok.iter().all(|c| c.passed), "{ok:?}");
        assert_eq!(ok[0].reason, "the secret scan found nothing in 12 files");
        assert_eq!(ok[1].reason, "40 packages audited, 2 vulnerabilities, none above high");
        assert_eq!(ok[2].reason, "CycloneDX 1.5 SBOM with 40 components");

        // A critical one, and one without a severity (counted as critical), fail `above high`.
        let deps = scans.deps.as_mut().unwrap();
        deps.vulnerabilities.push(vuln("GHSA-crit", Severity::Critical));
        deps.vulnerabilities.push(vuln("OSV-unrated", Severity::Unknown));
        scans.secrets.as_mut().unwrap().findings.push(SecretHit {
            rule: "aws-access-token".into(),
            file: "config/app.yaml".into(),
            line: 12,
            fingerprint: String::new(),
        });
        let bad = evaluate(&policy, &scans);
        assert!(
            !bad[0].passed
                && bad[0].reason == "the secret scan found 1 secret (aws-access-token), first at config/app.yaml:12"
        );
        assert!(!bad[1].passed);
        assert!(bad[1].reason.starts_with("2 vulnerabilities above high: GHSA-crit (critical) in npm lodash 4.17.20, fix: 4.17.21; OSV-unrated (no severity given, counted as critical)"), "{}", bad[1].reason);
        // With uploads refused, an uploaded report counts as none, and says so.
        let strict_source = ReleasePolicy { require: vec![Gate::Sbom], accept_uploads: false };
        let c = evaluate(&strict_source, &scans);
        assert!(!c[0].passed && c[0].reason.contains("uploaded by ci"), "{c:?}");
        scans.sbom.as_mut().unwrap().origin.source = "pave".into();
        assert!(evaluate(&strict_source, &scans)[0].passed);
        let yaml: ReleasePolicy = serde_yaml::from_str("require: [sbom]\nacceptUploads: false").unwrap();
        assert_eq!(yaml, strict_source);
        // `above critical` tolerates every rated one.
        let lenient = evaluate(
            &ReleasePolicy { require: vec![Gate::NoVulnsAbove(Severity::Critical)], ..Default::default() },
            &scans,
        );
        assert!(lenient[0].passed, "{lenient:?}");
        // `above none` tolerates nothing.
        let strict = evaluate(
            &ReleasePolicy { require: vec![Gate::NoVulnsAbove(Severity::None)], ..Default::default() },
            &scans,
        );
        assert!(strict[0].reason.starts_with("4 vulnerabilities above none"), "{}", strict[0].reason);
    }

    fn notice(id: &str, kind: &str, package: &str) -> Notice {
        Notice {
            id: id.into(),
            kind: kind.into(),
            ecosystem: "crates.io".into(),
            package: package.into(),
            version: "0.2.14".into(),
        }
    }

    /// RustSec's unmaintained and unsound notices are warnings: `no-vulns-above` does not
    /// count them (an unmaintained `atty` no longer blocks production as a "critical"), and
    /// a policy that wants them gated says `no-notices`.
    #[test]
    fn notices_are_gated_only_by_no_notices() {
        let p: ReleasePolicy = serde_yaml::from_str(
            "require: [no-vulns-above: high, no-notices, no-notices: unsound, 'no-notices: unmaintained']",
        )
        .unwrap();
        assert_eq!(
            p.require,
            vec![
                Gate::NoVulnsAbove(Severity::High),
                Gate::NoNotices(NoticeKind::Any),
                Gate::NoNotices(NoticeKind::Unsound),
                Gate::NoNotices(NoticeKind::Unmaintained)
            ]
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["require"][1], "no-notices");
        assert_eq!(json["require"][2], serde_json::json!({"no-notices": "unsound"}));
        assert_eq!(serde_json::from_value::<ReleasePolicy>(json).unwrap(), p);
        let err = serde_yaml::from_str::<ReleasePolicy>("require: [no-notices: stale]").unwrap_err().to_string();
        assert!(err.contains("unmaintained, unsound or any, not \"stale\""), "{err}");

        let mut scans = ReleaseScans {
            deps: Some(DepsScan {
                origin: origin(),
                packages: 120,
                lockfiles: vec!["Cargo.lock".into()],
                vulnerabilities: vec![],
                notices: vec![notice("RUSTSEC-2024-0375", "unmaintained", "atty")],
                unreadable: vec![],
            }),
            ..Default::default()
        };
        let c = evaluate(&p, &scans);
        assert!(c[0].passed, "{c:?}");
        assert_eq!(
            c[0].reason,
            "120 packages audited, 0 vulnerabilities, none above high; 1 warning (unmaintained) not counted (a policy \
             gates on them with `no-notices`)"
        );
        assert!(!c[1].passed);
        assert_eq!(c[1].reason, "1 notice: RUSTSEC-2024-0375 (unmaintained) in crates.io atty 0.2.14");
        assert!(c[2].passed, "{c:?}");
        assert_eq!(c[2].reason, "120 packages audited, no unsound notice");
        assert!(!c[3].passed && c[3].reason.starts_with("1 unmaintained notice: RUSTSEC-2024-0375"), "{c:?}");

        // A lockfile that could not be read leaves the audit incomplete: both gates fail.
        scans.deps.as_mut().unwrap().unreadable.push(UnreadableLockfile {
            file: "web/pnpm-lock.yaml".into(),
            problem: "refused before parsing: line 2: collections nested deeper than 64 levels".into(),
        });
        let c = evaluate(&p, &scans);
        assert!(c.iter().all(|c| !c.passed), "{c:?}");
        assert_eq!(
            c[0].reason,
            "the dependency audit is incomplete: 1 lockfile could not be read, first web/pnpm-lock.yaml: refused \
             before parsing: line 2: collections nested deeper than 64 levels"
        );
    }
}
