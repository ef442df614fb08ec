//! Feature flags that existing Unleash and OpenFeature SDKs read unchanged: the Unleash client
//! API's flag model ([`model`]), a context ([`Context`]) and an [`Engine`] that evaluates them
//! with the same results as Unleash's own clients — strategies (default, userWithId, the
//! gradual rollouts, flexibleRollout with stickiness and groupId, remoteAddress,
//! applicationHostname), constraints with every operator, segments, variants with overrides
//! and stickiness, strategy variants and dependent flags — down to the MurmurHash3 stickiness
//! hashing, so a user lands in the same bucket whichever evaluates.
//!
//! Pure: no I/O, no clock except for DATE_* constraints without a `currentTime`, no
//! randomness except for the "random" stickiness Unleash defines.

mod context;
mod engine;
pub mod model;
mod murmur;
pub mod semver;

pub use context::{Context, Properties};
pub use engine::{Engine, Resolved, VariantResult, check_constraint};
pub use murmur::murmur3_32;
