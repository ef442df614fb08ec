//! A CycloneDX 1.5 JSON SBOM of installed packages, each with its package URL (purl).
//! Pure: the caller passes the serial number and the time.

use std::collections::BTreeMap;

// A purl component is percent-encoded except for unreserved characters.
use pave_percent::encode as enc;
use serde_json::{Value, json};

use crate::lockfile::{Origin, Package};
use crate::normalize_name;
use crate::version::Ecosystem;

/// The package URL of a package (https://github.com/package-url/purl-spec).
pub fn purl(p: &Package) -> String {
    let v = enc(&p.version);
    match p.ecosystem {
        Ecosystem::Npm => match p.name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, name)) => format!("pkg:npm/{}/{}@{v}", enc(&format!("@{scope}")), enc(name)),
            None => format!("pkg:npm/{}@{v}", enc(&p.name)),
        },
        Ecosystem::CratesIo => format!("pkg:cargo/{}@{v}", enc(&p.name)),
        Ecosystem::PyPI => format!("pkg:pypi/{}@{v}", enc(&normalize_name(Ecosystem::PyPI, &p.name))),
        Ecosystem::Go => {
            let path: Vec<String> = p.name.split('/').map(enc).collect();
            format!("pkg:golang/{}@{v}", path.join("/"))
        }
        Ecosystem::RubyGems => format!("pkg:gem/{}@{v}", enc(&p.name)),
        Ecosystem::Packagist => match p.name.split_once('/') {
            Some((vendor, name)) => format!("pkg:composer/{}/{}@{v}", enc(vendor), enc(name)),
            None => format!("pkg:composer/{}@{v}", enc(&p.name)),
        },
    }
}

/// A random (version 4) UUID for an SBOM's serial number.
pub fn new_serial() -> String {
    let mut b = [0u8; 16];
    // Without the OS's randomness a serial is still well-formed, if not unique.
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The SBOM of `packages`, made now (`timestamp`, RFC 3339) by this version of Pave, with a
/// fresh serial number.
pub fn document(name: &str, timestamp: &str, packages: &[(Package, String)]) -> Value {
    let serial = new_serial();
    let subject = Subject { name, serial: &serial, timestamp, tool_version: env!("CARGO_PKG_VERSION") };
    cyclonedx(&subject, packages)
}

/// What an SBOM describes and when it was made.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub name: &'a str,
    /// A random UUID (`urn:uuid:` is added).
    pub serial: &'a str,
    /// RFC 3339.
    pub timestamp: &'a str,
    pub tool_version: &'a str,
}

/// The SBOM: one component per distinct (ecosystem, name, version), registry and non-registry
/// packages alike (a git or path dependency is still part of what ships), with the lockfiles
/// that install it as a property. Workspace members are the subject, not components.
pub fn cyclonedx(subject: &Subject<'_>, installed: &[(Package, String)]) -> Value {
    let mut components: BTreeMap<String, (Package, Vec<String>)> = BTreeMap::new();
    for (p, file) in installed {
        if p.origin == Origin::Workspace || p.version.is_empty() {
            continue;
        }
        let entry = components.entry(purl(p)).or_insert_with(|| (p.clone(), Vec::new()));
        if !entry.1.contains(file) {
            entry.1.push(file.clone());
        }
        // Dev only if every lockfile says so.
        entry.0.dev = match (entry.0.dev, p.dev) {
            (Some(true), Some(true)) => Some(true),
            (a, b) if a == Some(false) || b == Some(false) => Some(false),
            (a, b) => a.or(b),
        };
    }
    let list: Vec<Value> = components
        .into_iter()
        .map(|(purl, (p, files))| {
            let (group, name) = match p.ecosystem {
                Ecosystem::Npm if p.name.starts_with('@') => {
                    p.name.split_once('/').map_or((None, p.name.as_str()), |(g, n)| (Some(g), n))
                }
                Ecosystem::Packagist => p.name.split_once('/').map_or((None, p.name.as_str()), |(g, n)| (Some(g), n)),
                _ => (None, p.name.as_str()),
            };
            let mut c = json!({
                "type": "library",
                "bom-ref": purl,
                "name": name,
                "version": p.version,
                "purl": purl,
                "scope": if p.dev == Some(true) { "optional" } else { "required" },
                "properties": [
                    {"name": "pave:ecosystem", "value": p.ecosystem.as_str()},
                    {"name": "pave:origin", "value": format!("{:?}", p.origin).to_lowercase()},
                    {"name": "pave:lockfiles", "value": files.join(", ")},
                ],
            });
            if let Some(g) = group {
                c["group"] = json!(g);
            }
            c
        })
        .collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", subject.serial),
        "version": 1,
        "metadata": {
            "timestamp": subject.timestamp,
            "tools": {"components": [{"type": "application", "name": "pave", "version": subject.tool_version}]},
            "component": {"type": "application", "bom-ref": format!("subject:{}", subject.name), "name": subject.name},
        },
        "components": list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(eco: Ecosystem, name: &str, version: &str) -> Package {
        Package {
            ecosystem: eco,
            name: name.into(),
            version: version.into(),
            origin: Origin::Registry,
            direct: None,
            dev: None,
        }
    }

    #[test]
    fn purls_per_ecosystem() {
        assert_eq!(purl(&p(Ecosystem::Npm, "@xmldom/xmldom", "0.7.5")), "pkg:npm/%40xmldom/xmldom@0.7.5");
        assert_eq!(purl(&p(Ecosystem::Npm, "lodash", "4.17.15")), "pkg:npm/lodash@4.17.15");
        assert_eq!(purl(&p(Ecosystem::CratesIo, "smallvec", "1.6.0")), "pkg:cargo/smallvec@1.6.0");
        assert_eq!(purl(&p(Ecosystem::PyPI, "Flask_SQLAlchemy", "2.4.0")), "pkg:pypi/flask-sqlalchemy@2.4.0");
        assert_eq!(
            purl(&p(Ecosystem::Go, "github.com/gin-gonic/gin", "v1.6.3")),
            "pkg:golang/github.com/gin-gonic/gin@v1.6.3"
        );
        assert_eq!(purl(&p(Ecosystem::RubyGems, "nokogiri", "1.13.3")), "pkg:gem/nokogiri@1.13.3");
        assert_eq!(purl(&p(Ecosystem::Packagist, "twig/twig", "v2.14.10")), "pkg:composer/twig/twig@v2.14.10");
        assert_eq!(purl(&p(Ecosystem::CratesIo, "x", "1.0.0+build.1")), "pkg:cargo/x@1.0.0%2Bbuild.1");
    }
}
