//! Unleash's client specification, every file and every test case, run against the engine.
//! The data lives beside the repository in `../shared/data/unleash-client-specification` (or
//! where `PAVE_UNLEASH_SPEC` points). Without it the test says so loudly and fails when
//! `PAVE_REQUIRE_SHARED_DATA=1` (as CI sets it).

use std::path::PathBuf;

use pave_flags::model::{ClientFeatures, DeltaEvent};
use pave_flags::{Context, Engine};
use serde_json::Value;

fn spec_dir() -> Option<PathBuf> {
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

fn state(v: &Value) -> ClientFeatures {
    if let Some(events) = v.get("events") {
        let events: Vec<DeltaEvent> = serde_json::from_value(events.clone()).expect("delta events parse");
        let mut s = ClientFeatures::default();
        s.apply(&events);
        return s;
    }
    serde_json::from_value(v.clone()).expect("state parses")
}

#[test]
fn every_case_of_the_unleash_client_specification_passes() {
    let Some(dir) = spec_dir() else { return };
    let index: Vec<String> = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let (mut passed, mut failed) = (0, Vec::new());
    for file in &index {
        let spec: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let engine = Engine::new(&state(&spec["state"]));
        for case in spec["tests"].as_array().into_iter().flatten() {
            let ctx: Context = serde_json::from_value(case["context"].clone()).expect("context parses");
            let got = engine.is_enabled(case["toggleName"].as_str().unwrap(), &ctx);
            if Value::Bool(got) == case["expectedResult"] {
                passed += 1;
            } else {
                failed.push(format!("{file}: {} (got {got})", case["description"]));
            }
        }
        for case in spec["variantTests"].as_array().into_iter().flatten() {
            let ctx: Context = serde_json::from_value(case["context"].clone()).expect("context parses");
            let got = serde_json::to_value(engine.variant(case["toggleName"].as_str().unwrap(), &ctx)).unwrap();
            let want = &case["expectedResult"];
            let same = ["name", "payload", "enabled", "feature_enabled"].iter().all(|k| got.get(k) == want.get(k));
            if same {
                passed += 1;
            } else {
                failed.push(format!("{file}: {} (got {got}, want {want})", case["description"]));
            }
        }
    }
    println!("Unleash client specification: {passed} passed, {} failed", failed.len());
    for f in &failed {
        println!("FAILED {f}");
    }
    assert!(failed.is_empty(), "{} of {} cases failed:\n{}", failed.len(), passed + failed.len(), failed.join("\n"));
    assert!(passed >= 279, "only {passed} cases ran: is the specification complete?");
}
