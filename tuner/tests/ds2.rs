//! DS2 on hand-computed examples: a chain, a fan-in, selectivity ≠ 1, clamping at the thread
//! budget; and its warm-up and activation knobs.

use rheo_engine::metrics::{
    EdgeMetrics, HostMetrics, LatencyMetrics, SourceMetrics, StageKind, StageMetrics,
};
use rheo_engine::partition::Partition;
use rheo_engine::{JobConfig, MetricsSnapshot};
use rheo_tuner::action::Bounds;
use rheo_tuner::objective::Objective;
use rheo_tuner::tuners::{Ds2, Ds2Knobs, TuneContext, Tuner, ds2_suggestion};

/// A stage: name, parallelism, true processing rate, true output rate.
type Stage = (&'static str, usize, f64, f64);

fn stage(name: &str, kind: StageKind, p: usize, lambda: f64, out: f64) -> StageMetrics {
    StageMetrics {
        records_in: 1000,
        records_out: (1000.0 * if lambda > 0.0 { out / lambda } else { 1.0 }) as u64,
        mean_input_batch: 64.0,
        busy_s: 0.5,
        idle_s: 0.5,
        busy_fraction: 0.5,
        idle_fraction: 0.5,
        true_processing_rate: lambda,
        true_output_rate: out,
        input_capacity: 64,
        ..StageMetrics::empty(name, kind, p)
    }
}

/// A snapshot of sources (name, offered rate) feeding `stages` along `edges`.
fn snapshot(sources: &[(&str, f64)], stages: &[Stage], edges: &[(&str, &str)]) -> MetricsSnapshot {
    let mut config = JobConfig::default();
    let mut all = Vec::new();
    for (name, _) in sources {
        config.set_parallelism(name, 1);
        all.push(stage(name, StageKind::Source, 1, 0.0, 0.0));
    }
    for (name, p, lambda, out) in stages {
        config.set_parallelism(name, *p);
        all.push(stage(name, StageKind::Operator, *p, *lambda, *out));
    }
    MetricsSnapshot {
        epoch: 3,
        time_s: 4.0,
        epoch_s: 1.0,
        generation: 0,
        config,
        stages: all,
        edges: edges
            .iter()
            .map(|(from, to)| EdgeMetrics {
                name: format!("{from}->{to}"),
                from: (*from).into(),
                to: (*to).into(),
                partition: Partition::Rebalance,
                capacity: 64,
                batch_size: 64,
                channels: 1,
                queue_mean: 0.0,
                queue_max: 0,
                occupancy: 0.0,
            })
            .collect(),
        sources: sources
            .iter()
            .map(|(name, rate)| SourceMetrics {
                name: (*name).into(),
                offered: *rate as u64,
                emitted: *rate as u64,
                backlog: 0,
                offered_rate: *rate,
                emitted_rate: *rate,
                target_rate: *rate,
                offered_total: 0,
                emitted_total: 0,
            })
            .collect(),
        latency: LatencyMetrics::default(),
        last_reconfiguration: None,
        reconfigurations: 0,
        host: HostMetrics {
            cores: 2,
            process_cpu_s: 0.0,
            process_cpu_fraction: 0.0,
        },
    }
}

fn context(stages: &[&str], max_threads: usize) -> TuneContext {
    TuneContext {
        objective: Objective {
            latency_slo_ms: 100.0,
            max_threads,
            stages: stages.iter().map(|s| (*s).into()).collect(),
        },
        bounds: Bounds {
            stages: stages.iter().map(|s| ((*s).into(), 1, 16)).collect(),
            max_threads,
            max_buffered_records: 10_000_000,
        },
        ds2_base: Default::default(),
    }
}

#[test]
fn a_chain_scales_each_stage_to_its_target() {
    // 1 000/s offered. A: one worker at 500/s → π_raw = 2, and it will emit 1 000/s.
    // B: two workers at 500/s each (λ = 1 000) → π_raw = 1 000 / 500 = 2: unchanged.
    let s = snapshot(
        &[("src", 1000.0)],
        &[("a", 1, 500.0, 500.0), ("b", 2, 1000.0, 1000.0)],
        &[("src", "a"), ("a", "b")],
    );
    let d = ds2_suggestion(&s, &context(&["a", "b"], 16), 0.0, 0.0);
    assert!((d.raw["a"] - 2.0).abs() < 1e-9);
    assert!((d.raw["b"] - 2.0).abs() < 1e-9);
    assert_eq!(d.parallelism("a"), Some(2));
    assert_eq!(d.parallelism("b"), Some(2));
    assert!((d.target_in["b"] - 1000.0).abs() < 1e-9);
}

#[test]
fn a_fan_in_sums_its_upstream_targets() {
    // Two sources, 600/s and 400/s, into C whose one worker does 250/s: π_raw = 1 000 / 250 = 4.
    let s = snapshot(
        &[("s1", 600.0), ("s2", 400.0)],
        &[("c", 1, 250.0, 250.0)],
        &[("s1", "c"), ("s2", "c")],
    );
    let d = ds2_suggestion(&s, &context(&["c"], 16), 0.0, 0.0);
    assert!((d.target_in["c"] - 1000.0).abs() < 1e-9);
    assert_eq!(d.parallelism("c"), Some(4));
}

#[test]
fn selectivity_shapes_the_downstream_target() {
    // A keeps half: one worker reads 1 000/s and emits 500/s. At 3 000/s offered, π_raw(A) = 3
    // and A will emit 500 × 3 = 1 500/s; B does 300/s per worker: π_raw(B) = 5.
    let s = snapshot(
        &[("src", 3000.0)],
        &[("a", 1, 1000.0, 500.0), ("b", 1, 300.0, 300.0)],
        &[("src", "a"), ("a", "b")],
    );
    let d = ds2_suggestion(&s, &context(&["a", "b"], 16), 0.0, 0.0);
    assert!((d.target_in["b"] - 1500.0).abs() < 1e-9);
    assert_eq!((d.parallelism("a"), d.parallelism("b")), (Some(3), Some(5)));
    // 10 % over-provisioning: ceil(3.3) = 4, ceil(5.5) = 6.
    let d = ds2_suggestion(&s, &context(&["a", "b"], 16), 0.1, 0.0);
    assert_eq!((d.parallelism("a"), d.parallelism("b")), (Some(4), Some(6)));
}

#[test]
fn the_thread_budget_grants_increases_in_topological_order() {
    // Same as above (A wants 3, B wants 5) with a budget of 6 threads: A gets its 3, B the 3
    // that remain.
    let s = snapshot(
        &[("src", 3000.0)],
        &[("a", 1, 1000.0, 500.0), ("b", 1, 300.0, 300.0)],
        &[("src", "a"), ("a", "b")],
    );
    let d = ds2_suggestion(&s, &context(&["a", "b"], 6), 0.0, 0.0);
    assert_eq!((d.parallelism("a"), d.parallelism("b")), (Some(3), Some(3)));
    assert_eq!(d.clamped.len(), 1, "{:?}", d.clamped);
    assert!(d.clamped[0].contains("thread budget"));
}

#[test]
fn backlog_catch_up_raises_the_source_target() {
    let mut s = snapshot(
        &[("src", 1000.0)],
        &[("a", 1, 500.0, 500.0)],
        &[("src", "a")],
    );
    s.sources[0].backlog = 5000;
    // Work off 5 000 events in 5 s: 1 000 + 1 000 = 2 000/s → 4 workers.
    let d = ds2_suggestion(&s, &context(&["a"], 16), 0.0, 5.0);
    assert_eq!(d.parallelism("a"), Some(4));
    assert_eq!(
        ds2_suggestion(&s, &context(&["a"], 16), 0.0, 0.0).parallelism("a"),
        Some(2)
    );
}

#[test]
fn activation_waits_for_agreement_and_warm_up_skips_epochs() {
    let s = snapshot(
        &[("src", 1000.0)],
        &[("a", 1, 500.0, 500.0)],
        &[("src", "a")],
    );
    let cx = context(&["a"], 16);
    let mut ds2 = Ds2::new(Ds2Knobs {
        warmup_epochs: 2,
        activation: 2,
        factor: 0.0,
        catch_up_s: 0.0,
    });
    // First proposal: not yet.
    assert_eq!(ds2.decide(&s, &cx).config.parallelism("a"), Some(1));
    // Second agreeing proposal: applied.
    let moved = ds2.decide(&s, &cx);
    assert_eq!(moved.config.parallelism("a"), Some(2));
    // Two warm-up epochs keep whatever runs.
    assert_eq!(ds2.decide(&s, &cx).reason, "warming up after a change");
    assert_eq!(ds2.decide(&s, &cx).reason, "warming up after a change");
    assert_eq!(
        ds2.decide(&s, &cx).config.parallelism("a"),
        Some(1),
        "the first new proposal waits again"
    );
}
