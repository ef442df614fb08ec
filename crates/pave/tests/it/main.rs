//! Integration tests: the real `pave` binary, serving on loopback, on SQLite — and on
//! PostgreSQL when `PAVE_TEST_DATABASE_URL` is set.

// A test may panic on a poisoned lock (it failed already); the one-policy rule (clippy.toml)
// is for the code under test.
#![allow(clippy::disallowed_methods)]

mod api;
mod artifacts;
mod assess;
mod canary;
mod cli;
mod crash;
mod deploy;
mod dora;
mod flags;
mod hardening;
mod harness;
mod openapi;
mod ownership;
mod policy;
mod readme;
mod releases;
mod scan;
mod sdk;
mod secrets;
mod webhooks;
