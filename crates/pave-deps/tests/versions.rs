//! Ordered pairs per ecosystem (`a < b` or `a == b`), each checked beforehand against that
//! ecosystem's reference implementation (node-semver, packaging, Gem::Version,
//! golang.org/x/mod/semver, Composer's VersionParser). Both directions are asserted.

use std::cmp::Ordering;

use pave_deps::Ecosystem;

fn check(eco: Ecosystem, data: &str) -> usize {
    let mut n = 0;
    for line in data.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (a, op, b) = if let Some((a, b)) = line.split_once(" < ") {
            (a, Ordering::Less, b)
        } else if let Some((a, b)) = line.split_once(" == ") {
            (a, Ordering::Equal, b)
        } else {
            panic!("bad line {line:?}");
        };
        assert_eq!(eco.compare(a, b), Some(op), "{eco:?}: {line}");
        assert_eq!(eco.compare(b, a), Some(op.reverse()), "{eco:?}: {line} (reversed)");
        n += 1;
    }
    n
}

#[test]
fn semver_npm_and_crates() {
    let n = check(Ecosystem::Npm, include_str!("data/semver_pairs.txt"));
    check(Ecosystem::CratesIo, include_str!("data/semver_pairs.txt"));
    assert!(n >= 20);
}

#[test]
fn pep440() {
    assert!(check(Ecosystem::PyPI, include_str!("data/pep440_pairs.txt")) >= 35);
}

#[test]
fn rubygems() {
    assert!(check(Ecosystem::RubyGems, include_str!("data/rubygems_pairs.txt")) >= 15);
}

#[test]
fn go_with_pseudo_versions() {
    assert!(check(Ecosystem::Go, include_str!("data/go_pairs.txt")) >= 12);
}

#[test]
fn packagist() {
    assert!(check(Ecosystem::Packagist, include_str!("data/packagist_pairs.txt")) >= 15);
}
