//! Rough cost of each piece of one evaluation, for finding where time goes.
use std::hint::black_box;
fn time(label: &str, n: u32, mut f: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    let mut c = 0u32;
    for _ in 0..n {
        c += u32::from(f());
    }
    println!("{label:30} {:6.1} ns ({c})", t.elapsed().as_nanos() as f64 / f64::from(n));
}
fn main() {
    let ctx: pave_flags::Context = serde_json::from_value(pave_flags_bench::context()).unwrap();
    let n = 5_000_000;
    time("murmur 25 bytes", n, || {
        pave_flags::murmur3_32(&[black_box(b"checkout.new-flow"), b":", b"user-42"], 0) % 2 == 0
    });
    time("properties.get", n, || ctx.properties.get(black_box("version")).is_some());
    time("semver parse", n, || pave_flags::semver::Version::parse(black_box("2.3.1")).is_some());
    time("f64 parse", n, || black_box("4").parse::<f64>().is_ok());
    let mk = |c: serde_json::Value| {
        pave_flags::Engine::new(&serde_json::from_value(serde_json::json!({"features": [{"name": "f", "enabled": true, "strategies": [{"name": "default", "constraints": [c]}]}]})).unwrap())
    };
    for c in [
        serde_json::json!({"contextName": "environment", "operator": "IN", "values": ["production", "staging"]}),
        serde_json::json!({"contextName": "appName", "operator": "STR_STARTS_WITH", "values": ["web", "mobile"]}),
        serde_json::json!({"contextName": "tier", "operator": "NUM_GTE", "value": "3"}),
        serde_json::json!({"contextName": "version", "operator": "SEMVER_GTE", "value": "2.0.0"}),
    ] {
        let e = mk(c.clone());
        time(c["operator"].as_str().unwrap(), n, || e.is_enabled(black_box("f"), black_box(&ctx)));
    }
    let e = pave_flags::Engine::new(
        &serde_json::from_value(
            serde_json::json!({"features": [{"name": "f", "enabled": true, "strategies": [{"name": "default"}]}]}),
        )
        .unwrap(),
    );
    time("default strategy", n, || e.is_enabled(black_box("f"), black_box(&ctx)));
    let e = pave_flags::Engine::new(&serde_json::from_value(serde_json::json!({"features": [{"name": "f", "enabled": true, "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "50"}}]}]})).unwrap());
    time("flexibleRollout alone", n, || e.is_enabled(black_box("f"), black_box(&ctx)));
}
