//! Field-level differences between two JSON documents, for `--dry-run` output and update
//! events ("what changed", not just "something changed").

use serde::Serialize;
use serde_json::Value;

/// One field that differs. `old` is absent for an added field, `new` for a removed one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// Lists the leaves that differ between `old` and `new`. Objects are compared key by key;
/// arrays and scalars are compared whole (an array is one field to a reader).
pub fn diff(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(String::new(), Some(old), Some(new), &mut out);
    out
}

fn walk(path: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                walk(p, a.get(k), b.get(k), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(FieldChange { path, old: a.cloned(), new: b.cloned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_changed_added_and_removed_leaves() {
        let a = json!({"spec": {"tier": 2, "tags": ["a"], "gone": true}, "same": 1});
        let b = json!({"spec": {"tier": 1, "tags": ["a", "b"], "new": "x"}, "same": 1});
        let d = diff(&a, &b);
        let paths: Vec<_> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["spec.gone", "spec.new", "spec.tags", "spec.tier"]);
        assert_eq!(d[0].new, None);
        assert_eq!(d[1].old, None);
        assert_eq!(d[3].old, Some(json!(2)));
        assert!(diff(&a, &a).is_empty());
    }
}
