//! Every lockfile parser on real-format samples (tests/data/lockfiles; how each was made is in
//! tests/data/lockfiles/README.md).

use pave_deps::lockfile::{Files, Format, NoFiles, parse};
use pave_deps::{Origin, Package};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/lockfiles");

struct Dir;

impl Files for Dir {
    fn read(&self, relative: &str) -> Option<String> {
        std::fs::read_to_string(format!("{DIR}/{relative}")).ok()
    }
}

fn load(format: Format, file: &str) -> Vec<Package> {
    let text = std::fs::read_to_string(format!("{DIR}/{file}")).expect("sample");
    parse(format, file, &text, &Dir).unwrap_or_else(|e| panic!("{e}"))
}

fn find<'a>(ps: &'a [Package], name: &str, version: &str) -> &'a Package {
    ps.iter().find(|p| p.name == name && p.version == version).unwrap_or_else(|| {
        let names: Vec<_> = ps.iter().map(|p| format!("{} {}", p.name, p.version)).collect();
        panic!("{name} {version} not in {names:?}")
    })
}

#[test]
fn cargo_lock_all_versions() {
    for file in ["Cargo.v1.lock", "Cargo.v2.lock", "Cargo.v3.lock", "Cargo.v4.lock"] {
        let ps = load(Format::CargoLock, file);
        assert_eq!(find(&ps, "aho-corasick", "0.7.20").origin, Origin::Registry, "{file}");
        assert_eq!(find(&ps, "aho-corasick", "1.0.0").origin, Origin::Registry, "{file}");
        assert_eq!(find(&ps, "localdep", "0.2.0").origin, Origin::Path, "{file}");
    }
    let ps = load(Format::CargoLock, "Cargo.v4.lock");
    assert_eq!(find(&ps, "pave-gitdep", "0.3.0").origin, Origin::Git);
}

#[test]
fn npm_lockfiles_v1_to_v3() {
    for file in ["package-lock.v1.json", "package-lock.v2.json", "package-lock.v3.json"] {
        let ps = load(Format::NpmLock, file);
        let lodash = find(&ps, "lodash", "4.17.15");
        assert_eq!((lodash.direct, lodash.dev, lodash.origin), (Some(true), Some(false), Origin::Registry), "{file}");
        find(&ps, "minimist", "1.2.0");
        let nested = find(&ps, "minimist", "0.0.8");
        assert_eq!(nested.direct, Some(false), "{file}: nested under mkdirp");
        find(&ps, "@xmldom/xmldom", "0.7.5");
        find(&ps, "ms", "0.7.0"); // installed as the alias my-ms
        assert!(!ps.iter().any(|p| p.name == "my-ms"), "{file}: the alias is not a package");
        assert_eq!(find(&ps, "mkdirp", "0.5.1").dev, Some(true), "{file}");
    }
    let ws = load(Format::NpmLock, "package-lock.v3-workspaces.json");
    assert!(ws.iter().any(|p| p.origin == Origin::Workspace), "{ws:?}");
    assert!(ws.iter().filter(|p| p.name == "lodash").count() >= 1);
}

#[test]
fn requirements_with_includes_markers_and_hashes() {
    let ps = load(Format::Requirements, "requirements.edge-cases.txt");
    let got: Vec<String> = ps.iter().map(|p| format!("{} {}", p.name, p.version)).collect();
    let want = [
        "cryptography 3.2",
        "django 3.2.0",
        "flask-sqlalchemy 2.4.0",
        "idna 2.7",
        "jinja2 2.10",
        "lxml 4.6.2",
        "pytest 6.2.4",
        "pyyaml 5.3",
        "requests 2.19.0",
        "urllib3 1.24.1",
        "zope-interface 5.4.0",
    ];
    assert_eq!(got, want);
    let compiled = load(Format::Requirements, "requirements.pip-compile-hashes.txt");
    assert_eq!(compiled.len(), 12, "{compiled:?}");
    find(&compiled, "requests", "2.19.0");
    // An include cycle ends instead of recursing forever.
    let cycle = load(Format::Requirements, "requirements-cycle-a.txt");
    assert_eq!(cycle.len(), 2, "{cycle:?}");
    // A missing include is named.
    let e = parse(Format::Requirements, "r.txt", "-r nope.txt\n", &NoFiles).expect_err("missing");
    assert!(e.to_string().contains("r.txt:1") && e.to_string().contains("nope.txt"), "{e}");
}

#[test]
fn poetry_and_pipfile() {
    for (format, file) in [(Format::PoetryLock, "poetry.lock"), (Format::PipfileLock, "Pipfile.lock")] {
        let ps = load(format, file);
        assert_eq!(ps.len(), 13, "{file}: {ps:?}");
        assert_eq!(find(&ps, "pyyaml", "5.3").dev, Some(true), "{file}");
        assert_eq!(find(&ps, "requests", "2.19.0").dev, Some(false), "{file}");
        find(&ps, "jinja2", "2.10");
    }
    let legacy = load(Format::PoetryLock, "poetry.legacy-source.lock");
    assert!(legacy.iter().all(|p| p.origin == Origin::Registry), "a private index is still a registry");
}

#[test]
fn go_mod_with_replace_and_indirect() {
    let ps = load(Format::GoMod, "go.mod");
    let gin = find(&ps, "github.com/gin-gonic/gin", "v1.6.3");
    assert_eq!(gin.direct, Some(true));
    let sys = find(&ps, "golang.org/x/sys", "v0.0.0-20200930185726-fdedc70b468f");
    assert_eq!(sys.direct, Some(false), "replaced, and indirect");
    assert!(!ps.iter().any(|p| p.version == "v0.0.0-20200116001909-b77594299b42"));
}

#[test]
fn gemfile_lock_sources_and_platforms() {
    let ps = load(Format::GemfileLock, "Gemfile.lock");
    let nokogiri = find(&ps, "nokogiri", "1.13.3");
    assert_eq!(nokogiri.origin, Origin::Registry);
    assert_eq!(find(&ps, "loofah", "2.2.2").direct, Some(true));
    assert_eq!(find(&ps, "pave_git", "0.3.1").origin, Origin::Git);
    assert_eq!(find(&ps, "pave_helper", "0.1.0").origin, Origin::Path);
    assert_eq!(find(&ps, "crass", "1.0.6").direct, Some(false));
}

#[test]
fn composer_lock_prod_dev_and_branches() {
    let ps = load(Format::ComposerLock, "composer.lock");
    assert_eq!(find(&ps, "twig/twig", "v2.14.10").dev, Some(false));
    assert_eq!(find(&ps, "phpunit/phpunit", "5.6.2").dev, Some(true));
    assert_eq!(find(&ps, "acme/tools", "dev-main").origin, Origin::Git);
    assert_eq!(ps.iter().filter(|p| p.dev == Some(false)).count(), 5);
}

#[test]
fn malformed_lockfiles_are_named() {
    for (format, file, text, needle) in [
        (Format::CargoLock, "Cargo.lock", "[[package]\n", "not a Cargo.lock"),
        (Format::NpmLock, "package-lock.json", "{\"packages\": {}}", "no lockfileVersion"),
        (Format::NpmLock, "package-lock.json", "{nope", "not JSON"),
        (Format::GoMod, "go.mod", "require github.com/x\n", "expected a module path and a version"),
        (Format::GoMod, "go.mod", "frobnicate x\n", "unknown directive"),
        (Format::ComposerLock, "composer.lock", "{}", "no packages"),
        (Format::GemfileLock, "Gemfile.lock", "GEM\n  specs:\n    rack\n", "has no version"),
    ] {
        let e = parse(format, file, text, &NoFiles).expect_err(text);
        assert!(e.to_string().starts_with(file) && e.to_string().contains(needle), "{e}");
    }
}

#[test]
fn yarn_classic_and_berry() {
    for file in ["yarn.v1.lock", "yarn.berry-v3.lock", "yarn.berry-v4.lock"] {
        let text = std::fs::read_to_string(format!("{DIR}/{file}")).expect("sample");
        struct Manifest;
        impl Files for Manifest {
            fn read(&self, relative: &str) -> Option<String> {
                (relative == "package.json")
                    .then(|| std::fs::read_to_string(format!("{DIR}/package.js-sample.json")).expect("manifest"))
            }
        }
        let ps = parse(Format::YarnLock, "yarn.lock", &text, &Manifest).unwrap_or_else(|e| panic!("{file}: {e}"));
        let lodash = find(&ps, "lodash", "4.17.15");
        assert_eq!((lodash.direct, lodash.origin), (Some(true), Origin::Registry), "{file}");
        find(&ps, "minimist", "0.0.8");
        find(&ps, "@xmldom/xmldom", "0.7.5");
        assert_eq!(find(&ps, "ms", "0.7.0").direct, Some(true), "{file}: the alias my-ms is direct");
        assert!(!ps.iter().any(|p| p.name == "my-ms" || p.origin == Origin::Workspace), "{file}");
        assert_eq!(find(&ps, "chalk", "2.4.2").direct, Some(true), "{file}");
        assert_eq!(find(&ps, "ansi-styles", "3.2.1").direct, Some(false), "{file}");
    }
}

#[test]
fn pnpm_lockfiles_5_6_9() {
    for file in ["pnpm-lock.v5.4.yaml", "pnpm-lock.v6.0.yaml", "pnpm-lock.v9.0.yaml"] {
        let ps = load(Format::PnpmLock, file);
        assert_eq!(ps.len(), 38, "{file}: {ps:?}");
        assert_eq!(ps.iter().filter(|p| p.direct == Some(true)).count(), 10, "{file}");
        assert_eq!(find(&ps, "react-dom", "16.0.0").direct, Some(true), "{file}: peer suffix dropped");
        assert_eq!(find(&ps, "ms", "0.7.0").direct, Some(true), "{file}: alias");
        find(&ps, "minimist", "0.0.8");
        find(&ps, "minimist", "1.2.0");
        if file != "pnpm-lock.v9.0.yaml" {
            assert_eq!(find(&ps, "mkdirp", "0.5.1").dev, Some(true), "{file}");
        }
    }
}
