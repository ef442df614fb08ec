//! The audit end to end on real data: lockfile samples against the OSV records, read from a
//! directory and from a zip laid out like osv.dev's `all.zip`.

use pave_deps::lockfile::{Files, Format, parse};
use pave_deps::{Database, Package};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

struct Dir;

impl Files for Dir {
    fn read(&self, relative: &str) -> Option<String> {
        std::fs::read_to_string(format!("{DATA}/lockfiles/{relative}")).ok()
    }
}

fn installed(samples: &[(Format, &str)]) -> Vec<(Package, String)> {
    let mut out = Vec::new();
    for (format, file) in samples {
        let text = std::fs::read_to_string(format!("{DATA}/lockfiles/{file}")).expect("sample");
        for p in parse(*format, file, &text, &Dir).expect("parses") {
            out.push((p, file.to_string()));
        }
    }
    out
}

#[test]
fn samples_against_the_database_from_a_directory_and_a_zip() {
    let dir = Database::open(std::path::Path::new(&format!("{DATA}/osv"))).expect("directory");
    let zip = Database::open(std::path::Path::new(&format!("{DATA}/osv-all.zip"))).expect("zip");
    assert_eq!(dir.len(), 17, "18 records, one withdrawn");
    assert_eq!(zip.len(), dir.len());
    let packages = installed(&[
        (Format::NpmLock, "package-lock.v3.json"),
        (Format::Requirements, "requirements.pip-compile-hashes.txt"),
        (Format::CargoLock, "Cargo.v4.lock"),
        (Format::GoMod, "go.mod"),
        (Format::GemfileLock, "Gemfile.lock"),
        (Format::ComposerLock, "composer.lock"),
    ]);
    for db in [&dir, &zip] {
        let findings = db.audit(&packages);
        let line = |f: &pave_deps::Finding| {
            format!(
                "{} {} {} {} fixed={:?} upgrade={:?}",
                f.package,
                f.version,
                f.ids.join("+"),
                f.severity,
                f.fixed,
                f.upgrade_to
            )
        };
        let got: Vec<String> = findings.iter().map(line).collect();
        let has = |s: &str| got.iter().any(|g| g == s);
        for want in [
            "lodash 4.17.15 GHSA-35jh-r3h4-6jhm high fixed=Some(\"4.17.21\") upgrade=Some(\"4.17.21\")",
            "lodash 4.17.15 GHSA-p6mc-m468-83gw high fixed=Some(\"4.17.20\") upgrade=Some(\"4.17.21\")",
            "minimist 0.0.8 GHSA-xvch-5gv4-984h critical fixed=Some(\"0.2.4\") upgrade=Some(\"0.2.4\")",
            "requests 2.19.0 GHSA-x84v-xcm2-53pg+PYSEC-2018-28 high fixed=Some(\"2.20.0\") upgrade=Some(\"2.20.0\")",
            "github.com/gin-gonic/gin v1.6.3 GO-2023-1737 unknown fixed=Some(\"1.9.1\") upgrade=Some(\"1.9.1\")",
        ] {
            assert!(has(want), "missing {want:?} in\n{}", got.join("\n"));
        }
        assert!(got.iter().any(|g| g.starts_with("smallvec ")), "{got:?}");
        assert!(got.iter().any(|g| g.starts_with("nokogiri 1.13.3 ")), "{got:?}");
        assert!(got.iter().any(|g| g.starts_with("twig/twig v2.14.10 GHSA-52m2-vc4m-jj33")), "{got:?}");
        assert!(!got.iter().any(|g| g.contains("x_PAVE")), "withdrawn");
        // Most severe first.
        assert_eq!(findings[0].severity, "critical", "{got:?}");
        let req = findings.iter().find(|f| f.package == "requests").expect("requests");
        assert!(req.aliases.contains(&"CVE-2018-18074".to_owned()), "{:?}", req.aliases);
        assert_eq!(req.lockfiles, ["requirements.pip-compile-hashes.txt"]);
    }
}

#[test]
fn bad_databases_are_named_and_bad_records_skipped() {
    let tmp = std::env::temp_dir().join(format!("pave-deps-db-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("mkdir");
    std::fs::write(tmp.join("broken.json"), "{not json").expect("write");
    let e = Database::open(&tmp).expect_err("no records");
    assert!(e.to_string().contains("no OSV records"), "{e}");
    std::fs::copy(format!("{DATA}/osv/GO-2023-1737.json"), tmp.join("GO-2023-1737.json")).expect("copy");
    let db = Database::open(&tmp).expect("one good record");
    assert_eq!(db.len(), 1);
    assert!(db.warnings.iter().any(|w| w.contains("broken.json")), "{:?}", db.warnings);
    let file = tmp.join("not-a-zip.zip");
    std::fs::write(&file, "plain text").expect("write");
    assert!(Database::open(&file).expect_err("not a zip").to_string().contains("not a directory or a zip"));
    std::fs::remove_dir_all(&tmp).ok();
}

/// RustSec's informational advisories (`unmaintained`, `unsound`) are warnings, apart from
/// the vulnerabilities, and hold back no upgrade: as cargo-audit reports them.
#[test]
fn rustsec_notices_are_warnings_not_vulnerabilities() {
    let db = Database::open(std::path::Path::new(&format!("{DATA}/osv-notices"))).expect("directory");
    let crate_ = |name: &str, version: &str| Package {
        ecosystem: pave_deps::Ecosystem::CratesIo,
        name: name.into(),
        version: version.into(),
        origin: pave_deps::Origin::Registry,
        direct: None,
        dev: None,
    };
    let installed = vec![
        (crate_("atty", "0.2.14"), "Cargo.lock".to_owned()),
        (crate_("smallvec", "1.6.0"), "Cargo.lock".to_owned()),
    ];
    let findings = db.audit(&installed);
    let got: Vec<(String, Option<String>, &str)> =
        findings.iter().map(|f| (f.ids.join("+"), f.informational.clone(), f.severity)).collect();
    assert_eq!(
        got,
        [
            ("RUSTSEC-2021-0003".to_owned(), None, "critical"),
            ("RUSTSEC-2021-0145".to_owned(), Some("unsound".to_owned()), "unknown"),
            ("RUSTSEC-2024-0375".to_owned(), Some("unmaintained".to_owned()), "unknown"),
        ],
        "vulnerabilities first, then the notices"
    );
    assert_eq!(findings[0].upgrade_to.as_deref(), Some("1.6.1"));
    let report = db.json_report(&["Cargo.lock".to_owned()], &[], installed.len(), &findings);
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(report["warnings"][1]["informational"], "unmaintained", "{report}");
    assert_eq!(report["warnings"][1]["package"], "atty", "{report}");
}
