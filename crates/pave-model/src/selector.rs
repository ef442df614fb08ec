//! Label selectors in Kubernetes' equality-based syntax: `app=shop,tier!=3,managed,!legacy`.
//! `pave apply --prune` deletes only what a selector matches, so a prune never reaches
//! resources that another repository declares.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

/// A conjunction of label requirements. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses `k=v`, `k==v`, `k!=v`, `k` and `!k`, separated by commas.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(key(k)?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(key(k)?, v.trim().to_string())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(key(k)?)
            } else {
                Requirement::Exists(key(part)?)
            };
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

fn key(k: &str) -> Result<String, String> {
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')) {
        return Err(format!("invalid label key {k:?} in selector"));
    }
    Ok(k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn matches_all_requirement_kinds() {
        let s = Selector::parse("app=shop, tier!=3, managed, !legacy").expect("valid");
        assert!(s.matches(&labels(&[("app", "shop"), ("managed", "")])));
        assert!(!s.matches(&labels(&[("app", "shop")])));
        assert!(!s.matches(&labels(&[("app", "shop"), ("managed", ""), ("legacy", "y")])));
        assert!(!s.matches(&labels(&[("app", "shop"), ("managed", ""), ("tier", "3")])));
        assert!(Selector::parse("").expect("empty").matches(&labels(&[])));
        assert!(Selector::parse("a b=c").is_err());
    }
}
