//! `rheo distill`: a shallow decision tree distilled from the policy over simulated decisions
//! on workloads, its fidelity on held-out seeds and its rules.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use rheo::tuner::agent::Policy;
use rheo::tuner::explain::sample::simulated_decisions;
use rheo::tuner::explain::tree::{TreeInputs, choose_move_weight, distill, effect_label};
use rheo::tuner::explain::{MOVE_WEIGHT, TREE_DEPTH};
use rheo::tuner::scoreboard::{EVALUATION_SEEDS, sim_params};
use rheo::tuner::spec::Workload;

/// Arguments of `rheo distill`.
#[derive(clap::Args)]
pub struct Args {
    /// Workload specs (TOML) to sample decisions on.
    #[arg(long, num_args = 1.., required = true)]
    workload: Vec<PathBuf>,
    /// The policy checkpoint.
    #[arg(long, default_value = "models/policy.ckpt")]
    checkpoint: PathBuf,
    /// Depth limit of the tree.
    #[arg(long, default_value_t = TREE_DEPTH)]
    depth: usize,
    /// Weight of a decision that changes its stage when fitting (default: chosen on the fit
    /// seeds alone — trees fitted on the first four fifths, scored on the last fifth).
    #[arg(long)]
    move_weight: Option<f32>,
    /// Fit on the simulator's seeds 0..N (never an evaluation seed). More seeds make a more
    /// faithful tree (the fit grows linearly: about 0.25 s per seed for the shipped workloads
    /// on a 2-core machine).
    #[arg(long, default_value_t = 400)]
    fit_seeds: u64,
    /// Split on the policy's feature row alone, without the quantities in workers derived from
    /// it (to see what they add).
    #[arg(long)]
    policy_row_only: bool,
    /// Write the tree and its fidelity as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Samples, fits, measures and prints.
pub fn run_distill(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (policy, _) = Policy::load(&args.checkpoint)?;
    if args.fit_seeds > EVALUATION_SEEDS[0] {
        return Err(format!(
            "--fit-seeds: at most {} (seeds from {} are evaluation seeds)",
            EVALUATION_SEEDS[0], EVALUATION_SEEDS[0]
        )
        .into());
    }
    let bar = ProgressBar::new(args.workload.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} workloads sampled {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // The last fifth of the fit seeds validates the move weight (when it is not given), and
    // the tree is then fitted on them all.
    let split = args.fit_seeds - args.fit_seeds / 5;
    let (mut fit, mut validation, mut held_out) = (Vec::new(), Vec::new(), Vec::new());
    for path in &args.workload {
        let w = Workload::load(path)?;
        bar.set_message(w.name.clone());
        let params = sim_params(path, &w)?;
        // Fitted on the training seeds, measured on evaluation seeds: greedy runs from the
        // workload's start and exploring runs from random starts, both.
        let seeds: Vec<u64> = (0..split).collect();
        fit.extend(simulated_decisions(&policy, &w, &params, &seeds, true)?);
        let seeds: Vec<u64> = (split..args.fit_seeds).collect();
        validation.extend(simulated_decisions(&policy, &w, &params, &seeds, true)?);
        held_out.extend(simulated_decisions(
            &policy,
            &w,
            &params,
            &EVALUATION_SEEDS[..3],
            true,
        )?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let inputs = if args.policy_row_only {
        TreeInputs::PolicyRow
    } else {
        TreeInputs::WithDerived
    };
    let weight = match args.move_weight {
        Some(weight) => weight,
        None => {
            let (weight, trials) =
                choose_move_weight(&fit, &validation, args.depth, MOVE_WEIGHT, inputs)?;
            println!(
                "move weight chosen on the fit seeds (the first {split} fit, the other {} scored):",
                args.fit_seeds - split
            );
            for t in &trials {
                println!(
                    "  {:>4}: {:.1}% overall, {:.1}% on moves{}",
                    t.move_weight,
                    t.fidelity * 100.0,
                    t.fidelity_on_moves * 100.0,
                    if t.move_weight == weight {
                        "  ← chosen"
                    } else {
                        ""
                    }
                );
            }
            weight
        }
    };
    fit.extend(validation);
    let tree = distill(&fit, &held_out, args.depth, weight, inputs)?;
    println!("{}", tree.rules.join("\n"));
    println!(
        "\ndepth {} (limit {}), {} leaves, fitted on {} decisions (moves weighing {}); fidelity on {} held-out decisions {:.1}%, on the {} that change their stage ({} move its input buffer) {:.1}%",
        tree.depth,
        tree.max_depth,
        tree.leaves,
        tree.trained_on,
        tree.move_weight,
        tree.held_out,
        tree.fidelity * 100.0,
        tree.held_out_moves,
        tree.held_out_buffer_moves,
        tree.fidelity_on_moves * 100.0
    );
    println!(
        "held-out decisions by the policy's move (rows) and the tree's (columns), moves either took:"
    );
    // Of the fifteen classes (parallelism × buffer moves) a policy takes a few: show those.
    let shown: Vec<usize> = (0..tree.confusion.len())
        .filter(|&k| {
            tree.confusion[k].iter().any(|&n| n > 0) || tree.confusion.iter().any(|r| r[k] > 0)
        })
        .collect();
    let width = shown
        .iter()
        .map(|&k| effect_label(k).chars().count())
        .max()
        .unwrap_or(4)
        + 1;
    println!(
        "{:>width$} {}",
        "",
        shown
            .iter()
            .map(|&k| format!("{:>width$}", effect_label(k)))
            .collect::<String>()
    );
    for &k in &shown {
        println!(
            "{:>width$} {}",
            effect_label(k),
            shown
                .iter()
                .map(|&c| format!("{:>width$}", tree.confusion[k][c]))
                .collect::<String>()
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&tree)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
