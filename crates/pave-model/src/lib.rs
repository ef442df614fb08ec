//! Pave's domain model: catalog resources, events, roles, validation and diffs — pure data and
//! pure functions, no I/O, so every rule here is tested without a database or a clock. The
//! one exception is [`clock`], where the wall clock is read for the rest of Pave (and frozen
//! in tests); nothing here calls it.

pub mod analysis;
pub mod apply;
pub mod auth;
pub mod catalog;
pub mod clock;
pub mod delivery;
pub mod diff;
pub mod event;
pub mod flags;
pub mod name;
pub mod policy;
pub mod release;
pub mod rollout;
pub mod runtime;
pub mod secrets;
pub mod selector;
pub mod time;

pub use apply::{Action, Plan, PlanError, PlannedChange, Snapshot};
pub use auth::Role;
pub use catalog::{
    Environment, EnvironmentSpec, Kind, Lifecycle, Link, Metadata, Resource, Service, ServiceSpec, Team, TeamSpec,
    TeamType,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use diff::FieldChange;
pub use event::{Event, NewEvent};
pub use name::NameError;
pub use runtime::{HealthCheck, RuntimeSpec};
pub use selector::Selector;
pub use time::Timestamp;

/// One problem with one field of an input document, in the user's terms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Dotted path of the field (`spec.dependsOn[1]`), or empty for the whole document.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() { f.write_str(&self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}
