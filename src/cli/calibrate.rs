//! `rheo calibrate`: fits the simulator to engine runs of each workload and measures its
//! error on a further run it was not fitted on.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use rheo::engine::MetricsSnapshot;
use rheo::tuner::calibrate::{SimError, compare, fit, load_snapshots, save_snapshots};
use rheo::tuner::env::{EngineEnv, SimParams};
use rheo::tuner::run::run;
use rheo::tuner::scoreboard::{TRAINING_SEEDS, calibration_path, context};
use rheo::tuner::spec::Workload;
use rheo::tuner::tuners::{Ds2, Ds2Knobs, Static, Tuner};
use serde::Serialize;

/// Arguments of `rheo calibrate`.
#[derive(clap::Args)]
pub struct Args {
    /// Workload specs (TOML); each gets `calibration/<name>.json` beside the workloads.
    #[arg(long, num_args = 1.., required = true)]
    workload: Vec<PathBuf>,
    /// Write the error table as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Refit from the runs recorded by an earlier calibration (`calibration/<name>.*.jsonl`)
    /// instead of running the engine.
    #[arg(long)]
    recorded: bool,
}

#[derive(Serialize)]
struct ErrorRow {
    workload: String,
    /// On the validation run (not fitted on).
    calibrated: SimError,
    /// The uncalibrated model on the validation run.
    nominal: SimError,
    /// On the static fit run (in-sample), where the initial configuration is often overloaded.
    static_in_sample: SimError,
}

fn engine_run(
    workload: &Workload,
    tuner: &mut dyn Tuner,
    seed: u64,
) -> Result<Vec<MetricsSnapshot>, Box<dyn std::error::Error>> {
    let mut env = EngineEnv::start(workload, seed)?;
    let mut snapshots = Vec::new();
    run(&mut env, tuner, &context(workload), None, |s, _| {
        snapshots.push(s.clone())
    })?;
    Ok(snapshots)
}

/// Fits, saves and validates the calibration of every workload.
pub fn run_calibrate(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let bar = ProgressBar::new(3 * args.workload.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} engine runs {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    for path in &args.workload {
        let workload = Workload::load(path)?;
        bar.set_message(workload.name.clone());
        let out = calibration_path(path, &workload);
        let dir = out.parent().map(PathBuf::from).unwrap_or_default();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let recording = |kind: &str| dir.join(format!("{}.{kind}.jsonl", workload.name));
        if !args.recorded {
            // Fit on a static run (the initial parallelism, often overloaded) and a DS2 run
            // (several parallelisms); validate on a third run with other knobs and keys. The
            // runs are recorded as JSON lines beside the calibration, and the fit reads them.
            let fixed = engine_run(&workload, &mut Static, TRAINING_SEEDS[0])?;
            save_snapshots(&recording("fit-static"), &fixed)?;
            bar.inc(1);
            let knobs = Ds2Knobs {
                factor: 0.1,
                ..Ds2Knobs::default()
            };
            let moving = engine_run(&workload, &mut Ds2::new(knobs), TRAINING_SEEDS[1])?;
            save_snapshots(&recording("fit-ds2"), &moving)?;
            bar.inc(1);
            let validation = engine_run(
                &workload,
                &mut Ds2::new(Ds2Knobs {
                    warmup_epochs: 2,
                    activation: 1,
                    factor: 0.25,
                    catch_up_s: 5.0,
                }),
                TRAINING_SEEDS[2],
            )?;
            save_snapshots(&recording("validate"), &validation)?;
            bar.inc(1);
        } else {
            bar.inc(3);
        }
        let fixed = load_snapshots(&recording("fit-static"))?;
        let fit_runs = vec![fixed.clone(), load_snapshots(&recording("fit-ds2"))?];
        let validation = load_snapshots(&recording("validate"))?;
        let params = fit(&workload, &fit_runs);
        params.save(&out)?;
        rows.push(ErrorRow {
            workload: workload.name.clone(),
            calibrated: compare(&workload, &params, &validation),
            nominal: compare(&workload, &SimParams::nominal(&workload), &validation),
            static_in_sample: compare(&workload, &params, &fixed),
        });
    }
    bar.finish_and_clear();
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}   (nominal model: thru, p99, busy)   [static run: thru, busy, fill]",
        "workload",
        "thru err",
        "epoch thru",
        "p99 med",
        "SLO err",
        "busy err",
        "busy max",
        "fill err",
        "fill max"
    );
    for r in &rows {
        let (c, n) = (&r.calibrated, &r.nominal);
        println!(
            "{:<14} {:>9.1}% {:>9.1}% {:>9.0}% {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}   ({:.1}%, {:.0}%, {:.3})   [{:.1}%, {:.3}, {:.3}]",
            r.workload,
            c.throughput_rel * 100.0,
            c.throughput_epoch_rel * 100.0,
            c.p99_rel_median * 100.0,
            c.slo_abs,
            c.busy_abs,
            c.busy_abs_max_stage,
            c.occupancy_abs,
            c.occupancy_abs_max_stage,
            n.throughput_rel * 100.0,
            n.p99_rel_median * 100.0,
            n.busy_abs,
            r.static_in_sample.throughput_rel * 100.0,
            r.static_in_sample.busy_abs,
            r.static_in_sample.occupancy_abs
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
