//! Lockfiles: what each names as installed — ecosystem, name, exact version, where it came
//! from, and (when the format says) whether it is a direct or a development dependency.
//!
//! Pure: the caller reads files; a format that includes others (`requirements.txt -r`) or
//! needs its manifest (`package.json` for npm v1's direct dependencies) asks through
//! [`Files`]. Every parser refuses malformed input with the file and the problem named, and
//! never guesses a version: a range, a branch or a URL is not an installed version.

use std::collections::HashSet;

use serde_json::Value;

use crate::normalize_name;
use crate::version::Ecosystem;

/// Where a package came from: only registry packages are matched against advisories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Registry,
    Git,
    Path,
    Workspace,
    Url,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub ecosystem: Ecosystem,
    /// As the lockfile spells it (PyPI and Packagist names are normalised for matching).
    pub name: String,
    pub version: String,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<bool>,
}

impl serde::Serialize for Ecosystem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A lockfile that cannot be read, named with the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct LockError {
    pub file: String,
    pub message: String,
}

/// Reads files next to the lockfile (relative paths), for includes and manifests.
pub trait Files {
    fn read(&self, relative: &str) -> Option<String>;
}

/// No other files.
#[derive(Debug)]
pub struct NoFiles;

impl Files for NoFiles {
    fn read(&self, _: &str) -> Option<String> {
        None
    }
}

/// The lockfile formats understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    CargoLock,
    NpmLock,
    Requirements,
    PoetryLock,
    PipfileLock,
    GoMod,
    GemfileLock,
    ComposerLock,
    YarnLock,
    PnpmLock,
}

impl Format {
    /// The format of a file, by its name.
    pub fn detect(file_name: &str) -> Option<Format> {
        Some(match file_name {
            "Cargo.lock" => Format::CargoLock,
            "package-lock.json" | "npm-shrinkwrap.json" => Format::NpmLock,
            "poetry.lock" => Format::PoetryLock,
            "Pipfile.lock" => Format::PipfileLock,
            "go.mod" => Format::GoMod,
            "Gemfile.lock" | "gems.locked" => Format::GemfileLock,
            "composer.lock" => Format::ComposerLock,
            "yarn.lock" => Format::YarnLock,
            "pnpm-lock.yaml" => Format::PnpmLock,
            n if n.starts_with("requirements") && n.ends_with(".txt") => Format::Requirements,
            _ => return None,
        })
    }
}

/// The most a lockfile may hold: the largest real ones (a monorepo's `pnpm-lock.yaml`) are
/// tens of MiB.
pub const MAX_LOCKFILE_BYTES: u64 = 64 * 1024 * 1024;

/// YAML lockfiles are checked against these before parsing: libyaml's time grows
/// super-linearly with nesting, and no real lockfile nests deeper than a handful of levels.
const YAML_LIMITS: pave_yaml::Limits =
    pave_yaml::Limits { max_bytes: MAX_LOCKFILE_BYTES as usize, max_depth: pave_yaml::MAX_DEPTH };

/// Parses YAML from a lockfile, within [`YAML_LIMITS`].
fn untrusted_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    pave_yaml::check(text, YAML_LIMITS).map_err(|e| format!("refused before parsing: {e}"))?;
    serde_yaml::from_str(text).map_err(|e| format!("not YAML: {e}"))
}

/// Parses one lockfile of a known format.
pub fn parse(format: Format, file: &str, text: &str, files: &dyn Files) -> Result<Vec<Package>, LockError> {
    let err = |message: String| LockError { file: file.to_owned(), message };
    let mut out = match format {
        Format::CargoLock => cargo(text).map_err(err)?,
        Format::NpmLock => npm(text, files).map_err(err)?,
        Format::Requirements => {
            let mut seen = HashSet::new();
            requirements(file, text, files, &mut seen, 0)?
        }
        Format::PoetryLock => poetry(text).map_err(err)?,
        Format::PipfileLock => pipfile(text).map_err(err)?,
        Format::GoMod => go_mod(text).map_err(err)?,
        Format::GemfileLock => gemfile(text).map_err(err)?,
        Format::ComposerLock => composer(text).map_err(err)?,
        Format::YarnLock => yarn(text, files).map_err(err)?,
        Format::PnpmLock => pnpm(text).map_err(err)?,
    };
    out.sort();
    out.dedup();
    Ok(out)
}

fn pkg(ecosystem: Ecosystem, name: &str, version: &str, origin: Origin) -> Package {
    Package { ecosystem, name: name.to_owned(), version: version.to_owned(), origin, direct: None, dev: None }
}

// ---------------------------------------------------------------------------------------
// Cargo.lock (v1-v4)

fn cargo(text: &str) -> Result<Vec<Package>, String> {
    #[derive(serde::Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        version: String,
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        dependencies: Vec<String>,
    }
    let lock: Lock = toml::from_str(text).map_err(|e| format!("not a Cargo.lock: {e}"))?;
    // Direct: dependencies of the packages without a source (workspace members, paths).
    let direct: HashSet<&str> = lock
        .package
        .iter()
        .filter(|p| p.source.is_none())
        .flat_map(|p| p.dependencies.iter().map(|d| d.split(' ').next().unwrap_or(d)))
        .collect();
    Ok(lock
        .package
        .iter()
        .map(|p| {
            let origin = match p.source.as_deref() {
                None => Origin::Path,
                Some(s) if s.starts_with("git+") => Origin::Git,
                Some("registry+https://github.com/rust-lang/crates.io-index") => Origin::Registry,
                Some(s) if s.starts_with("sparse+https://index.crates.io") => Origin::Registry,
                // Another registry: its packages are not crates.io's.
                Some(_) => Origin::Url,
            };
            let mut p2 = pkg(Ecosystem::CratesIo, &p.name, &p.version, origin);
            if origin != Origin::Path {
                p2.direct = Some(direct.contains(p.name.as_str()));
            }
            p2
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// package-lock.json / npm-shrinkwrap.json (v1-v3)

fn npm(text: &str, files: &dyn Files) -> Result<Vec<Package>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let version = v.get("lockfileVersion").and_then(Value::as_u64).ok_or("no lockfileVersion")?;
    let mut out = Vec::new();
    if let Some(packages) = v.get("packages").and_then(Value::as_object).filter(|_| version >= 2) {
        let root = packages.get("").cloned().unwrap_or(Value::Null);
        let deps_of = |e: &Value| -> HashSet<String> {
            ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"]
                .iter()
                .filter_map(|k| e.get(*k).and_then(Value::as_object))
                .flat_map(|m| m.keys().cloned())
                .collect()
        };
        let mut direct = deps_of(&root);
        for (key, e) in packages {
            if !key.is_empty() && !key.contains("node_modules/") {
                direct.extend(deps_of(e));
            }
        }
        for (key, e) in packages {
            if key.is_empty() {
                continue;
            }
            let Some(at) = key.rfind("node_modules/") else {
                // A workspace or local package.
                if let (Some(n), Some(ver)) =
                    (e.get("name").and_then(Value::as_str), e.get("version").and_then(Value::as_str))
                {
                    out.push(pkg(Ecosystem::Npm, n, ver, Origin::Workspace));
                }
                continue;
            };
            if e.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let installed_as = &key[at + "node_modules/".len()..];
            let name = e.get("name").and_then(Value::as_str).unwrap_or(installed_as);
            let Some(ver) = e.get("version").and_then(Value::as_str) else { continue };
            let resolved = e.get("resolved").and_then(Value::as_str).unwrap_or("");
            let origin = npm_origin(ver, resolved);
            let flag = |k: &str| e.get(k).and_then(Value::as_bool) == Some(true);
            let mut p = pkg(Ecosystem::Npm, name, ver, origin);
            p.dev = Some(flag("dev") || flag("devOptional"));
            p.direct = Some(at == 0 && direct.contains(installed_as));
            out.push(p);
        }
        return Ok(out);
    }
    // v1: nested `dependencies`; direct ones from package.json when it is there.
    let direct = manifest_direct(files);
    fn walk(
        deps: &serde_json::Map<String, Value>,
        top: bool,
        direct: &Option<HashSet<String>>,
        out: &mut Vec<Package>,
    ) {
        for (key, e) in deps {
            if let Some(raw) = e.get("version").and_then(Value::as_str) {
                let (name, ver) = match raw.strip_prefix("npm:").and_then(|a| a.rsplit_once('@')) {
                    Some((n, v)) => (n.to_owned(), v.to_owned()),
                    None => (key.clone(), raw.to_owned()),
                };
                let resolved = e.get("resolved").and_then(Value::as_str).unwrap_or("");
                let origin = if raw.starts_with("file:") { Origin::Path } else { npm_origin(&ver, resolved) };
                let mut p = pkg(Ecosystem::Npm, &name, &ver, origin);
                p.dev = Some(e.get("dev").and_then(Value::as_bool) == Some(true));
                p.direct = direct.as_ref().map(|d| top && d.contains(key));
                out.push(p);
            }
            if let Some(nested) = e.get("dependencies").and_then(Value::as_object) {
                walk(nested, false, direct, out);
            }
        }
    }
    if let Some(deps) = v.get("dependencies").and_then(Value::as_object) {
        walk(deps, true, &direct, &mut out);
    }
    Ok(out)
}

fn npm_origin(version: &str, resolved: &str) -> Origin {
    if version.starts_with("git") || resolved.starts_with("git") || version.contains("://") {
        Origin::Git
    } else if version.starts_with("file:") || resolved.starts_with("file:") {
        Origin::Path
    } else {
        Origin::Registry
    }
}

// ---------------------------------------------------------------------------------------
// requirements.txt

/// Joins `\` continuations and strips comments (a `#` at the start or after whitespace).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        if cur.is_empty() {
            start = i + 1;
        }
        match line.strip_suffix('\\') {
            Some(l) => cur.push_str(l),
            None => {
                cur.push_str(line);
                let mut l = std::mem::take(&mut cur);
                if let Some(at) = l
                    .char_indices()
                    .find(|&(i, c)| c == '#' && (i == 0 || l[..i].ends_with(char::is_whitespace)))
                    .map(|(i, _)| i)
                {
                    l.truncate(at);
                }
                let l = l.trim().to_owned();
                if !l.is_empty() {
                    out.push((start, l));
                }
            }
        }
    }
    out
}

fn requirements(
    file: &str,
    text: &str,
    files: &dyn Files,
    seen: &mut HashSet<String>,
    depth: usize,
) -> Result<Vec<Package>, LockError> {
    let err = |line: usize, message: String| LockError { file: format!("{file}:{line}"), message };
    if !seen.insert(file.to_owned()) || depth > 20 {
        return Ok(Vec::new()); // an include cycle: each file is read once
    }
    let mut out = Vec::new();
    for (line, l) in logical_lines(text) {
        if let Some(rest) = l
            .strip_prefix("-r ")
            .or_else(|| l.strip_prefix("--requirement "))
            .or_else(|| l.strip_prefix("--requirement="))
        {
            let inc = rest.trim();
            let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
            let path = if dir.is_empty() { inc.to_owned() } else { format!("{dir}/{inc}") };
            let Some(t) = files.read(&path) else {
                return Err(err(line, format!("includes {inc}, which cannot be read")));
            };
            out.extend(requirements(&path, &t, files, seen, depth + 1)?);
            continue;
        }
        if l.starts_with('-') || l.contains("://") || l.starts_with('.') || l.starts_with('/') || l.contains(" @ ") {
            continue; // options, constraints, editables, URLs and paths: no pinned version
        }
        let spec = l.split(';').next().unwrap_or("").split(" --").next().unwrap_or("").trim();
        let name_end =
            spec.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))).unwrap_or(spec.len());
        let name = &spec[..name_end];
        if name.is_empty() {
            return Err(err(line, format!("{l:?} is not a requirement")));
        }
        let mut rest = spec[name_end..].trim_start();
        if rest.starts_with('[') {
            let Some(close) = rest.find(']') else { return Err(err(line, format!("{l:?}: unclosed extras"))) };
            rest = rest[close + 1..].trim_start();
        }
        let version = rest.strip_prefix("===").or_else(|| rest.strip_prefix("==")).map(str::trim);
        if let Some(v) = version
            && !v.is_empty()
            && !v.contains(['*', ',', ' ', '<', '>', '!', '='])
        {
            out.push(pkg(Ecosystem::PyPI, &normalize_name(Ecosystem::PyPI, name), v, Origin::Registry));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// poetry.lock and Pipfile.lock

fn poetry(text: &str) -> Result<Vec<Package>, String> {
    #[derive(serde::Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        version: String,
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        groups: Option<Vec<String>>,
        #[serde(default)]
        source: Option<toml::Value>,
    }
    let lock: Lock = toml::from_str(text).map_err(|e| format!("not a poetry.lock: {e}"))?;
    Ok(lock
        .package
        .iter()
        .map(|e| {
            let kind = e.source.as_ref().and_then(|s| s.get("type")).and_then(toml::Value::as_str).unwrap_or("");
            let origin = match kind {
                "git" => Origin::Git,
                "directory" | "file" => Origin::Path,
                "url" => Origin::Url,
                _ => Origin::Registry,
            };
            let mut p = pkg(Ecosystem::PyPI, &normalize_name(Ecosystem::PyPI, &e.name), &e.version, origin);
            p.dev = match (&e.groups, &e.category) {
                (Some(g), _) => Some(!g.iter().any(|g| g == "main")),
                (None, Some(c)) => Some(c == "dev"),
                _ => None,
            };
            p
        })
        .collect())
}

fn pipfile(text: &str) -> Result<Vec<Package>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    for (section, dev) in [("default", false), ("develop", true)] {
        for (name, e) in v.get(section).and_then(Value::as_object).into_iter().flatten() {
            let Some(ver) = e.get("version").and_then(Value::as_str) else { continue };
            let ver = ver.strip_prefix("===").or_else(|| ver.strip_prefix("==")).unwrap_or(ver);
            let mut p = pkg(Ecosystem::PyPI, &normalize_name(Ecosystem::PyPI, name), ver, Origin::Registry);
            p.dev = Some(dev);
            out.push(p);
        }
    }
    if out.is_empty() && v.get("_meta").is_none() {
        return Err("not a Pipfile.lock (no _meta, default or develop)".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// go.mod

fn go_mod(text: &str) -> Result<Vec<Package>, String> {
    let mut requires: Vec<(String, String, bool)> = Vec::new();
    let mut replaces: Vec<(String, Option<String>, String, Option<String>)> = Vec::new();
    let mut block: Option<String> = None;
    for raw in text.lines() {
        let (code, comment) = raw.split_once("//").map_or((raw, ""), |(c, m)| (c, m));
        let line = code.trim();
        if line.is_empty() {
            continue;
        }
        if line == ")" {
            block = None;
            continue;
        }
        let (directive, args) = match &block {
            Some(b) => (b.clone(), line.to_owned()),
            None => {
                let (d, a) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                if a.trim() == "(" {
                    block = Some(d.to_owned());
                    continue;
                }
                (d.to_owned(), a.trim().to_owned())
            }
        };
        let words: Vec<String> = args.split_whitespace().map(|w| w.trim_matches('"').to_owned()).collect();
        match directive.as_str() {
            "require" => {
                let [path, version] = &words[..] else {
                    return Err(format!("require {args:?}: expected a module path and a version"));
                };
                requires.push((path.clone(), version.clone(), comment.trim() == "indirect"));
            }
            "replace" => {
                let arrow = words.iter().position(|w| w == "=>").ok_or_else(|| format!("replace {args:?}: no =>"))?;
                let (old, new) = words.split_at(arrow);
                let new = &new[1..];
                replaces.push((
                    old.first().cloned().ok_or("replace without a module")?,
                    old.get(1).cloned(),
                    new.first().cloned().ok_or("replace without a target")?,
                    new.get(1).cloned(),
                ));
            }
            "module" | "go" | "toolchain" | "godebug" | "exclude" | "retract" => {}
            other => return Err(format!("unknown directive {other:?}")),
        }
    }
    let mut out = Vec::new();
    for (path, version, indirect) in requires {
        let rep = replaces.iter().find(|(old, oldv, _, _)| *old == path && oldv.as_ref().is_none_or(|v| *v == version));
        let mut p = match rep {
            Some((_, _, new, Some(newv))) => pkg(Ecosystem::Go, new, newv, Origin::Registry),
            Some((_, _, new, None)) => pkg(Ecosystem::Go, new, "", Origin::Path),
            None => pkg(Ecosystem::Go, &path, &version, Origin::Registry),
        };
        p.direct = Some(!indirect);
        out.push(p);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Gemfile.lock

fn gemfile(text: &str) -> Result<Vec<Package>, String> {
    let mut out = Vec::new();
    let mut section = "";
    let mut direct = HashSet::new();
    let mut specs = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            section = line.trim();
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        match section {
            "GEM" | "GIT" | "PATH" if indent == 4 => {
                let (name, rest) = t.split_once(' ').ok_or_else(|| format!("spec {t:?} has no version"))?;
                let ver = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("spec {t:?}"))?;
                // `1.13.3-x86_64-linux`: the platform follows the first `-`.
                let ver = ver.split('-').next().unwrap_or(ver);
                let origin = match section {
                    "GEM" => Origin::Registry,
                    "GIT" => Origin::Git,
                    _ => Origin::Path,
                };
                specs.push(pkg(Ecosystem::RubyGems, name, ver, origin));
            }
            "DEPENDENCIES" if indent == 2 => {
                let name = t.split([' ', '!']).next().unwrap_or(t);
                direct.insert(name.to_owned());
            }
            _ => {}
        }
    }
    if specs.is_empty() && !text.contains("GEM") {
        return Err("not a Gemfile.lock (no GEM section)".into());
    }
    for mut p in specs {
        p.direct = Some(direct.contains(&p.name));
        out.push(p);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// composer.lock

fn composer(text: &str) -> Result<Vec<Package>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("packages").is_none() {
        return Err("not a composer.lock (no packages)".into());
    }
    let mut out = Vec::new();
    for (key, dev) in [("packages", false), ("packages-dev", true)] {
        for e in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            let (Some(name), Some(ver)) =
                (e.get("name").and_then(Value::as_str), e.get("version").and_then(Value::as_str))
            else {
                return Err(format!("an entry of {key} has no name or version"));
            };
            let branch = ver.starts_with("dev-") || ver.ends_with("-dev");
            let mut p = pkg(
                Ecosystem::Packagist,
                &name.to_ascii_lowercase(),
                ver,
                if branch { Origin::Git } else { Origin::Registry },
            );
            p.dev = Some(dev);
            out.push(p);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// yarn.lock (classic v1 and Berry)

/// `name@range` split at the last `@` that does not start a scope.
fn split_spec(spec: &str) -> Option<(&str, &str)> {
    let at = spec[1..].rfind('@')? + 1;
    Some((&spec[..at], &spec[at + 1..]))
}

/// `name@protocol:ref` split at the first `@` after a scope.
fn split_locator(loc: &str) -> Option<(&str, &str)> {
    let at = loc[1..].find('@')? + 1;
    Some((&loc[..at], &loc[at + 1..]))
}

fn manifest_direct(files: &dyn Files) -> Option<HashSet<String>> {
    let m: Value = serde_json::from_str(&files.read("package.json")?).ok()?;
    Some(
        ["dependencies", "devDependencies", "optionalDependencies"]
            .iter()
            .filter_map(|k| m.get(*k).and_then(Value::as_object))
            .flat_map(|o| o.keys().cloned())
            .collect(),
    )
}

fn yarn(text: &str, files: &dyn Files) -> Result<Vec<Package>, String> {
    if text.lines().any(|l| l.starts_with("__metadata:")) {
        return yarn_berry(text);
    }
    let direct = manifest_direct(files);
    let mut out = Vec::new();
    let mut current: Option<(String, String, bool)> = None; // name, first specifier's alias-name, aliased
    let mut version: Option<String> = None;
    let mut resolved = String::new();
    let mut flush = |cur: &mut Option<(String, String, bool)>,
                     version: &mut Option<String>,
                     resolved: &mut String|
     -> Result<(), String> {
        if let Some((name, installed_as, _)) = cur.take() {
            let v = version.take().ok_or_else(|| format!("{name}: no version"))?;
            let origin = if resolved.contains("codeload.github.com") || resolved.starts_with("git") {
                Origin::Git
            } else if resolved.starts_with("file:") || v.starts_with("file:") {
                Origin::Path
            } else {
                Origin::Registry
            };
            let mut p = pkg(Ecosystem::Npm, &name, &v, origin);
            p.direct = direct.as_ref().map(|d| d.contains(&installed_as));
            out.push(p);
        }
        resolved.clear();
        Ok(())
    };
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            flush(&mut current, &mut version, &mut resolved)?;
            let header = line.strip_suffix(':').ok_or_else(|| format!("{line:?} is not a block header"))?;
            let first = header.split(", ").next().unwrap_or(header).trim_matches('"');
            let (installed_as, range) =
                split_locator(first).ok_or_else(|| format!("{first:?} has no version range"))?;
            let name = match range.strip_prefix("npm:").and_then(split_spec) {
                Some((real, _)) => real.to_owned(),
                None => installed_as.to_owned(),
            };
            current = Some((name, installed_as.to_owned(), false));
        } else if let Some(v) = line.strip_prefix("  version ") {
            version = Some(v.trim().trim_matches('"').to_owned());
        } else if let Some(r) = line.strip_prefix("  resolved ") {
            resolved = r.trim().trim_matches('"').to_owned();
        }
    }
    flush(&mut current, &mut version, &mut resolved)?;
    Ok(out)
}

fn yarn_berry(text: &str) -> Result<Vec<Package>, String> {
    let doc: serde_yaml::Mapping = untrusted_yaml(text)?;
    let mut out = Vec::new();
    let mut direct = HashSet::new();
    for (key, entry) in &doc {
        if key.as_str() == Some("__metadata") {
            continue;
        }
        let Some(resolution) = entry.get("resolution").and_then(serde_yaml::Value::as_str) else {
            return Err(format!("entry {key:?} has no resolution"));
        };
        let version = match entry.get("version") {
            Some(serde_yaml::Value::String(s)) => s.clone(),
            Some(serde_yaml::Value::Number(n)) => n.to_string(),
            _ => return Err(format!("{resolution}: no version")),
        };
        let mut locator = resolution.to_owned();
        // `name@patch:name@npm%3A1.2.3#…`: the patched package is the inner one.
        if let Some((_, r)) = split_locator(&locator)
            && let Some(inner) = r.strip_prefix("patch:")
        {
            locator = inner.split('#').next().unwrap_or(inner).replace("%3A", ":").replace("%40", "@");
        }
        let (name, reference) = split_locator(&locator).ok_or_else(|| format!("{resolution:?} is not a locator"))?;
        let origin = match reference.split(':').next().unwrap_or("") {
            "npm" => Origin::Registry,
            "workspace" => Origin::Workspace,
            "link" | "portal" | "file" | "exec" => Origin::Path,
            _ => Origin::Git,
        };
        if origin == Origin::Workspace {
            for deps in ["dependencies", "devDependencies", "optionalDependencies"] {
                if let Some(m) = entry.get(deps).and_then(serde_yaml::Value::as_mapping) {
                    direct.extend(m.keys().filter_map(|k| k.as_str().map(str::to_owned)));
                }
            }
            continue;
        }
        out.push(pkg(Ecosystem::Npm, name, &version, origin));
    }
    // Direct: named by a workspace, under the real name or an alias that resolves to it.
    let aliases: HashSet<String> = doc
        .keys()
        .filter_map(|k| k.as_str())
        .flat_map(|k| k.split(", "))
        .filter_map(|spec| {
            let (installed_as, range) = split_locator(spec.trim_matches('"'))?;
            let real = range.strip_prefix("npm:").and_then(split_spec).map(|(n, _)| n)?;
            direct.contains(installed_as).then(|| real.to_owned())
        })
        .collect();
    for p in &mut out {
        p.direct = Some(direct.contains(&p.name) || aliases.contains(&p.name));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// pnpm-lock.yaml (lockfile 5.x, 6.0, 9.0)

fn pnpm(text: &str) -> Result<Vec<Package>, String> {
    let doc: serde_yaml::Value = untrusted_yaml(text)?;
    let version = match doc.get("lockfileVersion") {
        Some(serde_yaml::Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(serde_yaml::Value::String(s)) => s.parse().map_err(|_| format!("lockfileVersion {s:?}"))?,
        _ => return Err("no lockfileVersion".into()),
    };
    let v5 = version < 6.0;
    // Direct dependencies: `name -> resolved version` from the importers (or the top level).
    let mut direct: HashSet<(String, String)> = HashSet::new();
    let mut importers: Vec<&serde_yaml::Value> = vec![&doc];
    if let Some(m) = doc.get("importers").and_then(serde_yaml::Value::as_mapping) {
        importers.extend(m.values());
    }
    for imp in importers {
        for deps in ["dependencies", "devDependencies", "optionalDependencies"] {
            for (k, v) in imp.get(deps).and_then(serde_yaml::Value::as_mapping).into_iter().flatten() {
                let Some(name) = k.as_str() else { continue };
                let resolved = match v {
                    serde_yaml::Value::String(s) => s.clone(),
                    serde_yaml::Value::Number(n) => n.to_string(),
                    other => match other.get("version") {
                        Some(serde_yaml::Value::String(s)) => s.clone(),
                        Some(serde_yaml::Value::Number(n)) => n.to_string(),
                        _ => continue,
                    },
                };
                // An alias resolves to `/ms/0.7.0`, `/ms@0.7.0` or `ms@0.7.0`.
                let key = if resolved.starts_with(|c: char| c.is_ascii_digit()) {
                    Some((name.to_owned(), resolved.split(['(', '_']).next().unwrap_or(&resolved).to_owned()))
                } else {
                    pnpm_key(&resolved, v5)
                };
                direct.extend(key);
            }
        }
    }
    let mut out = Vec::new();
    for (k, entry) in doc.get("packages").and_then(serde_yaml::Value::as_mapping).into_iter().flatten() {
        let key = match k {
            serde_yaml::Value::String(s) => s.clone(),
            other => return Err(format!("package key {other:?} is not a string")),
        };
        let Some((name, ver)) = pnpm_key(&key, v5) else {
            return Err(format!("package key {key:?} names no version"));
        };
        let resolution = entry.get("resolution");
        let origin = if resolution.and_then(|r| r.get("type")).and_then(serde_yaml::Value::as_str) == Some("git") {
            Origin::Git
        } else if resolution.and_then(|r| r.get("tarball")).is_some() {
            Origin::Url
        } else if resolution.and_then(|r| r.get("directory")).is_some() {
            Origin::Path
        } else {
            Origin::Registry
        };
        let mut p = pkg(Ecosystem::Npm, &name, &ver, origin);
        p.dev = entry.get("dev").and_then(serde_yaml::Value::as_bool);
        p.direct = Some(direct.contains(&(name.clone(), ver.clone())));
        out.push(p);
    }
    Ok(out)
}

/// `(name, version)` of a pnpm package key: `/name/1.0.0_peer` (v5), `/name@1.0.0(peer)`
/// (v6) or `name@1.0.0` (v9).
fn pnpm_key(key: &str, v5: bool) -> Option<(String, String)> {
    let k = key.strip_prefix('/').unwrap_or(key);
    let k = k.split('(').next().unwrap_or(k);
    if v5 {
        let (name, ver) = k.rsplit_once('/')?;
        let ver = ver.split('_').next().unwrap_or(ver);
        return Some((name.to_owned(), ver.to_owned()));
    }
    let (name, ver) = split_spec(k)?;
    Some((name.to_owned(), ver.to_owned()))
}
