//! Backstage's catalog model mapped onto Pave's, so a company's existing
//! `catalog-info.yaml` files apply unchanged:
//!
//! | Backstage | Pave |
//! | --- | --- |
//! | `Group` | `Team` (type from annotation `pave.dev/team-type`, else stream-aligned) |
//! | `User` | a member of each team it belongs to (its e-mail, else its name) |
//! | `Component` | `Service` (owner, lifecycle, dependsOn, repository, tags, links) |
//! | `System`, `Domain` | annotations `backstage.io/system`, `backstage.io/domain`, … on the services in them |
//! | `API` | `backstage.io/api-<name>-type` on the services that provide or consume it |
//! | `Resource` | `backstage.io/resource-<name>-type` on the services that depend on it |
//!
//! Nothing is dropped silently: every entity, field or label that has no Pave counterpart is
//! either kept as an annotation or named in a note. Backstage names allow `[A-Za-z0-9._-]`;
//! Pave's are DNS labels, so names are lowercased and `_`/`.` become `-`, the original kept
//! in `backstage.io/original-name`. Namespaces are ignored: Pave has one.

use std::collections::{BTreeMap, BTreeSet};

use pave_model::{FieldError, Resource};
use serde_json::{Map, Value, json};

use crate::{DocError, SourceDoc};

/// Annotation that keeps a Backstage name the normalisation changed.
pub const ORIGINAL_NAME: &str = "backstage.io/original-name";
/// Annotation on a Backstage `Group` choosing the Pave team type.
pub const TEAM_TYPE: &str = "pave.dev/team-type";

const TEAM_TYPES: [&str; 4] = ["stream-aligned", "platform", "enabling", "complicated-subsystem"];
const GROUP_SPEC: [&str; 5] = ["type", "profile", "parent", "children", "members"];
const COMPONENT_SPEC: [&str; 7] = ["type", "lifecycle", "owner", "system", "providesApis", "consumesApis", "dependsOn"];

/// Result of an import: Pave resources, and notes for the user on what was kept where.
#[derive(Debug, Clone, Default)]
pub struct Import {
    pub resources: Vec<Resource>,
    /// One human sentence each: what was kept as an annotation, defaulted or skipped, and why.
    pub notes: Vec<String>,
}

/// Whether a document is a Backstage entity: `apiVersion` `backstage.io/<any version>`, or a
/// sub-group such as `scaffolder.backstage.io/v1beta3` (templates), so that every entity of a
/// Backstage catalog is recognised, mapped or skipped with a note.
pub fn is_backstage(v: &Value) -> bool {
    let group = v.get("apiVersion").and_then(Value::as_str).and_then(|a| a.split_once('/')).map(|(g, _)| g);
    group.is_some_and(|g| g == "backstage.io" || g.ends_with(".backstage.io"))
}

/// Backstage name to Pave name: lowercased, `_` and `.` replaced with `-`. The result may
/// still be refused by Pave (a leading digit, over 63 characters); validation says so.
pub fn normalize_name(name: &str) -> String {
    name.chars().map(|c| if c == '_' || c == '.' { '-' } else { c.to_ascii_lowercase() }).collect()
}

/// An entity reference, `[kind:][namespace/]name`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRef {
    /// Lowercased, since Backstage compares kinds case-insensitively.
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: String,
}

impl EntityRef {
    pub fn parse(s: &str) -> EntityRef {
        let (kind, rest) = match s.split_once(':') {
            Some((k, r)) => (Some(k.to_ascii_lowercase()), r),
            None => (None, s),
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, n)) => (Some(ns.to_owned()), n),
            None => (None, rest),
        };
        EntityRef { kind, namespace, name: name.to_owned() }
    }

    /// The name of the Pave resource this refers to.
    pub fn pave_name(&self) -> String {
        normalize_name(&self.name)
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, p| cur.get(p))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// A list of strings; anything else (absent, not a list, non-string items) reads as empty.
fn strings_at(v: &Value, path: &[&str]) -> Vec<String> {
    at(v, path).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

fn ref_names(v: &Value, path: &[&str]) -> Vec<String> {
    strings_at(v, path).iter().map(|r| EntityRef::parse(r).pave_name()).collect()
}

struct Entity<'a> {
    doc: &'a SourceDoc,
    kind: String,
    /// Normalised (Pave) name.
    name: String,
    /// `metadata.name` as written.
    original: String,
}

impl Entity<'_> {
    fn spec(&self, path: &[&str]) -> Option<&str> {
        let mut full = vec!["spec"];
        full.extend_from_slice(path);
        str_at(&self.doc.value, &full)
    }

    fn meta(&self, key: &str) -> Option<&str> {
        str_at(&self.doc.value, &["metadata", key])
    }

    fn label(&self) -> String {
        format!("{} {}", self.kind, self.original)
    }

    fn error(&self, field: &str, reason: impl Into<String>) -> DocError {
        DocError::new(self.doc, FieldError::new(field, reason))
    }

    /// Notes each top-level `spec` field the mapping does not read.
    fn note_unmapped_spec(&self, known: &[&str], notes: &mut Vec<String>) {
        for key in self.doc.value.get("spec").and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k) {
            if !known.contains(&key.as_str()) {
                notes.push(format!("{}: spec.{key} has no Pave counterpart; skipped", self.label()));
            }
        }
    }
}

fn valid_label_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// The Pave labels and annotations of a mapped entity: labels Pave accepts, and every
/// Backstage annotation (non-string values as their JSON text).
fn labels_and_annotations(e: &Entity<'_>, notes: &mut Vec<String>) -> (Map<String, Value>, Map<String, Value>) {
    let mut labels = Map::new();
    for (k, v) in at(&e.doc.value, &["metadata", "labels"]).and_then(Value::as_object).into_iter().flatten() {
        match v.as_str() {
            Some(s) if valid_label_key(k) => {
                labels.insert(k.clone(), json!(s));
            }
            _ => notes.push(format!(
                "{}: label {k:?} skipped; Pave label keys are letters, digits, '-', '_', '.', '/' with a string value",
                e.label()
            )),
        }
    }
    let mut annotations = Map::new();
    for (k, v) in at(&e.doc.value, &["metadata", "annotations"]).and_then(Value::as_object).into_iter().flatten() {
        annotations.insert(k.clone(), json!(v.as_str().map_or_else(|| v.to_string(), str::to_owned)));
    }
    if e.name != e.original {
        annotations.insert(ORIGINAL_NAME.into(), json!(e.original));
    }
    (labels, annotations)
}

fn document(kind: &str, name: &str, labels: Map<String, Value>, annotations: Map<String, Value>, spec: Value) -> Value {
    json!({
        "kind": kind,
        "metadata": { "name": name, "labels": labels, "annotations": annotations },
        "spec": spec,
    })
}

/// Maps the Backstage entities among `docs` onto teams and services; other documents are
/// ignored. Every problem is reported, each located in its file.
pub fn import(docs: &[SourceDoc]) -> Result<Import, Vec<DocError>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();

    let mut entities: Vec<Entity<'_>> = Vec::new();
    let mut taken: BTreeMap<(String, String), (String, &SourceDoc)> = BTreeMap::new();
    for doc in docs.iter().filter(|d| is_backstage(&d.value)) {
        let Some(kind) = doc.value.get("kind").and_then(Value::as_str) else {
            errors.push(DocError::new(doc, FieldError::new("kind", "missing: every Backstage entity has a kind")));
            continue;
        };
        let Some(original) = str_at(&doc.value, &["metadata", "name"]) else {
            errors.push(DocError::new(doc, FieldError::new("metadata.name", "missing")));
            continue;
        };
        let e = Entity { doc, kind: kind.to_owned(), name: normalize_name(original), original: original.to_owned() };
        // Two entities one Pave name would make: say so here, where both can be named.
        if let Some((other, at)) = taken.get(&(e.kind.clone(), e.name.clone())) {
            errors.push(e.error(
                "metadata.name",
                format!(
                    "{original:?} becomes Pave name {:?}, already taken by {} {other} ({}#{})",
                    e.name, e.kind, at.source, at.index
                ),
            ));
            continue;
        }
        taken.insert((e.kind.clone(), e.name.clone()), (original.to_owned(), doc));
        entities.push(e);
    }
    let of_kind = |k: &'static str| entities.iter().filter(move |e| e.kind == k);
    let named =
        |k: &'static str| -> BTreeMap<String, &Entity<'_>> { of_kind(k).map(|e| (e.name.clone(), e)).collect() };
    let (groups, users, systems, domains, apis, res) =
        (named("Group"), named("User"), named("System"), named("Domain"), named("API"), named("Resource"));

    // A user is known by e-mail when it has one, so memberships declared on either side meet.
    let identity = |u: &Entity<'_>| u.spec(&["profile", "email"]).unwrap_or(&u.original).to_owned();
    let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for user in of_kind("User") {
        for group in ref_names(&user.doc.value, &["spec", "memberOf"]) {
            if groups.contains_key(&group) {
                members.entry(group).or_default().insert(identity(user));
            } else {
                notes.push(format!("{}: group {group:?} is not in this import; membership not recorded", user.label()));
            }
        }
    }

    let mut resources = Vec::new();
    let mut validate = |e: &Entity<'_>, value: Value, errors: &mut Vec<DocError>| match Resource::from_value(value) {
        Ok(r) => resources.push(r),
        Err(fields) => errors.extend(fields.into_iter().map(|f| DocError::new(e.doc, f))),
    };

    for g in of_kind("Group") {
        let v = &g.doc.value;
        let (labels, mut ann) = labels_and_annotations(g, &mut notes);
        let team_type = match str_at(v, &["metadata", "annotations", TEAM_TYPE]) {
            Some(t) if TEAM_TYPES.contains(&t) => t,
            Some(t) => {
                errors.push(g.error(
                    &format!("metadata.annotations.{TEAM_TYPE}"),
                    format!("{t:?} is not a team type; expected {}", TEAM_TYPES.join(", ")),
                ));
                continue;
            }
            None => {
                notes.push(format!("{}: no {TEAM_TYPE} annotation; mapped as a stream-aligned team", g.label()));
                "stream-aligned"
            }
        };
        if let Some(t) = g.spec(&["type"]) {
            ann.insert("backstage.io/group-type".into(), json!(t));
        }
        if let Some(p) = g.spec(&["parent"]) {
            ann.insert("backstage.io/parent".into(), json!(EntityRef::parse(p).pave_name()));
        }
        let children = ref_names(v, &["spec", "children"]);
        if !children.is_empty() {
            ann.insert("backstage.io/children".into(), json!(children.join(",")));
        }
        let mut all = members.remove(&g.name).unwrap_or_default();
        for m in strings_at(v, &["spec", "members"]) {
            let r = EntityRef::parse(&m);
            all.insert(users.get(&r.pave_name()).map_or(r.name, |u| identity(u)));
        }
        let mut spec = json!({ "type": team_type, "members": all });
        if let Some(d) = g.meta("description").or_else(|| g.meta("title")) {
            spec["description"] = json!(d);
        }
        if let Some(email) = g.spec(&["profile", "email"]) {
            spec["contact"] = json!(email);
        }
        g.note_unmapped_spec(&GROUP_SPEC, &mut notes);
        validate(g, document("Team", &g.name, labels, ann, spec), &mut errors);
    }

    // Entities kept as annotations on some service; the rest are noted as kept nowhere.
    let mut used: BTreeSet<(&str, String)> = BTreeSet::new();

    for c in of_kind("Component") {
        let v = &c.doc.value;
        let (labels, mut ann) = labels_and_annotations(c, &mut notes);
        let Some(owner) = c.spec(&["owner"]) else {
            errors.push(c.error("spec.owner", "missing: a Pave service needs an owning team"));
            continue;
        };
        let owner = EntityRef::parse(owner);
        if owner.kind.as_deref() == Some("user") {
            errors.push(c.error(
                "spec.owner",
                format!("{:?} is a user; Pave services are owned by teams, so make a group its owner", owner.name),
            ));
            continue;
        }
        let lifecycle = match c.spec(&["lifecycle"]) {
            Some(l @ ("experimental" | "production" | "deprecated")) => l,
            Some(other) => {
                ann.insert("backstage.io/lifecycle".into(), json!(other));
                notes.push(format!(
                    "{}: lifecycle {other:?} is not one of Pave's; mapped as experimental, kept in backstage.io/lifecycle",
                    c.label()
                ));
                "experimental"
            }
            None => "experimental",
        };

        let mut depends_on: Vec<String> = Vec::new();
        let mut other_deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in strings_at(v, &["spec", "dependsOn"]) {
            let r = EntityRef::parse(&d);
            let name = r.pave_name();
            match r.kind.as_deref() {
                None | Some("component") => {
                    if !depends_on.contains(&name) {
                        depends_on.push(name);
                    }
                }
                Some(kind) => {
                    if kind == "resource"
                        && let Some(e) = res.get(&name)
                    {
                        used.insert(("Resource", name.clone()));
                        if let Some(t) = e.spec(&["type"]) {
                            ann.insert(format!("backstage.io/resource-{name}-type"), json!(t));
                        }
                    }
                    other_deps.entry(kind.to_owned()).or_default().push(name);
                }
            }
        }
        // `backstage.io/depends-on-resources`, and likewise for any other kind depended on.
        for (kind, names) in other_deps {
            ann.insert(format!("backstage.io/depends-on-{kind}s"), json!(names.join(",")));
        }
        if let Some(t) = c.spec(&["type"]) {
            ann.insert("backstage.io/component-type".into(), json!(t));
        }
        if let Some(sys) = c.spec(&["system"]).map(|s| EntityRef::parse(s).pave_name()) {
            if let Some(s) = systems.get(&sys) {
                used.insert(("System", sys.clone()));
                if let Some(d) = s.meta("description") {
                    ann.insert("backstage.io/system-description".into(), json!(d));
                }
                if let Some(dom) = s.spec(&["domain"]).map(|d| EntityRef::parse(d).pave_name()) {
                    if let Some(d) = domains.get(&dom) {
                        used.insert(("Domain", dom.clone()));
                        if let Some(desc) = d.meta("description") {
                            ann.insert("backstage.io/domain-description".into(), json!(desc));
                        }
                    }
                    ann.insert("backstage.io/domain".into(), json!(dom));
                }
            }
            ann.insert("backstage.io/system".into(), json!(sys));
        }
        for (field, key) in
            [("providesApis", "backstage.io/provides-apis"), ("consumesApis", "backstage.io/consumes-apis")]
        {
            let names = ref_names(v, &["spec", field]);
            for name in &names {
                if let Some(api) = apis.get(name) {
                    used.insert(("API", name.clone()));
                    if let Some(t) = api.spec(&["type"]) {
                        ann.insert(format!("backstage.io/api-{name}-type"), json!(t));
                    }
                }
            }
            if !names.is_empty() {
                ann.insert(key.into(), json!(names.join(",")));
            }
        }

        let mut spec = json!({ "owner": owner.pave_name(), "lifecycle": lifecycle });
        if let Some(d) = c.meta("description").or_else(|| c.meta("title")) {
            spec["description"] = json!(d);
        }
        let annotation = |k: &str| str_at(v, &["metadata", "annotations", k]);
        let repository = annotation("github.com/project-slug")
            .map(|s| format!("https://github.com/{s}"))
            .or_else(|| annotation("gitlab.com/project-slug").map(|s| format!("https://gitlab.com/{s}")))
            .or_else(|| {
                annotation("backstage.io/source-location").map(|s| s.strip_prefix("url:").unwrap_or(s).to_owned())
            });
        if let Some(r) = repository {
            spec["repository"] = json!(r);
        }
        let tags = strings_at(v, &["metadata", "tags"]);
        if !tags.is_empty() {
            spec["tags"] = json!(tags);
        }
        let mut links = Vec::new();
        for link in at(v, &["metadata", "links"]).and_then(Value::as_array).into_iter().flatten() {
            match link.get("url").and_then(Value::as_str) {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    let mut l = json!({ "url": url });
                    if let Some(t) = link.get("title").and_then(Value::as_str) {
                        l["title"] = json!(t);
                    }
                    links.push(l);
                }
                _ => notes.push(format!("{}: link {link} skipped; Pave links are http(s) URLs", c.label())),
            }
        }
        if !links.is_empty() {
            spec["links"] = json!(links);
        }
        if !depends_on.is_empty() {
            spec["dependsOn"] = json!(depends_on);
        }
        c.note_unmapped_spec(&COMPONENT_SPEC, &mut notes);
        validate(c, document("Service", &c.name, labels, ann, spec), &mut errors);
    }

    for e in &entities {
        match e.kind.as_str() {
            "Group" | "User" | "Component" => {}
            k @ ("System" | "Domain" | "API" | "Resource") => {
                if used.contains(&(k, e.name.clone())) {
                    notes.push(format!("{}: kept as annotations on the services related to it", e.label()));
                } else {
                    notes.push(format!("kept nowhere: {} (no imported service relates to it)", e.label()));
                }
            }
            other => notes.push(format!("{}: skipped; Pave has no counterpart to a Backstage {other}", e.label())),
        }
    }
    if errors.is_empty() { Ok(Import { resources, notes }) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::parse_str;
    use pave_model::{Lifecycle, TeamType};

    /// In the style of Backstage's demo catalog (`packages/catalog-model/examples`).
    const CATALOG: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: artists
  description: Everything about artists
spec:
  owner: team-a
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: artist-engagement-portal
  description: Everything related to artists
spec:
  owner: team-a
  domain: artists
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team_a
  description: Team A
  annotations:
    pave.dev/team-type: enabling
spec:
  type: team
  profile:
    email: team-a@example.com
    picture: https://example.com/groups/team-a.jpeg
  parent: backstage
  children: []
  members: [user:default/breanna.davison, janelle.dawe]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: breanna.davison
spec:
  profile:
    displayName: Breanna Davison
    email: breanna-davison@example.com
  memberOf: [group:default/team_a]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: guest
spec:
  memberOf: [team_a, guests]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: artist-web
  description: The place to be, for great artists
  tags: [java, website]
  labels:
    app: artists
    "bad key!": x
  links:
    - url: https://admin.example-org.com
      title: Admin Dashboard
    - url: mailto:artists@example.com
  annotations:
    github.com/project-slug: acme/artist-web
    backstage.io/techdocs-ref: dir:.
spec:
  type: website
  lifecycle: beta
  owner: group:default/team_a
  system: artist-engagement-portal
  consumesApis: [artist-api]
  dependsOn: [component:default/artist-lookup, resource:default/artists-db, artist-lookup]
  subcomponentOf: portal
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: artist-lookup
  annotations:
    backstage.io/source-location: url:https://git.example.com/artists/lookup
spec:
  type: service
  lifecycle: production
  owner: team_a
  system: artist-engagement-portal
  providesApis: [artist-api]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: artist-api
spec:
  type: openapi
  lifecycle: production
  owner: team_a
  system: artist-engagement-portal
  definition: |
    openapi: "3.0.0"
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: artists-db
spec:
  type: database
  owner: team_a
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: unused-bucket
spec:
  type: s3-bucket
  owner: team_a
---
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: new-service
spec:
  type: service
---
apiVersion: backstage.io/v1alpha1
kind: Location
metadata:
  name: more
spec:
  targets: [./other.yaml]
"#;

    fn run(text: &str) -> Result<Import, Vec<DocError>> {
        import(&parse_str(text, "catalog-info.yaml").expect("parse"))
    }

    #[test]
    fn maps_a_realistic_catalog() {
        let import = run(CATALOG).expect("import");
        assert_eq!(import.resources.len(), 3);
        let Resource::Team(team) = &import.resources[0] else { panic!("team first") };
        assert_eq!(team.metadata.name, "team-a");
        let a = &team.metadata.annotations;
        assert_eq!(a[ORIGINAL_NAME], "team_a");
        assert_eq!(a["backstage.io/group-type"], "team");
        assert_eq!(a["backstage.io/parent"], "backstage");
        assert!(!a.contains_key("backstage.io/children"), "no children, no annotation");
        assert_eq!(team.spec.team_type, TeamType::Enabling);
        // The member listed on the group and the user naming the group are one person.
        assert_eq!(team.spec.members, ["breanna-davison@example.com", "guest", "janelle.dawe"]);
        assert_eq!(team.spec.contact.as_deref(), Some("team-a@example.com"));
        assert_eq!(team.spec.description.as_deref(), Some("Team A"));

        let Resource::Service(web) = &import.resources[1] else { panic!("service") };
        assert_eq!(web.metadata.name, "artist-web");
        assert_eq!(web.spec.owner, "team-a");
        assert_eq!(web.spec.lifecycle, Lifecycle::Experimental);
        assert_eq!(web.spec.depends_on, ["artist-lookup"], "listed twice, kept once");
        assert_eq!(web.spec.repository.as_deref(), Some("https://github.com/acme/artist-web"));
        assert_eq!(web.spec.tags, ["java", "website"]);
        assert_eq!(web.spec.links.len(), 1);
        assert_eq!(web.spec.links[0].title.as_deref(), Some("Admin Dashboard"));
        assert_eq!(web.metadata.labels.keys().collect::<Vec<_>>(), ["app"]);
        let a = &web.metadata.annotations;
        assert!(!a.contains_key(ORIGINAL_NAME));
        assert_eq!(a["backstage.io/techdocs-ref"], "dir:.");
        assert_eq!(a["backstage.io/lifecycle"], "beta");
        assert_eq!(a["backstage.io/component-type"], "website");
        assert_eq!(a["backstage.io/system"], "artist-engagement-portal");
        assert_eq!(a["backstage.io/system-description"], "Everything related to artists");
        assert_eq!(a["backstage.io/domain"], "artists");
        assert_eq!(a["backstage.io/domain-description"], "Everything about artists");
        assert_eq!(a["backstage.io/consumes-apis"], "artist-api");
        assert_eq!(a["backstage.io/api-artist-api-type"], "openapi");
        assert_eq!(a["backstage.io/depends-on-resources"], "artists-db");
        assert_eq!(a["backstage.io/resource-artists-db-type"], "database");

        let Resource::Service(lookup) = &import.resources[2] else { panic!("service") };
        assert_eq!(lookup.spec.lifecycle, Lifecycle::Production);
        assert_eq!(lookup.spec.repository.as_deref(), Some("https://git.example.com/artists/lookup"));
        assert_eq!(lookup.metadata.annotations["backstage.io/provides-apis"], "artist-api");

        let notes = import.notes.join("\n");
        for expected in [
            "User guest: group \"guests\" is not in this import",
            "Component artist-web: label \"bad key!\" skipped",
            "Component artist-web: link {\"url\":\"mailto:artists@example.com\"} skipped",
            "Component artist-web: lifecycle \"beta\" is not one of Pave's",
            "Component artist-web: spec.subcomponentOf has no Pave counterpart",
            "API artist-api: kept as annotations",
            "Domain artists: kept as annotations",
            "kept nowhere: Resource unused-bucket",
            "Template new-service: skipped; Pave has no counterpart to a Backstage Template",
            "Location more: skipped",
        ] {
            assert!(notes.contains(expected), "missing {expected:?} in\n{notes}");
        }
    }

    #[test]
    fn groups_default_to_stream_aligned_and_refuse_unknown_types() {
        let import =
            run("apiVersion: backstage.io/v1beta1\nkind: Group\nmetadata: { name: g }\nspec: { type: team }\n")
                .expect("import");
        let Resource::Team(team) = &import.resources[0] else { panic!("team") };
        assert_eq!(team.spec.team_type, TeamType::StreamAligned);
        assert!(import.notes[0].contains("mapped as a stream-aligned team"), "{:?}", import.notes);

        let errs = run("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: { name: g, annotations: { pave.dev/team-type: squad } }\nspec: { type: team }\n")
            .expect_err("invalid");
        assert_eq!(
            errs[0].to_string(),
            "catalog-info.yaml#0 (Group g): metadata.annotations.pave.dev/team-type: \"squad\" is not a team type; \
             expected stream-aligned, platform, enabling, complicated-subsystem"
        );
    }

    #[test]
    fn user_owned_components_are_refused() {
        let errs = run(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: x }\nspec: { owner: user:default/jdoe }\n",
        )
        .expect_err("refused");
        assert_eq!(errs[0].error.field, "spec.owner");
        assert!(errs[0].to_string().contains("Pave services are owned by teams"), "{}", errs[0]);
    }

    #[test]
    fn normalises_names_and_refs() {
        for (backstage, pave) in [("team_a", "team-a"), ("Breanna.Davison", "breanna-davison"), ("cart", "cart")] {
            assert_eq!(normalize_name(backstage), pave);
        }
        let parse = EntityRef::parse;
        let r = parse("group:default/Team_A");
        assert_eq!(
            (r.kind.as_deref(), r.namespace.as_deref(), r.pave_name().as_str()),
            (Some("group"), Some("default"), "team-a")
        );
        let r = parse("default/payments");
        assert_eq!((r.kind.as_deref(), r.namespace.as_deref(), r.name.as_str()), (None, Some("default"), "payments"));
        let r = parse("Component:cart.v2");
        assert_eq!(
            (r.kind.as_deref(), r.namespace.as_deref(), r.pave_name().as_str()),
            (Some("component"), None, "cart-v2")
        );
        assert_eq!(parse("payments"), EntityRef { kind: None, namespace: None, name: "payments".into() });
    }

    #[test]
    fn names_pave_cannot_take_are_located_errors() {
        let errs = run("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: 2fa_service }\nspec: { owner: a }\n---\n\
             apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: Cart }\nspec: { owner: a }\n---\n\
             apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: cart }\nspec: { owner: a }\n")
        .expect_err("invalid");
        let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("catalog-info.yaml#2 (Component cart): metadata.name: \"cart\" becomes Pave name \"cart\", already taken by Component Cart (catalog-info.yaml#1)"), "{errs:?}");
        assert!(errs[1].starts_with("catalog-info.yaml#0 (Component 2fa_service): metadata.name: \"2fa-service\" must start with a lowercase letter"), "{errs:?}");
    }
}
