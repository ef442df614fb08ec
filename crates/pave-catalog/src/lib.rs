//! Declarative catalog documents: reading YAML/JSON files, mapping Backstage catalog-info entities onto Pave resources.
//!
//! The only I/O is reading the files named; no network, no clock.

pub mod backstage;
pub mod documents;

use pave_model::{FieldError, Resource};

pub use backstage::Import;
pub use documents::{CatalogError, SourceDoc};

/// An invalid document, located in its file: `catalog/services.yaml#2 (Service checkout):
/// spec.tier: 9 is out of range; tiers are 1 to 4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocError {
    /// File path, or `-` for stdin.
    pub source: String,
    /// 0-based document index in that file.
    pub index: usize,
    /// 1-based line where the document starts; not in the message, which names the document
    /// by index, but there for tools that jump to it.
    pub line: usize,
    /// `Kind name` as the document wrote them, when it got far enough to have them.
    pub resource: Option<String>,
    pub error: FieldError,
}

impl std::fmt::Display for DocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.source, self.index)?;
        if let Some(r) = &self.resource {
            write!(f, " ({r})")?;
        }
        write!(f, ": {}", self.error)
    }
}

impl std::error::Error for DocError {}

impl DocError {
    pub fn new(doc: &SourceDoc, error: FieldError) -> Self {
        let kind = doc.value.get("kind").and_then(|k| k.as_str());
        let name = doc.value.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str());
        let resource = match (kind, name) {
            (Some(k), Some(n)) => Some(format!("{k} {n}")),
            (Some(k), None) => Some(k.to_owned()),
            _ => None,
        };
        DocError { source: doc.source.clone(), index: doc.index, line: doc.line, resource, error }
    }
}

/// Turns documents into resources: Pave's own through the model's validation, Backstage
/// entities through [`backstage::import`]. Every problem of every document is reported, in
/// document order, not just the first. Returns the resources and notes for the user (what
/// was mapped how, and what was skipped).
pub fn resources(docs: &[SourceDoc]) -> Result<(Vec<Resource>, Vec<String>), Vec<DocError>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for doc in docs.iter().filter(|d| !backstage::is_backstage(&d.value)) {
        match Resource::from_value(doc.value.clone()) {
            Ok(r) => out.push(r),
            Err(fields) => errors.extend(fields.into_iter().map(|f| DocError::new(doc, f))),
        }
    }
    let mut notes = Vec::new();
    match backstage::import(docs) {
        Ok(import) => {
            out.extend(import.resources);
            notes = import.notes;
        }
        Err(e) => errors.extend(e),
    }
    if errors.is_empty() {
        return Ok((out, notes));
    }
    errors.sort_by_key(|e| docs.iter().position(|d| d.source == e.source && d.index == e.index));
    Err(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{load_path, parse_str};

    fn messages(errors: Vec<DocError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reports_every_invalid_document_in_order() {
        let text = "\
kind: Team
metadata: {name: payments}
spec: {type: platform}
---
- not
- a mapping
---
kind: Service
metadata: {name: checkout}
spec: {owner: payments, tier: 9, dependsOn: [cart, cart]}
---
just text
";
        let errs = resources(&parse_str(text, "catalog/services.yaml").expect("parse")).expect_err("invalid");
        assert_eq!(
            messages(errs),
            [
                "catalog/services.yaml#1: a document must be a mapping with kind, metadata and spec",
                "catalog/services.yaml#2 (Service checkout): spec.tier: 9 is out of range; tiers are 1 to 4",
                "catalog/services.yaml#2 (Service checkout): spec.dependsOn[1]: \"cart\" is listed twice",
                "catalog/services.yaml#3: a document must be a mapping with kind, metadata and spec",
            ]
        );
    }

    #[test]
    fn reads_a_directory_mixing_pave_and_backstage_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("services/cart")).expect("mkdir");
        std::fs::write(
            root.join("teams.yaml"),
            "apiVersion: pave.dev/v1\nkind: Team\nmetadata: {name: payments}\nspec: {type: platform}\n---\n\
             kind: Environment\nmetadata: {name: prod}\nspec: {order: 2, production: true}\n",
        )
        .expect("write");
        std::fs::write(
            root.join("services/cart/catalog-info.yaml"),
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: Cart_Service}\n\
             spec: {type: service, lifecycle: production, owner: group:default/payments}\n",
        )
        .expect("write");
        std::fs::write(
            root.join("services/checkout.json"),
            r#"{"apiVersion": "pave.dev/v1", "kind": "Service", "metadata": {"name": "checkout"},
                "spec": {"owner": "payments", "dependsOn": ["cart-service"]}}"#,
        )
        .expect("write");

        let docs = load_path(root).expect("load");
        let (found, notes) = resources(&docs).expect("valid");
        let names: Vec<String> = found.iter().map(|r| format!("{} {}", r.kind(), r.name())).collect();
        assert_eq!(names, ["Service checkout", "Team payments", "Environment prod", "Service cart-service"]);
        let Resource::Service(cart) = &found[3] else { panic!("service") };
        assert_eq!(cart.spec.owner, "payments");
        assert_eq!(cart.metadata.annotations[backstage::ORIGINAL_NAME], "Cart_Service");
        assert!(notes.is_empty(), "{notes:?}");

        // A bad document anywhere is reported with its file; nothing is returned.
        std::fs::write(
            root.join("services/bad.yaml"),
            "kind: Service\nmetadata: {name: x}\nspec: {owner: payments, tier: 7}\n",
        )
        .expect("write");
        let errs = resources(&load_path(root).expect("load")).expect_err("invalid");
        assert_eq!(messages(errs.clone()).len(), 1);
        assert!(errs[0].source.ends_with("bad.yaml") && errs[0].error.field == "spec.tier", "{errs:?}");
    }
}
