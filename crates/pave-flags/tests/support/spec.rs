//! Reading Unleash's client specification, shared by the conformance test here and the
//! differential test against Yggdrasil (`bench/flags/tests/differential.rs` includes this file).
//! The data lives beside the repository in `../shared/data/unleash-client-specification` (or
//! where `PAVE_UNLEASH_SPEC` points). Without it the caller is told so loudly, and it is an
//! error when `PAVE_REQUIRE_SHARED_DATA=1` (as CI sets it).

use std::path::PathBuf;

use pave_flags::model::{ClientFeatures, DeltaEvent};
use serde_json::Value;

/// The specification's directory, if it is there.
pub fn spec_dir() -> Option<PathBuf> {
    pave_testkit::shared_data("unleash-client-specification", "PAVE_UNLEASH_SPEC", |d| d.join("index.json").is_file())
}

/// A spec file's flag state as one full flag set (delta files applied first).
pub fn state(v: &Value) -> ClientFeatures {
    if let Some(events) = v.get("events") {
        let events: Vec<DeltaEvent> = serde_json::from_value(events.clone()).expect("delta events parse");
        let mut s = ClientFeatures::default();
        s.apply(&events);
        return s;
    }
    serde_json::from_value(v.clone()).expect("state parses")
}
