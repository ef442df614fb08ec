//! A configuration compiled for scanning, and the scan of one text.
//!
//! Scanning is two passes. A keyword pass (one Aho-Corasick automaton over every rule's
//! keywords, ASCII case-insensitive) finds where each rule could match; then each rule's
//! regex runs only on the neighbourhood of its keywords: from the start of the line `reach`
//! bytes before a keyword to the end of the line `reach` bytes after it, where `reach` is the
//! longest text the rule's regex can match (64 KiB when it is unbounded). Text far from every
//! keyword never reaches a regex. A rule without keywords runs on the whole text.
//!
//! What a finding is follows gitleaks: the match with surrounding newlines trimmed; the
//! secret is the rule's `secretGroup`, else its first non-empty group, else the whole match;
//! it must have more Shannon entropy than the rule's `entropy`; global then rule allowlists
//! may excuse it (by secret, match or line regexes, stopwords in the secret, paths, commits;
//! `OR` or `AND`); a line containing `gitleaks:allow` or `pave:allow` excuses its findings; a
//! `generic` rule's finding is dropped when another rule found a secret containing it on the
//! same line. Unlike gitleaks, columns are 1-based on every line and a finding's line is
//! exactly the lines it spans.
//!
//! The keyword pass is a DFA (not the default NFA): overlapping search cannot skip ahead with
//! a prefilter, and the DFA's one table lookup per byte made the whole scan 1.5x faster.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use crate::Error;
use crate::config::{RawAllowlist, RawConfig, RawRule};
use crate::gocompat::go_to_rust;
use crate::report::{Commit, Finding};

/// How far an unbounded rule may reach from a keyword.
const UNBOUNDED_REACH: usize = 64 * 1024;
/// Compiled size limit per regex (after the ASCII rewrite the largest default rule needs
/// well under 1 MiB).
const REGEX_SIZE_LIMIT: usize = 32 << 20;

/// A compiled rule set.
#[derive(Debug)]
pub struct Ruleset {
    rules: Vec<Rule>,
    keywords: Option<AhoCorasick>,
    /// For each keyword pattern, the rules it belongs to.
    keyword_rules: Vec<Vec<u32>>,
    /// Rules with a regex and no keywords: they see the whole text.
    unkeyed: Vec<u32>,
    global: Vec<Allowlist>,
    /// Whether `gitleaks:allow` / `pave:allow` on a line excuses it (see
    /// [`Ruleset::without_inline_allow`]).
    inline_allow: bool,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub tags: Vec<String>,
    regex: Option<Regex>,
    path: Option<Regex>,
    secret_group: usize,
    entropy: Option<f64>,
    allowlists: Vec<Allowlist>,
    reach: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Secret,
    Match,
    Line,
}

#[derive(Debug)]
struct Allowlist {
    and: bool,
    target: Target,
    regex: Option<Regex>,
    paths: Option<Regex>,
    commits: Vec<String>,
    stopwords: Option<AhoCorasick>,
}

/// Where a text comes from: its path (`/`-separated) and, for history scans, its commit.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub path: &'a str,
    pub commit: Option<&'a Commit>,
}

/// Compiles a gitleaks pattern. Byte-oriented (Unicode mode off) when the pattern allows it:
/// after the ASCII rewrite the only difference from Go is that `.` and negated classes step
/// over one byte of a multi-byte character rather than the whole character, and `(?i)` folds
/// ASCII only; the automata are smaller and faster. The lazy DFA gets room for the many
/// states counted repetitions (`{0,50}`) create, so it does not keep rebuilding them.
fn compile(pattern: &str, what: impl Fn() -> String) -> Result<Regex, Error> {
    let rust = go_to_rust(pattern);
    let build = |unicode: bool| {
        RegexBuilder::new(&rust).unicode(unicode).size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(16 << 20).build()
    };
    build(false).or_else(|_| build(true)).map_err(|e| Error::Regex { what: what(), message: e.to_string() })
}

/// Alternatives joined into one regex, each in its own group so an inline flag such as
/// `(?i)` stays with its own alternative (gitleaks lets it leak into the ones after it).
fn compile_any(patterns: &[String], what: impl Fn() -> String) -> Result<Option<Regex>, Error> {
    if patterns.is_empty() {
        return Ok(None);
    }
    for (i, p) in patterns.iter().enumerate() {
        compile(p, || format!("{} #{}", what(), i + 1))?;
    }
    let joined = patterns.iter().map(|p| format!("(?:{p})")).collect::<Vec<_>>().join("|");
    compile(&joined, what).map(Some)
}

fn reach_of(regex: &Regex) -> usize {
    let hir = regex_syntax::ParserBuilder::new().build().parse(regex.as_str());
    hir.ok().and_then(|h| h.properties().maximum_len()).map_or(UNBOUNDED_REACH, |n| n.min(UNBOUNDED_REACH))
}

impl Allowlist {
    fn compile(raw: &RawAllowlist, owner: &str, index: usize) -> Result<Allowlist, Error> {
        let name = || format!("{owner} allowlist #{}", index + 1);
        let and = match raw.condition.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("") | Some("OR") | Some("||") => false,
            Some("AND") | Some("&&") => true,
            Some(other) => {
                return Err(Error::Invalid(format!("{}: condition {other:?} is not OR or AND", name())));
            }
        };
        let target = match raw.regex_target.as_deref() {
            None | Some("") | Some("secret") => Target::Secret,
            Some("match") => Target::Match,
            Some("line") => Target::Line,
            Some(other) => {
                return Err(Error::Invalid(format!("{}: regexTarget {other:?} is not secret, match or line", name())));
            }
        };
        if raw.regexes.is_empty() && raw.paths.is_empty() && raw.commits.is_empty() && raw.stopwords.is_empty() {
            return Err(Error::Invalid(format!("{}: it has no regexes, paths, commits or stopwords", name())));
        }
        let stopwords: Vec<String> = raw.stopwords.iter().map(|s| s.to_lowercase()).filter(|s| !s.is_empty()).collect();
        Ok(Allowlist {
            and,
            target,
            regex: compile_any(&raw.regexes, || format!("{} regexes", name()))?,
            paths: compile_any(&raw.paths, || format!("{} paths", name()))?,
            commits: raw.commits.iter().map(|c| c.trim().to_lowercase()).collect(),
            stopwords: if stopwords.is_empty() {
                None
            } else {
                Some(
                    AhoCorasickBuilder::new()
                        .ascii_case_insensitive(true)
                        .build(&stopwords)
                        .map_err(|e| Error::Invalid(format!("{}: stopwords: {e}", name())))?,
                )
            },
        })
    }

    fn commit_hit(&self, commit: Option<&Commit>) -> bool {
        commit.is_some_and(|c| self.commits.iter().any(|x| x.eq_ignore_ascii_case(&c.sha)))
    }

    fn path_hit(&self, path: &str) -> bool {
        self.paths.as_ref().is_some_and(|p| p.is_match(path.as_bytes()))
    }

    /// Whether the whole text is excused by path or commit alone (before any regex runs).
    fn excuses_source(&self, src: &Source<'_>) -> bool {
        let commit = !self.commits.is_empty() && self.commit_hit(src.commit);
        let path = self.path_hit(src.path);
        if !self.and {
            return commit || path;
        }
        // AND: only an allowlist of nothing but paths and commits decides on them alone.
        self.regex.is_none()
            && self.stopwords.is_none()
            && (self.commits.is_empty() || commit)
            && (self.paths.is_none() || path)
    }

    fn excuses(&self, secret: &[u8], matched: &[u8], line: &[u8], src: &Source<'_>) -> bool {
        let target = match self.target {
            Target::Secret => secret,
            Target::Match => matched,
            Target::Line => line,
        };
        let regex = self.regex.as_ref().map(|r| !target.is_empty() && r.is_match(target));
        let stop = self.stopwords.as_ref().map(|s| !secret.is_empty() && s.is_match(secret));
        if !self.and {
            return regex == Some(true) || stop == Some(true);
        }
        let commit = (!self.commits.is_empty()).then(|| self.commit_hit(src.commit));
        let path = self.paths.as_ref().map(|_| self.path_hit(src.path));
        [regex, stop, commit, path].iter().all(|c| c.unwrap_or(true))
    }
}

impl Rule {
    fn compile(raw: &RawRule) -> Result<Rule, Error> {
        if raw.id.trim().is_empty() {
            return Err(Error::Invalid("a rule has no id".into()));
        }
        let id = raw.id.clone();
        if raw.regex.is_none() && raw.path.is_none() {
            return Err(Error::Invalid(format!("rule {id:?} has neither regex nor path")));
        }
        let regex = match &raw.regex {
            Some(r) => Some(compile(r, || format!("rule {id:?} regex"))?),
            None => None,
        };
        let path = match &raw.path {
            Some(p) => Some(compile(p, || format!("rule {id:?} path"))?),
            None => None,
        };
        let secret_group = raw.secret_group.unwrap_or(0);
        if let Some(r) = &regex {
            let groups = r.captures_len() - 1;
            if secret_group > groups {
                return Err(Error::Invalid(format!(
                    "rule {id:?}: secretGroup {secret_group} but its regex has {groups} group(s)"
                )));
            }
        }
        let allowlists = raw
            .allowlists
            .iter()
            .enumerate()
            .map(|(i, a)| Allowlist::compile(a, &format!("rule {id:?}"), i))
            .collect::<Result<_, _>>()?;
        Ok(Rule {
            description: raw.description.clone().unwrap_or_default(),
            keywords: raw.keywords.iter().map(|k| k.to_lowercase()).filter(|k| !k.is_empty()).collect(),
            tags: raw.tags.clone(),
            reach: regex.as_ref().map_or(0, reach_of),
            regex,
            path,
            secret_group,
            entropy: raw.entropy.filter(|e| *e != 0.0),
            allowlists,
            id,
        })
    }
}

/// Shannon entropy in bits per byte, as gitleaks computes it (characters counted, divided by
/// the length in bytes).
pub fn shannon(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let len = s.len() as f64;
    let mut h = 0.0;
    if s.is_ascii() {
        let mut counts = [0u32; 128];
        for &b in s {
            counts[b as usize] += 1;
        }
        for &c in counts.iter().filter(|c| **c > 0) {
            let p = f64::from(c) / len;
            h -= p * p.log2();
        }
    } else {
        let mut counts = std::collections::HashMap::new();
        for c in String::from_utf8_lossy(s).chars() {
            *counts.entry(c).or_insert(0u32) += 1;
        }
        for &c in counts.values() {
            let p = f64::from(c) / len;
            h -= p * p.log2();
        }
    }
    h
}

fn line_start(b: &[u8], at: usize) -> usize {
    memchr::memrchr(b'\n', &b[..at]).map_or(0, |i| i + 1)
}

fn line_end(b: &[u8], at: usize) -> usize {
    memchr::memchr(b'\n', &b[at..]).map_or(b.len(), |i| at + i)
}

impl Ruleset {
    /// The same rules, with inline `gitleaks:allow` / `pave:allow` markers ignored: for a scan
    /// that vouches for text its author controls (Pave scanning a release's artifact).
    pub fn without_inline_allow(mut self) -> Ruleset {
        self.inline_allow = false;
        self
    }

    /// Compiles a resolved configuration (see [`crate::config::resolve`]); every regex is
    /// checked and a broken one is named.
    pub fn compile(config: &RawConfig) -> Result<Ruleset, Error> {
        let mut rules = Vec::with_capacity(config.rules.len());
        let mut seen = std::collections::HashSet::new();
        for raw in &config.rules {
            if !seen.insert(raw.id.as_str()) {
                return Err(Error::Invalid(format!("rule {:?} is defined twice", raw.id)));
            }
            rules.push(Rule::compile(raw)?);
        }
        let mut global = Vec::new();
        for (i, a) in config.allowlists.iter().enumerate() {
            let compiled = Allowlist::compile(a, "global", i)?;
            if a.target_rules.is_empty() {
                global.push(compiled);
                continue;
            }
            // Targeted: appended to each named rule (compiled once per rule).
            for id in &a.target_rules {
                let Some(rule) = rules.iter_mut().find(|r| &r.id == id) else {
                    return Err(Error::Invalid(format!(
                        "global allowlist #{}: targetRules names unknown rule {id:?}",
                        i + 1
                    )));
                };
                rule.allowlists.push(Allowlist::compile(a, "global", i)?);
            }
        }
        let mut patterns: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<u32>> = Vec::new();
        let mut unkeyed = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if rule.regex.is_none() {
                continue;
            }
            if rule.keywords.is_empty() {
                unkeyed.push(i as u32);
            }
            for k in &rule.keywords {
                let at = match patterns.iter().position(|p| p == k) {
                    Some(at) => at,
                    None => {
                        patterns.push(k.clone());
                        keyword_rules.push(Vec::new());
                        patterns.len() - 1
                    }
                };
                if !keyword_rules[at].contains(&(i as u32)) {
                    keyword_rules[at].push(i as u32);
                }
            }
        }
        let keywords = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&patterns)
                    .map_err(|e| Error::Invalid(format!("keywords: {e}")))?,
            )
        };
        Ok(Ruleset { rules, keywords, keyword_rules, unkeyed, global, inline_allow: true })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether a global allowlist excuses everything under `path` (so a walk can skip it).
    pub fn path_allowed(&self, path: &str) -> bool {
        let src = Source { path, commit: None };
        self.global.iter().any(|a| a.commits.is_empty() && a.excuses_source(&src))
    }

    /// The findings in `text` from `src`, in order of position. Line numbers count from 1 at
    /// the text's first byte.
    pub fn scan(&self, text: &[u8], src: &Source<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.global.iter().any(|a| a.excuses_source(src)) {
            return out;
        }
        // Path-only rules: the file itself is the finding.
        for rule in &self.rules {
            if rule.regex.is_none() && rule.path.as_ref().is_some_and(|p| p.is_match(src.path.as_bytes())) {
                if rule.allowlists.iter().any(|a| a.excuses_source(src)) {
                    continue;
                }
                out.push(Finding::of_file(rule, src));
            }
        }
        if text.is_empty() {
            return out;
        }
        // Keyword pass: the windows each rule's regex will see, merged, in rule order.
        let mut windows: Vec<(u32, usize, usize)> = Vec::new();
        if let Some(ac) = &self.keywords {
            let mut open: Vec<Option<(usize, usize)>> = vec![None; self.rules.len()];
            for m in ac.find_overlapping_iter(text) {
                for &r in &self.keyword_rules[m.pattern().as_usize()] {
                    let reach = self.rules[r as usize].reach;
                    let slot = &mut open[r as usize];
                    if let Some((_, hi)) = slot
                        && m.end().saturating_add(reach) <= *hi
                    {
                        continue;
                    }
                    let lo = line_start(text, m.start().saturating_sub(reach));
                    let hi = line_end(text, m.end().saturating_add(reach).min(text.len()));
                    match slot {
                        Some((_, cur_hi)) if lo <= *cur_hi => *cur_hi = (*cur_hi).max(hi),
                        _ => {
                            if let Some((a, b)) = slot.replace((lo, hi)) {
                                windows.push((r, a, b));
                            }
                        }
                    }
                }
            }
            for (r, w) in open.into_iter().enumerate() {
                if let Some((a, b)) = w {
                    windows.push((r as u32, a, b));
                }
            }
        }
        windows.extend(self.unkeyed.iter().map(|&r| (r, 0, text.len())));
        windows.sort_unstable();
        let mut skip_rule = None;
        for (r, lo, hi) in windows {
            let rule = &self.rules[r as usize];
            if skip_rule == Some(r) {
                continue;
            }
            if rule.path.as_ref().is_some_and(|p| !p.is_match(src.path.as_bytes()))
                || rule.allowlists.iter().any(|a| a.excuses_source(src))
            {
                skip_rule = Some(r);
                continue;
            }
            let regex = rule.regex.as_ref().expect("windows are made for rules with a regex");
            for m in regex.find_iter(&text[lo..hi]) {
                if let Some(f) = self.finding(rule, text, lo + m.start(), lo + m.end(), src) {
                    out.push(f);
                }
            }
        }
        dedupe_generic(&mut out);
        out.sort_by_key(|f| (f.start_line, f.start_column));
        out
    }

    fn finding(&self, rule: &Rule, text: &[u8], start: usize, end: usize, src: &Source<'_>) -> Option<Finding> {
        let (mut start, mut end) = (start, end);
        while start < end && text[start] == b'\n' {
            start += 1;
        }
        while end > start && text[end - 1] == b'\n' {
            end -= 1;
        }
        let matched = &text[start..end];
        let (line_lo, line_hi) = (line_start(text, start), line_end(text, end.max(start)));
        let line = &text[line_lo..line_hi];
        if self.inline_allow
            && (memchr::memmem::find(line, b"gitleaks:allow").is_some()
                || memchr::memmem::find(line, b"pave:allow").is_some())
        {
            return None;
        }
        let regex = rule.regex.as_ref()?;
        let mut secret = matched;
        if regex.captures_len() > 1
            && let Some(caps) = regex.captures(matched)
        {
            if rule.secret_group > 0 {
                secret = caps.get(rule.secret_group).map_or(&[][..], |g| g.as_bytes());
            } else if let Some(g) = caps.iter().skip(1).flatten().find(|g| !g.is_empty()) {
                secret = g.as_bytes();
            }
        }
        let entropy = shannon(secret);
        if rule.entropy.is_some_and(|min| entropy <= min) {
            return None;
        }
        let excused = |a: &Allowlist| a.excuses(secret, matched, line, src);
        if self.global.iter().any(excused) || rule.allowlists.iter().any(excused) {
            return None;
        }
        Some(Finding::new(rule, text, start, end, secret, entropy, src))
    }
}

/// Drops a generic rule's finding when another rule found, on the same line, a secret that
/// contains it: the specific rule names the credential better.
fn dedupe_generic(findings: &mut Vec<Finding>) {
    if findings.len() < 2 {
        return;
    }
    let generic = |f: &Finding| f.rule_id.to_lowercase().contains("generic");
    let drop: Vec<bool> = findings
        .iter()
        .map(|g| {
            generic(g)
                && findings.iter().any(|o| {
                    !generic(o) && o.rule_id != g.rule_id && o.start_line == g.start_line && o.secret_contains(g)
                })
        })
        .collect();
    let mut i = 0;
    findings.retain(|_| {
        i += 1;
        !drop[i - 1]
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(toml: &str) -> Ruleset {
        let raw = crate::config::resolve(
            RawConfig::parse(toml, "t.toml").expect("parses"),
            "t.toml",
            &crate::config::NoFiles,
        )
        .expect("resolves");
        Ruleset::compile(&raw).expect("compiles")
    }

    fn src(path: &str) -> Source<'_> {
        Source { path, commit: None }
    }

    #[test]
    fn entropy_matches_gitleaks_vectors() {
        assert!((shannon(b"AKIALALEMEL33243OKIA") - 3.1464393).abs() < 1e-6);
        assert!((shannon(b"secret123") - 2.9477027).abs() < 1e-6);
        assert_eq!(shannon(b""), 0.0);
        assert_eq!(shannon(b"aaaa"), 0.0);
    }

    #[test]
    fn keywords_gate_rules_and_groups_pick_the_secret() {
        let s = set(r#"
            [[rules]]
            id = "tok"
            regex = '''tok_([a-z0-9]{8})'''
            keywords = ["TOK_"]
            [[rules]]
            id = "two"
            regex = '''(x)?key=([0-9]{4})'''
            secretGroup = 2
            keywords = ["key="]
        "#);
        let text = b"first line\nlet a = \"tok_ab12cd34\"; key=1234\nTOK_zzzzzzzz no\n";
        let f = s.scan(text, &src("a.rs"));
        let got: Vec<_> =
            f.iter().map(|f| (f.rule_id.as_str(), f.secret.as_str(), f.start_line, f.start_column)).collect();
        assert_eq!(got, [("tok", "ab12cd34", 2, 10), ("two", "1234", 2, 25)]);
        assert_eq!(f[0].line_text, "let a = \"tok_ab12cd34\"; key=1234");
        assert!(s.scan(b"nothing to see", &src("a.rs")).is_empty());
    }

    #[test]
    fn allowlists_entropy_and_inline_allow() {
        let s = set(r#"
            [allowlist]
            regexes = ['''^(?i)DUMMY''']
            paths = ['''(?:^|/)fixtures/''']
            [[rules]]
            id = "generic-x"
            regex = '''secret=([A-Za-z0-9]+)'''
            keywords = ["secret="]
            entropy = 3.0
            [[rules.allowlists]]
            regexTarget = "line"
            regexes = ['''#\s*test''']
            [[rules.allowlists]]
            stopwords = ["local"]
            [[rules]]
            id = "specific"
            regex = '''secret=(sk[A-Za-z0-9]+)'''
            keywords = ["secret="]
        "#);
        let scan = |t: &str, p: &str| s.scan(t.as_bytes(), &src(p)).into_iter().map(|f| f.rule_id).collect::<Vec<_>>();
        assert_eq!(scan("secret=Q8v2LmX9pT4z", "a"), ["generic-x"]);
        assert!(scan("secret=aaaaaaaaaaaa", "a").is_empty(), "low entropy");
        assert!(scan("secret=DummyQ8v2LmX9pT4z", "a").is_empty(), "global regex");
        assert!(scan("secret=Q8v2LmX9pT4z", "x/fixtures/a").is_empty(), "global path");
        assert!(scan("secret=Q8v2LmX9pT4z # test", "a").is_empty(), "line allowlist");
        assert!(scan("secret=Q8v2LOCALX9pT4z", "a").is_empty(), "stopword, any case");
        assert!(scan("secret=Q8v2LmX9pT4z // pave:allow", "a").is_empty(), "inline allow");
        let strict = set(r#"
            [[rules]]
            id = "generic-x"
            regex = '''secret=([A-Za-z0-9]+)'''
            keywords = ["secret="]
        "#)
        .without_inline_allow();
        assert_eq!(strict.scan(b"secret=Q8v2LmX9pT4z // pave:allow", &src("a")).len(), 1, "allow markers ignored");
        assert_eq!(scan("secret=skQ8v2LmX9pT4z", "a"), ["specific"], "the generic finding yields");
        assert!(s.path_allowed("repo/fixtures/x.txt"));
    }

    #[test]
    fn path_rules_and_and_conditions() {
        let s = set(r#"
            [[rules]]
            id = "p12"
            path = '''\.p12$'''
            [[rules]]
            id = "tf"
            path = '''\.tf$'''
            regex = '''password\s*=\s*"([^"]{8,})"'''
            keywords = ["password"]
            [[rules.allowlists]]
            condition = "AND"
            paths = ['''^examples/''']
            regexes = ['''^hunter''']
        "#);
        let ids = |t: &str, p: &str| s.scan(t.as_bytes(), &src(p)).into_iter().map(|f| f.rule_id).collect::<Vec<_>>();
        assert_eq!(ids("", "certs/a.p12"), ["p12"]);
        assert_eq!(ids(r#"password = "hunter222""#, "main.tf"), ["tf"]);
        assert!(ids(r#"password = "hunter222""#, "main.txt").is_empty(), "path must match");
        assert!(ids(r#"password = "hunter222""#, "examples/main.tf").is_empty(), "AND: path and regex");
        assert_eq!(ids(r#"password = "s3cretpass""#, "examples/main.tf"), ["tf"], "AND: regex fails");
    }

    #[test]
    fn matches_far_from_keywords_and_across_lines() {
        let s = set(r#"
            [[rules]]
            id = "pem"
            regex = '''-----BEGIN PRIVATE KEY-----[\s\S]{20,}?-----END PRIVATE KEY-----'''
            keywords = ["-----begin"]
        "#);
        let mut text = "x\n".repeat(100_000);
        text.push_str("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n");
        let f = s.scan(text.as_bytes(), &src("k.pem"));
        assert_eq!((f.len(), f[0].start_line, f[0].end_line), (1, 100_001, 100_004));
    }

    #[test]
    fn bad_rules_are_named() {
        let bad = |t: &str| {
            let raw = RawConfig::parse(t, "t.toml").expect("parses");
            Ruleset::compile(&raw).expect_err("refused").to_string()
        };
        assert!(bad("[[rules]]\nid = \"r\"\nregex = '''(unclosed'''\n").contains("rule \"r\" regex"));
        assert!(bad("[[rules]]\nid = \"r\"\n").contains("neither regex nor path"));
        assert!(bad("[[rules]]\nid = \"r\"\nregex = 'a(b)'\nsecretGroup = 2\n").contains("secretGroup 2"));
        assert!(bad("[[rules]]\nid = \"r\"\nregex = 'a'\n[[rules]]\nid = \"r\"\nregex = 'b'\n").contains("twice"));
        assert!(
            bad("[[rules]]\nid = \"r\"\nregex = 'a'\n[[rules.allowlists]]\ncondition = 'XOR'\nregexes = ['a']\n")
                .contains("XOR")
        );
    }
}
