//! A loop of one evaluation kind for `perf record` (not a benchmark: see benches/engines.rs).
fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let ctx: pave_flags::Context = serde_json::from_value(pave_flags_bench::context()).unwrap();
    let started = std::time::Instant::now();
    let n = 5_000_000u32;
    let mut on = 0u32;
    if which == "bulk" {
        let e = pave_flags::Engine::new(&serde_json::from_value(pave_flags_bench::twenty_flags()).unwrap());
        for _ in 0..n / 10 {
            on += e.resolve_all(std::hint::black_box(&ctx)).filter(|r| r.enabled).count() as u32;
        }
    } else {
        let e = pave_flags::Engine::new(&serde_json::from_value(pave_flags_bench::rollout_with_constraints()).unwrap());
        for _ in 0..n {
            on += u32::from(e.is_enabled(std::hint::black_box("checkout.new-flow"), std::hint::black_box(&ctx)));
        }
    }
    println!("{on} on, {:?}", started.elapsed());
}
