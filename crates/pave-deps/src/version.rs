//! Version ordering as each package ecosystem defines it. OSV's `ECOSYSTEM` ranges are
//! compared with these; `SEMVER` ranges with SemVer 2.0 precedence.
//!
//! - **SemVer 2.0** (npm, crates.io): pre-releases before their release, identifiers compared
//!   numerically or in ASCII order, build metadata ignored; a leading `v` is tolerated.
//! - **Go**: SemVer with a required-by-convention `v`; `+incompatible` is ignored, and
//!   pseudo-versions (`v0.0.0-20200116001909-b77594299b42`) are pre-releases that order by
//!   their timestamp, as SemVer already implies.
//! - **PEP 440** (PyPI): epochs, release segments with trailing zeros insignificant,
//!   `a`/`b`/`rc` pre-releases (and their spellings `alpha`, `c`, `pre`, `preview`…),
//!   `.post` and `.dev` releases, local versions; `1.0.dev0 < 1.0a1 < 1.0 < 1.0.post1`.
//! - **RubyGems**: segments split at dots and at digit/letter boundaries; a version with a
//!   letter is a pre-release (`1.0.a < 1.0`); trailing zero segments do not count; `-` reads
//!   as `.pre.`.
//! - **Packagist** (Composer): up to four numeric segments, then a stability: `dev` < `alpha`
//!   < `beta` < `RC` < stable < `patch`, each with an optional number.

use std::cmp::Ordering;

/// The package ecosystems Pave audits, named as OSV names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    Npm,
    CratesIo,
    PyPI,
    Go,
    RubyGems,
    Packagist,
}

impl Ecosystem {
    /// OSV's spelling (`package.ecosystem`), also used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::CratesIo => "crates.io",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Go => "Go",
            Ecosystem::RubyGems => "RubyGems",
            Ecosystem::Packagist => "Packagist",
        }
    }

    /// Reads OSV's spelling; a suffix (`Packagist:https://…`, another registry) is a
    /// different namespace and is not ours.
    pub fn from_osv(s: &str) -> Option<Ecosystem> {
        Some(match s {
            "npm" => Ecosystem::Npm,
            "crates.io" => Ecosystem::CratesIo,
            "PyPI" => Ecosystem::PyPI,
            "Go" => Ecosystem::Go,
            "RubyGems" => Ecosystem::RubyGems,
            "Packagist" => Ecosystem::Packagist,
            _ => return None,
        })
    }

    /// Compares two versions by this ecosystem's rules; `None` when either cannot be read.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Ecosystem::Npm | Ecosystem::CratesIo => Some(SemVer::parse(a)?.cmp(&SemVer::parse(b)?)),
            Ecosystem::Go => Some(SemVer::parse_go(a)?.cmp(&SemVer::parse_go(b)?)),
            Ecosystem::PyPI => Some(Pep440::parse(a)?.cmp(&Pep440::parse(b)?)),
            Ecosystem::RubyGems => Some(Gem::parse(a)?.cmp(&Gem::parse(b)?)),
            Ecosystem::Packagist => Some(Composer::parse(a)?.cmp(&Composer::parse(b)?)),
        }
    }

    /// Whether `v` is a pre-release in this ecosystem.
    pub fn is_prerelease(self, v: &str) -> bool {
        match self {
            Ecosystem::Npm | Ecosystem::CratesIo => SemVer::parse(v).is_some_and(|s| !s.pre.is_empty()),
            Ecosystem::Go => SemVer::parse_go(v).is_some_and(|s| !s.pre.is_empty()),
            Ecosystem::PyPI => Pep440::parse(v).is_some_and(|p| p.pre.is_some() || p.dev.is_some()),
            Ecosystem::RubyGems => Gem::parse(v).is_some_and(|g| g.pre.iter().any(|s| matches!(s, GemSeg::Str(_)))),
            Ecosystem::Packagist => Composer::parse(v).is_some_and(|c| c.stability.0 < 4),
        }
    }
}

/// Compares two versions by SemVer 2.0 precedence (OSV's `SEMVER` ranges).
pub fn compare_semver(a: &str, b: &str) -> Option<Ordering> {
    Some(SemVer::parse(a)?.cmp(&SemVer::parse(b)?))
}

// ---------------------------------------------------------------------------------------
// SemVer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Num(u64),
    Alpha(String),
}

impl Ord for Ident {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Ident::Num(a), Ident::Num(b)) => a.cmp(b),
            (Ident::Num(_), Ident::Alpha(_)) => Ordering::Less,
            (Ident::Alpha(_), Ident::Num(_)) => Ordering::Greater,
            (Ident::Alpha(a), Ident::Alpha(b)) => a.as_bytes().cmp(b.as_bytes()),
        }
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SemVer {
    core: [u64; 3],
    pre: Vec<Ident>,
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl SemVer {
    fn parse(s: &str) -> Option<SemVer> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split_once('+').map_or(s, |(v, _)| v);
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let mut parts = core.split('.');
        let mut nums = [0u64; 3];
        for n in &mut nums {
            *n = number(parts.next()?)?;
        }
        if parts.next().is_some() {
            return None;
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => p
                .split('.')
                .map(|i| {
                    if i.is_empty() || !i.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
                        None
                    } else if let Some(n) = number(i) {
                        Some(Ident::Num(n))
                    } else {
                        Some(Ident::Alpha(i.to_owned()))
                    }
                })
                .collect::<Option<Vec<_>>>()?,
        };
        Some(SemVer { core: nums, pre })
    }

    fn parse_go(s: &str) -> Option<SemVer> {
        let s = s.trim();
        let s = s.strip_suffix("+incompatible").unwrap_or(s);
        SemVer::parse(s)
    }
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core.cmp(&other.core).then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------------------------------
// PEP 440

/// (epoch, release, pre-release rank, post rank, dev rank).
type Pep440Key<'a> = (u64, &'a [u64], (i8, u8, u64), (i8, u64), (i8, u64));

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pep440 {
    epoch: u64,
    release: Vec<u64>,
    /// (0 = a, 1 = b, 2 = rc, number)
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<Ident>,
}

impl Pep440 {
    fn parse(s: &str) -> Option<Pep440> {
        let lower = s.trim().to_ascii_lowercase();
        let mut s = lower.strip_prefix('v').unwrap_or(&lower);
        let local = match s.split_once('+') {
            Some((v, l)) => {
                s = v;
                l.split(['.', '-', '_'])
                    .map(|p| {
                        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()) {
                            None
                        } else {
                            Some(number(p).map_or_else(|| Ident::Alpha(p.to_owned()), Ident::Num))
                        }
                    })
                    .collect::<Option<Vec<_>>>()?
            }
            None => Vec::new(),
        };
        let (epoch, rest) = match s.split_once('!') {
            Some((e, r)) => (number(e)?, r),
            None => (0, s),
        };
        let b = rest.as_bytes();
        let mut i = 0;
        let mut release = Vec::new();
        loop {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return None;
            }
            release.push(rest[start..i].parse().ok()?);
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        let mut tail = &rest[i..];
        let sep = |t: &str| t.strip_prefix(['.', '-', '_']).unwrap_or(t).to_owned();
        let take_num = |t: &str| -> (Option<u64>, String) {
            let t = t.strip_prefix(['.', '-', '_']).unwrap_or(t);
            let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
            (if digits.is_empty() { None } else { digits.parse().ok() }, t[digits.len()..].to_owned())
        };
        let mut pre = None;
        let owned;
        {
            let t = sep(tail);
            let kinds: [(&str, u8); 8] =
                [("alpha", 0), ("beta", 1), ("preview", 2), ("pre", 2), ("rc", 2), ("a", 0), ("b", 1), ("c", 2)];
            if let Some((word, k)) = kinds.iter().find(|(w, _)| t.starts_with(w)) {
                let (n, rest) = take_num(&t[word.len()..]);
                pre = Some((*k, n.unwrap_or(0)));
                owned = rest;
                tail = &owned;
            }
        }
        let mut post = None;
        let owned2;
        {
            // `-N` is a post-release; so are `post`, `rev`, `r`.
            if let Some(t) = tail.strip_prefix('-')
                && t.starts_with(|c: char| c.is_ascii_digit())
            {
                let (n, rest) = take_num(t);
                post = n;
                owned2 = rest;
                tail = &owned2;
            } else {
                let t = sep(tail);
                if let Some(word) = ["post", "rev", "r"].iter().find(|w| t.starts_with(**w)) {
                    let (n, rest) = take_num(&t[word.len()..]);
                    post = Some(n.unwrap_or(0));
                    owned2 = rest;
                    tail = &owned2;
                }
            }
        }
        let mut dev = None;
        let owned3;
        {
            let t = sep(tail);
            if let Some(r) = t.strip_prefix("dev") {
                let (n, rest) = take_num(r);
                dev = Some(n.unwrap_or(0));
                owned3 = rest;
                tail = &owned3;
            }
        }
        if !tail.is_empty() {
            return None;
        }
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        Some(Pep440 { epoch, release, pre, post, dev, local })
    }

    /// The sort key of `packaging.version`: a dev release of a final comes before its
    /// pre-releases; a missing post comes before any post; a missing dev after any dev.
    fn key(&self) -> Pep440Key<'_> {
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (-1, 0, 0),
            (None, _, _) => (1, 0, 0),
            (Some((k, n)), _, _) => (0, k, n),
        };
        let post = self.post.map_or((-1, 0), |n| (0, n));
        let dev = self.dev.map_or((1, 0), |n| (0, n));
        (self.epoch, &self.release, pre, post, dev)
    }
}

impl Ord for Pep440 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key()).then_with(|| {
            // Local versions: none < any; numeric segments after alphanumeric ones.
            let seg = |i: &Ident| match i {
                Ident::Num(n) => (1, *n, String::new()),
                Ident::Alpha(s) => (0, 0, s.clone()),
            };
            let a: Vec<_> = self.local.iter().map(seg).collect();
            let b: Vec<_> = other.local.iter().map(seg).collect();
            a.cmp(&b)
        })
    }
}

impl PartialOrd for Pep440 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------------------------------
// RubyGems

#[derive(Debug, Clone, PartialEq, Eq)]
enum GemSeg {
    Num(u64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Gem {
    /// Canonical segments: the release part and the pre-release part, each without
    /// trailing zeros.
    pre: Vec<GemSeg>,
}

impl Gem {
    fn parse(s: &str) -> Option<Gem> {
        let s = s.trim();
        if s.is_empty()
            || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            || !s.starts_with(|c: char| c.is_ascii_digit())
        {
            return None;
        }
        let s = s.replace('-', ".pre.");
        let mut segs = Vec::new();
        for part in s.split('.').filter(|p| !p.is_empty()) {
            // Split at digit/letter boundaries: `a9` -> `a`, `9`.
            let mut cur = String::new();
            let mut digit = None;
            for c in part.chars() {
                let d = c.is_ascii_digit();
                if digit.is_some_and(|x| x != d) {
                    segs.push(gem_seg(&cur));
                    cur.clear();
                }
                digit = Some(d);
                cur.push(c);
            }
            if !cur.is_empty() {
                segs.push(gem_seg(&cur));
            }
        }
        // Canonical: drop zeros that end the release part and the pre-release part.
        let first_str = segs.iter().position(|s| matches!(s, GemSeg::Str(_))).unwrap_or(segs.len());
        let (mut release, mut pre) = (segs[..first_str].to_vec(), segs[first_str..].to_vec());
        while release.last() == Some(&GemSeg::Num(0)) {
            release.pop();
        }
        while pre.last() == Some(&GemSeg::Num(0)) {
            pre.pop();
        }
        release.extend(pre);
        Some(Gem { pre: release })
    }
}

fn gem_seg(s: &str) -> GemSeg {
    number(s).map_or_else(|| GemSeg::Str(s.to_owned()), GemSeg::Num)
}

impl Ord for Gem {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.pre.len().max(other.pre.len());
        for i in 0..n {
            let zero = GemSeg::Num(0);
            let (a, b) = (self.pre.get(i).unwrap_or(&zero), other.pre.get(i).unwrap_or(&zero));
            let o = match (a, b) {
                (GemSeg::Num(x), GemSeg::Num(y)) => x.cmp(y),
                (GemSeg::Str(x), GemSeg::Str(y)) => x.cmp(y),
                (GemSeg::Num(_), GemSeg::Str(_)) => Ordering::Greater,
                (GemSeg::Str(_), GemSeg::Num(_)) => Ordering::Less,
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for Gem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------------------------------
// Packagist (Composer)

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Composer {
    numbers: [u64; 4],
    /// (0 dev, 1 alpha, 2 beta, 3 RC, 4 stable, 5 patch; its number)
    stability: (u8, u64),
}

impl Composer {
    fn parse(s: &str) -> Option<Composer> {
        let lower = s.trim().to_ascii_lowercase();
        let s = lower.strip_prefix('v').unwrap_or(&lower);
        let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (core, rest) = s.split_at(end);
        let core = core.trim_end_matches('.');
        let mut numbers = [0u64; 4];
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        for (slot, p) in numbers.iter_mut().zip(&parts) {
            *slot = number(p)?;
        }
        let rest = rest.trim_start_matches(['-', '.', '_', '+']);
        let stability = if rest.is_empty() {
            (4, 0)
        } else {
            let word_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
            let (word, num) = rest.split_at(word_end);
            let rank = match word {
                "dev" => 0,
                "alpha" | "a" => 1,
                "beta" | "b" => 2,
                "rc" => 3,
                "patch" | "pl" | "p" => 5,
                _ => return None,
            };
            let num = num.trim_start_matches('.');
            (rank, if num.is_empty() { 0 } else { number(num)? })
        };
        Some(Composer { numbers, stability })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_versions_compare_as_none() {
        assert_eq!(Ecosystem::Npm.compare("1.2", "1.2.0"), None);
        assert_eq!(Ecosystem::PyPI.compare("1.0-foo", "1.0"), None);
        assert_eq!(Ecosystem::Packagist.compare("dev-main", "1.0"), None);
        assert_eq!(Ecosystem::RubyGems.compare("", "1.0"), None);
        assert!(Ecosystem::Npm.is_prerelease("1.0.0-rc.1") && !Ecosystem::Npm.is_prerelease("1.0.0"));
        assert!(Ecosystem::PyPI.is_prerelease("2.0rc1") && Ecosystem::PyPI.is_prerelease("2.0.dev3"));
        assert!(Ecosystem::RubyGems.is_prerelease("1.0.0.rc1") && !Ecosystem::RubyGems.is_prerelease("1.0"));
    }
}
