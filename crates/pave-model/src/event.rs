//! The event log's entries. Every state change appends events in the same transaction as the
//! projection rows it changes; read models (DORA, audit views, the portal) are built from them.

pub mod kinds;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Timestamp;

/// An event as stored: `id` is its position in the log, strictly increasing in commit order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: i64,
    /// Dotted kind, `<noun>.<verb>`: `service.created`, `team.deleted`, `token.revoked`; one
    /// of [`kinds`].
    pub kind: String,
    /// What the event is about, as `noun/name` (`service/checkout`).
    pub subject: String,
    pub time: Timestamp,
    /// Who caused it: a token's name, or `system`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub data: Value,
}

/// An event before it is appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: String,
    pub subject: String,
    pub data: Value,
}

impl NewEvent {
    pub fn new(kind: impl Into<String>, subject: impl Into<String>, data: Value) -> Self {
        Self { kind: kind.into(), subject: subject.into(), data }
    }
}
