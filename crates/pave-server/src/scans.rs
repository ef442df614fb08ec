//! Scans of a release: made here, on the stored artifact, with the platform's rules and
//! advisory database ([`scan_artifact`]), or uploaded from CI as Pave's own JSON (`pave scan
//! secrets|deps -f json`), gitleaks' JSON or a CycloneDX SBOM ([`read`]). Both become what
//! the release policy reads. Only locations and rule names of secret findings are kept: an
//! unredacted report uploaded by mistake stores no secret.

use std::path::Path;

use pave_model::Timestamp;
use pave_model::policy::{
    DepsScan, Notice, ReleaseScans, SbomInfo, ScanOrigin, SecretHit, SecretScan, Severity, UnreadableLockfile,
    Vulnerability,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What `POST …/releases/{version}/scans` carries.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// The artifact the reports are of; when given it must be the release's.
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub secrets: Option<Value>,
    #[serde(default)]
    pub deps: Option<Value>,
    #[serde(default)]
    pub sbom: Option<Value>,
}

/// Who made a scan: Pave itself, on the stored artifact, or a client that uploaded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Pave,
    Upload,
}

/// The summaries, and the SBOM document to keep; errors name the report and the problem.
pub fn read(upload: &Upload, by: &str, now: i64, source: Source) -> Result<(ReleaseScans, Option<String>), String> {
    let source = match source {
        Source::Pave => "pave",
        Source::Upload => "upload",
    };
    let origin = |tool: String| ScanOrigin { at: Timestamp(now), by: by.to_owned(), source: source.to_owned(), tool };
    let mut scans = ReleaseScans::default();
    if let Some(v) = &upload.secrets {
        scans.secrets = Some(secrets(v, &origin).map_err(|e| format!("secrets report: {e}"))?);
    }
    if let Some(v) = &upload.deps {
        scans.deps = Some(deps(v, &origin).map_err(|e| format!("deps report: {e}"))?);
    }
    let mut document = None;
    if let Some(v) = &upload.sbom {
        let (info, text) = sbom(v, &origin).map_err(|e| format!("sbom: {e}"))?;
        scans.sbom = Some(info);
        document = Some(text);
    }
    if scans.secrets.is_none() && scans.deps.is_none() && scans.sbom.is_none() {
        return Err("nothing to attach: give `secrets`, `deps` or `sbom`".into());
    }
    Ok((scans, document))
}

/// Scans an unpacked artifact: secrets with `rules` (else the built-in ones; nothing inside
/// the artifact — rule files, ignore lists — changes what counts), the SBOM of its lockfiles
/// (includes confined to the artifact), and, with an advisory database, the audit.
/// The reports it returns are what `pave scan … -f json` and `pave sbom` print, with notes
/// for the caller: a lockfile that cannot be read (malformed or hostile) is one, named, and
/// the rest of the artifact is still scanned; the audit records it, so its gates fail.
pub fn scan_artifact(
    dir: &Path,
    name: &str,
    rules: Option<&Path>,
    osv: Option<&Path>,
    timestamp: &str,
) -> Result<(Upload, Vec<String>), String> {
    let set = match rules {
        Some(p) => pave_secret_scan::load(p).map_err(|e| format!("the server's secret rules {}: {e}", p.display()))?,
        None => pave_secret_scan::builtin(),
    }
    .without_inline_allow();
    let (mut findings, summary) =
        pave_secret_scan::walk::scan_tree(dir, &set, &pave_secret_scan::walk::Options::default())
            .map_err(|e| e.to_string())?;
    // Neither inline `pave:allow` markers (the rule set ignores them) nor ignore lists shipped
    // inside the artifact (none is read) count: whoever builds it could accept anything.
    findings.iter_mut().for_each(pave_secret_scan::Finding::redact);
    let found = pave_deps::discover::installed_within(dir).map_err(|e| e.to_string())?;
    let deps = match osv {
        Some(p) => {
            let db = pave_deps::Database::open(p).map_err(|e| format!("the server's OSV database: {e}"))?;
            let hits = db.audit(&found.installed);
            Some(db.json_report(&found.lockfiles, &found.unreadable, found.installed.len(), &hits))
        }
        None => None,
    };
    let notes = found
        .unreadable
        .iter()
        .map(|e| format!("lockfile {e}; what it installs is neither in the SBOM nor audited"))
        .collect();
    let upload = Upload {
        digest: None,
        secrets: Some(pave_secret_scan::json_report(&findings, &summary)),
        deps,
        sbom: Some(pave_deps::sbom::document(name, timestamp, &found.installed)),
    };
    Ok((upload, notes))
}

fn tool_of(o: &serde_json::Map<String, Value>) -> String {
    let name = o.get("tool").and_then(Value::as_str).unwrap_or("unknown");
    match o.get("version").and_then(Value::as_str) {
        Some(v) => format!("{name} {v}"),
        None => name.to_owned(),
    }
}

fn secrets(v: &Value, origin: &dyn Fn(String) -> ScanOrigin) -> Result<SecretScan, String> {
    // Pave: {"tool": "pave", "findings": [...], "summary": {"files": N}}; gitleaks: [...].
    let (list, tool, files) = match v {
        Value::Array(a) => (a, "gitleaks".to_owned(), None),
        Value::Object(o) => {
            let list = o.get("findings").and_then(Value::as_array).ok_or("a Pave report has a `findings` list")?;
            (list, tool_of(o), o.get("summary").and_then(|s| s.get("files")).and_then(Value::as_u64))
        }
        _ => return Err("not a report: expected Pave's JSON object or gitleaks' JSON array".into()),
    };
    let mut findings = Vec::with_capacity(list.len());
    for (i, f) in list.iter().enumerate() {
        let text = |keys: [&str; 2]| keys.iter().find_map(|k| f.get(*k).and_then(Value::as_str)).map(str::to_owned);
        let rule = text(["ruleId", "RuleID"]).ok_or_else(|| format!("finding {i} has no ruleId (or RuleID)"))?;
        let file = text(["file", "File"]).ok_or_else(|| format!("finding {i} has no file (or File)"))?;
        let line = ["startLine", "StartLine"].iter().find_map(|k| f.get(*k).and_then(Value::as_u64)).unwrap_or(0);
        let fingerprint = text(["fingerprint", "Fingerprint"]).unwrap_or_default();
        findings.push(SecretHit { rule, file, line, fingerprint });
    }
    Ok(SecretScan { origin: origin(tool), files, findings })
}

fn deps(v: &Value, origin: &dyn Fn(String) -> ScanOrigin) -> Result<DepsScan, String> {
    let o = v.as_object().ok_or("not a report: expected the JSON of `pave scan deps -f json`")?;
    let list = o.get("findings").and_then(Value::as_array).ok_or("the report has no `findings` list")?;
    let packages = o.get("packages").and_then(Value::as_u64).ok_or("the report has no `packages` count")?;
    let lockfiles = o
        .get("lockfiles")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let mut vulnerabilities = Vec::with_capacity(list.len());
    let mut notices = Vec::new();
    let warnings = o.get("warnings").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    // Each entry named by its list and its place there, as the report's reader sees them.
    let entries = list.iter().enumerate().map(|(i, f)| (format!("findings[{i}]"), f));
    let entries = entries.chain(warnings.iter().enumerate().map(|(i, f)| (format!("warnings[{i}]"), f)));
    for (i, f) in entries {
        let field =
            |k: &str| f.get(k).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("{i} has no {k}"));
        let ids: Vec<String> = f
            .get("ids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let id = ids.first().cloned().ok_or_else(|| format!("{i} has no advisory ids"))?;
        // A notice (RustSec's unmaintained, unsound) is a warning wherever the report lists it.
        if let Some(kind) = f.get("informational").and_then(Value::as_str) {
            notices.push(Notice {
                id,
                kind: kind.to_ascii_lowercase(),
                ecosystem: field("ecosystem")?,
                package: field("package")?,
                version: field("version")?,
            });
            continue;
        }
        let severity = field("severity")?;
        let severity = Severity::parse(&severity)
            .ok_or_else(|| format!("{i} has severity {severity:?}, not one of low, medium, high, critical, unknown"))?;
        let aliases = ids[1..]
            .iter()
            .cloned()
            .chain(
                f.get("aliases")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            )
            .collect();
        vulnerabilities.push(Vulnerability {
            id,
            aliases,
            ecosystem: field("ecosystem")?,
            package: field("package")?,
            version: field("version")?,
            severity,
            fix: ["upgradeTo", "fixed"].iter().find_map(|k| f.get(*k).and_then(Value::as_str)).map(str::to_owned),
        });
    }
    let unreadable = o
        .get("unreadable")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|u| {
            let text = |k: &str| u.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
            UnreadableLockfile { file: text("file"), problem: text("problem") }
        })
        .collect();
    Ok(DepsScan { origin: origin(tool_of(o)), packages, lockfiles, vulnerabilities, notices, unreadable })
}

fn count_components(list: &[Value]) -> u64 {
    list.iter()
        .map(|c| 1 + c.get("components").and_then(Value::as_array).map_or(0, |inner| count_components(inner)))
        .sum()
}

fn sbom(v: &Value, origin: &dyn Fn(String) -> ScanOrigin) -> Result<(SbomInfo, String), String> {
    let o = v.as_object().ok_or("not a CycloneDX JSON document")?;
    if o.get("bomFormat").and_then(Value::as_str) != Some("CycloneDX") {
        return Err("not a CycloneDX document (bomFormat must be \"CycloneDX\")".into());
    }
    let spec = o.get("specVersion").and_then(Value::as_str).unwrap_or("");
    if !matches!(spec, "1.4" | "1.5" | "1.6") {
        return Err(format!("CycloneDX specVersion {spec:?} is not 1.4, 1.5 or 1.6"));
    }
    let components = match o.get("components") {
        None => 0,
        Some(Value::Array(a)) => count_components(a),
        Some(_) => return Err("`components` is not a list".into()),
    };
    let tool = o
        .get("metadata")
        .and_then(|m| m.get("tools"))
        .and_then(|t| t.get("components").and_then(Value::as_array).or_else(|| t.as_array()))
        .and_then(|a| a.first())
        .and_then(|t| t.get("name").and_then(Value::as_str))
        .unwrap_or("unknown")
        .to_owned();
    let text = serde_json::to_string(v).map_err(|e| e.to_string())?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())));
    Ok((SbomInfo { origin: origin(tool), format: format!("CycloneDX {spec}"), components, digest }, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upload(v: Value) -> Upload {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reports_of_pave_and_gitleaks_become_summaries_without_secrets() {
        let pave = json!({"tool": "pave", "version": "0.1.0", "summary": {"files": 7}, "findings": [
            {"ruleId": "aws-access-token", "file": "a.env", "startLine": 3, "secret": "AKIAIOSFODNN7EXAMPLE", "match": "x", "fingerprint": "a.env:aws-access-token:3"}]});
        let (s, doc) = read(&upload(json!({"secrets": pave})), "ci", 5, Source::Upload).unwrap();
        let s = s.secrets.unwrap();
        assert_eq!(s.files, Some(7));
        assert_eq!(s.origin.tool, "pave 0.1.0");
        assert_eq!(
            s.findings[0],
            SecretHit {
                rule: "aws-access-token".into(),
                file: "a.env".into(),
                line: 3,
                fingerprint: "a.env:aws-access-token:3".into()
            }
        );
        assert!(doc.is_none());
        assert!(!serde_json::to_string(&s).unwrap().contains("AKIA"));
        let gitleaks = json!([{"RuleID": "github-pat", "File": "x.py", "StartLine": 9, "Secret": "ghp_x", "Fingerprint": "x.py:github-pat:9"}]);
        let (s, _) = read(&upload(json!({"secrets": gitleaks})), "ci", 5, Source::Upload).unwrap();
        assert_eq!(s.secrets.unwrap().findings[0].rule, "github-pat");
    }

    #[test]
    fn deps_reports_and_sboms_are_read_and_bad_ones_named() {
        let deps = json!({"tool": "pave", "lockfiles": ["package-lock.json"], "packages": 3, "findings": [
            {"ecosystem": "npm", "package": "lodash", "version": "4.17.20", "ids": ["GHSA-35jh-r3h4-6jhm"], "aliases": ["CVE-2021-23337"],
             "severity": "high", "fixed": "4.17.21", "upgradeTo": "4.17.21", "summary": "x", "lockfiles": ["package-lock.json"]}]});
        let sbom = json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "metadata": {"tools": {"components": [{"name": "pave"}]}},
            "components": [{"name": "a", "components": [{"name": "b"}]}, {"name": "c"}]});
        let (s, doc) = read(&upload(json!({"deps": deps, "sbom": sbom})), "ci", 5, Source::Pave).unwrap();
        let d = s.deps.unwrap();
        assert_eq!((d.packages, d.vulnerabilities[0].severity), (3, Severity::High));
        assert_eq!(d.vulnerabilities[0].aliases, vec!["CVE-2021-23337"]);
        assert_eq!(d.vulnerabilities[0].fix.as_deref(), Some("4.17.21"));
        assert_eq!(d.origin.source, "pave");
        let b = s.sbom.unwrap();
        assert_eq!((b.components, b.format.as_str(), b.origin.tool.as_str()), (3, "CycloneDX 1.5", "pave"));
        assert!(b.digest.starts_with("sha256:") && doc.unwrap().contains("CycloneDX"));

        for (bad, says) in [
            (json!({}), "nothing to attach"),
            (json!({"secrets": "x"}), "secrets report: not a report"),
            (json!({"secrets": {"tool": "pave"}}), "`findings` list"),
            (json!({"secrets": [{"File": "x"}]}), "finding 0 has no ruleId"),
            (json!({"deps": {"findings": []}}), "`packages` count"),
            (
                json!({"deps": {"packages": 1, "findings": [{"ids": ["X"], "severity": "severe"}]}}),
                "severity \"severe\"",
            ),
            (json!({"sbom": {"bomFormat": "SPDX"}}), "not a CycloneDX document"),
            (json!({"sbom": {"bomFormat": "CycloneDX", "specVersion": "1.2"}}), "specVersion \"1.2\""),
        ] {
            let err = read(&upload(bad.clone()), "ci", 5, Source::Upload).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(
            serde_json::from_value::<Upload>(json!({"sboms": {}})).unwrap_err().to_string().contains("unknown field")
        );
    }

    /// A hostile lockfile in an artifact is a note and an incomplete audit, not a failed
    /// scan (the route answered 500); RustSec notices become the audit's notices.
    #[test]
    fn hostile_lockfiles_are_notes_and_notices_are_kept_apart() {
        let dir = std::env::temp_dir().join(format!("pave-hostile-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let at = |p: &str| {
            let path = dir.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            path
        };
        std::fs::write(at("web/pnpm-lock.yaml"), format!("lockfileVersion: '9.0'\nx: {}\n", "[".repeat(60_000)))
            .unwrap();
        std::fs::write(at("api/package-lock.json"), "[".repeat(50_000)).unwrap();
        std::fs::write(at("py/requirements.txt"), "-r /etc/passwd\n").unwrap();
        std::fs::write(
            at("cli/Cargo.lock"),
            "version = 4\n\n[[package]]\nname = \"atty\"\nversion = \"0.2.14\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
        )
        .unwrap();
        let osv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pave-deps/tests/data/osv-notices");
        let (upload, notes) = scan_artifact(&dir, "shop", None, Some(&osv), "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].starts_with("lockfile api/package-lock.json: not JSON"), "{notes:?}");
        assert!(notes[1].starts_with("lockfile py/requirements.txt: line 1: includes /etc/passwd"), "{notes:?}");
        assert!(
            notes[2].contains("web/pnpm-lock.yaml: refused before parsing: line 2: collections nested deeper"),
            "{notes:?}"
        );
        let (scans, _) = read(&upload, "ci", 5, Source::Pave).unwrap();
        let deps = scans.deps.unwrap();
        assert_eq!(deps.packages, 1);
        assert!(deps.vulnerabilities.is_empty(), "{:?}", deps.vulnerabilities);
        let kinds: Vec<(&str, &str)> = deps.notices.iter().map(|n| (n.id.as_str(), n.kind.as_str())).collect();
        assert_eq!(kinds, [("RUSTSEC-2021-0145", "unsound"), ("RUSTSEC-2024-0375", "unmaintained")]);
        let files: Vec<&str> = deps.unreadable.iter().map(|u| u.file.as_str()).collect();
        assert_eq!(files, ["api/package-lock.json", "py/requirements.txt", "web/pnpm-lock.yaml"]);
        assert_eq!(scans.sbom.unwrap().components, 1, "the readable lockfile is in the SBOM");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
