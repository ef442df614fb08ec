//! Pave's flag engine against unleash-yggdrasil on the same flag sets and contexts, in one run.
//! Prints each pair's mean time and the ratio (evaluations per second, Pave over yggdrasil).
//!
//! `bench/flags.sh` (or `cargo bench --manifest-path bench/flags/Cargo.toml`).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::Criterion;
use pave_flags_bench::{context, rollout_with_constraints, twenty_flags};
use unleash_yggdrasil::{EngineState, UpdateMessage};

fn pave(state: &serde_json::Value) -> pave_flags::Engine {
    pave_flags::Engine::new(&serde_json::from_value(state.clone()).unwrap())
}

fn yggdrasil(state: &serde_json::Value) -> EngineState {
    let e = EngineState::default();
    let message: UpdateMessage = serde_json::from_value(state.clone()).unwrap();
    if let Some(warnings) = e.take_state(message) {
        panic!("yggdrasil did not take the flag set: {warnings:?}");
    }
    e
}

const PAIRS: [(&str, &str); 3] =
    [("flexibleRollout+constraints", "is_enabled"), ("20 flags", "resolve_all"), ("variant", "get_variant")];

fn main() {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    let mut c = Criterion::default().output_directory(&out).configure_from_args();
    let pave_ctx: pave_flags::Context = serde_json::from_value(context()).unwrap();
    let ygg_ctx: unleash_yggdrasil::Context = serde_json::from_value(context()).unwrap();

    // The same answers first: a comparison of engines that disagree means nothing.
    let (p, y) = (pave(&rollout_with_constraints()), yggdrasil(&rollout_with_constraints()));
    for user in 0..2000 {
        let pc = pave_flags::Context { user_id: Some(format!("u{user}")), ..pave_ctx.clone() };
        let yc = unleash_yggdrasil::Context { user_id: Some(format!("u{user}")), ..ygg_ctx.clone() };
        assert_eq!(
            p.is_enabled("checkout.new-flow", &pc),
            y.is_enabled("checkout.new-flow", &yc, &None),
            "user {user}"
        );
    }
    let (p20, y20) = (pave(&twenty_flags()), yggdrasil(&twenty_flags()));
    let ys = y20.resolve_all(&ygg_ctx, &None).unwrap();
    for r in p20.resolve_all(&pave_ctx) {
        let other = &ys[r.name];
        assert_eq!((r.enabled, r.variant.name), (other.enabled, other.variant.name.as_str()), "{}", r.name);
    }
    println!("both engines agree on every flag and on 2000 users' rollout buckets");

    let mut g = c.benchmark_group(PAIRS[0].0);
    g.bench_function("pave", |b| b.iter(|| p.is_enabled(black_box("checkout.new-flow"), black_box(&pave_ctx))));
    g.bench_function("yggdrasil", |b| {
        b.iter(|| y.is_enabled(black_box("checkout.new-flow"), black_box(&ygg_ctx), &None))
    });
    g.finish();

    let mut g = c.benchmark_group(PAIRS[1].0);
    g.bench_function("pave", |b| b.iter(|| p20.resolve_all(black_box(&pave_ctx)).collect::<Vec<_>>()));
    g.bench_function("yggdrasil", |b| b.iter(|| y20.resolve_all(black_box(&ygg_ctx), &None)));
    g.finish();

    let mut g = c.benchmark_group(PAIRS[2].0);
    g.bench_function("pave", |b| b.iter(|| p20.variant(black_box("flag-03"), black_box(&pave_ctx))));
    g.bench_function("yggdrasil", |b| b.iter(|| y20.get_variant(black_box("flag-03"), black_box(&ygg_ctx), &None)));
    g.finish();

    c.final_summary();
    println!();
    for (group, what) in PAIRS {
        let mean = |engine: &str| -> Option<f64> {
            let path = out.join(group).join(engine).join("new/estimates.json");
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            v["mean"]["point_estimate"].as_f64()
        };
        if let (Some(pv), Some(yv)) = (mean("pave"), mean("yggdrasil")) {
            println!(
                "{group} ({what}): pave {:.1} ns, yggdrasil {:.1} ns -> pave does {:.2}x the evaluations per second",
                pv,
                yv,
                yv / pv
            );
        }
    }
}
