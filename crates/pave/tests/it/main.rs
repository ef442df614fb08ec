//! Integration tests: the real `pave` binary, serving on loopback, on SQLite — and on
//! PostgreSQL when `PAVE_TEST_DATABASE_URL` is set.

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
