//! Catalog resources — teams, services, environments — in the document shape users write
//! (`apiVersion`, `kind`, `metadata`, `spec`), with validation that names the failing field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::FieldError;
use crate::name;

/// The `apiVersion` of Pave's own documents.
pub const API_VERSION: &str = "pave.dev/v1";

/// The kinds of catalog resources. Their order is the order an apply writes them in, so a
/// service's owner team exists before the service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Team,
    Environment,
    Service,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Team, Kind::Environment, Kind::Service];

    /// Everything the layers know of this kind (see [`KINDS`]).
    pub fn info(self) -> &'static KindInfo {
        &KINDS[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// Lowercase singular, as used in event kinds and CLI output (`service/checkout`).
    pub fn noun(self) -> &'static str {
        self.info().noun
    }

    /// Lowercase plural: the API's path (`/api/v1/services`) and `pave get services`.
    pub fn plural(self) -> &'static str {
        self.info().plural
    }

    /// A kind by its name, noun, plural or an alias, in any case.
    pub fn parse(s: &str) -> Option<Kind> {
        let s = s.to_ascii_lowercase();
        KINDS.iter().find(|k| k.noun == s || k.plural == s || k.aliases.contains(&s.as_str())).map(|k| k.kind)
    }

    /// The plurals, for messages that list what a user may type.
    pub fn plurals() -> String {
        let all: Vec<&str> = KINDS.iter().map(|k| k.plural).collect();
        match all.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => all.join(""),
        }
    }
}

/// One column of `pave get PLURAL`'s table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub header: &'static str,
    /// A JSON pointer into the document (`/spec/owner`).
    pub pointer: &'static str,
    /// Show how many items the array there holds, not the items.
    pub count: bool,
}

const fn col(header: &'static str, pointer: &'static str) -> Column {
    Column { header, pointer, count: false }
}

/// Everything Pave's layers need to know of a kind of catalog resource, said once: its names,
/// the store's table, who may write it, what it refers to and how the CLI shows it. The
/// parser, the store, the routes, the role table and `pave get|apply|delete` read it from here
/// instead of each matching on the kind.
#[derive(Debug)]
pub struct KindInfo {
    pub kind: Kind,
    /// As in documents (`kind: Service`).
    pub name: &'static str,
    pub noun: &'static str,
    pub plural: &'static str,
    /// More names the CLI takes (`svc`).
    pub aliases: &'static [&'static str],
    /// The store's table of this kind's rows.
    pub table: &'static str,
    /// The least role that may create, change or delete one (before ownership is judged).
    pub write_role: crate::auth::Role,
    /// The resources one refers to (a service: its owner team and the services it depends
    /// on): what the planner requires to exist and refuses to delete from under it, and what
    /// the store loads beside it to plan an apply.
    pub references: fn(&Resource) -> Vec<Reference>,
    pub columns: &'static [Column],
}

/// One resource's reference to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: Kind,
    pub name: String,
    /// The field that holds it (`spec.dependsOn[1]`), for the error when it dangles.
    pub field: String,
    /// What deleting the referenced resource would break, said whole (`team "core" still
    /// owns service "shop"`).
    pub broken: String,
}

fn no_references(_: &Resource) -> Vec<Reference> {
    Vec::new()
}

fn service_references(r: &Resource) -> Vec<Reference> {
    let Resource::Service(s) = r else { return Vec::new() };
    let me = &s.metadata.name;
    let owner = Reference {
        kind: Kind::Team,
        name: s.spec.owner.clone(),
        field: "spec.owner".into(),
        broken: format!("team {:?} still owns service {me:?}", s.spec.owner),
    };
    let deps = s.spec.depends_on.iter().enumerate().map(|(i, d)| Reference {
        kind: Kind::Service,
        name: d.clone(),
        field: format!("spec.dependsOn[{i}]"),
        broken: format!("service {me:?} still depends on service {d:?}"),
    });
    std::iter::once(owner).chain(deps).collect()
}

/// The kinds, in [`Kind`]'s order (an apply writes them in this order).
pub static KINDS: [KindInfo; 3] = [
    KindInfo {
        kind: Kind::Team,
        name: "Team",
        noun: "team",
        plural: "teams",
        aliases: &[],
        table: "teams",
        write_role: crate::auth::Role::Admin,
        references: no_references,
        columns: &[
            col("NAME", "/metadata/name"),
            col("TYPE", "/spec/type"),
            Column { header: "MEMBERS", pointer: "/spec/members", count: true },
            col("CONTACT", "/spec/contact"),
        ],
    },
    KindInfo {
        kind: Kind::Environment,
        name: "Environment",
        noun: "environment",
        plural: "environments",
        aliases: &["env"],
        table: "environments",
        write_role: crate::auth::Role::Admin,
        references: no_references,
        columns: &[col("NAME", "/metadata/name"), col("ORDER", "/spec/order"), col("PRODUCTION", "/spec/production")],
    },
    KindInfo {
        kind: Kind::Service,
        name: "Service",
        noun: "service",
        plural: "services",
        aliases: &["svc"],
        table: "services",
        write_role: crate::auth::Role::Developer,
        references: service_references,
        columns: &[
            col("NAME", "/metadata/name"),
            col("OWNER", "/spec/owner"),
            col("LIFECYCLE", "/spec/lifecycle"),
            col("TIER", "/spec/tier"),
            col("DEPENDS ON", "/spec/dependsOn"),
        ],
    },
];

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn every_kind_is_described_once_in_its_order() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(KINDS[i].kind, *k);
            assert_eq!(Kind::parse(k.noun()), Some(*k));
            assert_eq!(Kind::parse(k.plural()), Some(*k));
            assert_eq!(Kind::parse(&k.as_str().to_uppercase()), Some(*k));
        }
        assert_eq!(Kind::parse("svc"), Some(Kind::Service));
        assert_eq!(Kind::parse("env"), Some(Kind::Environment));
        assert_eq!(Kind::parse("flag"), None);
        assert_eq!(Kind::plurals(), "teams, environments or services");
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity and free-form labels of a resource. Labels select resources (`--prune -l`);
/// annotations carry facts Pave does not model (for example Backstage fields without a
/// counterpart).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Team Topologies' four fundamental team types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeamType {
    #[default]
    StreamAligned,
    Platform,
    Enabling,
    ComplicatedSubsystem,
}

impl TeamType {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamType::StreamAligned => "stream-aligned",
            TeamType::Platform => "platform",
            TeamType::Enabling => "enabling",
            TeamType::ComplicatedSubsystem => "complicated-subsystem",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TeamSpec {
    #[serde(rename = "type")]
    pub team_type: TeamType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Member identities (user names or e-mail addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// How to reach the team: an e-mail address, a chat channel, a pager rota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub metadata: Metadata,
    pub spec: TeamSpec,
}

/// Where a service is in its life, with Backstage's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    #[default]
    Experimental,
    Production,
    Deprecated,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Experimental => "experimental",
            Lifecycle::Production => "production",
            Lifecycle::Deprecated => "deprecated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Name of the owning team; it must exist.
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// Criticality from 1 (most critical, customer-facing) to 4 (internal, best effort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Services this one calls; each must exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// How to run it, for services Pave deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Box<crate::RuntimeSpec>>,
    /// How its deployments run by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<crate::rollout::RolloutSpec>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub metadata: Metadata,
    pub spec: ServiceSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// Position on the promotion path: a release reaches an environment after those with a
    /// lower order.
    pub order: u32,
    #[serde(default)]
    pub production: bool,
    /// Deployments here wait for `pave rollout approve` by someone other than the requester.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_approval: bool,
    /// Gates a release must pass before it is deployed here (an admin may override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::ReleasePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who may deploy here (teams by name, users by member identity); empty lets everyone
    /// whom ownership allows. A further restriction on top of ownership: admins are exempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployers: Vec<String>,
    /// Who may approve deployments here, read like `deployers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub metadata: Metadata,
    pub spec: EnvironmentSpec,
}

/// Any catalog resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Team(Team),
    Service(Service),
    Environment(Environment),
}

/// The envelope every document shares, read before the kind-specific spec.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    api_version: Option<String>,
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    spec: Option<Value>,
    /// Accepted and ignored, so a resource read from the API can be edited and sent back.
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<Value>,
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix.is_empty(), path == ".") {
            (_, true) => prefix.to_string(),
            (true, false) => path,
            (false, false) => format!("{prefix}.{path}"),
        };
        FieldError::new(field, e.into_inner().to_string())
    })
}

impl Resource {
    /// Reads one document (already decoded from YAML or JSON) and validates it.
    pub fn from_value(value: Value) -> Result<Resource, Vec<FieldError>> {
        if !value.is_object() {
            return Err(vec![FieldError::new("", "a document must be a mapping with kind, metadata and spec")]);
        }
        let env: Envelope = from_json(value, "").map_err(|e| vec![e])?;
        if let Some(v) = &env.api_version
            && v != API_VERSION
        {
            return Err(vec![FieldError::new(
                "apiVersion",
                format!("unsupported apiVersion {v:?}; expected {API_VERSION:?}"),
            )]);
        }
        let kind = match env.kind.as_str() {
            "Team" => Kind::Team,
            "Service" => Kind::Service,
            "Environment" => Kind::Environment,
            other => {
                return Err(vec![FieldError::new(
                    "kind",
                    format!("unknown kind {other:?}; expected Team, Service or Environment"),
                )]);
            }
        };
        let spec = env.spec.ok_or_else(|| vec![FieldError::new("spec", "missing field `spec`")])?;
        let metadata = env.metadata;
        let resource = match kind {
            Kind::Team => Resource::Team(Team { metadata, spec: from_json(spec, "spec").map_err(|e| vec![e])? }),
            Kind::Service => {
                Resource::Service(Service { metadata, spec: from_json(spec, "spec").map_err(|e| vec![e])? })
            }
            Kind::Environment => {
                Resource::Environment(Environment { metadata, spec: from_json(spec, "spec").map_err(|e| vec![e])? })
            }
        };
        let errors = resource.validate();
        if errors.is_empty() { Ok(resource) } else { Err(errors) }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Resource::Team(_) => Kind::Team,
            Resource::Service(_) => Kind::Service,
            Resource::Environment(_) => Kind::Environment,
        }
    }

    pub fn metadata(&self) -> &Metadata {
        match self {
            Resource::Team(t) => &t.metadata,
            Resource::Service(s) => &s.metadata,
            Resource::Environment(e) => &e.metadata,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The document form: what users write and what the API returns (without `status`).
    pub fn to_value(&self) -> Value {
        let (metadata, spec) = match self {
            Resource::Team(t) => (&t.metadata, serde_json::to_value(&t.spec)),
            Resource::Service(s) => (&s.metadata, serde_json::to_value(&s.spec)),
            Resource::Environment(e) => (&e.metadata, serde_json::to_value(&e.spec)),
        };
        serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": self.kind().as_str(),
            "metadata": metadata,
            "spec": spec.expect("catalog specs always serialize"),
        })
    }

    /// Field-level checks that need no other resource; references are checked by the planner.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let meta = self.metadata();
        if let Err(e) = name::validate(&meta.name) {
            errors.push(FieldError::new("metadata.name", format!("{:?} {e}", meta.name)));
        }
        for key in meta.labels.keys() {
            if !valid_label_key(key) {
                errors.push(FieldError::new(
                    format!("metadata.labels.{key}"),
                    "label keys may contain letters, digits, '-', '_', '.', '/' and must be 1-253 characters",
                ));
            }
        }
        match self {
            Resource::Team(t) => {
                for (i, m) in t.spec.members.iter().enumerate() {
                    if m.trim().is_empty() {
                        errors.push(FieldError::new(format!("spec.members[{i}]"), "must not be empty"));
                    }
                }
            }
            Resource::Service(s) => {
                if let Err(e) = name::validate(&s.spec.owner) {
                    errors.push(FieldError::new("spec.owner", format!("{:?} is not a team name: {e}", s.spec.owner)));
                }
                if let Some(tier) = s.spec.tier
                    && !(1..=4).contains(&tier)
                {
                    errors.push(FieldError::new("spec.tier", format!("{tier} is out of range; tiers are 1 to 4")));
                }
                for (i, dep) in s.spec.depends_on.iter().enumerate() {
                    if let Err(e) = name::validate(dep) {
                        errors.push(FieldError::new(format!("spec.dependsOn[{i}]"), format!("{dep:?} {e}")));
                    } else if dep == &meta.name {
                        errors
                            .push(FieldError::new(format!("spec.dependsOn[{i}]"), "a service cannot depend on itself"));
                    }
                }
                let mut seen = std::collections::BTreeSet::new();
                for (i, dep) in s.spec.depends_on.iter().enumerate() {
                    if !seen.insert(dep) {
                        errors
                            .push(FieldError::new(format!("spec.dependsOn[{i}]"), format!("{dep:?} is listed twice")));
                    }
                }
                for (i, link) in s.spec.links.iter().enumerate() {
                    if !(link.url.starts_with("http://") || link.url.starts_with("https://")) {
                        errors.push(FieldError::new(format!("spec.links[{i}].url"), "must be an http(s) URL"));
                    }
                }
                if let Some(rt) = &s.spec.runtime {
                    errors.extend(rt.validate("spec.runtime"));
                }
                if let Some(r) = &s.spec.rollout {
                    errors.extend(r.validate("spec.rollout"));
                }
                for (i, tag) in s.spec.tags.iter().enumerate() {
                    if tag.is_empty() || tag.len() > 63 || tag.chars().any(char::is_whitespace) {
                        errors.push(FieldError::new(
                            format!("spec.tags[{i}]"),
                            "tags are 1-63 characters without whitespace",
                        ));
                    }
                }
            }
            Resource::Environment(e) => {
                for (field, list) in [("deployers", &e.spec.deployers), ("approvers", &e.spec.approvers)] {
                    for (i, who) in list.iter().enumerate() {
                        if who.trim().is_empty() || who.trim() != who {
                            errors.push(FieldError::new(
                                format!("spec.{field}[{i}]"),
                                "must be a team name or a member identity, without surrounding spaces",
                            ));
                        }
                    }
                }
            }
        }
        errors
    }
}

fn valid_label_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err_fields(v: Value) -> Vec<String> {
        Resource::from_value(v).expect_err("should be invalid").into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn parses_a_service() {
        let r = Resource::from_value(json!({
            "apiVersion": "pave.dev/v1", "kind": "Service",
            "metadata": {"name": "checkout", "labels": {"app": "shop"}},
            "spec": {"owner": "payments", "tier": 1, "dependsOn": ["cart"], "lifecycle": "production"}
        }))
        .expect("valid");
        let Resource::Service(s) = &r else { panic!("not a service") };
        assert_eq!(s.spec.owner, "payments");
        assert_eq!(s.spec.lifecycle, Lifecycle::Production);
        // The document round-trips.
        assert_eq!(Resource::from_value(r.to_value()).expect("round trip"), r);
    }

    #[test]
    fn names_unknown_and_mistyped_fields() {
        let e = err_fields(json!({"kind": "Service", "metadata": {"name": "a"}, "spec": {"owner": "t", "teir": 1}}));
        assert!(e[0].starts_with("spec.teir: unknown field `teir`"), "{e:?}");
        let e = err_fields(json!({"kind": "Service", "metadata": {"name": "a"}, "spec": {"owner": "t", "tier": "x"}}));
        assert!(e[0].starts_with("spec.tier: invalid type"), "{e:?}");
        let e = err_fields(json!({"kind": "Team", "metadata": {"name": "a"}, "spec": {"type": "squad"}}));
        assert!(e[0].starts_with("spec.type: unknown variant `squad`"), "{e:?}");
        let e = err_fields(json!({"kind": "Gadget", "metadata": {"name": "a"}, "spec": {}}));
        assert!(e[0].starts_with("kind: unknown kind \"Gadget\""), "{e:?}");
        let e = err_fields(json!({"kind": "Team", "metadata": {"name": "a", "nmae": 1}, "spec": {"type": "platform"}}));
        assert!(e[0].starts_with("metadata.nmae: unknown field `nmae`"), "{e:?}");
    }

    #[test]
    fn validates_values() {
        let e = err_fields(json!({"kind": "Service", "metadata": {"name": "Bad_Name"},
            "spec": {"owner": "t", "tier": 9, "dependsOn": ["x", "x"], "links": [{"url": "ftp://a"}]}}));
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].starts_with("metadata.name: \"Bad_Name\" must start with a lowercase letter"));
        assert!(e[1].starts_with("spec.tier: 9 is out of range"));
        assert!(e[2].starts_with("spec.dependsOn[1]: \"x\" is listed twice"));
        assert!(e[3].starts_with("spec.links[0].url"));
    }
}
