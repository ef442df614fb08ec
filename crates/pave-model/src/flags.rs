//! Feature flags as Pave stores them: a `Flag` document per flag (its project, type and one
//! configuration per environment) and reusable `Segment`s, both strictly validated — a
//! definition that SDKs could not evaluate as written is refused, never stored. What SDKs
//! read is derived from these ([`Flag::client_feature`]), in the Unleash client API's shape.
//!
//! Segments are referred to by name in documents; the Unleash wire format wants numbers, so
//! the store gives each segment a stable numeric id and callers pass the mapping in.

use std::collections::{BTreeMap, BTreeSet};

use pave_flags::model as wire;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::FieldError;

/// Largest number of values one constraint may list.
pub const MAX_CONSTRAINT_VALUES: usize = 10_000;

/// What a flag is for; it sets how long a flag may sit unchanged before it is flag debt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagType {
    /// Ships unfinished work dark; removed once the feature is fully out.
    #[default]
    Release,
    /// A/B or multivariate test; removed once decided.
    Experiment,
    /// Tunes how the system behaves (a migration, a new backend); short-lived.
    Operational,
    /// Turns a feature off in an emergency; meant to live as long as the feature.
    KillSwitch,
    /// Grants a feature to some users; meant to live as long as the feature.
    Permission,
}

impl FlagType {
    pub const ALL: [FlagType; 5] =
        [FlagType::Release, FlagType::Experiment, FlagType::Operational, FlagType::KillSwitch, FlagType::Permission];

    pub fn as_str(self) -> &'static str {
        match self {
            FlagType::Release => "release",
            FlagType::Experiment => "experiment",
            FlagType::Operational => "operational",
            FlagType::KillSwitch => "kill-switch",
            FlagType::Permission => "permission",
        }
    }

    pub fn parse(s: &str) -> Option<FlagType> {
        FlagType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// How long a flag of this type is expected to live, in days (Unleash's expectations):
    /// a flag fully on or off, or unevaluated, for longer is stale. Long-lived types are only
    /// stale when nothing has evaluated them for this long.
    pub fn expected_lifetime_days(self) -> i64 {
        match self {
            FlagType::Release | FlagType::Experiment => 40,
            FlagType::Operational => 7,
            FlagType::KillSwitch | FlagType::Permission => 90,
        }
    }

    /// Whether being fully on or off is the normal, lasting state of this type.
    pub fn long_lived(self) -> bool {
        matches!(self, FlagType::KillSwitch | FlagType::Permission)
    }
}

/// The identity of a flag or segment document.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagMetadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A feature flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    pub metadata: FlagMetadata,
    pub spec: FlagSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlagSpec {
    /// The project whose client tokens see the flag.
    #[serde(default = "default_project")]
    pub project: String,
    #[serde(default, rename = "type")]
    pub flag_type: FlagType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The team or service answerable for the flag (a name, not checked against the catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub impression_data: bool,
    /// Flags that must be on (or off, or on a given variant) for this one to be on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<FlagDependency>,
    /// The flag's configuration per environment. An environment not listed sees the flag off.
    #[serde(default)]
    pub environments: BTreeMap<String, FlagEnvironment>,
}

fn default_project() -> String {
    "default".into()
}

fn is_false(b: &bool) -> bool {
    !b
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagDependency {
    pub feature: String,
    /// Whether the parent must be on (the default) or off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When not empty, the parent's variant must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagEnvironment {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strategies: Vec<FlagStrategy>,
    /// Feature-level variants, used when the matching strategy has none of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<FlagVariant>,
}

impl FlagEnvironment {
    /// Rolls the flag out to `percent` of this environment (`pave flags rollout`): sets the
    /// rollout of its unconstrained `flexibleRollout` (adding one if there is none) and drops
    /// unconstrained `default` strategies, which would keep it at 100 %. Strategies with
    /// constraints or segments are targeting and stay as they are, as do disabled ones.
    pub fn set_rollout(&mut self, percent: u32) {
        let plain = |s: &FlagStrategy| s.constraints.is_empty() && s.segments.is_empty() && !s.disabled;
        self.strategies.retain(|s| !(s.name == "default" && plain(s)));
        match self.strategies.iter_mut().find(|s| s.name == "flexibleRollout" && plain(s)) {
            Some(s) => {
                s.parameters.insert("rollout".into(), percent.to_string());
            }
            None => self.strategies.push(FlagStrategy {
                name: "flexibleRollout".into(),
                parameters: BTreeMap::from([("rollout".into(), percent.to_string())]),
                ..Default::default()
            }),
        }
    }
}

/// One way a flag can be on. Parameters are strings on the wire; numbers are accepted here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagStrategy {
    pub name: String,
    #[serde(default, deserialize_with = "scalar_map", skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<FlagConstraint>,
    /// Names of segments whose constraints all must hold too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<FlagVariant>,
    /// A disabled strategy is kept but not served.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlagConstraint {
    pub context_name: String,
    pub operator: String,
    #[serde(default, deserialize_with = "scalars", skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, deserialize_with = "opt_scalar", skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub inverted: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlagVariant {
    pub name: String,
    /// Parts per thousand. Needed for `fix` variants; a variable variant's weight is always
    /// computed (what the fixed ones leave, shared equally), whatever is written, as Unleash does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// `fix` keeps its weight whatever else changes; `variable` (the default) shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<FlagPayload>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<FlagOverride>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagPayload {
    /// `string`, `json`, `csv` or `number`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(deserialize_with = "payload_value")]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlagOverride {
    pub context_name: String,
    #[serde(deserialize_with = "scalars")]
    pub values: Vec<String>,
}

/// Reusable constraints ("beta users", "EU customers") strategies refer to by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub metadata: FlagMetadata,
    pub spec: SegmentSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub constraints: Vec<FlagConstraint>,
}

fn scalar(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected a string, number or boolean, found {other}")),
    }
}

fn scalars<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<Value>::deserialize(d)?.into_iter().map(scalar).collect::<Result<_, _>>().map_err(serde::de::Error::custom)
}

fn opt_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<Value>::deserialize(d)?.map(scalar).transpose().map_err(serde::de::Error::custom)
}

fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    BTreeMap::<String, Value>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| scalar(v).map(|v| (k, v)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

/// A JSON payload may be written as a YAML/JSON object; it is stored as its JSON text.
fn payload_value<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        v @ (Value::Object(_) | Value::Array(_)) => Ok(v.to_string()),
        other => scalar(other).map_err(serde::de::Error::custom),
    }
}

/// Strategies Pave serves; SDKs evaluate each the same way.
pub const STRATEGIES: [&str; 8] = [
    "default",
    "flexibleRollout",
    "userWithId",
    "remoteAddress",
    "applicationHostname",
    "gradualRolloutUserId",
    "gradualRolloutSessionId",
    "gradualRolloutRandom",
];

/// Checks a flag or segment name: 1–100 characters of letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit (URL-safe, as Unleash requires).
pub fn validate_flag_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 100 {
        return Err(format!("is {} characters long; the limit is 100", name.len()));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("must start with a letter or digit: {name:?}"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("may only contain letters, digits, '-', '_' and '.', found {c:?}"));
    }
    // These are API paths under /api/v1/flags/.
    if matches!(name, "apply" | "stale") {
        return Err(format!("{name:?} is reserved; choose another name"));
    }
    Ok(())
}

impl Flag {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Reads a flag document (`kind: Flag` optional), naming the first field that is wrong.
    pub fn from_value(v: Value) -> Result<Flag, Vec<FieldError>> {
        Flag::read(v, false)
    }

    /// A flag as the store kept it. Flags stored before Pave weighed variants as Unleash does
    /// kept the weights written on variable variants (adding up to 1000): read back, those
    /// weights become `fix` ([`keep_stored_weights`]), so an upgrade moves no user to another
    /// variant and the stored definition means the same to Unleash.
    pub fn from_stored_value(v: Value) -> Result<Flag, Vec<FieldError>> {
        Flag::read(v, true)
    }

    fn read(mut v: Value, stored: bool) -> Result<Flag, Vec<FieldError>> {
        take_kind(&mut v, "Flag")?;
        let mut flag: Flag = serde_path_to_error::deserialize(v).map_err(|e| vec![path_error(e)])?;
        for c in flag.spec.environments.values_mut().flat_map(|e| &mut e.strategies).flat_map(|s| &mut s.constraints) {
            c.trim_operands();
        }
        if stored {
            for cfg in flag.spec.environments.values_mut() {
                for s in &mut cfg.strategies {
                    keep_stored_weights(&mut s.variants);
                }
                keep_stored_weights(&mut cfg.variants);
            }
        }
        let errors = flag.validate();
        if errors.is_empty() { Ok(flag.normalized()) } else { Err(errors) }
    }

    pub fn to_value(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("a flag serialises");
        if let Value::Object(m) = &mut v {
            m.insert("kind".into(), Value::from("Flag"));
        }
        v
    }

    /// Every problem with the flag on its own (references to other flags, segments and
    /// environments are checked by the store, which knows them).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(e) = validate_flag_name(&self.metadata.name) {
            errors.push(FieldError::new("metadata.name", e));
        }
        if let Err(e) = crate::name::validate(&self.spec.project) {
            errors.push(FieldError::new("spec.project", format!("project name {e}")));
        }
        for (i, d) in self.spec.dependencies.iter().enumerate() {
            let at = format!("spec.dependencies[{i}]");
            if d.feature == self.metadata.name {
                errors.push(FieldError::new(format!("{at}.feature"), "a flag cannot depend on itself"));
            } else if let Err(e) = validate_flag_name(&d.feature) {
                errors.push(FieldError::new(format!("{at}.feature"), e));
            }
            if !d.enabled && !d.variants.is_empty() {
                errors
                    .push(FieldError::new(format!("{at}.variants"), "variants only apply when the parent must be on"));
            }
        }
        for (env, cfg) in &self.spec.environments {
            let at = format!("spec.environments.{env}");
            if let Err(e) = crate::name::validate(env) {
                errors.push(FieldError::new(&at, format!("environment name {e}")));
            }
            for (i, s) in cfg.strategies.iter().enumerate() {
                validate_strategy(s, &format!("{at}.strategies[{i}]"), &mut errors);
            }
            validate_variants(&cfg.variants, &format!("{at}.variants"), &mut errors);
        }
        errors
    }

    /// The flag with defaults filled in: a flexibleRollout's groupId (the flag's name) and
    /// stickiness, and every variant's weight (Unleash's rule, [`settle_weights`]), so what is
    /// stored is what is served. Idempotent: stored flags go through it again when read.
    pub fn normalized(mut self) -> Flag {
        let name = self.metadata.name.clone();
        for cfg in self.spec.environments.values_mut() {
            for s in &mut cfg.strategies {
                if s.name == "flexibleRollout" {
                    s.parameters.entry("groupId".into()).or_insert_with(|| name.clone());
                    s.parameters.entry("stickiness".into()).or_insert_with(|| "default".into());
                }
                settle_weights(&mut s.variants);
            }
            settle_weights(&mut cfg.variants);
        }
        self
    }

    /// Every segment name the flag's strategies use.
    pub fn segment_names(&self) -> BTreeSet<&str> {
        self.spec
            .environments
            .values()
            .flat_map(|e| &e.strategies)
            .flat_map(|s| s.segments.iter().map(String::as_str))
            .collect()
    }

    /// Whether the flag is on for everyone in `env`, off for everyone, or neither.
    pub fn exposure(&self, env: &str) -> Exposure {
        let Some(cfg) = self.spec.environments.get(env).filter(|c| c.enabled) else {
            return Exposure::Off;
        };
        let live: Vec<_> = cfg.strategies.iter().filter(|s| !s.disabled).collect();
        if live.is_empty() {
            // An enabled flag without strategies is on for everyone (Unleash's rule).
            return Exposure::On;
        }
        let full = |s: &&FlagStrategy| {
            s.constraints.is_empty()
                && s.segments.is_empty()
                && match s.name.as_str() {
                    "default" => true,
                    "flexibleRollout" => s.parameters.get("rollout").is_some_and(|r| r.trim() == "100"),
                    _ => false,
                }
        };
        if live.iter().any(full) { Exposure::On } else { Exposure::Partial }
    }

    /// What SDKs read for `env`: the flag in the Unleash client API's shape, segment names
    /// turned into ids with `segment_id`. A flag without configuration for `env` is off.
    pub fn client_feature(&self, env: &str, segment_id: &dyn Fn(&str) -> Option<u32>) -> wire::Feature {
        let cfg = self.spec.environments.get(env);
        wire::Feature {
            name: self.metadata.name.clone(),
            kind: Some(self.spec.flag_type.as_str().to_owned()),
            description: self.spec.description.clone(),
            project: Some(self.spec.project.clone()),
            enabled: cfg.is_some_and(|c| c.enabled),
            stale: false,
            impression_data: self.spec.impression_data,
            strategies: cfg
                .into_iter()
                .flat_map(|c| &c.strategies)
                .filter(|s| !s.disabled)
                .map(|s| wire::Strategy {
                    name: s.name.clone(),
                    parameters: s.parameters.clone(),
                    constraints: s.constraints.iter().map(FlagConstraint::to_wire).collect(),
                    segments: s.segments.iter().filter_map(|n| segment_id(n)).collect(),
                    variants: wire_variants(&s.variants),
                })
                .collect(),
            variants: cfg.map(|c| wire_variants(&c.variants)).unwrap_or_default(),
            dependencies: self
                .spec
                .dependencies
                .iter()
                .map(|d| wire::Dependency {
                    feature: d.feature.clone(),
                    enabled: Some(d.enabled),
                    variants: (!d.variants.is_empty()).then(|| d.variants.clone()),
                })
                .collect(),
        }
    }
}

/// Operators of the newest Unleash client specification that SDKs and proxies still in wide use
/// may read as unknown, and so the constraint as false: such an SDK sees the flag off where
/// Pave's own answers (frontend API, OFREP) say on. With the version of Yggdrasil, the engine of
/// Unleash's Python, Ruby, .NET, Java and Go SDKs, that first evaluates each (its changelog).
pub const RECENT_OPERATORS: [(&str, &str); 4] =
    [("REGEX", "0.21.0"), ("SEMVER_GTE", "0.21.1"), ("SEMVER_LTE", "0.21.1"), ("IN_CIDR", "0.21.1")];

/// SDKs that evaluate nothing themselves: they ask Pave's frontend API, which evaluates every
/// operator (their `sdkVersion` names, before the `:version`).
const REMOTE_SDKS: [&str; 2] = ["unleash-client-js", "unleash-proxy-client"];

/// Why some SDK registered in an environment may answer a flag differently from Pave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorWarning {
    pub environment: String,
    /// Recent operators the flag uses there, in [`RECENT_OPERATORS`] order.
    pub operators: Vec<String>,
    /// The SDKs registered in that environment that evaluate locally (`name:version`, as they
    /// reported it).
    pub sdks: Vec<String>,
    pub message: String,
}

impl Flag {
    /// The [`RECENT_OPERATORS`] the flag's live strategies use in `env`, their own constraints
    /// and those of the segments they name (`segment` finds a segment's constraints).
    pub fn recent_operators(
        &self,
        env: &str,
        segment: &dyn Fn(&str) -> Option<Vec<FlagConstraint>>,
    ) -> Vec<&'static str> {
        let Some(cfg) = self.spec.environments.get(env).filter(|c| c.enabled) else {
            return Vec::new();
        };
        let mut used = BTreeSet::new();
        for s in cfg.strategies.iter().filter(|s| !s.disabled) {
            used.extend(s.constraints.iter().map(|c| c.operator.clone()));
            for name in &s.segments {
                used.extend(segment(name).into_iter().flatten().map(|c| c.operator));
            }
        }
        RECENT_OPERATORS.iter().map(|(op, _)| *op).filter(|op| used.contains(*op)).collect()
    }

    /// Warnings for the environments where the flag uses a recent operator and an SDK that
    /// evaluates locally has registered (`clients`: environment and `sdkVersion` of each). Pave
    /// cannot tell which engine version an SDK release embeds, so it names each such SDK.
    pub fn operator_warnings(
        &self,
        segment: &dyn Fn(&str) -> Option<Vec<FlagConstraint>>,
        clients: &[(String, String)],
    ) -> Vec<OperatorWarning> {
        let mut out = Vec::new();
        for env in self.spec.environments.keys() {
            let operators = self.recent_operators(env, segment);
            if operators.is_empty() {
                continue;
            }
            let sdks: BTreeSet<&str> = clients
                .iter()
                .filter(|(e, sdk)| e == env && evaluates_locally(sdk))
                .map(|(_, sdk)| if sdk.is_empty() { "an SDK that sent no sdkVersion" } else { sdk.as_str() })
                .collect();
            if sdks.is_empty() {
                continue;
            }
            let needs: Vec<String> = operators
                .iter()
                .map(|op| {
                    let since = RECENT_OPERATORS.iter().find(|(o, _)| o == op).map_or("", |(_, v)| v);
                    format!("{op} (Yggdrasil {since}+)")
                })
                .collect();
            let sdks: Vec<String> = sdks.into_iter().map(String::from).collect();
            let message = format!(
                "in {env} the flag uses {}, which older SDKs and proxies read as unknown (the constraint false, the flag off where Pave says on); SDKs registered there that evaluate locally: {}. Check that each evaluates these operators (see the SDK table in README.md)",
                needs.join(", "),
                sdks.join(", ")
            );
            out.push(OperatorWarning {
                environment: env.clone(),
                operators: operators.iter().map(|o| o.to_string()).collect(),
                sdks,
                message,
            });
        }
        out
    }
}

/// Whether an SDK (its reported `sdkVersion`, `name:version`) evaluates flags itself.
fn evaluates_locally(sdk: &str) -> bool {
    let name = sdk.split(':').next().unwrap_or_default();
    !REMOTE_SDKS.contains(&name)
}

/// How much of an environment's traffic a flag is on for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    Off,
    Partial,
    On,
}

impl Segment {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    pub fn from_value(mut v: Value) -> Result<Segment, Vec<FieldError>> {
        take_kind(&mut v, "Segment")?;
        let mut seg: Segment = serde_path_to_error::deserialize(v).map_err(|e| vec![path_error(e)])?;
        seg.spec.constraints.iter_mut().for_each(FlagConstraint::trim_operands);
        let mut errors = Vec::new();
        if let Err(e) = validate_flag_name(&seg.metadata.name) {
            errors.push(FieldError::new("metadata.name", e));
        }
        if seg.spec.constraints.is_empty() {
            errors.push(FieldError::new("spec.constraints", "a segment needs at least one constraint"));
        }
        for (i, c) in seg.spec.constraints.iter().enumerate() {
            validate_constraint(c, &format!("spec.constraints[{i}]"), &mut errors);
        }
        if errors.is_empty() { Ok(seg) } else { Err(errors) }
    }

    pub fn to_value(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("a segment serialises");
        if let Value::Object(m) = &mut v {
            m.insert("kind".into(), Value::from("Segment"));
        }
        v
    }

    pub fn to_wire(&self, id: u32) -> wire::Segment {
        wire::Segment {
            id,
            name: Some(self.metadata.name.clone()),
            constraints: self.spec.constraints.iter().map(FlagConstraint::to_wire).collect(),
        }
    }
}

impl FlagConstraint {
    /// Trims the operands of operators that compare numbers, dates, versions or networks: SDKs
    /// on Yggdrasil read `" 10.0.0.0/8"` as no network at all (and Pave reads context values as
    /// sent, as they do), so what Pave stores is written as every engine reads it. Stored flags
    /// written before this are trimmed when read.
    fn trim_operands(&mut self) {
        let op = self.operator.as_str();
        let single = op.starts_with("NUM_") || op.starts_with("SEMVER_") || op.starts_with("DATE_");
        if single && let Some(v) = &mut self.value {
            *v = v.trim().to_owned();
        }
        if single || op == "IN_CIDR" {
            self.values.iter_mut().for_each(|v| *v = v.trim().to_owned());
        }
    }

    fn to_wire(&self) -> wire::Constraint {
        wire::Constraint {
            context_name: self.context_name.clone(),
            operator: self.operator.clone(),
            values: self.values.clone(),
            value: self.value.clone(),
            inverted: self.inverted,
            case_insensitive: self.case_insensitive,
        }
    }
}

/// Variants as unleash-server stores and serves them: sorted by name (its
/// `a.name.localeCompare(b.name)`), which decides who gets which variant, since SDKs walk the
/// list in order. The document keeps the order it was written in: the remainder of the weights
/// goes by that order ([`settle_weights`]), and keeping it is what makes reading a stored flag
/// again give the same weights.
fn wire_variants(variants: &[FlagVariant]) -> Vec<wire::Variant> {
    let mut sorted: Vec<&FlagVariant> = variants.iter().collect();
    sorted.sort_by(|a, b| unleash_name_order(&a.name, &b.name));
    sorted.into_iter().map(FlagVariant::to_wire).collect()
}

/// The order of Node's `String.prototype.localeCompare` (ICU's root collation, as unleash-server
/// runs it) for names of printable ASCII: spaces, then punctuation and symbols in ICU's order,
/// then digits, then letters, case ignored until everything else is equal and then lower case
/// first. Other characters sort after ASCII by code point (an approximation: ICU interleaves
/// them by script, which names of flags' variants rarely need).
pub fn unleash_name_order(a: &str, b: &str) -> std::cmp::Ordering {
    /// Printable ASCII in ICU's root order, measured with Node 20.20.2 (ICU 78.2):
    /// `chars.sort((a, b) => a.localeCompare(b))`, letters folded to lower case.
    const ORDER: &[u8] = b" _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";
    fn primary(c: char) -> u32 {
        let folded = c.to_ascii_lowercase();
        match folded.is_ascii() {
            true => ORDER.iter().position(|&o| char::from(o) == folded).map_or(u32::from(c), |i| i as u32),
            false => 0x100 + u32::from(c),
        }
    }
    a.chars()
        .map(primary)
        .cmp(b.chars().map(primary))
        .then_with(|| a.chars().map(|c| c.is_ascii_uppercase()).cmp(b.chars().map(|c| c.is_ascii_uppercase())))
        .then_with(|| a.cmp(b))
}

impl FlagVariant {
    fn is_fixed(&self) -> bool {
        self.weight_type.as_deref() == Some("fix")
    }

    fn to_wire(&self) -> wire::Variant {
        wire::Variant {
            name: self.name.clone(),
            weight: self.weight.unwrap_or(0),
            weight_type: Some(self.weight_type.clone().unwrap_or_else(|| "variable".into())),
            stickiness: Some(self.stickiness.clone().unwrap_or_else(|| "default".into())),
            payload: self.payload.as_ref().map(|p| wire::Payload { kind: p.kind.clone(), value: p.value.clone() }),
            overrides: self
                .overrides
                .iter()
                .map(|o| wire::Override { context_name: o.context_name.clone(), values: o.values.clone() })
                .collect(),
        }
    }
}

fn take_kind(v: &mut Value, expected: &str) -> Result<(), Vec<FieldError>> {
    let Value::Object(m) = v else {
        return Err(vec![FieldError::new("", format!("a {expected} document must be an object"))]);
    };
    match m.remove("kind") {
        None => Ok(()),
        Some(Value::String(k)) if k == expected => Ok(()),
        Some(other) => Err(vec![FieldError::new("kind", format!("expected {expected}, found {other}"))]),
    }
}

fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = e.path().to_string();
    FieldError::new(if path == "." { String::new() } else { path }, e.into_inner().to_string())
}

fn validate_strategy(s: &FlagStrategy, at: &str, errors: &mut Vec<FieldError>) {
    if !STRATEGIES.contains(&s.name.as_str()) {
        errors.push(FieldError::new(
            format!("{at}.name"),
            format!("unknown strategy {:?}; Pave serves {}", s.name, STRATEGIES.join(", ")),
        ));
        return;
    }
    let param = |k: &str| s.parameters.get(k).map(|v| v.trim());
    let percent = |k: &str, errors: &mut Vec<FieldError>| match param(k) {
        None => errors.push(FieldError::new(format!("{at}.parameters.{k}"), "missing: a percentage from 0 to 100")),
        Some(v) => match v.parse::<u32>() {
            Ok(0..=100) => {}
            _ => errors.push(FieldError::new(
                format!("{at}.parameters.{k}"),
                format!("{v:?} is not a whole percentage from 0 to 100"),
            )),
        },
    };
    let list = |k: &str, what: &str, errors: &mut Vec<FieldError>| -> Vec<String> {
        let items: Vec<String> =
            param(k).unwrap_or("").split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect();
        if items.is_empty() {
            errors.push(FieldError::new(
                format!("{at}.parameters.{k}"),
                format!("missing: a comma-separated list of {what}"),
            ));
        }
        items
    };
    match s.name.as_str() {
        "flexibleRollout" => percent("rollout", errors),
        "gradualRolloutUserId" | "gradualRolloutSessionId" | "gradualRolloutRandom" => percent("percentage", errors),
        "userWithId" => {
            list("userIds", "user ids", errors);
        }
        "applicationHostname" => {
            list("hostNames", "host names", errors);
        }
        "remoteAddress" => {
            for ip in list("IPs", "IP addresses or CIDR ranges", errors) {
                if !valid_ip_or_cidr(&ip) {
                    errors.push(FieldError::new(
                        format!("{at}.parameters.IPs"),
                        format!("{ip:?} is not an IP address or CIDR range"),
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, c) in s.constraints.iter().enumerate() {
        validate_constraint(c, &format!("{at}.constraints[{i}]"), errors);
    }
    for (i, n) in s.segments.iter().enumerate() {
        if let Err(e) = validate_flag_name(n) {
            errors.push(FieldError::new(format!("{at}.segments[{i}]"), e));
        }
    }
    validate_variants(&s.variants, &format!("{at}.variants"), errors);
}

fn valid_ip_or_cidr(s: &str) -> bool {
    match s.split_once('/') {
        None => s.parse::<std::net::IpAddr>().is_ok(),
        Some((ip, bits)) => match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
            (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
            (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
            _ => false,
        },
    }
}

/// Operators that compare against a list (`values`) rather than one `value`.
const LIST_OPERATORS: [&str; 6] = ["IN", "NOT_IN", "STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH", "IN_CIDR"];

fn validate_constraint(c: &FlagConstraint, at: &str, errors: &mut Vec<FieldError>) {
    if c.context_name.trim().is_empty() {
        errors.push(FieldError::new(format!("{at}.contextName"), "must not be empty"));
    }
    if c.values.len() > MAX_CONSTRAINT_VALUES {
        errors.push(FieldError::new(
            format!("{at}.values"),
            format!("{} values; the limit is {MAX_CONSTRAINT_VALUES}", c.values.len()),
        ));
    }
    if LIST_OPERATORS.contains(&c.operator.as_str()) && c.values.is_empty() {
        errors.push(FieldError::new(format!("{at}.values"), format!("{} needs at least one value", c.operator)));
        return;
    }
    let wire = c.to_wire();
    if let Err(e) = pave_flags::check_constraint(&wire) {
        let field = if e.starts_with("unknown operator") {
            "operator"
        } else if c.value.is_some() {
            "value"
        } else {
            "values"
        };
        errors.push(FieldError::new(format!("{at}.{field}"), e));
    }
}

fn validate_variants(variants: &[FlagVariant], at: &str, errors: &mut Vec<FieldError>) {
    if variants.is_empty() {
        return;
    }
    let mut seen = BTreeSet::new();
    let mut fixed = 0u64;
    for (i, v) in variants.iter().enumerate() {
        let vat = format!("{at}[{i}]");
        if v.name.trim().is_empty() {
            errors.push(FieldError::new(format!("{vat}.name"), "must not be empty"));
        } else if !seen.insert(v.name.as_str()) {
            errors.push(FieldError::new(format!("{vat}.name"), format!("variant {:?} is listed twice", v.name)));
        }
        let fix = match v.weight_type.as_deref() {
            None | Some("variable") => false,
            Some("fix") => true,
            Some(other) => {
                errors.push(FieldError::new(
                    format!("{vat}.weightType"),
                    format!("{other:?} is not a weight type; use variable or fix"),
                ));
                false
            }
        };
        match v.weight {
            Some(w) if w > 1000 => errors
                .push(FieldError::new(format!("{vat}.weight"), format!("{w} is more than 1000 (parts per thousand)"))),
            Some(w) if fix => fixed += u64::from(w),
            None if fix => errors.push(FieldError::new(format!("{vat}.weight"), "a fix variant needs a weight")),
            _ => {}
        }
        if let Some(p) = &v.payload {
            let bad = match p.kind.as_str() {
                "string" | "csv" => None,
                "json" => serde_json::from_str::<Value>(&p.value).err().map(|e| format!("not valid JSON: {e}")),
                "number" => p.value.trim().parse::<f64>().err().map(|_| format!("{:?} is not a number", p.value)),
                other => Some(format!("{other:?} is not a payload type; use string, json, csv or number")),
            };
            if let Some(reason) = bad {
                errors.push(FieldError::new(format!("{vat}.payload"), reason));
            }
        }
        for (j, o) in v.overrides.iter().enumerate() {
            if o.context_name.trim().is_empty() {
                errors.push(FieldError::new(format!("{vat}.overrides[{j}].contextName"), "must not be empty"));
            }
            if o.values.is_empty() {
                errors.push(FieldError::new(format!("{vat}.overrides[{j}].values"), "needs at least one value"));
            }
        }
    }
    // unleash-server's two refusals (`fixVariantWeights`).
    if variants.iter().all(FlagVariant::is_fixed) {
        errors.push(FieldError::new(
            at,
            "every variant is weightType fix; at least one must be variable to take what the others leave",
        ));
    } else if fixed > 1000 {
        errors.push(FieldError::new(
            at,
            format!("the fix variants' weights add up to {fixed}, more than 1000 (parts per thousand)"),
        ));
    }
}

/// Unleash's weights (unleash-server's `FeatureToggleService.fixVariantWeights`,
/// src/lib/features/feature-toggle/feature-toggle-service.ts): `fix` variants keep theirs; every
/// variable one gets `floor((1000 - fixed) / count)`, whatever weight it was given, and the first
/// `(1000 - fixed) % count` variable ones in the order written one part more. (unleash-server
/// then sorts by name; Pave sorts when it serves, [`wire_variants`].)
fn settle_weights(variants: &mut [FlagVariant]) {
    let fixed: u32 = variants.iter().filter(|v| v.is_fixed()).filter_map(|v| v.weight).sum();
    let variable = variants.iter().filter(|v| !v.is_fixed()).count() as u32;
    if variable == 0 {
        return;
    }
    let left = 1000u32.saturating_sub(fixed);
    let (share, mut extra) = (left / variable, left % variable);
    for v in variants.iter_mut().filter(|v| !v.is_fixed()) {
        v.weight = Some(share + u32::from(extra > 0));
        extra = extra.saturating_sub(1);
    }
}

/// Variants stored by a Pave that kept written weights: if Unleash's rule would give them
/// other weights (or every one is `fix`), and the written ones add up to 1000 as that Pave
/// required, every variant but the last becomes `fix` and the last stays variable, so it takes
/// what is left: its own weight. Variants already settled by Unleash's rule are left alone.
fn keep_stored_weights(variants: &mut [FlagVariant]) {
    let Some(last) = variants.len().checked_sub(1) else { return };
    let mut settled = variants.to_vec();
    settle_weights(&mut settled);
    let settled_already = settled == variants && !variants.iter().all(FlagVariant::is_fixed);
    let written: u32 = variants.iter().filter_map(|v| v.weight).sum();
    if settled_already || written != 1000 || variants.iter().any(|v| v.weight.is_none()) {
        return;
    }
    for (i, v) in variants.iter_mut().enumerate() {
        v.weight_type = Some(if i == last { "variable" } else { "fix" }.into());
    }
}

/// What staleness is judged on, for one flag.
#[derive(Debug, Clone)]
pub struct FlagFacts<'a> {
    pub flag: &'a Flag,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Environment → (exposure, since when, in ms).
    pub exposure: BTreeMap<&'a str, (Exposure, i64)>,
    /// When an SDK last reported evaluating it, anywhere.
    pub last_seen: Option<i64>,
}

/// Why a flag is flag debt, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub reason: String,
    pub since: i64,
}

/// Whether a flag is stale at `now`: no SDK has evaluated it for longer than its type's
/// expected lifetime (or `days`), or — for short-lived types — it has been fully on or
/// fully off in every environment for that long, so the flag no longer decides anything.
pub fn staleness(f: &FlagFacts<'_>, now: i64, days: Option<i64>) -> Option<Stale> {
    let t = f.flag.spec.flag_type;
    let days = days.unwrap_or_else(|| t.expected_lifetime_days());
    let limit = now - days * 86_400_000;
    let quiet_since = f.last_seen.unwrap_or(f.created_at);
    if quiet_since <= limit {
        let reason = match f.last_seen {
            None => format!("never evaluated in the {} days since it was created", (now - f.created_at) / 86_400_000),
            Some(_) => format!("not evaluated for {} days", (now - quiet_since) / 86_400_000),
        };
        return Some(Stale { reason, since: quiet_since });
    }
    if t.long_lived() || f.exposure.is_empty() {
        return None;
    }
    if f.exposure.values().any(|(e, _)| *e == Exposure::Partial) {
        return None;
    }
    let since = f.exposure.values().map(|(_, s)| *s).max().unwrap_or(f.created_at);
    if since > limit {
        return None;
    }
    let state: Vec<String> = f
        .exposure
        .iter()
        .map(|(env, (e, _))| format!("{} in {env}", if *e == Exposure::On { "fully on" } else { "off" }))
        .collect();
    Some(Stale {
        reason: format!(
            "{} for {} days (a {} flag is expected to live {days})",
            state.join(", "),
            (now - since) / 86_400_000,
            t.as_str()
        ),
        since,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_rollout_replaces_the_plain_default_and_keeps_targeting() {
        let strategy = |name: &str, constrained: bool, disabled: bool| FlagStrategy {
            name: name.into(),
            constraints: if constrained {
                vec![FlagConstraint { context_name: "userId".into(), operator: "IN".into(), ..Default::default() }]
            } else {
                vec![]
            },
            disabled,
            ..Default::default()
        };
        let rollout = |e: &FlagEnvironment| -> Vec<(String, Option<String>)> {
            e.strategies.iter().map(|s| (s.name.clone(), s.parameters.get("rollout").cloned())).collect()
        };
        // A plain default is replaced by a flexibleRollout at the percentage.
        let mut env = FlagEnvironment {
            enabled: true,
            strategies: vec![strategy("default", false, false)],
            ..Default::default()
        };
        env.set_rollout(25);
        assert_eq!(rollout(&env), [("flexibleRollout".to_owned(), Some("25".to_owned()))]);
        // The existing plain flexibleRollout is changed in place, not duplicated.
        env.set_rollout(60);
        assert_eq!(rollout(&env), [("flexibleRollout".to_owned(), Some("60".to_owned()))]);
        // Targeting (a constrained default, a constrained or disabled flexibleRollout) stays.
        let mut env = FlagEnvironment {
            enabled: true,
            strategies: vec![
                strategy("default", true, false),
                strategy("flexibleRollout", true, false),
                strategy("flexibleRollout", false, true),
            ],
            ..Default::default()
        };
        env.set_rollout(10);
        assert_eq!(
            rollout(&env),
            [
                ("default".to_owned(), None),
                ("flexibleRollout".to_owned(), None),
                ("flexibleRollout".to_owned(), None),
                ("flexibleRollout".to_owned(), Some("10".to_owned())),
            ]
        );
        assert!(env.enabled, "a rollout does not switch the environment");
    }

    fn flag(spec: Value) -> Result<Flag, Vec<FieldError>> {
        Flag::from_value(json!({"kind": "Flag", "metadata": {"name": "new-checkout"}, "spec": spec}))
    }

    fn fields(r: Result<Flag, Vec<FieldError>>) -> Vec<String> {
        r.expect_err("invalid").iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reads_a_flag_and_fills_defaults() {
        let f = flag(json!({"type": "experiment", "environments": {"production": {"enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": 25}, "variants": [
                {"name": "a", "payload": {"type": "json", "value": {"x": 1}}}, {"name": "b"}, {"name": "c"}]}]}}}))
        .expect("valid");
        assert_eq!(f.spec.project, "default");
        assert_eq!(f.spec.flag_type, FlagType::Experiment);
        let s = &f.spec.environments["production"].strategies[0];
        assert_eq!(s.parameters["rollout"], "25");
        assert_eq!(s.parameters["groupId"], "new-checkout");
        assert_eq!(s.parameters["stickiness"], "default");
        let weights: Vec<_> = s.variants.iter().map(|v| v.weight.unwrap()).collect();
        assert_eq!(weights, [334, 333, 333]);
        assert_eq!(s.variants[0].payload.as_ref().unwrap().value, r#"{"x":1}"#);
        let wire = f.client_feature("production", &|_| None);
        assert!(wire.enabled);
        assert_eq!(wire.kind.as_deref(), Some("experiment"));
        assert!(!f.client_feature("staging", &|_| None).enabled);
    }

    #[test]
    fn refuses_what_sdks_could_not_evaluate() {
        let errs = fields(flag(json!({"environments": {"production": {"enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": 150}},
            {"name": "default", "constraints": [
                {"contextName": "email", "operator": "REGEX", "value": "(unclosed"},
                {"contextName": "version", "operator": "SEMVER_GT", "value": "1.x"},
                {"contextName": "region", "operator": "IN", "values": []},
                {"contextName": "age", "operator": "NUM_WITHIN", "value": "3"}]},
            {"name": "remoteAddress", "parameters": {"IPs": "10.0.0.0/8, 300.1.1.1"}},
            {"name": "canary"}],
            "variants": [{"name": "a", "weight": 600, "weightType": "fix"}, {"name": "b", "weight": 500, "weightType": "fix"},
                         {"name": "c"}]}}})));
        let want = [
            "spec.environments.production.strategies[0].parameters.rollout: \"150\" is not a whole percentage",
            "strategies[1].constraints[0].value",
            "strategies[1].constraints[1].value: \"1.x\" is not a semantic version",
            "strategies[1].constraints[2].values: IN needs at least one value",
            "strategies[1].constraints[3].operator",
            "strategies[2].parameters.IPs: \"300.1.1.1\" is not an IP address",
            "strategies[3].name: unknown strategy \"canary\"",
            "spec.environments.production.variants: the fix variants' weights add up to 1100, more than 1000",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.contains(w)), "no error like {w:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
    }

    #[test]
    fn refuses_unknown_fields_and_bad_names() {
        let errs = fields(flag(json!({"environments": {"production": {"enabled": true, "strategy": []}}})));
        assert!(errs[0].contains("unknown field `strategy`"), "{errs:?}");
        let errs = fields(Flag::from_value(json!({"metadata": {"name": "bad name"}, "spec": {}})));
        assert!(errs[0].starts_with("metadata.name: may only contain"), "{errs:?}");
        let errs = fields(flag(json!({"type": "forever"})));
        assert!(errs[0].contains("unknown variant `forever`"), "{errs:?}");
        let errs = fields(flag(json!({"dependencies": [{"feature": "new-checkout"}]})));
        assert!(errs[0].contains("cannot depend on itself"), "{errs:?}");
        let errs = fields(flag(json!({"environments": {"production": {"enabled": true,
            "variants": [{"name": "a", "weight": 700, "weightType": "fix"}, {"name": "a"},
                         {"name": "c", "payload": {"type": "json", "value": "{nope"}}]}}})));
        assert!(errs.iter().any(|e| e.contains("listed twice")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("not valid JSON")), "{errs:?}");
    }

    #[test]
    fn fixed_weights_keep_their_share() {
        let f = flag(json!({"environments": {"production": {"enabled": true, "variants": [
            {"name": "a", "weight": 500, "weightType": "fix"}, {"name": "b"}, {"name": "c"}]}}}))
        .expect("valid");
        let w: Vec<_> = f.spec.environments["production"].variants.iter().map(|v| v.weight.unwrap()).collect();
        assert_eq!(w, [500, 250, 250]);
        // Before Unleash's rule, weights written on variable variants were kept as written.
        let f = flag(json!({"environments": {"production": {"enabled": true, "variants": [
            {"name": "a", "weight": 700}, {"name": "b", "weight": 300}]}}}))
        .expect("valid");
        let w: Vec<_> = f.spec.environments["production"].variants.iter().map(|v| v.weight.unwrap()).collect();
        assert_eq!(w, [500, 500]);
    }

    #[test]
    fn variants_are_weighted_and_served_as_unleash_server_does() {
        let f = flag(json!({"environments": {"production": {"enabled": true, "variants": [
            {"name": "cherry"}, {"name": "banana", "weight": 100, "weightType": "fix"},
            {"name": "apple", "weight": 800}, {"name": "Date"}]}}}))
        .expect("valid");
        // 900 left for three variable variants (apple's 800 is ignored): 300 each.
        let doc: Vec<_> =
            f.spec.environments["production"].variants.iter().map(|v| (v.name.as_str(), v.weight.unwrap())).collect();
        assert_eq!(doc, [("cherry", 300), ("banana", 100), ("apple", 300), ("Date", 300)]);
        let wire: Vec<_> =
            f.client_feature("production", &|_| None).variants.into_iter().map(|v| (v.name, v.weight)).collect();
        let want = [("apple", 300), ("banana", 100), ("cherry", 300), ("Date", 300)];
        assert_eq!(wire, want.map(|(n, w)| (n.to_owned(), w)));

        // 1000 over three: the first two written get the remainder, then the list is sorted.
        let f = flag(json!({"environments": {"production": {"enabled": true,
            "strategies": [{"name": "default", "variants": [{"name": "c"}, {"name": "b"}, {"name": "a"}]}]}}}))
        .expect("valid");
        let wire = &f.client_feature("production", &|_| None).strategies[0].variants;
        let got: Vec<_> = wire.iter().map(|v| (v.name.as_str(), v.weight)).collect();
        assert_eq!(got, [("a", 333), ("b", 333), ("c", 334)]);
        // Reading the stored document again changes nothing.
        assert_eq!(Flag::from_value(f.to_value()).expect("valid"), f);
        assert_eq!(Flag::from_stored_value(f.to_value()).expect("valid"), f);

        let errs = fields(flag(json!({"environments": {"production": {"enabled": true, "variants": [
            {"name": "a", "weight": 500, "weightType": "fix"}, {"name": "b", "weight": 500, "weightType": "fix"}]}}})));
        assert!(errs[0].contains("at least one must be variable"), "{errs:?}");
    }

    /// A flag stored before Unleash's rule, its 700/300 written on variable variants (and one
    /// with every variant fix), is read back with the same split, as fix weights.
    #[test]
    fn flags_stored_with_written_weights_keep_their_split() {
        let legacy = |variants: Value| {
            json!({"kind": "Flag", "metadata": {"name": "old"},
                   "spec": {"environments": {"production": {"enabled": true, "variants": variants}}}})
        };
        let weights = |f: &Flag| -> Vec<(String, u32, bool)> {
            f.spec.environments["production"]
                .variants
                .iter()
                .map(|v| (v.name.clone(), v.weight.unwrap_or(0), v.is_fixed()))
                .collect()
        };
        let doc = legacy(json!([{"name": "blue", "weight": 700}, {"name": "green", "weight": 300}]));
        let stored = Flag::from_stored_value(doc.clone()).expect("readable");
        assert_eq!(weights(&stored), [("blue".into(), 700, true), ("green".into(), 300, false)]);
        assert_eq!(Flag::from_stored_value(stored.to_value()).expect("again"), stored, "idempotent");
        // Written today, the same definition means what it means to Unleash.
        let written = Flag::from_value(doc).expect("valid");
        assert_eq!(weights(&written), [("blue".into(), 500, false), ("green".into(), 500, false)]);
        let all_fix = legacy(json!([{"name": "a", "weight": 600, "weightType": "fix"},
                                    {"name": "b", "weight": 400, "weightType": "fix"}]));
        let stored = Flag::from_stored_value(all_fix).expect("readable");
        assert_eq!(weights(&stored), [("a".into(), 600, true), ("b".into(), 400, false)]);
    }

    #[test]
    fn names_sort_as_node_locale_compare_does() {
        // ["b","A","a","B","a-b","ab","a_b","a1","aB","Ab","a b","A-b"].sort((a, b) => a.localeCompare(b))
        // in Node 20.20.2 (ICU 78.2).
        let mut names = ["b", "A", "a", "B", "a-b", "ab", "a_b", "a1", "aB", "Ab", "a b", "A-b"];
        names.sort_by(|a, b| unleash_name_order(a, b));
        assert_eq!(names, ["a", "A", "a b", "a_b", "a-b", "A-b", "a1", "ab", "aB", "Ab", "b", "B"]);
        let ascii: String = (32u8..127).map(char::from).collect();
        let mut chars: Vec<String> = ascii.chars().map(String::from).collect();
        chars.sort_by(|a, b| unleash_name_order(a, b));
        let want = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpPqQrRsStTuUvVwWxXyYzZ";
        assert_eq!(chars.concat(), want);
    }

    #[test]
    fn recent_operators_warn_about_sdks_registered_where_they_are_used() {
        let f = flag(json!({"environments": {
            "production": {"enabled": true, "strategies": [{"name": "default", "segments": ["eu"], "constraints": [
                {"contextName": "version", "operator": "SEMVER_GTE", "value": "2.0.0"},
                {"contextName": "plan", "operator": "IN", "values": ["pro"]}]}]},
            "staging": {"enabled": true, "strategies": [{"name": "default"}]},
            "dev": {"enabled": false, "strategies": [{"name": "default", "constraints": [
                {"contextName": "email", "operator": "REGEX", "value": "x"}]}]}}}))
        .expect("valid");
        let segment = |n: &str| {
            (n == "eu").then(|| {
                vec![FlagConstraint {
                    context_name: "remoteAddress".into(),
                    operator: "IN_CIDR".into(),
                    values: vec!["10.0.0.0/8".into()],
                    ..Default::default()
                }]
            })
        };
        assert_eq!(f.recent_operators("production", &segment), ["SEMVER_GTE", "IN_CIDR"]);
        assert!(f.recent_operators("dev", &segment).is_empty(), "off in dev: nothing evaluates it");
        let clients = [
            ("production".to_owned(), "unleash-client-python:6.0.1".to_owned()),
            ("production".to_owned(), "unleash-client-js:3.7.0".to_owned()),
            ("staging".to_owned(), "unleash-client-go:4.1.0".to_owned()),
        ];
        let w = f.operator_warnings(&segment, &clients);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            (w[0].environment.as_str(), w[0].sdks.as_slice()),
            ("production", ["unleash-client-python:6.0.1".to_owned()].as_slice())
        );
        assert!(
            w[0].message.contains("SEMVER_GTE (Yggdrasil 0.21.1+), IN_CIDR (Yggdrasil 0.21.1+)"),
            "{}",
            w[0].message
        );
        assert!(
            f.operator_warnings(&segment, &clients[1..]).is_empty(),
            "a browser SDK asks Pave, which evaluates all"
        );
    }

    #[test]
    fn operands_engines_compare_are_stored_trimmed() {
        let f = flag(
            json!({"environments": {"production": {"enabled": true, "strategies": [{"name": "default", "constraints": [
            {"contextName": "remoteAddress", "operator": "IN_CIDR", "values": [" 10.0.0.0/8", "192.168.0.1 "]},
            {"contextName": "version", "operator": "SEMVER_GTE", "value": " 2.0.0 "},
            {"contextName": "region", "operator": "IN", "values": [" eu "]}]}]}}}),
        )
        .expect("valid");
        let c = &f.spec.environments["production"].strategies[0].constraints;
        assert_eq!(c[0].values, ["10.0.0.0/8", "192.168.0.1"]);
        assert_eq!(c[1].value.as_deref(), Some("2.0.0"));
        assert_eq!(c[2].values, [" eu "], "IN compares strings exactly, spaces included");
    }

    #[test]
    fn exposure_tells_fully_on_from_partial() {
        let f = |strategies: Value, enabled: bool| {
            flag(json!({"environments": {"production": {"enabled": enabled, "strategies": strategies}}}))
                .expect("valid")
                .exposure("production")
        };
        assert_eq!(f(json!([]), true), Exposure::On);
        assert_eq!(f(json!([{"name": "default"}]), false), Exposure::Off);
        assert_eq!(f(json!([{"name": "flexibleRollout", "parameters": {"rollout": "100"}}]), true), Exposure::On);
        assert_eq!(f(json!([{"name": "flexibleRollout", "parameters": {"rollout": "30"}}]), true), Exposure::Partial);
        let constrained =
            json!([{"name": "default", "constraints": [{"contextName": "a", "operator": "IN", "values": ["x"]}]}]);
        assert_eq!(f(constrained, true), Exposure::Partial);
    }

    #[test]
    fn stale_flags_are_settled_or_unused_past_their_lifetime() {
        const DAY: i64 = 86_400_000;
        let f = flag(json!({"type": "release"})).expect("valid");
        let facts = |exposure: &[(&'static str, Exposure, i64)], last_seen: Option<i64>| FlagFacts {
            flag: &f,
            created_at: 0,
            exposure: exposure.iter().map(|(e, x, s)| (*e, (*x, *s))).collect(),
            last_seen,
        };
        let now = 100 * DAY;
        // Fully on in production and off in staging for 50 days, still evaluated: stale.
        let s = staleness(
            &facts(&[("production", Exposure::On, 50 * DAY), ("staging", Exposure::Off, 10 * DAY)], Some(now)),
            now,
            None,
        )
        .expect("stale");
        assert!(s.reason.starts_with("fully on in production, off in staging for 50 days"), "{}", s.reason);
        // Partly rolled out: it still decides something.
        assert_eq!(staleness(&facts(&[("production", Exposure::Partial, 0)], Some(now)), now, None), None);
        // Settled only 30 days ago: within a release flag's 40.
        assert_eq!(staleness(&facts(&[("production", Exposure::On, 70 * DAY)], Some(now)), now, None), None);
        // ... but not within a threshold of 20 days.
        assert!(staleness(&facts(&[("production", Exposure::On, 70 * DAY)], Some(now)), now, Some(20)).is_some());
        // Never evaluated since creation 100 days ago.
        let s = staleness(&facts(&[("production", Exposure::Partial, 0)], None), now, None).expect("unused");
        assert!(s.reason.contains("never evaluated"), "{}", s.reason);
        // A kill switch is meant to sit fully on; it is stale only when unused.
        let k = flag(json!({"type": "kill-switch"})).expect("valid");
        let kf = FlagFacts {
            flag: &k,
            created_at: 0,
            exposure: [("production", (Exposure::On, 0))].into(),
            last_seen: Some(now),
        };
        assert_eq!(staleness(&kf, now, None), None);
    }

    #[test]
    fn segments_need_valid_constraints() {
        let s = Segment::from_value(json!({"kind": "Segment", "metadata": {"name": "beta"},
            "spec": {"constraints": [{"contextName": "plan", "operator": "IN", "values": ["beta", 2]}]}}))
        .expect("valid");
        assert_eq!(s.spec.constraints[0].values, ["beta", "2"]);
        let errs =
            Segment::from_value(json!({"metadata": {"name": "beta"}, "spec": {"constraints": []}})).expect_err("bad");
        assert!(errs[0].to_string().contains("at least one constraint"));
    }
}
