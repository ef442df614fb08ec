//! Semantic versions (SemVer 2.0.0) for the SEMVER_* constraint operators: strict
//! `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, compared by precedence (build metadata ignored).

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    core: [u64; 3],
    pre: Vec<Ident>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Num(u64),
    Alpha(String),
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        // MAJOR.MINOR.PATCH by hand: this runs for every SEMVER_* evaluation.
        let b = s.as_bytes();
        let mut i = 0;
        let mut core = [0u64; 3];
        for (k, slot) in core.iter_mut().enumerate() {
            let start = i;
            let mut n = 0u64;
            while let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d < 10) {
                n = n.wrapping_mul(10).wrapping_add(u64::from(d));
                i += 1;
            }
            // Up to 19 digits cannot overflow; longer numbers are not versions anyone uses.
            let digits = i - start;
            if digits == 0 || digits > 19 || (digits > 1 && b[start] == b'0') {
                return None;
            }
            *slot = n;
            if k < 2 {
                if b.get(i) != Some(&b'.') {
                    return None;
                }
                i += 1;
            }
        }
        let rest = &s[i..];
        if rest.is_empty() {
            return Some(Version { core, pre: Vec::new() });
        }
        let (pre, build) = match rest.as_bytes()[0] {
            b'-' => match rest[1..].split_once('+') {
                Some((p, b)) => (Some(p), Some(b)),
                None => (Some(&rest[1..]), None),
            },
            b'+' => (None, Some(&rest[1..])),
            _ => return None,
        };
        let ident_ok = |i: &str| !i.is_empty() && i.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
        if let Some(b) = build
            && !b.split('.').all(ident_ok)
        {
            return None;
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => p
                .split('.')
                .map(|i| {
                    if !ident_ok(i) {
                        None
                    } else if i.bytes().all(|c| c.is_ascii_digit()) {
                        number(i).map(Ident::Num)
                    } else {
                        Some(Ident::Alpha(i.to_owned()))
                    }
                })
                .collect::<Option<Vec<_>>>()?,
        };
        Some(Version { core, pre })
    }
}

impl Ord for Ident {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Ident::Num(a), Ident::Num(b)) => a.cmp(b),
            (Ident::Num(_), Ident::Alpha(_)) => Ordering::Less,
            (Ident::Alpha(_), Ident::Num(_)) => Ordering::Greater,
            (Ident::Alpha(a), Ident::Alpha(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core.cmp(&other.core).then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            // A pre-release comes before its release.
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_follows_semver_2() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "2.0.0",
        ];
        for w in order.windows(2) {
            assert!(Version::parse(w[0]).unwrap() < Version::parse(w[1]).unwrap(), "{} < {}", w[0], w[1]);
        }
        assert_eq!(Version::parse("1.2.3+build.5"), Version::parse("1.2.3"));
        for bad in
            ["", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-a..b", "v1.2.3", "1.2.3+", "1.2.x", "1.2.3-01"]
        {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }
}
