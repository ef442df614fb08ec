//! Errors: RFC 9457 problem documents with a stable `type`, which clients may match on.

use serde::{Deserialize, Serialize};

/// One field a request got wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidField {
    /// The index of the document in a batch (an apply, reported facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// `kind/name` of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// A dotted path (`spec.dependsOn[1]`).
    pub field: String,
    pub reason: String,
}

/// A problem document (`application/problem+json`). Pave always sends every member; RFC 9457
/// makes each optional, so reading one from anything else (a proxy, say) leaves them empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProblemDocument {
    /// `https://pave.dev/problems/{code}`: stable.
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    /// For people; it may quote what the request sent.
    #[serde(default)]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<InvalidField>,
}
