//! The context a flag is evaluated against, in Unleash's shape.

use std::collections::HashMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// RFC 3339; now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_time: Option<String>,
    #[serde(default, deserialize_with = "properties", skip_serializing_if = "Properties::is_empty")]
    pub properties: Properties,
}

/// Custom context fields, kept sorted by name. Constraints look them up on every evaluation
/// and a context carries a handful, so a scan of a short vector (lengths compared first) beats
/// hashing the name: no hasher runs, and the entries sit in one cache line or two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties(Vec<(String, String)>);

/// Above this many properties a lookup bisects instead of scanning.
const SCAN_LIMIT: usize = 12;

impl Properties {
    /// The value of property `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        if self.0.len() <= SCAN_LIMIT {
            return self.0.iter().find(|(k, _)| same(k, name)).map(|(_, v)| v.as_str());
        }
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)).ok().map(|i| self.0[i].1.as_str())
    }

    /// Sets property `name`, answering the value it replaces.
    pub fn insert(&mut self, name: String, value: String) -> Option<String> {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The properties in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// String equality that settles most mismatches by length and first byte, before a `memcmp`
/// call: flag evaluation compares many short strings that differ early.
#[inline]
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.first() == b.first() && a == b
}

impl FromIterator<(String, String)> for Properties {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Properties {
        let mut p = Properties::default();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p
    }
}

impl std::ops::Index<&str> for Properties {
    type Output = str;

    fn index(&self, name: &str) -> &str {
        self.get(name).unwrap_or_else(|| panic!("no property {name:?}"))
    }
}

impl Serialize for Properties {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A context field a constraint, stickiness or override reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    UserId,
    SessionId,
    RemoteAddress,
    Environment,
    AppName,
    CurrentTime,
    Property(Box<str>),
}

impl Field {
    pub(crate) fn named(name: &str) -> Field {
        match name {
            "userId" => Field::UserId,
            "sessionId" => Field::SessionId,
            "remoteAddress" => Field::RemoteAddress,
            "environment" => Field::Environment,
            "appName" => Field::AppName,
            "currentTime" => Field::CurrentTime,
            other => Field::Property(other.into()),
        }
    }

    fn name(&self) -> &str {
        match self {
            Field::UserId => "userId",
            Field::SessionId => "sessionId",
            Field::RemoteAddress => "remoteAddress",
            Field::Environment => "environment",
            Field::AppName => "appName",
            Field::CurrentTime => "currentTime",
            Field::Property(p) => p,
        }
    }
}

impl Context {
    /// The value of `field`: the context's own field, else a property of that name (as
    /// Unleash's clients resolve it).
    pub(crate) fn get(&self, field: &Field) -> Option<&str> {
        let own = match field {
            Field::UserId => self.user_id.as_deref(),
            Field::SessionId => self.session_id.as_deref(),
            Field::RemoteAddress => self.remote_address.as_deref(),
            Field::Environment => self.environment.as_deref(),
            Field::AppName => self.app_name.as_deref(),
            Field::CurrentTime => self.current_time.as_deref(),
            Field::Property(p) => return self.properties.get(p),
        };
        own.or_else(|| if self.properties.is_empty() { None } else { self.properties.get(field.name()) })
    }
}

/// Property values may come as numbers or booleans; they are compared as strings.
fn properties<'de, D: Deserializer<'de>>(d: D) -> Result<Properties, D::Error> {
    let raw = Option::<HashMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Number(n) => Some((k, n.to_string())),
            serde_json::Value::Bool(b) => Some((k, b.to_string())),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_found_by_scan_and_by_bisection() {
        for n in [0usize, 3, SCAN_LIMIT, SCAN_LIMIT + 1, 40] {
            let mut p: Properties = (0..n).rev().map(|i| (format!("k{i}"), format!("v{i}"))).collect();
            assert_eq!(p.len(), n);
            for i in 0..n {
                assert_eq!(p.get(&format!("k{i}")), Some(format!("v{i}").as_str()), "n={n} i={i}");
            }
            assert_eq!(p.get("k"), None);
            assert_eq!(p.get(""), None);
            assert_eq!(p.insert("k0".into(), "new".into()).is_some(), n > 0);
            assert_eq!(p.get("k0"), Some("new"));
            let names: Vec<&str> = p.iter().map(|(k, _)| k).collect();
            assert!(names.windows(2).all(|w| w[0] < w[1]), "kept sorted: {names:?}");
        }
    }

    #[test]
    fn property_values_of_any_scalar_type_read_as_strings() {
        let c: Context = serde_json::from_value(serde_json::json!({
            "userId": "u1", "properties": {"tier": 3, "beta": true, "plan": "pro", "nested": {"x": 1}}
        }))
        .unwrap();
        assert_eq!((c.properties.get("tier"), c.properties.get("beta")), (Some("3"), Some("true")));
        assert_eq!(c.properties.get("nested"), None);
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["properties"], serde_json::json!({"beta": "true", "plan": "pro", "tier": "3"}));
    }
}
