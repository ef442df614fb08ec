//! The delivery engine. Requests ([`commands`]) are checked and stored by whichever control
//! plane receives them; the [`Engine`] — run by the one control plane that holds the
//! `delivery-engine` lease — carries them out on a [`Runtime`] behind the router.
//!
//! Crash safety rests on three rules:
//! 1. the desired state of every route (versions, replicas, weights, port) and every rollout's
//!    plan and position are in the database, written *before* the engine acts on them;
//! 2. every step is idempotent ("make N replicas of V run", "route these weights"), so a
//!    restarted engine re-runs the step it was in and goes on;
//! 3. every replica is recorded with its pid and process start time; a restarted engine adopts
//!    those still running and healthy, stops the rest, starts what is missing, and stops any
//!    replica it started but never recorded — nothing orphaned, no route to a dead backend.

mod analysis;
pub mod commands;
pub mod engine;
mod http;
pub mod notify;

pub use engine::{Delivery, Engine, EngineConfig};
