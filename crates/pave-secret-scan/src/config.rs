//! Rule configuration in gitleaks' TOML format: `[[rules]]` with `id`, `description`,
//! `regex`, `path`, `secretGroup`, `entropy`, `keywords`, `tags` and allowlists; global
//! `[allowlist]` / `[[allowlists]]` (optionally `targetRules`); and `[extend]` with
//! `useDefault` (Pave's built-in rules), `path` and `disabledRules`. Unknown keys are refused
//! with their name, so a misspelt `secretgroup` does not silently do nothing.

use std::collections::HashMap;

use serde::Deserialize;

use crate::Error;

/// Pave's built-in rules (the `useDefault` of `[extend]`, and the rules used when no
/// configuration is given).
pub const BUILTIN: &str = include_str!("builtin.toml");

/// How deep `[extend]` chains may go (as in gitleaks).
const MAX_EXTEND_DEPTH: usize = 2;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Recorded by gitleaks for its own version checks; accepted and ignored.
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub extend: Option<RawExtend>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// The older single global allowlist.
    #[serde(default)]
    pub allowlist: Option<RawAllowlist>,
    #[serde(default)]
    pub allowlists: Vec<RawAllowlist>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawExtend {
    #[serde(default)]
    pub use_default: bool,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub disabled_rules: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRule {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub secret_group: Option<usize>,
    #[serde(default)]
    pub entropy: Option<f64>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub allowlist: Option<RawAllowlist>,
    #[serde(default)]
    pub allowlists: Vec<RawAllowlist>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAllowlist {
    #[serde(default)]
    pub description: Option<String>,
    /// `OR` (default) or `AND` over the criteria the allowlist has.
    #[serde(default)]
    pub condition: Option<String>,
    /// What `regexes` test: `secret` (default), `match` or `line`.
    #[serde(default)]
    pub regex_target: Option<String>,
    #[serde(default)]
    pub regexes: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub commits: Vec<String>,
    #[serde(default)]
    pub stopwords: Vec<String>,
    /// A global allowlist that applies only to these rules.
    #[serde(default)]
    pub target_rules: Vec<String>,
}

impl RawConfig {
    /// Reads one file's TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<RawConfig, Error> {
        toml::from_str(text).map_err(|e| Error::Config { origin: origin.to_owned(), message: e.to_string() })
    }
}

/// Reads the files `[extend] path` names (relative paths are the caller's to resolve).
pub trait Loader {
    fn load(&self, path: &str) -> Result<String, Error>;
}

/// A loader that refuses every path: for configurations that must stand alone.
#[derive(Debug)]
pub struct NoFiles;

impl Loader for NoFiles {
    fn load(&self, path: &str) -> Result<String, Error> {
        Err(Error::Config { origin: path.to_owned(), message: "extending from files is not allowed here".into() })
    }
}

/// One configuration with its `[extend]` chain applied: a rule defined again overrides the
/// base rule's scalar fields and adds to its keywords, tags and allowlists.
pub fn resolve(raw: RawConfig, origin: &str, loader: &dyn Loader) -> Result<RawConfig, Error> {
    resolve_at(raw, origin, loader, 0)
}

fn resolve_at(mut raw: RawConfig, origin: &str, loader: &dyn Loader, depth: usize) -> Result<RawConfig, Error> {
    let config_error = |message: String| Error::Config { origin: origin.to_owned(), message };
    if let Some(single) = raw.allowlist.take() {
        if !raw.allowlists.is_empty() {
            return Err(config_error("use either [allowlist] or [[allowlists]], not both".into()));
        }
        raw.allowlists.push(single);
    }
    for rule in &mut raw.rules {
        if let Some(single) = rule.allowlist.take() {
            if !rule.allowlists.is_empty() {
                return Err(config_error(format!(
                    "rule {:?}: use either [rules.allowlist] or [[rules.allowlists]], not both",
                    rule.id
                )));
            }
            rule.allowlists.push(single);
        }
    }
    let Some(extend) = raw.extend.take() else {
        return Ok(raw);
    };
    if depth >= MAX_EXTEND_DEPTH {
        return Err(config_error(format!("[extend] chains may be at most {MAX_EXTEND_DEPTH} deep")));
    }
    let (base, base_origin) = match (extend.use_default, &extend.path) {
        (true, Some(_)) => return Err(config_error("[extend]: set useDefault or path, not both".into())),
        (true, None) => (RawConfig::parse(BUILTIN, "built-in rules")?, "built-in rules".to_owned()),
        (false, Some(p)) => (RawConfig::parse(&loader.load(p)?, p)?, p.clone()),
        (false, None) => return Err(config_error("[extend] needs useDefault = true or a path".into())),
    };
    let base = resolve_at(base, &base_origin, loader, depth + 1)?;
    Ok(merge(base, raw, &extend.disabled_rules))
}

fn merge(base: RawConfig, top: RawConfig, disabled: &[String]) -> RawConfig {
    let mut rules: Vec<RawRule> = base.rules.into_iter().filter(|r| !disabled.contains(&r.id)).collect();
    let index: HashMap<String, usize> = rules.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
    for rule in top.rules {
        match index.get(&rule.id) {
            Some(&i) => {
                let b = &mut rules[i];
                if rule.description.is_some() {
                    b.description = rule.description;
                }
                if rule.regex.is_some() {
                    b.regex = rule.regex;
                }
                if rule.path.is_some() {
                    b.path = rule.path;
                }
                if rule.secret_group.is_some_and(|g| g > 0) {
                    b.secret_group = rule.secret_group;
                }
                if rule.entropy.is_some_and(|e| e != 0.0) {
                    b.entropy = rule.entropy;
                }
                b.keywords.extend(rule.keywords);
                b.tags.extend(rule.tags);
                b.allowlists.extend(rule.allowlists);
            }
            None => rules.push(rule),
        }
    }
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    let mut allowlists = top.allowlists;
    allowlists.extend(base.allowlists);
    RawConfig {
        title: top.title.or(base.title),
        description: top.description.or(base.description),
        min_version: None,
        extend: None,
        rules,
        allowlist: None,
        allowlists,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(Vec<(&'static str, &'static str)>);

    impl Loader for Files {
        fn load(&self, path: &str) -> Result<String, Error> {
            self.0
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| Error::Config { origin: path.into(), message: "no such file".into() })
        }
    }

    #[test]
    fn extend_overrides_adds_and_disables() {
        let base = r#"
            [[rules]]
            id = "a"
            regex = "aaa"
            keywords = ["aaa"]
            [[rules]]
            id = "b"
            regex = "bbb"
            [allowlist]
            paths = ["base"]
        "#;
        let top = r#"
            [extend]
            path = "base.toml"
            disabledRules = ["b"]
            [[rules]]
            id = "a"
            entropy = 3
            keywords = ["aa2"]
            [[rules]]
            id = "c"
            regex = "ccc"
            [[allowlists]]
            paths = ["top"]
        "#;
        let raw = RawConfig::parse(top, "top.toml").expect("parses");
        let r = resolve(raw, "top.toml", &Files(vec![("base.toml", base)])).expect("resolves");
        let ids: Vec<_> = r.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(r.rules[0].regex.as_deref(), Some("aaa"));
        assert_eq!(r.rules[0].entropy, Some(3.0));
        assert_eq!(r.rules[0].keywords, ["aaa", "aa2"]);
        let paths: Vec<_> = r.allowlists.iter().map(|a| a.paths[0].as_str()).collect();
        assert_eq!(paths, ["top", "base"]);
    }

    #[test]
    fn unknown_keys_and_bad_extends_are_named() {
        let e = RawConfig::parse("[[rules]]\nid = \"x\"\nsecretgroup = 1\n", "c.toml").expect_err("unknown key");
        assert!(e.to_string().contains("secretgroup") && e.to_string().contains("c.toml"), "{e}");
        let raw = RawConfig::parse("[extend]\nuseDefault = true\npath = \"x\"\n", "c.toml").expect("parses");
        assert!(resolve(raw, "c.toml", &NoFiles).expect_err("both").to_string().contains("not both"));
        let raw = RawConfig::parse("[extend]\npath = \"x.toml\"\n", "c.toml").expect("parses");
        assert!(resolve(raw, "c.toml", &NoFiles).expect_err("no files").to_string().contains("x.toml"));
    }
}
