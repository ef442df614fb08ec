//! Dependency audit: each package ecosystem's version ordering ([`version`]) and OSV
//! advisories with their affected ranges, fixes and severities ([`osv`]).

pub mod db;
pub mod discover;
pub mod lockfile;
pub mod osv;
pub mod sbom;
pub mod version;

pub use db::{Database, DbError, Finding};
pub use lockfile::{Format, LockError, Origin, Package};
pub use osv::{Hit, Record, Severity, cvss3_base_score, cvss4_base_score};
pub use version::{Ecosystem, compare_semver};

/// A package name as its ecosystem compares names: PyPI by PEP 503 (case-insensitive, runs
/// of `-`, `_`, `.` equal), Packagist case-insensitively, the others exactly.
pub fn normalize_name(eco: Ecosystem, name: &str) -> String {
    match eco {
        Ecosystem::PyPI => {
            let mut out = String::with_capacity(name.len());
            let mut sep = false;
            for c in name.trim().chars() {
                if matches!(c, '-' | '_' | '.') {
                    sep = true;
                } else {
                    if sep && !out.is_empty() {
                        out.push('-');
                    }
                    sep = false;
                    out.push(c.to_ascii_lowercase());
                }
            }
            out
        }
        Ecosystem::Packagist => name.trim().to_ascii_lowercase(),
        _ => name.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_per_ecosystem() {
        assert_eq!(normalize_name(Ecosystem::PyPI, "Jinja2"), "jinja2");
        assert_eq!(normalize_name(Ecosystem::PyPI, "zope.Interface__x"), "zope-interface-x");
        assert_eq!(normalize_name(Ecosystem::Packagist, "Twig/Twig"), "twig/twig");
        assert_eq!(normalize_name(Ecosystem::Npm, "@xmldom/xmldom"), "@xmldom/xmldom");
    }
}
