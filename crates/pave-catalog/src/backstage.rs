//! Backstage's catalog model mapped onto Pave's, so a company's existing
//! `catalog-info.yaml` files apply unchanged:
//!
//! | Backstage | Pave |
//! | --- | --- |
//! | `Group` | `Team` (type from annotation `pave.dev/team-type`, else stream-aligned) |
//! | `User` | a member of each team in its `spec.memberOf` (its e-mail, else its name) |
//! | `Component` | `Service` (owner, lifecycle, dependsOn, repository, tags, links) |
//! | `System`, `Domain` | annotations `backstage.io/system`, `backstage.io/domain`, … on the services in them |
//! | `API` | annotations on the services that provide or consume it |
//! | `Resource` | annotation `backstage.io/depends-on-resources` on the services that depend on it |
//!
//! Backstage names allow `[A-Za-z0-9._-]`; Pave's are DNS labels, so names are lowercased
//! and `_`/`.` become `-`, the original kept in `backstage.io/original-name`.

use std::collections::{BTreeMap, BTreeSet};

use pave_model::{FieldError, Resource};
use serde_json::{Map, Value, json};

use crate::{DocError, SourceDoc};

/// Result of an import: Pave resources, and notes on what was kept where.
#[derive(Debug, Clone, Default)]
pub struct Import {
    pub resources: Vec<Resource>,
    pub notes: Vec<String>,
}

pub fn is_backstage(v: &Value) -> bool {
    v.get("apiVersion").and_then(Value::as_str).is_some_and(|a| a.starts_with("backstage.io/"))
}

/// Lowercases and replaces `_` and `.` with `-`.
pub fn normalize_name(name: &str) -> String {
    name.chars().map(|c| if c == '_' || c == '.' { '-' } else { c.to_ascii_lowercase() }).collect()
}

/// An entity reference: `[kind:][namespace/]name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRef {
    pub kind: Option<String>,
    pub name: String,
}

pub fn parse_ref(s: &str) -> EntityRef {
    let (kind, rest) = match s.split_once(':') {
        Some((k, r)) => (Some(k.to_ascii_lowercase()), r),
        None => (None, s),
    };
    let name = rest.rsplit_once('/').map_or(rest, |(_, n)| n);
    EntityRef { kind, name: normalize_name(name) }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn strings_at(v: &Value, path: &[&str]) -> Vec<String> {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return Vec::new(),
        }
    }
    cur.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

struct Entity<'a> {
    doc: &'a SourceDoc,
    kind: String,
    /// Normalised name.
    name: String,
    original: String,
}

fn label_key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// Metadata shared by every mapped resource: normalised name, labels, annotations.
fn metadata(e: &Entity<'_>, notes: &mut Vec<String>) -> Map<String, Value> {
    let mut labels = Map::new();
    if let Some(obj) = e.doc.value.get("metadata").and_then(|m| m.get("labels")).and_then(Value::as_object) {
        for (k, v) in obj {
            match v.as_str() {
                Some(s) if label_key_ok(k) => {
                    labels.insert(k.clone(), json!(s));
                }
                _ => notes.push(format!("{} {}: label {k:?} dropped (not a valid Pave label)", e.kind, e.original)),
            }
        }
    }
    let mut annotations = Map::new();
    if let Some(obj) = e.doc.value.get("metadata").and_then(|m| m.get("annotations")).and_then(Value::as_object) {
        for (k, v) in obj {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            annotations.insert(k.clone(), json!(text));
        }
    }
    if e.name != e.original {
        annotations.insert("backstage.io/original-name".into(), json!(e.original));
    }
    let mut m = Map::new();
    m.insert("name".into(), json!(e.name));
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    m
}

fn annotate(meta: &mut Map<String, Value>, key: &str, value: String) {
    let entry = meta.entry("annotations").or_insert_with(|| json!({}));
    if let Some(obj) = entry.as_object_mut() {
        obj.insert(key.to_owned(), json!(value));
    }
}

/// Maps Backstage entities onto teams and services.
pub fn import(docs: &[&SourceDoc]) -> Result<Import, Vec<DocError>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut entities = Vec::new();
    for doc in docs {
        let kind = doc.value.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
        let Some(original) = str_at(&doc.value, &["metadata", "name"]) else {
            errors.push(DocError::new(doc, FieldError::new("metadata.name", "missing")));
            continue;
        };
        entities.push(Entity { doc, kind, name: normalize_name(original), original: original.to_owned() });
    }
    fn of_kind<'e, 'd>(entities: &'e [Entity<'d>], k: &'static str) -> impl Iterator<Item = &'e Entity<'d>> {
        entities.iter().filter(move |e| e.kind == k)
    }
    let by_kind = |k: &'static str| of_kind(&entities, k);

    // Memberships from users.
    let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let groups: BTreeSet<String> = by_kind("Group").map(|g| g.name.clone()).collect();
    for user in by_kind("User") {
        let identity = str_at(&user.doc.value, &["spec", "profile", "email"]).unwrap_or(&user.original).to_owned();
        for group in strings_at(&user.doc.value, &["spec", "memberOf"]) {
            let g = parse_ref(&group).name;
            if !groups.contains(&g) {
                notes.push(format!(
                    "User {}: group {g:?} is not in this import; membership not recorded",
                    user.original
                ));
            }
            members.entry(g).or_default().insert(identity.clone());
        }
    }

    let mut resources = Vec::new();
    let mut push = |e: &Entity<'_>, value: Value, errors: &mut Vec<DocError>| match Resource::from_value(value) {
        Ok(r) => resources.push(r),
        Err(fields) => errors.extend(fields.into_iter().map(|f| DocError::new(e.doc, f))),
    };

    for g in by_kind("Group") {
        let v = &g.doc.value;
        let mut meta = metadata(g, &mut notes);
        let team_type = match str_at(v, &["metadata", "annotations", "pave.dev/team-type"]) {
            Some(t) => t.to_owned(),
            None => {
                notes.push(format!("Group {}: no pave.dev/team-type annotation; mapped as stream-aligned", g.original));
                "stream-aligned".to_owned()
            }
        };
        if let Some(t) = str_at(v, &["spec", "type"]) {
            annotate(&mut meta, "backstage.io/group-type", t.to_owned());
        }
        if let Some(p) = str_at(v, &["spec", "parent"]) {
            annotate(&mut meta, "backstage.io/parent", parse_ref(p).name);
        }
        let children = strings_at(v, &["spec", "children"]);
        if !children.is_empty() {
            annotate(
                &mut meta,
                "backstage.io/children",
                children.iter().map(|c| parse_ref(c).name).collect::<Vec<_>>().join(","),
            );
        }
        let mut all: BTreeSet<String> = strings_at(v, &["spec", "members"]).into_iter().collect();
        all.extend(members.get(&g.name).into_iter().flatten().cloned());
        let mut spec = json!({ "type": team_type, "members": all.into_iter().collect::<Vec<_>>() });
        if let Some(d) = str_at(v, &["metadata", "description"]).or_else(|| str_at(v, &["metadata", "title"])) {
            spec["description"] = json!(d);
        }
        if let Some(email) = str_at(v, &["spec", "profile", "email"]) {
            spec["contact"] = json!(email);
        }
        push(g, json!({"kind": "Team", "metadata": meta, "spec": spec}), &mut errors);
    }

    // What systems, domains, APIs and resources say, to copy onto related services.
    let systems: BTreeMap<String, &Entity<'_>> = by_kind("System").map(|s| (s.name.clone(), s)).collect();
    let domains: BTreeMap<String, &Entity<'_>> = by_kind("Domain").map(|d| (d.name.clone(), d)).collect();
    let apis: BTreeMap<String, &Entity<'_>> = by_kind("API").map(|a| (a.name.clone(), a)).collect();
    let res: BTreeMap<String, &Entity<'_>> = by_kind("Resource").map(|r| (r.name.clone(), r)).collect();
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();

    for c in by_kind("Component") {
        let v = &c.doc.value;
        let mut meta = metadata(c, &mut notes);
        let Some(owner) = str_at(v, &["spec", "owner"]) else {
            errors.push(DocError::new(c.doc, FieldError::new("spec.owner", "missing: a service needs an owning team")));
            continue;
        };
        let owner_ref = parse_ref(owner);
        if owner_ref.kind.as_deref() == Some("user") {
            errors.push(DocError::new(
                c.doc,
                FieldError::new(
                    "spec.owner",
                    format!("{owner:?} is a user; Pave services are owned by teams (groups)"),
                ),
            ));
            continue;
        }
        let lifecycle = match str_at(v, &["spec", "lifecycle"]) {
            Some(l @ ("experimental" | "production" | "deprecated")) => l.to_owned(),
            Some(other) => {
                annotate(&mut meta, "backstage.io/lifecycle", other.to_owned());
                "experimental".to_owned()
            }
            None => "experimental".to_owned(),
        };
        let mut depends_on = Vec::new();
        let mut resource_deps = Vec::new();
        for d in strings_at(v, &["spec", "dependsOn"]) {
            let r = parse_ref(&d);
            match r.kind.as_deref() {
                None | Some("component") => depends_on.push(r.name),
                Some("resource") => {
                    if let Some(e) = res.get(&r.name) {
                        used.insert(("Resource".into(), e.name.clone()));
                        if let Some(t) = str_at(&e.doc.value, &["spec", "type"]) {
                            annotate(&mut meta, &format!("backstage.io/resource-{}-type", r.name), t.to_owned());
                        }
                    }
                    resource_deps.push(r.name);
                }
                Some(other) => annotate(&mut meta, &format!("backstage.io/depends-on-{other}"), r.name),
            }
        }
        if !resource_deps.is_empty() {
            annotate(&mut meta, "backstage.io/depends-on-resources", resource_deps.join(","));
        }
        if let Some(t) = str_at(v, &["spec", "type"]) {
            annotate(&mut meta, "backstage.io/component-type", t.to_owned());
        }
        if let Some(sys) = str_at(v, &["spec", "system"]) {
            let sys = parse_ref(sys).name;
            if let Some(s) = systems.get(&sys) {
                used.insert(("System".into(), s.name.clone()));
                if let Some(d) = str_at(&s.doc.value, &["metadata", "description"]) {
                    annotate(&mut meta, "backstage.io/system-description", d.to_owned());
                }
                if let Some(dom) = str_at(&s.doc.value, &["spec", "domain"]) {
                    let dom = parse_ref(dom).name;
                    if let Some(d) = domains.get(&dom) {
                        used.insert(("Domain".into(), d.name.clone()));
                        if let Some(desc) = str_at(&d.doc.value, &["metadata", "description"]) {
                            annotate(&mut meta, "backstage.io/domain-description", desc.to_owned());
                        }
                    }
                    annotate(&mut meta, "backstage.io/domain", dom);
                }
            }
            annotate(&mut meta, "backstage.io/system", sys);
        }
        for (field, key) in
            [("providesApis", "backstage.io/provides-apis"), ("consumesApis", "backstage.io/consumes-apis")]
        {
            let list: Vec<String> = strings_at(v, &["spec", field]).iter().map(|a| parse_ref(a).name).collect();
            for a in &list {
                if let Some(e) = apis.get(a) {
                    used.insert(("API".into(), e.name.clone()));
                    if let Some(t) = str_at(&e.doc.value, &["spec", "type"]) {
                        annotate(&mut meta, &format!("backstage.io/api-{a}-type"), t.to_owned());
                    }
                }
            }
            if !list.is_empty() {
                annotate(&mut meta, key, list.join(","));
            }
        }
        let mut spec = json!({ "owner": owner_ref.name, "lifecycle": lifecycle });
        if let Some(d) = str_at(v, &["metadata", "description"]) {
            spec["description"] = json!(d);
        }
        let ann = |k: &str| str_at(v, &["metadata", "annotations", k]);
        let repo = ann("github.com/project-slug")
            .map(|s| format!("https://github.com/{s}"))
            .or_else(|| ann("gitlab.com/project-slug").map(|s| format!("https://gitlab.com/{s}")))
            .or_else(|| ann("backstage.io/source-location").map(|s| s.trim_start_matches("url:").to_owned()));
        if let Some(r) = repo {
            spec["repository"] = json!(r);
        }
        let tags = strings_at(v, &["metadata", "tags"]);
        if !tags.is_empty() {
            spec["tags"] = json!(tags);
        }
        if let Some(links) = v.get("metadata").and_then(|m| m.get("links")).and_then(Value::as_array) {
            let links: Vec<Value> = links
                .iter()
                .filter_map(|l| {
                    let url = l.get("url")?.as_str()?;
                    let mut out = json!({ "url": url });
                    if let Some(t) = l.get("title").and_then(Value::as_str) {
                        out["title"] = json!(t);
                    }
                    Some(out)
                })
                .collect();
            if !links.is_empty() {
                spec["links"] = json!(links);
            }
        }
        if !depends_on.is_empty() {
            spec["dependsOn"] = json!(depends_on);
        }
        push(c, json!({"kind": "Service", "metadata": meta, "spec": spec}), &mut errors);
    }

    for e in &entities {
        match e.kind.as_str() {
            "Group" | "User" | "Component" => {}
            k @ ("System" | "Domain" | "API" | "Resource") => {
                if used.contains(&(k.to_owned(), e.name.clone())) {
                    notes.push(format!("{k} {}: kept as annotations on the services related to it", e.original));
                } else {
                    notes.push(format!("{k} {}: kept nowhere (no imported service relates to it)", e.original));
                }
            }
            other => notes.push(format!("{other} {}: no Pave counterpart; skipped", e.original)),
        }
    }
    if errors.is_empty() { Ok(Import { resources, notes }) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::parse_str;

    const CATALOG: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata: { name: commerce, description: Selling things }
spec: { owner: guests }
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata: { name: shop, description: The web shop }
spec: { owner: guests, domain: commerce }
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: Team_A
  description: Team A
  annotations: { pave.dev/team-type: enabling }
spec:
  type: team
  profile: { email: team-a@example.com }
  parent: org
  children: []
  members: [zed]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: { name: guest }
spec: { profile: { email: guest@example.com }, memberOf: [group:default/team_a] }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: artist-web
  description: The place to be
  tags: [java]
  labels: { tier: gold }
  links: [{ url: "https://admin.example.org", title: Admin }]
  annotations: { github.com/project-slug: acme/artist-web }
spec:
  type: website
  lifecycle: beta
  owner: group:default/team_a
  system: shop
  providesApis: [artist-api]
  dependsOn: [component:default/artist-lookup, resource:default/artists-db]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: artist-lookup }
spec: { type: service, lifecycle: production, owner: team_a }
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: { name: artist-api }
spec: { type: openapi, lifecycle: production, owner: team_a, definition: "openapi: 3.0.0" }
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: { name: artists-db }
spec: { type: database, owner: team_a }
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: { name: unused-bucket }
spec: { type: s3-bucket, owner: team_a }
---
apiVersion: backstage.io/v1beta3
kind: Template
metadata: { name: new-service }
spec: {}
"#;

    fn run(text: &str) -> Result<Import, Vec<DocError>> {
        let docs = parse_str(text, "catalog-info.yaml").expect("parse");
        let refs: Vec<&SourceDoc> = docs.iter().collect();
        import(&refs)
    }

    #[test]
    fn maps_a_realistic_catalog() {
        let import = run(CATALOG).expect("import");
        assert_eq!(import.resources.len(), 3);
        let Resource::Team(team) = &import.resources[0] else { panic!("team first") };
        assert_eq!(team.metadata.name, "team-a");
        assert_eq!(team.metadata.annotations["backstage.io/original-name"], "Team_A");
        assert_eq!(team.spec.team_type, pave_model::TeamType::Enabling);
        assert_eq!(team.spec.members, ["guest@example.com", "zed"]);
        assert_eq!(team.spec.contact.as_deref(), Some("team-a@example.com"));
        assert_eq!(team.metadata.annotations["backstage.io/parent"], "org");

        let Resource::Service(web) = &import.resources[1] else { panic!("service") };
        assert_eq!(web.spec.owner, "team-a");
        assert_eq!(web.spec.lifecycle, pave_model::Lifecycle::Experimental);
        assert_eq!(web.spec.depends_on, ["artist-lookup"]);
        assert_eq!(web.spec.repository.as_deref(), Some("https://github.com/acme/artist-web"));
        assert_eq!(web.spec.tags, ["java"]);
        assert_eq!(web.spec.links[0].title.as_deref(), Some("Admin"));
        assert_eq!(web.metadata.labels["tier"], "gold");
        let a = &web.metadata.annotations;
        assert_eq!(a["backstage.io/lifecycle"], "beta");
        assert_eq!(a["backstage.io/system"], "shop");
        assert_eq!(a["backstage.io/system-description"], "The web shop");
        assert_eq!(a["backstage.io/domain"], "commerce");
        assert_eq!(a["backstage.io/domain-description"], "Selling things");
        assert_eq!(a["backstage.io/provides-apis"], "artist-api");
        assert_eq!(a["backstage.io/api-artist-api-type"], "openapi");
        assert_eq!(a["backstage.io/depends-on-resources"], "artists-db");
        assert_eq!(a["backstage.io/resource-artists-db-type"], "database");
        assert_eq!(a["backstage.io/component-type"], "website");

        let notes = import.notes.join("\n");
        assert!(notes.contains("Resource unused-bucket: kept nowhere"), "{notes}");
        assert!(notes.contains("API artist-api: kept as annotations"), "{notes}");
        assert!(notes.contains("Template new-service: no Pave counterpart; skipped"), "{notes}");
    }

    #[test]
    fn user_owned_components_are_refused() {
        let errs = run(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: x }\nspec: { owner: user:jdoe }\n",
        )
        .expect_err("refused");
        assert_eq!(errs[0].error.field, "spec.owner");
        assert!(errs[0].to_string().contains("Pave services are owned by teams"), "{}", errs[0]);
    }

    #[test]
    fn invalid_team_type_is_reported_with_location() {
        let errs = run("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: { name: g, annotations: { pave.dev/team-type: squad } }\nspec: { type: team }\n")
            .expect_err("invalid");
        assert_eq!(errs[0].error.field, "spec.type");
        assert!(errs[0].to_string().starts_with("catalog-info.yaml#0"), "{}", errs[0]);
    }

    #[test]
    fn parses_entity_refs() {
        assert_eq!(parse_ref("group:default/Team_A"), EntityRef { kind: Some("group".into()), name: "team-a".into() });
        assert_eq!(parse_ref("cart"), EntityRef { kind: None, name: "cart".into() });
        assert_eq!(
            parse_ref("Component:cart.v2"),
            EntityRef { kind: Some("component".into()), name: "cart-v2".into() }
        );
    }
}
