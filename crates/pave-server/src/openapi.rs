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

/// The document's operations as (method, path template), methods upper-case.
pub fn documented_operations() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(document()).unwrap_or_default();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// A path with its parameters' names left out: `/a/{}/b`, so the document may name a
    /// parameter differently from the router without the check calling it another route.
    fn shape(path: &str) -> String {
        let mut out = String::new();
        let mut inside = false;
        for c in path.chars() {
            match c {
                '{' => {
                    inside = true;
                    out.push_str("{}");
                }
                '}' => inside = false,
                _ if inside => {}
                c => out.push(c),
            }
        }
        out
    }

    fn served() -> BTreeSet<(String, String)> {
        crate::operations().into_iter().map(|o| (o.method.as_str().to_owned(), shape(&o.path))).collect()
    }

    fn documented() -> BTreeSet<(String, String)> {
        super::documented_operations().into_iter().map(|(m, p)| (m, shape(&p))).collect()
    }

    #[test]
    fn every_served_operation_is_documented() {
        let missing: Vec<_> = served().difference(&documented()).cloned().collect();
        assert!(missing.is_empty(), "served but not in openapi.yaml: {missing:?}");
    }

    #[test]
    fn every_documented_operation_is_served() {
        let missing: Vec<_> = documented().difference(&served()).cloned().collect();
        assert!(missing.is_empty(), "in openapi.yaml but not served: {missing:?}");
    }

    #[test]
    fn the_table_lists_each_operation_once() {
        let ops = crate::operations();
        let unique: BTreeSet<_> = ops.iter().collect();
        assert_eq!(unique.len(), ops.len(), "an operation is in the route table twice");
        assert!(ops.len() > 60, "{} operations", ops.len());
    }
}
