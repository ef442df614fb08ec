//! An OSV database read offline — a directory of OSV JSON records (searched recursively) or
//! a zip of them, as osv.dev publishes `<ecosystem>/all.zip` — and the audit of a package
//! list against it.
//!
//! A record that cannot be read is skipped with a warning rather than failing the audit;
//! a record published twice (several ecosystems' zips) is kept once, its newest revision;
//! withdrawn records are dropped. Advisories that name each other (`aliases`) are reported
//! as one vulnerability with every id.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::lockfile::{Origin, Package};
use crate::normalize_name;
use crate::osv::{Record, Severity};
use crate::version::Ecosystem;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: {message}")]
    Unreadable { path: String, message: String },
}

/// Advisories indexed by package.
#[derive(Debug, Default)]
pub struct Database {
    records: Vec<Record>,
    index: HashMap<(Ecosystem, String), Vec<usize>>,
    /// Records skipped, and why.
    pub warnings: Vec<String>,
}

/// One vulnerability of one installed package.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub ecosystem: &'static str,
    pub package: String,
    pub version: String,
    /// The advisory ids naming this vulnerability (one alias group), sorted.
    pub ids: Vec<String>,
    /// Other names (CVE ids) the advisories give.
    pub aliases: Vec<String>,
    pub summary: String,
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The lowest version that fixes this vulnerability, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// The version to move to so that no known vulnerability of the package remains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_to: Option<String>,
    /// The lockfiles that install this version.
    pub lockfiles: Vec<String>,
    /// Set when the advisory is a notice, not a vulnerability: RustSec's `unmaintained`,
    /// `unsound` or `notice`. Reported as a warning (as cargo-audit does), never counted by
    /// `--fail-on` or `no-vulns-above`; a policy gates on them with `no-notices`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub informational: Option<String>,
    #[serde(skip)]
    pub level: Severity,
}

impl Finding {
    /// Whether this is a notice (unmaintained, unsound) rather than a vulnerability.
    pub fn is_warning(&self) -> bool {
        self.informational.is_some()
    }
}

impl Database {
    /// The JSON report of an audit (`pave scan deps -f json`; what a release's policy reads):
    /// vulnerabilities under `findings`, notices (unmaintained, unsound) under `warnings` as
    /// cargo-audit keeps them apart, and lockfiles that could not be read under `unreadable`.
    pub fn json_report(
        &self,
        lockfiles: &[String],
        unreadable: &[crate::discover::DiscoverError],
        packages: usize,
        findings: &[Finding],
    ) -> serde_json::Value {
        let (warnings, vulns): (Vec<&Finding>, Vec<&Finding>) = findings.iter().partition(|f| f.is_warning());
        let unreadable: Vec<serde_json::Value> =
            unreadable.iter().map(|e| serde_json::json!({"file": e.path, "problem": e.message})).collect();
        serde_json::json!({
            "tool": "pave", "version": env!("CARGO_PKG_VERSION"), "lockfiles": lockfiles, "packages": packages,
            "findings": vulns, "warnings": warnings, "unreadable": unreadable,
            "database": {"records": self.len(), "warnings": self.warnings},
        })
    }

    pub fn from_records(records: Vec<Record>) -> Database {
        let mut db = Database::default();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for r in records {
            if r.is_withdrawn() {
                continue;
            }
            match by_id.get(&r.id) {
                Some(&i) if db.records[i].modified >= r.modified => {}
                Some(&i) => db.records[i] = r,
                None => {
                    by_id.insert(r.id.clone(), db.records.len());
                    db.records.push(r);
                }
            }
        }
        for (i, r) in db.records.iter().enumerate() {
            for a in &r.affected {
                let Some(p) = &a.package else { continue };
                let Some(eco) = Ecosystem::from_osv(&p.ecosystem) else { continue };
                let key = (eco, normalize_name(eco, &p.name));
                let list = db.index.entry(key).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        db
    }

    /// Reads a directory (every `*.json` below it) or a `.zip` of OSV records.
    pub fn open(path: &Path) -> Result<Database, DbError> {
        let unreadable = |message: String| DbError::Unreadable { path: path.display().to_string(), message };
        let mut texts: Vec<(String, Vec<u8>)> = Vec::new();
        if path.is_dir() {
            let mut stack = vec![path.to_path_buf()];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir).map_err(|e| unreadable(e.to_string()))? {
                    let p = e.map_err(|e| unreadable(e.to_string()))?.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "json") {
                        let bytes = std::fs::read(&p).map_err(|e| unreadable(format!("{}: {e}", p.display())))?;
                        texts.push((p.display().to_string(), bytes));
                    }
                }
            }
        } else {
            let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
            let mut zip =
                zip::ZipArchive::new(file).map_err(|e| unreadable(format!("not a directory or a zip: {e}")))?;
            for i in 0..zip.len() {
                let mut entry = zip.by_index(i).map_err(|e| unreadable(e.to_string()))?;
                if entry.is_file() && entry.name().ends_with(".json") {
                    let mut bytes = Vec::with_capacity(entry.size() as usize);
                    std::io::Read::read_to_end(&mut entry, &mut bytes)
                        .map_err(|e| unreadable(format!("{}: {e}", entry.name())))?;
                    texts.push((entry.name().to_owned(), bytes));
                }
            }
        }
        let mut records = Vec::with_capacity(texts.len());
        let mut warnings = Vec::new();
        for (name, bytes) in texts {
            match serde_json::from_slice::<Record>(&bytes) {
                Ok(r) => records.push(r),
                Err(e) => warnings.push(format!("{name}: skipped, not an OSV record: {e}")),
            }
        }
        if records.is_empty() {
            return Err(unreadable("no OSV records found".into()));
        }
        let mut db = Database::from_records(records);
        db.warnings = warnings;
        Ok(db)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The vulnerabilities of the registry packages in `installed` (`(package, lockfile)`
    /// pairs), one per alias group and package version: vulnerabilities most severe first,
    /// then notices.
    pub fn audit(&self, installed: &[(Package, String)]) -> Vec<Finding> {
        let mut versions: HashMap<(Ecosystem, String, String), Vec<String>> = HashMap::new();
        for (p, file) in installed.iter().filter(|(p, _)| p.origin == Origin::Registry) {
            let files = versions.entry((p.ecosystem, p.name.clone(), p.version.clone())).or_default();
            if !files.contains(file) {
                files.push(file.clone());
            }
        }
        let mut out = Vec::new();
        for ((eco, name, version), lockfiles) in versions {
            let key = (eco, normalize_name(eco, &name));
            let Some(candidates) = self.index.get(&key) else { continue };
            let hits: Vec<(&Record, crate::osv::Hit)> = candidates
                .iter()
                .filter_map(|&i| self.records[i].check(eco, &key.1, &version).map(|h| (&self.records[i], h)))
                .collect();
            if hits.is_empty() {
                continue;
            }
            // Notices (an unmaintained crate has no fix) do not hold back the upgrade that
            // clears the package's vulnerabilities.
            let vulnerable: Vec<_> = hits.iter().filter(|(_, h)| h.informational.is_none()).cloned().collect();
            let upgrade = self.upgrade(eco, &key.1, &version, &vulnerable);
            for group in alias_groups(&hits) {
                let (ids, aliases): (BTreeSet<String>, BTreeSet<String>) = {
                    let ids: BTreeSet<String> = group.iter().map(|(r, _)| r.id.clone()).collect();
                    let aliases = group
                        .iter()
                        .flat_map(|(r, _)| r.aliases.iter().cloned())
                        .filter(|a| !ids.contains(a))
                        .collect();
                    (ids, aliases)
                };
                let level = group.iter().map(|(_, h)| h.severity).max().unwrap_or(Severity::Unknown);
                let score = group
                    .iter()
                    .filter_map(|(_, h)| h.score)
                    .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
                let fixed = if group.iter().any(|(_, h)| h.fixed.is_none()) {
                    None
                } else {
                    group.iter().filter_map(|(_, h)| h.fixed.clone()).max_by(|a, b| cmp(eco, a, b))
                };
                let summary = group.iter().find_map(|(r, _)| r.summary.clone()).unwrap_or_default();
                // A notice only when every advisory of the group is one: a real
                // vulnerability named alongside a notice stays a vulnerability.
                let informational = group
                    .iter()
                    .map(|(_, h)| h.informational.clone())
                    .collect::<Option<Vec<_>>>()
                    .and_then(|kinds| kinds.into_iter().next());
                out.push(Finding {
                    ecosystem: eco.as_str(),
                    package: name.clone(),
                    version: version.clone(),
                    ids: ids.into_iter().collect(),
                    aliases: aliases.into_iter().collect(),
                    summary,
                    severity: level.as_str(),
                    score,
                    fixed,
                    upgrade_to: if informational.is_some() { None } else { upgrade.clone() },
                    lockfiles: lockfiles.clone(),
                    informational,
                    level,
                });
            }
        }
        out.sort_by(|a, b| {
            a.is_warning().cmp(&b.is_warning()).then(b.level.cmp(&a.level)).then_with(|| {
                (a.ecosystem, &a.package, &a.version, &a.ids).cmp(&(b.ecosystem, &b.package, &b.version, &b.ids))
            })
        });
        out
    }

    /// The lowest version that leaves none of the package's known vulnerabilities: the
    /// highest of the fixes, checked again (a fix can itself be affected by another
    /// advisory) until it holds; `None` when some vulnerability has no fix.
    fn upgrade(
        &self,
        eco: Ecosystem,
        name: &str,
        version: &str,
        hits: &[(&Record, crate::osv::Hit)],
    ) -> Option<String> {
        let mut candidate = hits
            .iter()
            .map(|(_, h)| h.fixed.clone())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max_by(|a, b| cmp(eco, a, b))?;
        let pre_ok = eco.is_prerelease(version);
        for _ in 0..16 {
            let again: Vec<_> = self
                .index
                .get(&(eco, name.to_owned()))?
                .iter()
                .filter_map(|&i| self.records[i].check(eco, name, &candidate))
                .filter(|h| h.informational.is_none())
                .collect();
            if again.is_empty() {
                return (pre_ok || !eco.is_prerelease(&candidate)).then_some(candidate);
            }
            candidate = again
                .into_iter()
                .map(|h| h.fixed)
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .max_by(|a, b| cmp(eco, a, b))?;
        }
        None
    }
}

fn cmp(eco: Ecosystem, a: &str, b: &str) -> std::cmp::Ordering {
    eco.compare(a, b).unwrap_or_else(|| a.cmp(b))
}

/// An advisory that matched, with what it says.
type Matched<'a> = (&'a Record, crate::osv::Hit);

/// Hits grouped by shared ids (an advisory and the ones it names as aliases, transitively).
fn alias_groups<'a>(hits: &'a [Matched<'a>]) -> Vec<Vec<&'a Matched<'a>>> {
    let mut groups: Vec<(BTreeSet<&str>, Vec<&Matched<'a>>)> = Vec::new();
    for h in hits {
        let names: BTreeSet<&str> =
            std::iter::once(h.0.id.as_str()).chain(h.0.aliases.iter().map(String::as_str)).collect();
        let mut merged = (names, vec![h]);
        let mut i = 0;
        while i < groups.len() {
            if groups[i].0.intersection(&merged.0).next().is_some() {
                let (n, m) = groups.swap_remove(i);
                merged.0.extend(n);
                merged.1.extend(m);
            } else {
                i += 1;
            }
        }
        groups.push(merged);
    }
    groups.into_iter().map(|(_, m)| m).collect()
}
