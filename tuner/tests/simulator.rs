//! The simulator: DS2's one-step convergence on a linear chain, a static configuration that
//! never converges under a rate step, the scoreboard's rows, and the queueing model's transients
//! (batches that grow only behind a full channel; the latency of a growing queue); a run with
//! its rate profile shifted in time; an overloaded channel's fill in batches; key skew seen by
//! the busiest worker; a hand-over's short pause and the queue it carries; a stalling source's
//! shortfall with empty queues.

use rheo_tuner::agent::guard::GuardConfig;
use rheo_tuner::env::sim::{Carry, Model, Reconfiguration, initial_config};
use rheo_tuner::env::{SimEnv, SimParams};
use rheo_tuner::run::run;
use rheo_tuner::scoreboard::{Backend, TunerKind, context, decision_budget_us, row, run_once};
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
fn a_shifted_run_meets_the_step_earlier() {
    let w = chain(r#"{ profile = "step", values = [500, 3000], period_s = 10 }"#);
    // Offered rate per epoch of a static run, with the profile as written and 4 s ahead.
    let offered = |shift: f64| {
        let mut env = SimEnv::new(&w, exact(&w), 7).with_rate_shift(shift);
        let result = run(&mut env, &mut Static, &context(&w), None, |_, _| {}).unwrap();
        result
            .epochs
            .iter()
            .map(|e| e.offered_rate)
            .collect::<Vec<_>>()
    };
    let (plain, shifted) = (offered(0.0), offered(4.0));
    assert_eq!(
        plain.len(),
        shifted.len(),
        "a shift does not change the run's length"
    );
    let step = |rates: &[f64]| rates.iter().position(|&r| r > 1000.0);
    assert_eq!(step(&plain), Some(20), "the step at 10 s, epoch 20");
    assert_eq!(step(&shifted), Some(12), "4 s ahead: 8 epochs earlier");
    assert!((shifted[0] - 500.0).abs() < 1.0 && (shifted[39] - 3000.0).abs() < 1.0);
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

/// batch-wait's stage: a remote call of 3 ms per batch plus 50 µs per record, at 2 000/s.
fn batched() -> Workload {
    Workload::parse(
        r#"
name = "batched"
duration_s = 20
epoch_s = 0.5
[source]
rate = { profile = "constant", value = 2000 }
[[stage]]
name = "rpc"
wait_us = 50.0
batch_wait_us = 3000.0
partition = "rebalance"
[objective]
latency_slo_ms = 150
max_threads = 8
[initial]
batch_size = 32
"#,
        "batched.toml",
    )
    .unwrap()
}

#[test]
fn a_batched_stage_grows_its_batches_only_behind_a_full_channel() {
    let w = batched();
    let params = exact(&w);
    let (floor, flush) = (params.latency_floor_ms, params.flush_timeout_s);
    let mut model = Model::new(&w, params);
    let config = initial_config(&w);
    // One worker, no channel full yet: batches leave on the flush timeout with 1 + 2 000/s ×
    // 2 ms = 5 records, a record costs 50 + 3 000 / 5 + overhead ≈ 650 µs, so the worker
    // serves ~1 540/s and ~230 of the epoch's 1 000 events queue — less than the channel
    // holds at 5-record batches (64 × 5), so nothing blocks and the batches stay at 5.
    let first = model.epoch(&config, 1000.0, Carry::default(), &[1.0]);
    assert!(
        (first.batch[0] - (1.0 + 2000.0 * flush)).abs() < 1e-9,
        "{first:?}"
    );
    assert_eq!(first.emitted, 1000.0, "the source blocks on nothing");
    assert!(
        first.queued > 200.0 && first.queued < 320.0,
        "{}",
        first.queued
    );
    // The last event served waited while the ~230 behind it were offered (at 2 000/s), not
    // while they would drain: ~115 ms plus a batch's flush and service (the engine measured
    // 129 ms p99 for this epoch; dividing by the service rate made it ~220).
    let queued_ms = first.queued / 2000.0 * 1e3;
    assert!(
        first.p99_ms > floor + queued_ms && first.p99_ms < floor + queued_ms + 10.0,
        "p99 {} for {queued_ms} ms of queue",
        first.p99_ms
    );
    // The channel is now more than half full and fills early in the next epoch: the sender
    // blocks, its batches grow until the call keeps up, and the channel stays full.
    assert!(first.full);
    let second = model.epoch(&config, 1000.0, first.carry(), &[1.0]);
    assert!(second.batch[0] > first.batch[0] + 1.0, "{second:?}");
    assert!(second.full && second.occupancy[0] == 1.0, "{second:?}");
}

#[test]
fn an_overloaded_stage_is_as_late_as_its_backlog_took_to_be_offered() {
    // 4 000/s into `a`'s one 400 µs worker (~2 500/s): each 0.5 s epoch leaves ~750 more
    // events due, which the schedule offered in ~190 ms, so the p99 grows by that much an
    // epoch — not by the ~300 ms they take to be served. (On the engine, wait-constant's one
    // 500 µs worker at 4 000/s measured 255, 512, 762, 1 016 ms: 250 ms an epoch.)
    let w = chain(r#"{ profile = "constant", value = 4000 }"#);
    let params = exact(&w);
    let served = 1e6 / (400.0 + params.overhead_us);
    let expected_ms = (4000.0 - served) * 0.5 / 4000.0 * 1e3;
    let mut model = Model::new(&w, params);
    let mut config = initial_config(&w);
    config.stages.get_mut("b").expect("stage b").parallelism = 4;
    let mut carry = Carry::default();
    let mut p99 = Vec::new();
    for _ in 0..6 {
        let out = model.epoch(&config, 2000.0, carry, &[1.0, 1.0]);
        carry = out.carry();
        p99.push(out.p99_ms);
    }
    for pair in p99[1..].windows(2) {
        let step = pair[1] - pair[0];
        assert!(
            (step - expected_ms).abs() < 0.1 * expected_ms,
            "p99 by epoch {p99:?}, expected steps of {expected_ms} ms"
        );
    }
}

#[test]
fn a_hand_over_pauses_for_a_batch_and_carries_the_queue_a_drain_works_off() {
    // `a` (one 400 µs worker) falls behind 4 000/s; then it gets three workers.
    let mut w = chain(r#"{ profile = "constant", value = 4000 }"#);
    let mut before = initial_config(&w);
    before.stages.get_mut("b").expect("stage b").parallelism = 4;
    let mut after = before.clone();
    after.stages.get_mut("a").expect("stage a").parallelism = 3;
    let noise = [1.0, 1.0];
    let mut model = Model::new(&w, exact(&w));
    let mut carry = Carry::default();
    let mut capacity = 0.0;
    for _ in 0..3 {
        let out = model.epoch(&before, 2000.0, carry, &noise);
        carry = out.carry();
        capacity = out.capacity;
    }
    assert!(carry.queued > 500.0, "the queue did not fill: {carry:?}");
    // The workload drains unless it asks for hand-overs.
    assert_eq!(model.hand_over_stop_s(&before, &after, &noise), None);
    let drain = model.epoch_after_change(
        &after,
        2000.0,
        carry,
        &noise,
        Reconfiguration::Drain {
            previous_capacity: capacity,
        },
    );
    w.rescale = rheo_engine::Rescale::HandOver;
    let mut model = Model::new(&w, exact(&w));
    let stop_s = model
        .hand_over_stop_s(&before, &after, &noise)
        .expect("a rebalanced stage is handed over");
    // The slowest stage's worker finishing half a batch of 64 records: `b`, at 900 µs each
    // (and the engine's overhead).
    assert!((0.0288..0.0292).contains(&stop_s), "stop {stop_s} s");
    let hand_over = model.epoch_after_change(
        &after,
        2000.0,
        carry,
        &noise,
        Reconfiguration::HandOver { stop_s },
    );
    // The drain pauses for the queue at the old rate; the hand-over for the batch in hand.
    assert!(drain.pause_s > carry.queued / capacity);
    assert!(hand_over.pause_s < 0.031);
    // Nothing is lost either way: what was queued is processed or still queued.
    for out in [&drain, &hand_over] {
        let due = carry.backlog + carry.queued + 2000.0;
        let accounted = out.processed + out.queued + out.backlog;
        assert!(
            (due - accounted).abs() < 1.0,
            "{due} due, {accounted} accounted"
        );
    }
    // The hand-over emits more of the epoch's events.
    assert!(hand_over.emitted > drain.emitted);
}

#[test]
fn an_overloaded_channel_reads_full_once_its_flush_sized_batches_fill_it() {
    // The same overload: ~750 events queue in the first epoch, under what the channel holds at
    // full 64-record batches (4 096) but over what it holds at the batches its sender flushed
    // before blocking (64 × (1 + 4 000/s × 2 ms) = 576). The engine counts the fill in
    // batches: wait-constant's overloaded channel read 0.73 (mean of the epoch's samples) in
    // its first epoch and 1.0 from the second on, where the model used to report 0.25, 0.50,
    // 0.74 — so a policy trained on it met a fill on the engine it had never seen. Like the
    // engine's, the model's occupancy is the epoch's mean: the first epoch fills the channel
    // from empty part way through, so it reads between half and full.
    let w = chain(r#"{ profile = "constant", value = 4000 }"#);
    let params = exact(&w);
    let flushed = params.flush_batch(4000.0, 64.0);
    let mut model = Model::new(&w, params);
    let mut config = initial_config(&w);
    config.stages.get_mut("b").expect("stage b").parallelism = 4;
    let first = model.epoch(&config, 2000.0, Carry::default(), &[1.0, 1.0]);
    assert!(
        first.queued > 64.0 * flushed && first.queued < 0.5 * 64.0 * 64.0,
        "queued {} (flush-sized batches of {flushed})",
        first.queued
    );
    assert!(
        first.occupancy[0] > 0.5 && first.occupancy[0] < 1.0,
        "{first:?}"
    );
    let second = model.epoch(&config, 2000.0, first.carry(), &[1.0, 1.0]);
    assert_eq!(second.occupancy[0], 1.0, "{second:?}");
    // The well-sized `b` downstream stays nearly empty.
    assert!(second.occupancy[1] < 0.1, "{second:?}");
}

fn keyed(skew: f64) -> Workload {
    Workload::parse(
        &format!(
            r#"
name = "keyed"
duration_s = 5
epoch_s = 0.5
[source]
rate = {{ profile = "constant", value = 1500 }}
key_space = 1000
key_skew = {skew}
[[stage]]
name = "parse"
cpu_us = 5.0
partition = "rebalance"
[[stage]]
name = "join"
wait_us = 400.0
partition = "hash"
keyed_state = true
[initial]
parallelism = 2
[objective]
latency_slo_ms = 200
max_threads = 16
"#
        ),
        "keyed.toml",
    )
    .unwrap()
}

#[test]
fn the_busiest_worker_shows_key_skew_that_the_mean_hides() {
    use rheo_tuner::env::Environment;
    let busy = |skew: f64, stage: &str| {
        let w = keyed(skew);
        let mut env = SimEnv::new(&w, exact(&w), 7);
        let snapshot = env.observe().unwrap().unwrap();
        let s = snapshot.stage(stage).unwrap();
        (s.busy_fraction, s.max_worker_busy_fraction)
    };
    // Zipf 1.1 over 1 000 keys: one of two key-group ranges takes well over half the load.
    let (mean, max) = busy(1.1, "join");
    assert!(
        max > mean + 0.05,
        "skewed join: mean {mean:.3}, busiest {max:.3}"
    );
    assert!(max <= 1.0);
    // Uniform keys split evenly enough; a rebalanced stage is even by construction.
    let (mean, max) = busy(0.0, "join");
    assert!(
        max - mean < 0.05,
        "uniform join: mean {mean:.3}, busiest {max:.3}"
    );
    let (mean, max) = busy(1.1, "parse");
    assert!(
        (max - mean).abs() < 1e-9,
        "rebalanced parse: {mean} vs {max}"
    );
}

#[test]
fn a_stalling_source_falls_short_with_empty_queues_and_catches_up() {
    use rheo_tuner::env::Environment as _;
    // 3 000/s into a chain sized at 2 and 3 workers: the pipeline keeps up, so whatever the
    // source does not emit in an epoch is its own stall, never back-pressure.
    let w = chain(r#"{ profile = "constant", value = 3000 }"#);
    let mut config = initial_config(&w);
    config.set_parallelism("a", 2);
    config.set_parallelism("b", 3);
    let stalling = SimParams {
        source_stall: 0.05,
        ..exact(&w)
    };
    let mut env = SimEnv::new(&w, stalling, 7).starting_from(config.clone());
    let (mut short, mut offered, mut emitted) = (0, 0u64, 0u64);
    while let Some(s) = env.observe().unwrap() {
        let source = &s.sources[0];
        if source.emitted < source.offered {
            short += 1;
            // The shortfall is the source's: the first stage's channel is not full.
            assert!(s.stage("a").unwrap().input_occupancy < 0.5, "{s:?}");
        }
        (offered, emitted) = (source.offered_total, source.emitted_total);
    }
    // An epoch falls short when its stall outlasts the one before it, whose events it sends
    // on top of its own: about every other epoch.
    let epochs = w.epochs() as u32;
    assert!(short >= epochs / 4, "short in {short} of {epochs} epochs");
    // Every stall is made up: what is still due at the end is at most one epoch's stall.
    assert!(emitted as f64 >= offered as f64 - 0.5 * 3000.0 * w.epoch_s);
    // Without stalls the same run emits every event as it falls due.
    let mut env = SimEnv::new(&w, exact(&w), 7).starting_from(config);
    while let Some(s) = env.observe().unwrap() {
        let source = &s.sources[0];
        assert!(source.emitted + 1 >= source.offered, "{source:?}");
    }
}

#[test]
fn the_agents_decision_budget_binds_on_the_engine_only() {
    // The simulator's epochs do not wait for a decision; a wall-clock budget there would drop
    // decisions on a busy machine and change the run.
    assert_eq!(decision_budget_us(Backend::Sim), u64::MAX);
    assert_eq!(
        decision_budget_us(Backend::Engine),
        GuardConfig::default().decision_budget_us
    );
}
