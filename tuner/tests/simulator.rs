//! The simulator: DS2's one-step convergence on a linear chain, a static configuration that
//! never converges under a rate step, and the scoreboard's rows.

use rheo_tuner::env::{SimEnv, SimParams};
use rheo_tuner::run::run;
use rheo_tuner::scoreboard::{Backend, TunerKind, context, row, run_once};
use rheo_tuner::spec::Workload;
use rheo_tuner::tuners::{Ds2, Ds2Knobs, Static};

fn chain(rate: &str) -> Workload {
    Workload::parse(
        &format!(
            r#"
name = "chain"
duration_s = 20
epoch_s = 0.5
[source]
rate = {rate}
[[stage]]
name = "a"
wait_us = 400.0
[[stage]]
name = "b"
wait_us = 900.0
[objective]
latency_slo_ms = 200
max_threads = 16
"#
        ),
        "chain.toml",
    )
    .unwrap()
}

fn exact(w: &Workload) -> SimParams {
    SimParams {
        noise: 0.0,
        ..SimParams::nominal(w)
    }
}

#[test]
fn ds2_converges_in_one_step_on_a_linear_chain() {
    // 3 000/s: a needs 3 000 × 400 µs = 1.2 → 2 workers, b 3 000 × 900 µs = 2.7 → 3.
    let w = chain(r#"{ profile = "constant", value = 3000 }"#);
    let mut env = SimEnv::new(&w, exact(&w), 7);
    let mut ds2 = Ds2::new(Ds2Knobs {
        warmup_epochs: 0,
        activation: 1,
        factor: 0.0,
        catch_up_s: 0.0,
    });
    let result = run(&mut env, &mut ds2, &context(&w), None, |_, _| {}).unwrap();
    let changes: Vec<u64> = result
        .epochs
        .iter()
        .filter(|e| e.score.changed)
        .map(|e| e.epoch)
        .collect();
    assert_eq!(changes, vec![1], "one change, right after the first epoch");
    let last = &result.epochs.last().unwrap().decision.config;
    assert_eq!(
        (last.parallelism("a"), last.parallelism("b")),
        (Some(2), Some(3))
    );
    // The first epoch queued ~950 events; 3 workers of b absorb 3 330/s against 3 000/s
    // offered, so the queue drains within about six epochs, after which all is well.
    assert!(
        result.epochs[10..]
            .iter()
            .all(|e| e.score.shortfall == 0.0 && e.p99_ms <= 200.0)
    );
}

#[test]
fn a_static_configuration_never_converges_after_a_step_up() {
    let w = chain(r#"{ profile = "step", values = [500, 3000], period_s = 10 }"#);
    let mut env = SimEnv::new(&w, exact(&w), 7);
    let result = run(&mut env, &mut Static, &context(&w), None, |_, _| {}).unwrap();
    let c = result.convergence(w.epoch_s, &w.source.rate.change_points(w.duration_s), 200.0);
    assert_eq!(c.converged, vec![false]);
    assert_eq!(c.epochs_to_converge, vec![20], "the whole phase counts");
}

#[test]
fn scoreboard_rows_carry_every_key() {
    let w = chain(r#"{ profile = "step", values = [1000, 3000], period_s = 10 }"#);
    let params = exact(&w);
    let kind = TunerKind::Ds2(Ds2Knobs::default());
    let runs: Vec<_> = [1000, 1001]
        .iter()
        .map(|s| run_once(&w, &params, Backend::Sim, &kind, *s).unwrap())
        .collect();
    let r = row(&w, Backend::Sim, &kind, &runs);
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "workload",
        "backend",
        "tuner",
        "runs",
        "objective",
        "objective_ci95",
        "throughput_eps",
        "target_eps",
        "p99_ms",
        "mean_threads",
        "reconfigurations",
        "epochs_to_converge",
        "reconfigs_to_converge_max",
        "slo_violation_epochs",
        "fallback_share",
        "peak_rss_mb",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(r.runs, 2);
    assert!(r.objective > 0.5, "{r:?}");
    assert!((r.target_eps - 2000.0).abs() < 50.0);
    // The oracle is the upper reference.
    let oracle: Vec<_> = [1000, 1001]
        .iter()
        .map(|s| run_once(&w, &params, Backend::Sim, &TunerKind::Oracle, *s).unwrap())
        .collect();
    let o = row(&w, Backend::Sim, &TunerKind::Oracle, &oracle);
    assert!(
        o.objective >= r.objective - 1e-9,
        "oracle {} < ds2 {}",
        o.objective,
        r.objective
    );
}
