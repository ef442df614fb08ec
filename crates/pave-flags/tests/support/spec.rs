//! Reading Unleash's client specification, shared by the conformance test here and the
//! differential test against Yggdrasil (`bench/flags/tests/differential.rs` includes this file).
//! The data lives beside the repository in `../shared/data/unleash-client-specification` (or
//! where `PAVE_UNLEASH_SPEC` points). Without it the caller is told so loudly, and it is an
//! error when `PAVE_REQUIRE_SHARED_DATA=1` (as CI sets it).

use std::path::PathBuf;

use pave_flags::model::{ClientFeatures, DeltaEvent};
use serde_json::Value;

/// The specification's directory, if it is there. Both including crates sit three levels
/// below the workspace's parent.
pub fn spec_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PAVE_UNLEASH_SPEC").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/unleash-client-specification")
    });
    if dir.join("index.json").is_file() {
        return Some(dir);
    }
    eprintln!("\n!!! The Unleash client specification is MISSING at {} !!!\n", dir.display());
    assert!(
        std::env::var("PAVE_REQUIRE_SHARED_DATA").as_deref() != Ok("1"),
        "the Unleash client specification is required but missing at {}",
        dir.display()
    );
    None
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
