//! Unleash's client specification, every file and every test case, run against the engine.
//! The data lives beside the repository in `../shared/data/unleash-client-specification` (or
//! where `PAVE_UNLEASH_SPEC` points). Without it the test says so loudly and fails when
//! `PAVE_REQUIRE_SHARED_DATA=1` (as CI sets it).

use pave_flags::{Context, Engine};
use serde_json::Value;

#[path = "support/spec.rs"]
mod spec_data;
use spec_data::{spec_dir, state};

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
