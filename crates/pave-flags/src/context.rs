//! The context a flag is evaluated against, in Unleash's shape.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};

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
    #[serde(default, deserialize_with = "properties", skip_serializing_if = "HashMap::is_empty")]
    pub properties: Properties,
}

/// Custom context fields. A fast hasher: constraints look them up on every evaluation.
pub type Properties = HashMap<String, String, foldhash::fast::RandomState>;

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
            Field::Property(p) => return self.properties.get(&**p).map(String::as_str),
        };
        own.or_else(|| {
            if self.properties.is_empty() { None } else { self.properties.get(field.name()).map(String::as_str) }
        })
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
