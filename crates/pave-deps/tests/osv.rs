//! Real OSV records (tests/data/osv) against package versions as lockfiles state them: which
//! advisories match, the version that fixes each, and the severity.

use pave_deps::{Ecosystem, Record, Severity, normalize_name};

fn records() -> Vec<Record> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).expect("read");
            out.push(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
        }
    }
    assert!(out.len() >= 18);
    out
}

/// `(advisory id, fixed version)` pairs.
type Matches = Vec<(String, Option<String>)>;

/// Every advisory that matches, with its fix, sorted.
fn matches(db: &[Record], eco: Ecosystem, name: &str, version: &str) -> Matches {
    let name = normalize_name(eco, name);
    let mut out: Vec<_> =
        db.iter().filter_map(|r| r.check(eco, &name, version).map(|h| (r.id.clone(), h.fixed))).collect();
    out.sort();
    out
}

fn m(pairs: &[(&str, Option<&str>)]) -> Matches {
    pairs.iter().map(|(id, f)| (id.to_string(), f.map(str::to_owned))).collect()
}

#[test]
fn advisories_match_with_their_fixes() {
    let db = records();
    use Ecosystem::*;
    let cases: Vec<(Ecosystem, &str, &str, Matches)> = vec![
        (
            Npm,
            "lodash",
            "4.17.15",
            m(&[("GHSA-35jh-r3h4-6jhm", Some("4.17.21")), ("GHSA-p6mc-m468-83gw", Some("4.17.20"))]),
        ),
        (Npm, "lodash", "4.17.21", m(&[])),
        (
            Npm,
            "minimist",
            "1.2.0",
            m(&[("GHSA-vh95-rmgr-6w4m", Some("1.2.3")), ("GHSA-xvch-5gv4-984h", Some("1.2.6"))]),
        ),
        (
            Npm,
            "minimist",
            "0.0.8",
            m(&[("GHSA-vh95-rmgr-6w4m", Some("0.2.1")), ("GHSA-xvch-5gv4-984h", Some("0.2.4"))]),
        ),
        (Npm, "@xmldom/xmldom", "0.7.5", m(&[("GHSA-crh6-fp67-6883", Some("0.7.7"))])),
        (Npm, "@xmldom/xmldom", "0.9.0-beta.2", m(&[("GHSA-crh6-fp67-6883", Some("0.9.0-beta.4"))])),
        (Npm, "@xmldom/xmldom", "0.9.0", m(&[])),
        (Npm, "xmldom", "0.6.0", m(&[("GHSA-crh6-fp67-6883", None)])),
        (Npm, "xmldom", "0.6.1", m(&[])),
        (Npm, "ms", "0.7.0", m(&[("GHSA-3fx5-fwvr-xrjg", Some("0.7.1"))])),
        (Npm, "my-ms", "0.7.0", m(&[])),
        (PyPI, "requests", "2.19.0", m(&[("GHSA-x84v-xcm2-53pg", Some("2.20.0")), ("PYSEC-2018-28", Some("2.20.0"))])),
        (PyPI, "Jinja2", "2.10.0", m(&[("GHSA-462w-v97r-4m45", Some("2.10.1")), ("PYSEC-2019-217", Some("2.10.1"))])),
        (PyPI, "django", "3.2", m(&[("GHSA-68w8-qjq3-2gfm", Some("3.2.4"))])),
        (PyPI, "django", "3.2rc1", m(&[])),
        (PyPI, "django", "3.1.12", m(&[])),
        (PyPI, "django", "3.0.0", m(&[("GHSA-68w8-qjq3-2gfm", Some("3.1.12"))])),
        (CratesIo, "smallvec", "1.6.0", m(&[("RUSTSEC-2021-0003", Some("1.6.1"))])),
        (CratesIo, "smallvec", "0.6.13", m(&[("RUSTSEC-2021-0003", Some("0.6.14"))])),
        (CratesIo, "smallvec", "0.6.2", m(&[])),
        (CratesIo, "smallvec", "1.6.1", m(&[])),
        (Go, "github.com/gin-gonic/gin", "v1.6.3", m(&[("GO-2023-1737", Some("1.9.1"))])),
        (Go, "github.com/gin-gonic/gin", "v1.3.0", m(&[])),
        (Go, "github.com/gin-gonic/gin", "v1.3.1-0.20190301021747-ccb9e902956d", m(&[("GO-2023-1737", Some("1.9.1"))])),
        (
            Go,
            "golang.org/x/sys",
            "v0.0.0-20200116001909-b77594299b42",
            m(&[("GO-2022-0493", Some("0.0.0-20220412211240-33da011f77ad"))]),
        ),
        (Go, "stdlib", "1.18.1", m(&[("GO-2022-0493", Some("1.18.2"))])),
        (Go, "stdlib", "1.19.0", m(&[])),
        (RubyGems, "nokogiri", "1.13.3", m(&[("GHSA-crjr-9rc5-ghw8", Some("1.13.4"))])),
        (Packagist, "guzzlehttp/guzzle", "7.4.0", m(&[("GHSA-cwmx-hcrq-mhc3", Some("7.4.3"))])),
        (Packagist, "guzzlehttp/guzzle", "6.5.5", m(&[("GHSA-cwmx-hcrq-mhc3", Some("6.5.6"))])),
        (Packagist, "guzzlehttp/guzzle", "7.4.3", m(&[])),
        (Packagist, "twig/twig", "v2.14.10", m(&[("GHSA-52m2-vc4m-jj33", Some("2.15.3"))])),
        (Packagist, "Twig/Twig", "v3.4.2", m(&[("GHSA-52m2-vc4m-jj33", Some("3.4.3"))])),
    ];
    let mut failed = Vec::new();
    for (eco, name, version, want) in cases {
        let got = matches(&db, eco, name, version);
        if got != want {
            failed.push(format!("{eco:?} {name} {version}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

#[test]
fn withdrawn_records_never_match_and_severity_is_read() {
    let db = records();
    let withdrawn = db.iter().find(|r| r.id == "x_PAVE-2024-0001").expect("record");
    assert!(withdrawn.is_withdrawn() && withdrawn.check(Ecosystem::Npm, "lodash", "4.17.15").is_none());
    let sev = |id: &str, eco, name: &str, v: &str| {
        db.iter().find(|r| r.id == id).and_then(|r| r.check(eco, name, v)).map(|h| h.severity).expect(id)
    };
    assert_eq!(sev("GHSA-xvch-5gv4-984h", Ecosystem::Npm, "minimist", "1.2.0"), Severity::Critical);
    // Only `database_specific.severity` ("CRITICAL") and an empty severity list.
    assert_eq!(sev("GHSA-crh6-fp67-6883", Ecosystem::Npm, "xmldom", "0.6.0"), Severity::Critical);
    assert_eq!(sev("GHSA-462w-v97r-4m45", Ecosystem::PyPI, "jinja2", "2.10"), Severity::High);
}
