//! Declarative catalog documents: reading YAML/JSON files, mapping Backstage catalog-info
//! entities onto Pave resources. No network I/O; the only I/O is reading the files named.

pub mod backstage;
pub mod documents;

use pave_model::{FieldError, Resource};

pub use documents::{CatalogError, SourceDoc};

/// An invalid document, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocError {
    pub source: String,
    pub index: usize,
    pub line: usize,
    /// `Kind name`, when the document got far enough to have them.
    pub resource: Option<String>,
    pub error: FieldError,
}

impl std::fmt::Display for DocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{} (line {})", self.source, self.index, self.line)?;
        if let Some(r) = &self.resource {
            write!(f, " ({r})")?;
        }
        write!(f, ": {}", self.error)
    }
}

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
/// entities through [`backstage::import`]. Every invalid document is reported, not just the
/// first. Returns the resources and notes for the user (what was mapped how).
pub fn resources(docs: &[SourceDoc]) -> Result<(Vec<Resource>, Vec<String>), Vec<DocError>> {
    let (backstage_docs, native): (Vec<&SourceDoc>, Vec<&SourceDoc>) =
        docs.iter().partition(|d| backstage::is_backstage(&d.value));
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for doc in native {
        match Resource::from_value(doc.value.clone()) {
            Ok(r) => out.push(r),
            Err(fields) => errors.extend(fields.into_iter().map(|f| DocError::new(doc, f))),
        }
    }
    let mut notes = Vec::new();
    if !backstage_docs.is_empty() {
        match backstage::import(&backstage_docs) {
            Ok(import) => {
                out.extend(import.resources);
                notes = import.notes;
            }
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok((out, notes)) } else { Err(errors) }
}
