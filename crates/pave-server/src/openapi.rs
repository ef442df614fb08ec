//! The OpenAPI 3.1 document of the whole API, kept beside the code in `openapi.yaml` and
//! served as JSON. A test checks that every operation it lists is served.

use std::sync::OnceLock;

const SOURCE: &str = include_str!("../openapi.yaml");

/// The document as JSON text, converted once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let value: serde_json::Value = serde_yaml::from_str(SOURCE).expect("openapi.yaml is valid YAML (tested)");
        serde_json::to_string(&value).expect("JSON values serialize")
    })
}
