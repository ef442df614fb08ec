//! Pave's engine against Yggdrasil (the engine of Unleash's Python, Ruby, .NET, Java and Go
//! SDKs) on the same flag sets and many generated contexts: every flag of the Unleash client
//! specification, and flags made for what the two used to disagree on (IPv4-mapped addresses,
//! whitespace around values, variants without stickiness, variant weights as Pave stores them).
//! Both must answer the same `is_enabled` and variant for every flag and context; where an
//! answer is random (random stickiness, or none of its fields in the context), both must pick
//! with the same frequencies.
//!
//! `cargo test --manifest-path bench/flags/Cargo.toml --release --test differential`
//! (`PAVE_DIFF_CONTEXTS` contexts per flag set, 400 unless set; the seed is fixed). The
//! specification is read from `../shared/data/unleash-client-specification` (or
//! `PAVE_UNLEASH_SPEC`).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use unleash_yggdrasil::{EngineState, UpdateMessage};

// The same reading of the specification as the conformance test's.
#[path = "../../../crates/pave-flags/tests/support/spec.rs"]
mod spec_data;
use spec_data::spec_dir;

/// Where Pave differs from Yggdrasil on purpose: flags skipped, and why.
const EXEMPT: &[(&str, &str)] = &[(
    "applicationHostname",
    "Yggdrasil matches the hostname of the machine it runs on; Pave evaluates for remote SDKs \
     (frontend API, OFREP) and matches the context's `hostname` property instead",
)];

/// Samples per engine when an answer is random.
const RANDOM_SAMPLES: usize = 400;
/// Largest gap allowed between the two engines' frequencies of one answer (five standard
/// deviations of the difference of two 400-sample frequencies at p = 0.5).
const RANDOM_TOLERANCE: f64 = 0.18;

/// SplitMix64: a fixed seed, so every run compares the same contexts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A spec file's state as one full flag set (delta files applied first), as JSON.
fn full_state(v: &Value) -> Value {
    serde_json::to_value(spec_data::state(v)).expect("serialises")
}

/// Flags made for the cases the two engines used to disagree on (issue 16, items 16, 18, 19).
fn generated_flags() -> Value {
    let nets = "10.0.0.0/8, 192.168.0.1, 2001:db8::/32, ::ffff:172.16.0.0/108";
    let constraint = |op: &str, field: &str, value: &str| json!({"name": "default", "constraints": [{"contextName": field, "operator": op, "value": value}]});
    let mut features = vec![
        json!({"name": "g.remote-address", "enabled": true, "strategies": [{"name": "remoteAddress", "parameters": {"IPs": nets}}]}),
        json!({"name": "g.in-cidr", "enabled": true, "strategies": [{"name": "default", "constraints": [
            {"contextName": "remoteAddress", "operator": "IN_CIDR", "values": nets.split(", ").collect::<Vec<_>>()}]}]}),
        json!({"name": "g.num-gte", "enabled": true, "strategies": [constraint("NUM_GTE", "tier", "3")]}),
        json!({"name": "g.num-eq", "enabled": true, "strategies": [constraint("NUM_EQ", "tier", "4")]}),
        json!({"name": "g.num-lt-inverted", "enabled": true, "strategies": [{"name": "default", "constraints": [
            {"contextName": "tier", "operator": "NUM_LT", "value": "4", "inverted": true}]}]}),
        json!({"name": "g.semver-gte", "enabled": true, "strategies": [constraint("SEMVER_GTE", "version", "2.0.0")]}),
        json!({"name": "g.semver-lt", "enabled": true, "strategies": [constraint("SEMVER_LT", "version", "2.1.0")]}),
        json!({"name": "g.variants-no-stickiness", "enabled": true, "strategies": [{"name": "default"}],
            "variants": [{"name": "a", "weight": 500}, {"name": "b", "weight": 500}]}),
        json!({"name": "g.variants-default-stickiness", "enabled": true, "strategies": [{"name": "default"}],
            "variants": [{"name": "a", "weight": 334, "stickiness": "default"}, {"name": "b", "weight": 333, "stickiness": "default"},
                         {"name": "c", "weight": 333, "stickiness": "default"}]}),
        json!({"name": "g.variants-by-tier", "enabled": true, "strategies": [{"name": "default"}],
            "variants": [{"name": "a", "weight": 500, "stickiness": "tier"}, {"name": "b", "weight": 500, "stickiness": "tier"}]}),
        json!({"name": "g.strategy-variants", "enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": "60", "stickiness": "default", "groupId": "g"},
             "variants": [{"name": "x", "weight": 500, "weightType": "variable"}, {"name": "y", "weight": 500, "weightType": "variable"}]}]}),
    ];
    features.extend(stored_variant_flags());
    json!({"version": 2, "features": features})
}

/// Flags with variants as Pave stores and serves them (item 16): documents with fixed and
/// variable variants in any order, weighted and sorted by `pave-model`, then served.
fn stored_variant_flags() -> Vec<Value> {
    let mut rng = Rng(16);
    let names = ["blue", "Green", "red", "amber", "Beige", "cyan", "a-1", "a_1", "A1"];
    (0..12)
        .map(|i| {
            let count = 1 + rng.below(5);
            let mut variants = Vec::new();
            let mut fixed = 0;
            for k in 0..count {
                let name = names[(i + k * 2) % names.len()];
                if k > 0 && rng.chance(30) && fixed < 700 {
                    let w = 50 + rng.below(250);
                    fixed += w;
                    variants.push(json!({"name": name, "weight": w, "weightType": "fix"}));
                } else if rng.chance(50) {
                    variants.push(json!({"name": name, "weight": rng.below(1000)}));
                } else {
                    variants.push(json!({"name": name}));
                }
            }
            let flag = pave_model::flags::Flag::from_value(json!({"kind": "Flag", "metadata": {"name": format!("g.stored-{i}")},
                "spec": {"environments": {"production": {"enabled": true, "strategies": [{"name": "default"}], "variants": variants}}}}))
            .unwrap_or_else(|e| panic!("generated flag {i} is invalid: {e:?}"));
            serde_json::to_value(flag.client_feature("production", &|_| None)).expect("serialises")
        })
        .collect()
}

/// The spec's own test contexts, the base of generated ones (so constraints see the values
/// they name).
fn spec_contexts(spec: &Value) -> Vec<Value> {
    ["tests", "variantTests"]
        .iter()
        .flat_map(|k| spec[*k].as_array().cloned().unwrap_or_default())
        .map(|c| c["context"].clone())
        .collect()
}

fn pad(rng: &mut Rng, v: &str) -> String {
    match rng.below(3) {
        0 => format!(" {v}"),
        1 => format!("{v} "),
        _ => format!("\t{v}\n"),
    }
}

/// A context: one of `bases`, changed at random — ids dropped or replaced, addresses of every
/// kind, properties padded with whitespace or replaced.
fn context(rng: &mut Rng, bases: &[Value]) -> Value {
    let mut c = if bases.is_empty() || rng.chance(20) { json!({}) } else { rng.pick(bases).clone() };
    let m = c.as_object_mut().expect("context object");
    const USERS: [&str; 8] = ["123", "u-1", "ana", "bo", "vip", "user-42", "7", "x"];
    const ADDRESSES: [&str; 12] = [
        "10.1.2.3",
        "::ffff:10.1.2.3",
        "::ffff:172.16.5.4",
        "172.16.5.4",
        " 10.1.2.3",
        "10.1.2.3 ",
        "192.168.0.1",
        "2001:db8::7",
        "127.0.0.1",
        "::1",
        "not-an-address",
        "10.0.0.300",
    ];
    match rng.below(4) {
        0 => {
            m.remove("userId");
        }
        1 => {
            m.insert("userId".into(), json!(rng.pick(&USERS)));
        }
        _ => {}
    }
    match rng.below(4) {
        0 => {
            m.remove("sessionId");
        }
        1 => {
            m.insert("sessionId".into(), json!(format!("s-{}", rng.below(50))));
        }
        _ => {}
    }
    if rng.chance(50) {
        m.insert("remoteAddress".into(), json!(rng.pick(&ADDRESSES)));
    }
    let props = m.entry("properties").or_insert_with(|| json!({}));
    let props = props.as_object_mut().expect("properties object");
    if rng.chance(40) {
        let tier = rng.pick(&["1", "3", "4", "10", "4.0", "-2", "x"]).to_string();
        let tier = if rng.chance(30) { pad(rng, &tier) } else { tier };
        props.insert("tier".into(), json!(tier));
    }
    if rng.chance(40) {
        let v = rng.pick(&["2.0.0", "2.1.0", "1.9.9", "2.0.0-beta.1", "3.0.0", "v2.0.0", "2.0"]).to_string();
        let v = if rng.chance(30) { pad(rng, &v) } else { v };
        props.insert("version".into(), json!(v));
    }
    // Pad an existing property now and then: numbers and versions the spec compares.
    if rng.chance(15) && !props.is_empty() {
        let keys: Vec<String> = props.keys().cloned().collect();
        let k = rng.pick(&keys).clone();
        if let Some(v) = props.get(&k).and_then(Value::as_str).map(str::to_owned) {
            props.insert(k, json!(pad(rng, &v)));
        }
    }
    c
}

/// One answer of one engine: (is_enabled, variant name, variant enabled, payload).
type Answer = (bool, String, bool, Option<String>);

struct Engines {
    pave: pave_flags::Engine,
    ygg: EngineState,
}

impl Engines {
    fn new(state: &Value) -> Engines {
        let ygg = EngineState::default();
        let message: UpdateMessage = serde_json::from_value(state.clone()).expect("yggdrasil reads the state");
        // Warnings name flags it compiles to "always off" (the spec has some on purpose).
        if let Some(warnings) = ygg.take_state(message) {
            let names: std::collections::BTreeSet<&str> = warnings.iter().map(|w| w.toggle_name.as_str()).collect();
            println!("yggdrasil compiled as always off: {names:?}");
        }
        Engines { pave: pave_flags::Engine::new(&serde_json::from_value(state.clone()).expect("pave reads it")), ygg }
    }

    fn pave(&self, flag: &str, ctx: &pave_flags::Context) -> Answer {
        let v = self.pave.variant(flag, ctx);
        (self.pave.is_enabled(flag, ctx), v.name.to_owned(), v.enabled, v.payload.map(|p| p.value.clone()))
    }

    fn ygg(&self, flag: &str, ctx: &unleash_yggdrasil::Context) -> Answer {
        let v = self.ygg.get_variant(flag, ctx, &None);
        (self.ygg.is_enabled(flag, ctx, &None), v.name, v.enabled, v.payload.map(|p| p.value))
    }
}

#[derive(Default)]
struct Tally {
    exact: usize,
    random: usize,
    exempt: usize,
    failures: Vec<String>,
}

fn frequencies(answers: impl Iterator<Item = Answer>) -> BTreeMap<String, f64> {
    let mut counts = BTreeMap::new();
    for a in answers {
        *counts.entry(format!("{a:?}")).or_insert(0.0) += 1.0;
    }
    counts.values_mut().for_each(|n| *n /= RANDOM_SAMPLES as f64);
    counts
}

fn exemption(feature: &Value) -> Option<&'static str> {
    let uses = |kind: &str| feature["strategies"].as_array().into_iter().flatten().any(|s| s["name"] == kind);
    EXEMPT.iter().find(|(kind, _)| uses(kind)).map(|(_, why)| *why)
}

fn compare(label: &str, state: &Value, bases: &[Value], contexts: usize, seed: u64, tally: &mut Tally) {
    let engines = Engines::new(state);
    let mut rng = Rng(seed);
    let features = state["features"].as_array().cloned().unwrap_or_default();
    for _ in 0..contexts {
        let c = context(&mut rng, bases);
        let pc: pave_flags::Context = serde_json::from_value(c.clone()).expect("pave reads the context");
        let yc: unleash_yggdrasil::Context = serde_json::from_value(c.clone()).expect("yggdrasil reads the context");
        for f in &features {
            let name = f["name"].as_str().expect("flag name");
            if exemption(f).is_some() {
                tally.exempt += 1;
                continue;
            }
            let first: Vec<Answer> =
                (0..3).map(|_| engines.pave(name, &pc)).chain((0..3).map(|_| engines.ygg(name, &yc))).collect();
            if first.iter().all(|a| *a == first[0]) {
                tally.exact += 1;
                continue;
            }
            // Random, or a disagreement: compare how often each engine gives each answer.
            tally.random += 1;
            let p = frequencies((0..RANDOM_SAMPLES).map(|_| engines.pave(name, &pc)));
            let y = frequencies((0..RANDOM_SAMPLES).map(|_| engines.ygg(name, &yc)));
            let worst = p
                .keys()
                .chain(y.keys())
                .map(|k| (p.get(k).copied().unwrap_or(0.0) - y.get(k).copied().unwrap_or(0.0)).abs())
                .fold(0.0, f64::max);
            if worst > RANDOM_TOLERANCE {
                tally.failures.push(format!("{label}: flag {name:?}, context {c}\n  pave {p:?}\n  yggdrasil {y:?}"));
            }
        }
    }
}

#[test]
fn pave_and_yggdrasil_agree_on_generated_contexts() {
    let contexts: usize = std::env::var("PAVE_DIFF_CONTEXTS").ok().and_then(|n| n.parse().ok()).unwrap_or(400);
    let mut tally = Tally::default();
    let mut all_bases = Vec::new();
    let spec = spec_dir();
    if let Some(dir) = &spec {
        let index: Vec<String> = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        for (i, file) in index.iter().enumerate() {
            let spec: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
            let bases = spec_contexts(&spec);
            compare(file, &full_state(&spec["state"]), &bases, contexts, i as u64 + 1, &mut tally);
            all_bases.extend(bases);
        }
    }
    let spec_cases = tally.exact + tally.random;
    compare("generated flags", &generated_flags(), &all_bases, contexts * 4, 1616, &mut tally);

    println!(
        "Pave vs Yggdrasil: {} cases compared ({} answered the same exactly, {} random ones by frequency over {RANDOM_SAMPLES} samples each), {} exempt, {} failed",
        tally.exact + tally.random,
        tally.exact,
        tally.random,
        tally.exempt,
        tally.failures.len()
    );
    for (kind, why) in EXEMPT {
        println!("exempt: flags with a {kind} strategy: {why}");
    }
    for f in tally.failures.iter().take(20) {
        println!("DIFFERENT {f}");
    }
    assert!(tally.failures.is_empty(), "{} cases differ (first ones above)", tally.failures.len());
    assert!(spec.is_none() || spec_cases > 1_000, "only {spec_cases} cases from the specification's flags");
    assert!(tally.exact + tally.random > 10_000, "too few cases ran");
}
