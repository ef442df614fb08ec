//! The evaluation engine: a flag set compiled once (regexes built, numbers, dates, versions
//! and networks parsed, segments inlined, names hashed) and evaluated against contexts with no
//! I/O and, on the common paths, no allocation.
//!
//! Compilation is lenient, as Unleash's clients are: a constraint that cannot be understood (an
//! unknown operator, a bad regex or version) never matches, and a strategy that references a
//! missing segment or is of an unknown kind never matches. Definitions Pave stores itself are
//! checked strictly before they are stored ([`crate::validate`]); leniency is for what others
//! send.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::context::{Context, Field, same};
use crate::model::{ClientFeatures, Constraint, Feature, Payload, Strategy, Variant};
use crate::murmur::Prefix;
use crate::semver::Version;

type Map<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// Seed of the variant hash (Unleash's `VARIANT_SEED`).
const VARIANT_SEED: u32 = 86_028_157;

/// A compiled flag set.
#[derive(Debug, Default)]
pub struct Engine {
    features: Vec<CompiledFeature>,
    index: Map<usize>,
}

#[derive(Debug)]
struct CompiledFeature {
    name: Box<str>,
    enabled: bool,
    impression_data: bool,
    strategies: Vec<CompiledStrategy>,
    variants: Variants,
    dependencies: Vec<CompiledDependency>,
}

#[derive(Debug)]
struct CompiledDependency {
    feature: Box<str>,
    enabled: bool,
    variants: Vec<Box<str>>,
}

#[derive(Debug)]
struct CompiledStrategy {
    kind: Kind,
    /// Segment constraints first, then the strategy's own; all must hold.
    constraints: Vec<CompiledConstraint>,
    /// A segment it names does not exist: it never matches.
    broken: bool,
    variants: Variants,
}

#[derive(Debug)]
enum Kind {
    Default,
    UserWithId(Vec<Box<str>>),
    /// gradualRolloutUserId / gradualRolloutSessionId / flexibleRollout.
    Rollout {
        percent: f64,
        stickiness: Stickiness,
        group: Prefix,
    },
    Random {
        percent: f64,
    },
    RemoteAddress(Vec<Net>),
    Hostname(Vec<Box<str>>),
    Unknown,
}

#[derive(Debug, Clone)]
enum Stickiness {
    /// userId, then sessionId, then random.
    Default,
    Random,
    Field(Field),
}

#[derive(Debug)]
struct Variants {
    list: Vec<CompiledVariant>,
    total: u32,
    stickiness: Option<Stickiness>,
    /// `"{groupId}:"` hashed with the variant seed.
    group: Prefix,
}

#[derive(Debug)]
struct CompiledVariant {
    name: Box<str>,
    weight: u32,
    payload: Option<Payload>,
    overrides: Vec<(Field, Vec<Box<str>>)>,
}

#[derive(Debug)]
struct CompiledConstraint {
    field: Field,
    op: Op,
    inverted: bool,
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cmp::Eq => o == Equal,
            Cmp::Gt => o == Greater,
            Cmp::Gte => o != Less,
            Cmp::Lt => o == Less,
            Cmp::Lte => o != Greater,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug)]
enum Op {
    In(Vec<Box<str>>),
    NotIn(Vec<Box<str>>),
    Str {
        op: StrOp,
        values: Vec<Box<str>>,
        case_insensitive: bool,
    },
    Num(Cmp, f64),
    Date {
        after: bool,
        at: jiff::Timestamp,
    },
    Semver(Cmp, Version),
    Regex(regex::Regex),
    Cidr(Vec<Net>),
    /// Not understood: never matches, inverted or not.
    Never,
}

/// An address or a network (`10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Reads an address or network as written: surrounding whitespace makes it unreadable, as
    /// in Yggdrasil (a `remoteAddress` strategy's list is split and trimmed before this).
    pub(crate) fn parse(s: &str) -> Option<Net> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Net { addr, prefix })
    }

    /// Whether `ip` is in the network. Families never mix: an IPv4-mapped IPv6 address
    /// (`::ffff:10.1.2.3`) is not in `10.0.0.0/8`, nor an IPv4 address in `::ffff:0:0/96`, as in
    /// Yggdrasil (the engine of Unleash's current SDKs), which compares the two as written.
    fn contains(&self, ip: IpAddr) -> bool {
        fn under(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
            if prefix == 0 {
                return true;
            }
            let shift = bits - prefix;
            (a >> shift) == (b >> shift)
        }
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                under(u128::from(u32::from(n)), u128::from(u32::from(i)), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => under(u128::from(n), u128::from(i), self.prefix, 128),
            _ => false,
        }
    }
}

fn split_list(s: Option<&String>) -> Vec<Box<str>> {
    s.map(|s| s.split(',').map(str::trim).filter(|v| !v.is_empty()).map(Into::into).collect()).unwrap_or_default()
}

fn percent(s: Option<&String>) -> f64 {
    s.and_then(|s| s.trim().parse::<f64>().ok()).unwrap_or(0.0)
}

fn stickiness(s: Option<&str>) -> Stickiness {
    match s.map(str::trim) {
        None | Some("") | Some("default") => Stickiness::Default,
        Some("random") => Stickiness::Random,
        Some(f) => Stickiness::Field(Field::named(f)),
    }
}

/// Whether `c` can be evaluated as written, or what is wrong with it.
pub fn check_constraint(c: &Constraint) -> Result<(), String> {
    op(c, true).map(drop)
}

/// The operator of `c`, or why it cannot be used. Lenient compilation skips the entries of a
/// list that cannot be read (as Unleash's clients do); strict compilation refuses them.
fn op(c: &Constraint, strict: bool) -> Result<Op, String> {
    let values = || c.values.iter().map(|v| Box::<str>::from(v.as_str())).collect::<Vec<_>>();
    let single = || {
        c.value
            .as_deref()
            .or(c.values.first().map(String::as_str))
            .ok_or_else(|| format!("{} needs a value", c.operator))
    };
    let num = |cmp| {
        let v = single()?;
        v.trim().parse::<f64>().map(|n| Op::Num(cmp, n)).map_err(|_| format!("{v:?} is not a number"))
    };
    let sem = |cmp| {
        let v = single()?;
        Version::parse(v.trim()).map(|n| Op::Semver(cmp, n)).ok_or_else(|| format!("{v:?} is not a semantic version"))
    };
    let date = |after| {
        let v = single()?;
        v.trim()
            .parse::<jiff::Timestamp>()
            .map(|at| Op::Date { after, at })
            .map_err(|_| format!("{v:?} is not an RFC 3339 date-time"))
    };
    let string = |op| {
        let mut values = values();
        if c.case_insensitive {
            values = values.into_iter().map(|v| v.to_lowercase().into()).collect();
        }
        Ok(Op::Str { op, values, case_insensitive: c.case_insensitive })
    };
    match c.operator.as_str() {
        "IN" => Ok(Op::In(values())),
        "NOT_IN" => Ok(Op::NotIn(values())),
        "STR_CONTAINS" => string(StrOp::Contains),
        "STR_STARTS_WITH" => string(StrOp::StartsWith),
        "STR_ENDS_WITH" => string(StrOp::EndsWith),
        "NUM_EQ" => num(Cmp::Eq),
        "NUM_GT" => num(Cmp::Gt),
        "NUM_GTE" => num(Cmp::Gte),
        "NUM_LT" => num(Cmp::Lt),
        "NUM_LTE" => num(Cmp::Lte),
        "DATE_AFTER" => date(true),
        "DATE_BEFORE" => date(false),
        "SEMVER_EQ" => sem(Cmp::Eq),
        "SEMVER_GT" => sem(Cmp::Gt),
        "SEMVER_GTE" => sem(Cmp::Gte),
        "SEMVER_LT" => sem(Cmp::Lt),
        "SEMVER_LTE" => sem(Cmp::Lte),
        "REGEX" => {
            let v = single()?;
            regex::RegexBuilder::new(v)
                .case_insensitive(c.case_insensitive)
                .size_limit(1 << 20)
                .build()
                .map(Op::Regex)
                .map_err(|e| format!("{v:?} is not a valid regular expression: {e}"))
        }
        "IN_CIDR" => c
            .values
            .iter()
            .filter_map(|v| match Net::parse(v) {
                Some(n) => Some(Ok(n)),
                None if strict => Some(Err(format!("{v:?} is not an IP address or CIDR network"))),
                None => None,
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Op::Cidr),
        other => Err(format!("unknown operator {other:?}")),
    }
}

fn compile_variants(variants: &[Variant], group: &str, stickiness_default: Option<Stickiness>) -> Variants {
    Variants {
        total: variants.iter().map(|v| v.weight).sum(),
        stickiness: stickiness_default
            .or_else(|| variants.first().and_then(|v| v.stickiness.as_deref()).map(|s| stickiness(Some(s)))),
        group: group_prefix(group, VARIANT_SEED),
        list: variants
            .iter()
            .map(|v| CompiledVariant {
                name: v.name.as_str().into(),
                weight: v.weight,
                payload: v.payload.clone(),
                overrides: v
                    .overrides
                    .iter()
                    .map(|o| (Field::named(&o.context_name), o.values.iter().map(|s| s.as_str().into()).collect()))
                    .collect(),
            })
            .collect(),
    }
}

fn compile_strategy(s: &Strategy, feature: &Feature, segments: &HashMap<u32, &[Constraint]>) -> CompiledStrategy {
    let p = |k: &str| s.parameters.get(k);
    let group_id = p("groupId").filter(|g| !g.is_empty()).map_or(feature.name.as_str(), String::as_str);
    let group = || group_prefix(group_id, 0);
    let kind = match s.name.as_str() {
        "default" => Kind::Default,
        "userWithId" => Kind::UserWithId(split_list(p("userIds"))),
        "gradualRolloutUserId" => Kind::Rollout {
            percent: percent(p("percentage")),
            stickiness: Stickiness::Field(Field::UserId),
            group: group(),
        },
        "gradualRolloutSessionId" => Kind::Rollout {
            percent: percent(p("percentage")),
            stickiness: Stickiness::Field(Field::SessionId),
            group: group(),
        },
        "gradualRolloutRandom" => Kind::Random { percent: percent(p("percentage")) },
        "flexibleRollout" => Kind::Rollout {
            percent: percent(p("rollout")),
            stickiness: stickiness(p("stickiness").map(String::as_str)),
            group: group(),
        },
        "remoteAddress" => Kind::RemoteAddress(split_list(p("IPs")).iter().filter_map(|n| Net::parse(n)).collect()),
        "applicationHostname" => {
            Kind::Hostname(split_list(p("hostNames")).into_iter().map(|h| h.to_lowercase().into()).collect())
        }
        _ => Kind::Unknown,
    };
    let mut broken = false;
    let mut constraints = Vec::new();
    for id in &s.segments {
        match segments.get(id) {
            Some(cs) => constraints.extend(cs.iter().map(lenient)),
            None => broken = true,
        }
    }
    constraints.extend(s.constraints.iter().map(lenient));
    // Strategy variants are sticky the way the strategy is.
    let sticky = Some(stickiness(p("stickiness").map(String::as_str)));
    CompiledStrategy { kind, constraints, broken, variants: compile_variants(&s.variants, group_id, sticky) }
}

fn lenient(c: &Constraint) -> CompiledConstraint {
    CompiledConstraint {
        field: Field::named(&c.context_name),
        op: op(c, false).unwrap_or(Op::Never),
        inverted: c.inverted,
    }
}

/// What a variant lookup answers (Unleash's `getVariant`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VariantResult<'e> {
    pub name: &'e str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'e Payload>,
    pub enabled: bool,
    pub feature_enabled: bool,
}

impl VariantResult<'_> {
    /// The variant of a flag that is off or has no variants.
    pub fn disabled(feature_enabled: bool) -> VariantResult<'static> {
        VariantResult { name: "disabled", payload: None, enabled: false, feature_enabled }
    }
}

/// A flag's full answer for one context: whether it is on and its variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'e> {
    pub name: &'e str,
    pub enabled: bool,
    pub impression_data: bool,
    pub variant: VariantResult<'e>,
}

impl Engine {
    /// Compiles a flag set (leniently: see the module docs).
    pub fn new(state: &ClientFeatures) -> Engine {
        let segments: HashMap<u32, &[Constraint]> =
            state.segments.iter().map(|s| (s.id, s.constraints.as_slice())).collect();
        let mut engine = Engine::default();
        for f in &state.features {
            let compiled = CompiledFeature {
                name: f.name.as_str().into(),
                enabled: f.enabled,
                impression_data: f.impression_data,
                strategies: f.strategies.iter().map(|s| compile_strategy(s, f, &segments)).collect(),
                variants: compile_variants(&f.variants, &f.name, None),
                dependencies: f
                    .dependencies
                    .iter()
                    .map(|d| CompiledDependency {
                        feature: d.feature.as_str().into(),
                        enabled: d.enabled.unwrap_or(true),
                        variants: d.variants.iter().flatten().map(|v| v.as_str().into()).collect(),
                    })
                    .collect(),
            };
            match engine.index.get(&compiled.name) {
                // A later definition of the same name replaces the earlier one.
                Some(&i) => engine.features[i] = compiled,
                None => {
                    engine.index.insert(compiled.name.clone(), engine.features.len());
                    engine.features.push(compiled);
                }
            }
        }
        engine
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| &*f.name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn get(&self, name: &str) -> Option<&CompiledFeature> {
        self.index.get(name).map(|&i| &self.features[i])
    }

    /// Whether flag `name` is on for `ctx` (an unknown flag is off).
    pub fn is_enabled(&self, name: &str, ctx: &Context) -> bool {
        self.get(name).is_some_and(|f| self.hit(f, ctx).is_some())
    }

    /// The variant of flag `name` for `ctx`.
    pub fn variant(&self, name: &str, ctx: &Context) -> VariantResult<'_> {
        match self.get(name) {
            None => VariantResult::disabled(false),
            Some(f) => self.variant_of(f, self.hit(f, ctx), ctx),
        }
    }

    /// Flag `name` resolved in one pass: on/off and variant.
    pub fn resolve(&self, name: &str, ctx: &Context) -> Option<Resolved<'_>> {
        self.get(name).map(|f| self.resolve_one(f, ctx))
    }

    /// Every flag resolved, in definition order.
    pub fn resolve_all<'e>(&'e self, ctx: &'e Context) -> impl Iterator<Item = Resolved<'e>> + 'e {
        self.features.iter().map(move |f| self.resolve_one(f, ctx))
    }

    fn resolve_one<'e>(&'e self, f: &'e CompiledFeature, ctx: &Context) -> Resolved<'e> {
        let hit = self.hit(f, ctx);
        Resolved {
            name: &f.name,
            enabled: hit.is_some(),
            impression_data: f.impression_data,
            variant: self.variant_of(f, hit, ctx),
        }
    }

    /// None when off; else the strategy that turned it on (None when it has no strategies).
    fn hit<'e>(&'e self, f: &'e CompiledFeature, ctx: &Context) -> Option<Option<&'e CompiledStrategy>> {
        if !f.dependencies.iter().all(|d| self.dependency_holds(d, ctx)) {
            return None;
        }
        own_hit(f, ctx)
    }

    /// Parents are looked at one level deep: a parent that has parents of its own fails the
    /// dependency (as in Unleash, which refuses chains).
    fn dependency_holds(&self, d: &CompiledDependency, ctx: &Context) -> bool {
        let Some(parent) = self.get(&d.feature) else {
            return false;
        };
        if !parent.dependencies.is_empty() {
            return false;
        }
        let hit = own_hit(parent, ctx);
        if !d.enabled {
            return hit.is_none();
        }
        if hit.is_none() {
            return false;
        }
        d.variants.is_empty() || {
            let v = self.variant_of(parent, hit, ctx);
            d.variants.iter().any(|n| **n == *v.name)
        }
    }

    fn variant_of<'e>(
        &'e self,
        f: &'e CompiledFeature,
        hit: Option<Option<&'e CompiledStrategy>>,
        ctx: &Context,
    ) -> VariantResult<'e> {
        let Some(strategy) = hit else {
            return VariantResult::disabled(false);
        };
        let variants = match strategy {
            Some(s) if !s.variants.list.is_empty() => &s.variants,
            _ => &f.variants,
        };
        match pick(variants, ctx) {
            Some(v) => {
                VariantResult { name: &v.name, payload: v.payload.as_ref(), enabled: true, feature_enabled: true }
            }
            None => VariantResult::disabled(true),
        }
    }
}

fn own_hit<'e>(f: &'e CompiledFeature, ctx: &Context) -> Option<Option<&'e CompiledStrategy>> {
    if !f.enabled {
        return None;
    }
    if f.strategies.is_empty() {
        return Some(None);
    }
    f.strategies.iter().find(|s| s.matches(ctx)).map(Some)
}

fn group_prefix(group: &str, seed: u32) -> Prefix {
    Prefix::new(&[group.as_bytes(), b":"], seed)
}

/// 1..=`modulus` from the hash of `"{group}:{id}"` (the group part hashed already).
fn normalized(group: &Prefix, id: &str, modulus: u32) -> u32 {
    group.hash(id.as_bytes()) % modulus + 1
}

fn random_percent() -> f64 {
    f64::from(fastrand::u32(1..=100))
}

impl CompiledStrategy {
    fn matches(&self, ctx: &Context) -> bool {
        !self.broken && self.constraints.iter().all(|c| c.matches(ctx)) && self.kind_matches(ctx)
    }

    fn kind_matches(&self, ctx: &Context) -> bool {
        match &self.kind {
            Kind::Default => true,
            Kind::UserWithId(ids) => ctx.user_id.as_deref().is_some_and(|u| ids.iter().any(|i| **i == *u)),
            Kind::Rollout { percent, stickiness, group } => {
                if *percent <= 0.0 {
                    return false;
                }
                let id = match stickiness {
                    Stickiness::Default => match ctx.user_id.as_deref().or(ctx.session_id.as_deref()) {
                        Some(id) => id,
                        None => return random_percent() <= *percent,
                    },
                    Stickiness::Random => return random_percent() <= *percent,
                    Stickiness::Field(f) => match ctx.get(f) {
                        Some(id) => id,
                        None => return false,
                    },
                };
                f64::from(normalized(group, id, 100)) <= *percent
            }
            Kind::Random { percent } => *percent > 0.0 && random_percent() <= *percent,
            Kind::RemoteAddress(nets) => ctx
                .remote_address
                .as_deref()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|ip| nets.iter().any(|n| n.contains(ip))),
            Kind::Hostname(hosts) => {
                ctx.properties.get("hostname").is_some_and(|h| hosts.iter().any(|x| x.eq_ignore_ascii_case(h)))
            }
            Kind::Unknown => false,
        }
    }
}

impl CompiledConstraint {
    fn matches(&self, ctx: &Context) -> bool {
        if matches!(self.op, Op::Never) {
            return false;
        }
        self.holds(ctx) != self.inverted
    }

    fn holds(&self, ctx: &Context) -> bool {
        let value = ctx.get(&self.field);
        match &self.op {
            Op::In(values) => value.is_some_and(|v| values.iter().any(|x| same(x, v))),
            Op::NotIn(values) => !value.is_some_and(|v| values.iter().any(|x| same(x, v))),
            Op::Str { op, values, case_insensitive } => {
                let Some(v) = value else { return false };
                let lowered;
                let v = if *case_insensitive {
                    lowered = v.to_lowercase();
                    lowered.as_str()
                } else {
                    v
                };
                values.iter().any(|x| match op {
                    StrOp::Contains => v.contains(&**x),
                    StrOp::StartsWith => v.starts_with(&**x),
                    StrOp::EndsWith => v.ends_with(&**x),
                })
            }
            Op::Num(cmp, n) => value.and_then(number).and_then(|v| v.partial_cmp(n)).is_some_and(|o| cmp.holds(o)),
            Op::Date { after, at } => {
                let now = match value {
                    Some(t) => match t.trim().parse::<jiff::Timestamp>() {
                        Ok(t) => t,
                        Err(_) => return false,
                    },
                    None => jiff::Timestamp::now(),
                };
                if *after { now > *at } else { now < *at }
            }
            Op::Semver(cmp, want) => value.and_then(Version::parse).is_some_and(|v| cmp.holds(v.cmp(want))),
            Op::Regex(re) => value.is_some_and(|v| re.is_match(v)),
            Op::Cidr(nets) => {
                value.and_then(|v| v.parse::<IpAddr>().ok()).is_some_and(|ip| nets.iter().any(|n| n.contains(ip)))
            }
            Op::Never => false,
        }
    }
}

/// A context value as a number; short integers (the common case) without the float parser.
/// Context values are read as sent, as Yggdrasil (Rust's `f64` parser) reads them: `" 5"` is not
/// a number. Unleash's Node engine trims first; where Unleash's engines disagree Pave follows
/// Yggdrasil, the engine of its Python, Ruby, .NET, Java and Go SDKs. The same holds for
/// semantic versions and addresses.
fn number(v: &str) -> Option<f64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let n = digits.bytes().fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
        return Some(if digits.len() < v.len() { -(n as f64) } else { n as f64 });
    }
    v.parse::<f64>().ok()
}

/// The variant for `ctx`: an override that names the context, else the weighted pick by the
/// stickiness hash.
fn pick<'v>(variants: &'v Variants, ctx: &Context) -> Option<&'v CompiledVariant> {
    if variants.total == 0 {
        return None;
    }
    if let Some(v) = variants.list.iter().find(|v| {
        v.overrides.iter().any(|(field, values)| ctx.get(field).is_some_and(|x| values.iter().any(|w| **w == *x)))
    }) {
        return Some(v);
    }
    let random;
    // Default stickiness is userId, then sessionId, then random (Yggdrasil's `get_seed`; the
    // remoteAddress fallback of older Unleash SDKs is gone from the current ones).
    let seed = match variants.stickiness.as_ref().unwrap_or(&Stickiness::Default) {
        Stickiness::Default => ctx.user_id.as_deref().or(ctx.session_id.as_deref()),
        Stickiness::Random => None,
        Stickiness::Field(f) => ctx.get(f),
    };
    let seed = match seed {
        Some(s) => s,
        None => {
            random = fastrand::u32(..).to_string();
            random.as_str()
        }
    };
    let target = normalized(&variants.group, seed, variants.total);
    let mut counter = 0;
    for v in &variants.list {
        if v.weight == 0 {
            continue;
        }
        counter += v.weight;
        if counter >= target {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn engine(features: serde_json::Value) -> Engine {
        Engine::new(&serde_json::from_value(json!({"version": 2, "features": features})).expect("flag set"))
    }

    fn ctx(v: serde_json::Value) -> Context {
        serde_json::from_value(v).expect("context")
    }

    #[test]
    fn ipv4_mapped_addresses_are_not_in_ipv4_networks() {
        let e = engine(json!([
            {"name": "by-strategy", "enabled": true, "strategies": [{"name": "remoteAddress", "parameters": {"IPs": "10.0.0.0/8"}}]},
            {"name": "by-constraint", "enabled": true, "strategies": [{"name": "default", "constraints": [
                {"contextName": "remoteAddress", "operator": "IN_CIDR", "values": ["10.0.0.0/8"]}]}]},
            {"name": "mapped-network", "enabled": true, "strategies": [{"name": "default", "constraints": [
                {"contextName": "remoteAddress", "operator": "IN_CIDR", "values": ["::ffff:10.0.0.0/104"]}]}]}
        ]));
        for flag in ["by-strategy", "by-constraint"] {
            assert!(e.is_enabled(flag, &ctx(json!({"remoteAddress": "10.1.2.3"}))), "{flag}");
            assert!(!e.is_enabled(flag, &ctx(json!({"remoteAddress": "::ffff:10.1.2.3"}))), "{flag}");
        }
        assert!(e.is_enabled("mapped-network", &ctx(json!({"remoteAddress": "::ffff:10.1.2.3"}))));
        assert!(!e.is_enabled("mapped-network", &ctx(json!({"remoteAddress": "10.1.2.3"}))));
    }

    #[test]
    fn context_values_are_read_untrimmed() {
        let e = engine(json!([
            {"name": "ip", "enabled": true, "strategies": [{"name": "remoteAddress", "parameters": {"IPs": " 10.0.0.0/8 , 192.168.0.1"}}]},
            {"name": "num", "enabled": true, "strategies": [{"name": "default", "constraints": [
                {"contextName": "tier", "operator": "NUM_GTE", "value": "3"}]}]},
            {"name": "ver", "enabled": true, "strategies": [{"name": "default", "constraints": [
                {"contextName": "version", "operator": "SEMVER_GTE", "value": "2.0.0"}]}]},
            {"name": "cidr", "enabled": true, "strategies": [{"name": "default", "constraints": [
                {"contextName": "remoteAddress", "operator": "IN_CIDR", "values": ["10.0.0.0/8"]}]}]}
        ]));
        // The definition's list is split and trimmed, as Yggdrasil does.
        assert!(e.is_enabled("ip", &ctx(json!({"remoteAddress": "10.9.9.9"}))));
        assert!(e.is_enabled("ip", &ctx(json!({"remoteAddress": "192.168.0.1"}))));
        for (flag, field, value) in [
            ("ip", "remoteAddress", "10.9.9.9"),
            ("cidr", "remoteAddress", "10.9.9.9"),
            ("num", "tier", "4"),
            ("ver", "version", "2.1.0"),
        ] {
            let plain = ctx(json!({field: value, "properties": {field: value}}));
            assert!(e.is_enabled(flag, &plain), "{flag} {value:?}");
            for padded in [format!(" {value}"), format!("{value} "), format!("\t{value}\n")] {
                let c = ctx(json!({field: padded, "properties": {field: padded}}));
                assert!(!e.is_enabled(flag, &c), "{flag} {padded:?}");
            }
        }
    }

    #[test]
    fn variants_without_user_or_session_are_random_not_by_address() {
        let e = engine(json!([{"name": "v", "enabled": true, "strategies": [{"name": "default"}],
            "variants": [{"name": "a", "weight": 500}, {"name": "b", "weight": 500}]}]));
        let by_address = ctx(json!({"remoteAddress": "10.1.2.3"}));
        let names: std::collections::BTreeSet<&str> = (0..200).map(|_| e.variant("v", &by_address).name).collect();
        assert_eq!(names.len(), 2, "the same address must not pin one variant: {names:?}");
        let user = ctx(json!({"userId": "u-1", "remoteAddress": "10.1.2.3"}));
        let first = e.variant("v", &user).name;
        assert!((0..50).all(|_| e.variant("v", &user).name == first), "a user stays on one variant");
    }
}
