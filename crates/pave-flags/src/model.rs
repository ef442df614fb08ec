//! Flag definitions in the shape Unleash's client API serves them (`GET /api/client/features`),
//! which is also what the engine compiles. Field names and defaults follow Unleash so SDKs read
//! them unchanged; scalars that Unleash sends as strings are accepted as numbers too.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// A whole flag set for one project/environment view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientFeatures {
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub features: Vec<Feature>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feature {
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub enabled: bool,
    #[serde(default)]
    pub stale: bool,
    #[serde(default)]
    pub impression_data: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub strategies: Vec<Strategy>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<Variant>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    pub name: String,
    #[serde(default, deserialize_with = "parameters", skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<u32>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    pub context_name: String,
    pub operator: String,
    #[serde(default, deserialize_with = "strings", skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, deserialize_with = "string", skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default)]
    pub inverted: bool,
    #[serde(default)]
    pub case_insensitive: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(deserialize_with = "required_string")]
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    pub context_name: String,
    #[serde(default, deserialize_with = "strings")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    pub feature: String,
    /// Whether the parent must be enabled (default) or disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// When set and not empty, the parent's variant must be one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub constraints: Vec<Constraint>,
}

/// One change of the delta API (`/api/client/delta`): a full hydration or a single update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DeltaEvent {
    #[serde(rename_all = "camelCase")]
    Hydration {
        event_id: u64,
        #[serde(default)]
        features: Vec<Feature>,
        #[serde(default)]
        segments: Vec<Segment>,
    },
    #[serde(rename_all = "camelCase")]
    FeatureUpdated { event_id: u64, feature: Feature },
    #[serde(rename_all = "camelCase")]
    FeatureRemoved {
        event_id: u64,
        feature_name: String,
        #[serde(default)]
        project: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    SegmentUpdated { event_id: u64, segment: Segment },
    #[serde(rename_all = "camelCase")]
    SegmentRemoved { event_id: u64, segment_id: u32 },
}

impl ClientFeatures {
    /// Applies delta events in order.
    pub fn apply(&mut self, events: &[DeltaEvent]) {
        for e in events {
            match e {
                DeltaEvent::Hydration { features, segments, .. } => {
                    self.features = features.clone();
                    self.segments = segments.clone();
                }
                DeltaEvent::FeatureUpdated { feature, .. } => {
                    match self.features.iter_mut().find(|f| f.name == feature.name) {
                        Some(f) => *f = feature.clone(),
                        None => self.features.push(feature.clone()),
                    }
                }
                DeltaEvent::FeatureRemoved { feature_name, .. } => self.features.retain(|f| &f.name != feature_name),
                DeltaEvent::SegmentUpdated { segment, .. } => {
                    match self.segments.iter_mut().find(|s| s.id == segment.id) {
                        Some(s) => *s = segment.clone(),
                        None => self.segments.push(segment.clone()),
                    }
                }
                DeltaEvent::SegmentRemoved { segment_id, .. } => self.segments.retain(|s| s.id != *segment_id),
            }
        }
    }
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A JSON scalar as the string Unleash would send.
fn scalar(v: serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<serde_json::Value>::deserialize(d)?.and_then(scalar))
}

fn required_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    match v {
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => Ok(v.to_string()),
        other => Ok(scalar(other).unwrap_or_default()),
    }
}

fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<serde_json::Value>>::deserialize(d)?.unwrap_or_default().into_iter().filter_map(scalar).collect())
}

fn parameters<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| scalar(v).map(|v| (k, v)))
        .collect())
}
