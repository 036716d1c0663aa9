//! `rheo train`: lookahead policy improvement over tuned DS2 and/or PPO on the calibrated
//! simulator of the shipped training workloads.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rheo::tuner::agent::Policy;
use rheo::tuner::agent::checkpoint::{CheckpointHeader, save};
use rheo::tuner::agent::curve::{
    read_experience, write_csv, write_experience, write_selection_csv, write_svg,
};
use rheo::tuner::agent::ppo::{BufferLoss, PpoConfig, TrainingWorkload, fine_tune, train_from};
use rheo::tuner::scoreboard::{Backend, EVALUATION_SEEDS, sim_params, tune_ds2};
use rheo::tuner::spec::Workload;
use rheo::tuner::tuners::Ds2Base;

/// Arguments of `rheo train`.
#[derive(clap::Args)]
pub struct Args {
    /// Training workload specs (TOML); held-out workloads are refused.
    #[arg(long, num_args = 1.., required_unless_present = "replay")]
    workload: Vec<PathBuf>,
    /// Offline training: replay this experience log (from `--experience`) into `--from`.
    #[arg(long, requires = "from")]
    replay: Option<PathBuf>,
    /// The checkpoint training starts from. With `--replay`: offline PPO passes over the log.
    /// Otherwise the run starts from its weights and feature statistics instead of fresh ones
    /// (its first lookahead round labels the checkpoint's own runs, and the checkpoint is
    /// candidate 0 of the model selection); it must have been trained on the same workloads,
    /// with the same `--tuned-base`. The new checkpoint's command and training time include
    /// the start's.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Where to write the checkpoint; the learning curve goes beside it.
    #[arg(long, default_value = "models/policy.ckpt")]
    out: PathBuf,
    /// PPO iterations.
    #[arg(long, default_value_t = PpoConfig::default().iterations)]
    iterations: usize,
    /// Simulated runs per workload per iteration.
    #[arg(long, default_value_t = PpoConfig::default().envs_per_workload)]
    envs: usize,
    /// Training seed.
    #[arg(long, default_value_t = PpoConfig::default().seed)]
    seed: u64,
    /// Adam's learning rate for PPO.
    #[arg(long, default_value_t = PpoConfig::default().learning_rate)]
    learning_rate: f64,
    /// Entropy bonus.
    #[arg(long, default_value_t = PpoConfig::default().entropy)]
    entropy: f64,
    /// Discount per epoch (how far ahead a decision's consequences count).
    #[arg(long, default_value_t = PpoConfig::default().gamma)]
    gamma: f64,
    /// Passes of imitation of DS2 before PPO (0: from scratch).
    #[arg(long, default_value_t = PpoConfig::default().imitation_epochs)]
    imitation_epochs: usize,
    /// Imitate DS2 with each workload's tuned knobs rather than the default ones.
    #[arg(long)]
    imitate_tuned: bool,
    /// Reward shaping: a run ending below tuned DS2 on the same simulated run loses this
    /// many times the gap on every decision (0: off).
    #[arg(long, default_value_t = PpoConfig::default().ds2_margin)]
    ds2_margin: f64,
    /// Share of lookahead runs whose start also has every stage's input buffer doubled a
    /// random 0 to 4 times, so buffer moves get labels where buffers have grown (0: off).
    #[arg(long, default_value_t = PpoConfig::default().random_buffer_start)]
    random_buffer_start: f64,
    /// Share of training runs (PPO rollouts and lookahead runs) whose rate profile is shifted
    /// ahead by a random time (up to half the workload's duration), so steps and bursts come at
    /// different epochs.
    #[arg(long, default_value_t = PpoConfig::default().rate_shift)]
    rate_shift: f64,
    /// Share of training runs (PPO rollouts and lookahead runs) whose source asks for a random
    /// rate profile (a constant, step, sine or burst over the range of rates the spec's own
    /// profile spans) instead of the spec's, so each pipeline meets every shape of load.
    #[arg(long, default_value_t = PpoConfig::default().profile_swap)]
    profile_swap: f64,
    /// Domain randomisation of the source: each training run's source stalls for a mean share
    /// of each epoch drawn up to this (as a starved CPU makes the engine's source fall behind
    /// with empty queues), so a shortfall alone does not read as back-pressure (0: off).
    #[arg(long, default_value_t = PpoConfig::default().source_stall)]
    source_stall: f64,
    /// Train the policy's moves as offsets from each workload's tuned DS2 (its
    /// over-provisioning and catch-up) instead of DS2 at its default knobs; the checkpoint then
    /// expects the DS2 its operator runs as its base (`rheo tune --ds2-factor …`, the
    /// scoreboard's tuned DS2).
    #[arg(long)]
    tuned_base: bool,
    /// Per-stage credit: each stage's moves are judged by their own probability ratio and an
    /// advantage over the epoch's pipeline-wide terms plus only that stage's thread and change
    /// cost, instead of all stages sharing the pipeline's.
    #[arg(long)]
    stage_credit: bool,
    /// Rounds of policy improvement over tuned DS2 by lookahead on the simulator before PPO
    /// (each move tried on a fork of the run, finished by tuned DS2; the network imitates the
    /// best); 0: off, PPO starts from imitating DS2.
    #[arg(long, default_value_t = PpoConfig::default().lookahead_rounds)]
    lookahead_rounds: usize,
    /// Simulated runs per workload per lookahead round.
    #[arg(long, default_value_t = PpoConfig::default().lookahead_runs)]
    lookahead_runs: usize,
    /// Summed reward over the rest of a run a move must gain over DS2's own to be the label.
    #[arg(long, default_value_t = PpoConfig::default().lookahead_margin)]
    lookahead_margin: f64,
    /// Summed reward over the rest of a run a change must gain over leaving the stage as it is
    /// to be the label (above 0: fewer reconfigurations).
    #[arg(long, default_value_t = PpoConfig::default().lookahead_keep_margin)]
    lookahead_keep_margin: f64,
    /// The keep margin holds back only moves that lower a stage; raises compete with keeping
    /// on value alone.
    #[arg(long)]
    lookahead_keep_lowers_only: bool,
    /// Value each lookahead fork by the better of two finishes: tuned DS2, and tuned DS2 that
    /// holds the configuration while the pipeline keeps up and meets the SLO.
    #[arg(long)]
    lookahead_hold: bool,
    /// From the second lookahead round on, finish each fork with the network being improved
    /// instead of tuned DS2 (approximate policy iteration): putting a change off is valued by
    /// what the network itself would do next, not by DS2 making the change for it.
    #[arg(long)]
    lookahead_policy_finish: bool,
    /// Share of the lookahead runs under the network that sample its moves rather than take
    /// the most probable ones, so states its less probable moves lead to get labels (0: off).
    #[arg(long, default_value_t = PpoConfig::default().lookahead_sampled)]
    lookahead_sampled: f64,
    /// Lookahead rounds train only the buffer outputs on the buffer labels; every other
    /// weight stays as it was, so the start's parallelism moves stay its own. Needs --from:
    /// on a fresh network it would train an output layer over untrained hidden layers.
    #[arg(long, requires = "from")]
    lookahead_buffer_head_only: bool,
    /// A stage whose input buffer is still the workload's own takes the start's most probable
    /// buffer move as its buffer label; grown or shrunk buffers keep the lookahead's labels.
    #[arg(long, requires = "from")]
    lookahead_buffer_anchor: bool,
    /// With --lookahead-buffer-head-only, what the buffer outputs learn: `labels` (the labels'
    /// likelihood), `labels-and-regret` (plus the expected regret: each buffer move's
    /// probability times what the lookahead measured it to lose against the best, as the
    /// parallelism moves are imitated) or `regret` (the expected regret alone, so a close
    /// call barely moves the start's buffer moves).
    #[arg(long, default_value = "labels", value_parser = parse_buffer_loss)]
    lookahead_buffer_loss: BufferLoss,
    /// Value leaving a stage where it is also by holding the configuration while the pipeline
    /// keeps up and meets the SLO (the finisher taking over at the first shortfall), and take
    /// the better: a change is weighed against putting it off until it must be made, not off
    /// by one epoch.
    #[arg(long)]
    lookahead_keep_hold: bool,
    /// With `--lookahead-keep-lowers-only` and `--lookahead-keep-hold`: a lowering must beat
    /// holding the stage by the keep margin, but only has to beat keeping it one epoch (which
    /// usually makes the same lowering an epoch later) on value.
    #[arg(long, requires_all = ["lookahead_keep_lowers_only", "lookahead_keep_hold"])]
    lookahead_keep_margin_held_only: bool,
    /// With `--lookahead-keep-margin-held-only`: only lowerings that the live loop's
    /// utilisation limit would apply as they are get that relief; the others keep the margin.
    #[arg(long, requires = "lookahead_keep_margin_held_only")]
    lookahead_held_only_within_limit: bool,
    /// With `--lookahead-keep-margin-held-only`: only a lowering that keeping the stage one
    /// epoch merely puts off (the finisher makes the same lowering next) gets that relief.
    #[arg(long, requires = "lookahead_keep_margin_held_only")]
    lookahead_held_only_postponed: bool,
    /// With `--lookahead-keep-margin-held-only`: only a lowering DS2 makes at the same epoch,
    /// to DS2's own suggestion, gets that relief.
    #[arg(long, requires = "lookahead_keep_margin_held_only")]
    lookahead_held_only_with_ds2: bool,
    /// With `--lookahead-keep-margin-held-only`: what a lowering relieved of the keep margin
    /// must still beat keeping the stage one epoch by.
    #[arg(
        long,
        default_value_t = PpoConfig::default().lookahead_postpone_margin,
        requires = "lookahead_keep_margin_held_only"
    )]
    lookahead_postpone_margin: f64,
    /// With `--lookahead-keep-margin-held-only`: the first lookahead round (from 0) whose
    /// labels get that relief; earlier rounds keep the margin (0: every round).
    #[arg(
        long,
        default_value_t = 0,
        requires = "lookahead_keep_margin_held_only"
    )]
    lookahead_relief_from_round: usize,
    /// Model selection keeps a candidate that meets the agent's targets against tuned DS2 on
    /// the selection seeds (below DS2 on no workload, above it on the mean, fewer
    /// reconfigurations in total) when any does, rather than the best-scoring one.
    #[arg(long)]
    select_on_targets: bool,
    /// Value a lowering that the live loop's utilisation limit would hold back by what the
    /// limit makes of it (training itself runs without the limit).
    #[arg(long)]
    lookahead_guarded_lowerings: bool,
    /// Also try halving and doubling each stage's input buffer on the lookahead's forks (DS2
    /// never sizes buffers); a buffer move is the label when it beats the stage's best move
    /// that leaves the buffer alone by `--lookahead-buffer-margin`.
    #[arg(long)]
    lookahead_buffers: bool,
    /// Summed reward over the rest of a run a buffer move must gain to be the label.
    #[arg(long, default_value_t = PpoConfig::default().lookahead_buffer_margin)]
    lookahead_buffer_margin: f64,
    /// Seeds each candidate policy runs every training workload on for model selection (0, 1,
    /// 2, …, never an evaluation seed; the default is the scoreboard's three training seeds).
    #[arg(long, default_value_t = PpoConfig::default().selection_seeds)]
    selection_seeds: usize,
    /// Also write every transition as a bincode experience log.
    #[arg(long)]
    experience: Option<PathBuf>,
    /// How reconfigurations are applied (the simulator prices them so).
    #[command(flatten)]
    engine: super::EngineArgs,
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or("policy".into(), |s| s.to_string_lossy());
    path.with_file_name(format!("{stem}{suffix}"))
}

/// `--lookahead-buffer-loss`'s value.
fn parse_buffer_loss(value: &str) -> Result<BufferLoss, String> {
    match value {
        "labels" => Ok(BufferLoss::Labels),
        "labels-and-regret" => Ok(BufferLoss::LabelsAndRegret),
        "regret" => Ok(BufferLoss::Regret),
        other => Err(format!("{other}: one of labels, labels-and-regret, regret")),
    }
}

/// Trains and writes the checkpoint, the curve (CSV and SVG) and optionally the experience.
pub fn run_train(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let first_evaluation_seed = EVALUATION_SEEDS[0] as usize;
    if !(1..=first_evaluation_seed).contains(&args.selection_seeds) {
        return Err(format!(
            "--selection-seeds {}: between 1 and {first_evaluation_seed} (seeds from \
             {first_evaluation_seed} are evaluation seeds)",
            args.selection_seeds
        )
        .into());
    }
    if args.lookahead_buffer_loss != BufferLoss::Labels && !args.lookahead_buffer_head_only {
        return Err("--lookahead-buffer-loss: only with --lookahead-buffer-head-only".into());
    }
    if let (Some(log), Some(from)) = (&args.replay, &args.from) {
        return replay(log, from, &args.out);
    }
    let mut workloads = Vec::new();
    for path in &args.workload {
        if path.components().any(|c| c.as_os_str() == "held_out") {
            return Err(format!(
                "--workload {}: held-out workloads are never used for training",
                path.display()
            )
            .into());
        }
        let mut workload = Workload::load(path)?;
        args.engine.apply(&mut workload);
        let params = sim_params(path, &workload)?;
        let (ds2, _) = tune_ds2(&workload, &params, Backend::Sim)?;
        workloads.push(TrainingWorkload {
            workload,
            params,
            ds2,
            ds2_base: if args.tuned_base {
                ds2.into()
            } else {
                Ds2Base::default()
            },
        });
    }
    let cfg = PpoConfig {
        iterations: args.iterations,
        envs_per_workload: args.envs,
        seed: args.seed,
        learning_rate: args.learning_rate,
        entropy: args.entropy,
        gamma: args.gamma,
        imitation_epochs: args.imitation_epochs,
        imitate_tuned_ds2: args.imitate_tuned,
        ds2_margin: args.ds2_margin,
        stage_credit: args.stage_credit,
        lookahead_rounds: args.lookahead_rounds,
        lookahead_runs: args.lookahead_runs,
        lookahead_margin: args.lookahead_margin,
        lookahead_keep_margin: args.lookahead_keep_margin,
        lookahead_keep_lowers_only: args.lookahead_keep_lowers_only,
        lookahead_hold: args.lookahead_hold,
        lookahead_policy_finish: args.lookahead_policy_finish,
        lookahead_sampled: args.lookahead_sampled,
        lookahead_buffer_head_only: args.lookahead_buffer_head_only,
        lookahead_buffer_anchor: args.lookahead_buffer_anchor,
        lookahead_buffer_loss: args.lookahead_buffer_loss,
        lookahead_keep_hold: args.lookahead_keep_hold,
        lookahead_keep_margin_held_only: args.lookahead_keep_margin_held_only,
        lookahead_held_only_within_limit: args.lookahead_held_only_within_limit,
        lookahead_held_only_postponed: args.lookahead_held_only_postponed,
        lookahead_held_only_with_ds2: args.lookahead_held_only_with_ds2,
        lookahead_postpone_margin: args.lookahead_postpone_margin,
        lookahead_relief_from_round: args.lookahead_relief_from_round,
        select_on_targets: args.select_on_targets,
        lookahead_guarded_lowerings: args.lookahead_guarded_lowerings,
        lookahead_buffers: args.lookahead_buffers,
        lookahead_buffer_margin: args.lookahead_buffer_margin,
        selection_seeds: args.selection_seeds,
        rate_shift: args.rate_shift,
        random_buffer_start: args.random_buffer_start,
        profile_swap: args.profile_swap,
        source_stall: args.source_stall,
        ..PpoConfig::default()
    };
    let bar = ProgressBar::new((cfg.lookahead_rounds + cfg.iterations) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} lookahead rounds + PPO iterations {msg} [{elapsed_precise}, eta {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let names: Vec<String> = workloads.iter().map(|w| w.workload.name.clone()).collect();
    let start = match &args.from {
        Some(from) => Some(starting_point(from, &names, args.tuned_base)?),
        None => None,
    };
    let trained = train_from(&workloads, &cfg, start.as_ref().map(|s| &s.0), |p| {
        bar.set_message(format!("objective {:.3}", p.objective));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let mut command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut training_s = trained.seconds;
    if let Some((_, original)) = &start {
        // The checkpoint is reproduced by both commands, and took both their times.
        command = format!("{} && {command}", original.command);
        training_s += original.training_s;
    }
    let mut header = CheckpointHeader::new(trained.stats.clone(), cfg.seed, command, training_s);
    header.workloads = names;
    header.tuned_ds2_base = args.tuned_base;
    save(&args.out, &trained.net, &header)?;
    let csv = beside(&args.out, ".curve.csv");
    let svg = beside(&args.out, ".curve.svg");
    write_csv(&csv, &trained.curve)?;
    write_svg(&svg, &trained.curve)?;
    let selection = beside(&args.out, ".selection.csv");
    write_selection_csv(
        &selection,
        &header.workloads,
        &trained.baseline,
        &trained.candidates,
    )?;
    if let Some(path) = &args.experience {
        write_experience(path, &trained.experience)?;
    }
    if let Some((iteration, score)) = trained.selected {
        println!(
            "kept the policy after iteration {iteration}: selection score {score:.4} on the training seeds (mean objective − 10 × mean shortfall against tuned DS2)"
        );
    }
    let first = trained.curve.first().map_or(0.0, |p| p.objective);
    let last = trained.curve.last().map_or(0.0, |p| p.objective);
    println!(
        "trained {} lookahead rounds and {} PPO iterations in {:.0} s: rollout objective {first:.3} → {last:.3}; wrote {}, {}, {}, {}",
        cfg.lookahead_rounds,
        cfg.iterations,
        trained.seconds,
        args.out.display(),
        csv.display(),
        svg.display(),
        selection.display()
    );
    Ok(())
}

/// The policy a training run starts from (`--from` without `--replay`), and its header; it
/// must have been trained on `workloads` with the same `tuned_base`, so its feature statistics
/// and the DS2 its moves are offsets from are the run's.
fn starting_point(
    from: &Path,
    workloads: &[String],
    tuned_base: bool,
) -> Result<(Policy, CheckpointHeader), Box<dyn std::error::Error>> {
    let (policy, header) = Policy::load(from)?;
    if header.workloads != workloads {
        return Err(format!(
            "--from {}: trained on {:?}, this run trains on {:?}",
            from.display(),
            header.workloads,
            workloads
        )
        .into());
    }
    if header.tuned_ds2_base != tuned_base {
        return Err(format!(
            "--from {}: trained {} --tuned-base, this run {} it",
            from.display(),
            if header.tuned_ds2_base {
                "with"
            } else {
                "without"
            },
            if tuned_base { "has" } else { "lacks" }
        )
        .into());
    }
    Ok((policy, header))
}

/// More PPO passes over a logged experience, starting from a checkpoint.
fn replay(log: &Path, from: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let experience = read_experience(log)?;
    let (policy, original) = Policy::load(from)?;
    let cfg = PpoConfig::default();
    let started = std::time::Instant::now();
    let (net, losses) = fine_tune(&policy.net, &experience, &cfg)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut header = CheckpointHeader::new(
        policy.stats.clone(),
        original.seed,
        command,
        original.training_s + started.elapsed().as_secs_f64(),
    );
    header.workloads = original.workloads;
    save(out, &net, &header)?;
    println!(
        "replayed {} transitions from {} into {} (policy loss {:.3}, value loss {:.3}); wrote {}",
        experience.len(),
        log.display(),
        from.display(),
        losses.0,
        losses.1,
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rheo::tuner::agent::features::FeatureStats;

    #[test]
    fn a_start_trained_on_other_workloads_or_another_base_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("rheo-train-from-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("start.ckpt");
        let mut header = CheckpointHeader::new(FeatureStats::default(), 1, "train".into(), 5.0);
        header.workloads = vec!["selective".into()];
        header.tuned_ds2_base = true;
        save(&path, &Policy::untrained().net, &header).unwrap();
        let ok = starting_point(&path, &["selective".into()], true).unwrap();
        assert_eq!(ok.1.training_s, 5.0);
        let other = starting_point(&path, &["wait-step".into()], true).unwrap_err();
        assert!(other.to_string().contains("start.ckpt"), "{other}");
        assert!(other.to_string().contains("wait-step"), "{other}");
        let base = starting_point(&path, &["selective".into()], false).unwrap_err();
        assert!(base.to_string().contains("--tuned-base"), "{base}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[derive(clap::Parser)]
    struct Train {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn buffer_head_only_rounds_and_the_anchor_are_refused_without_a_start() {
        use clap::Parser;
        let head_only = [
            "train",
            "--workload",
            "w.toml",
            "--lookahead-buffer-head-only",
        ];
        let refused = Train::try_parse_from(head_only).err().unwrap();
        assert!(refused.to_string().contains("--from"), "{refused}");
        let with_start = head_only.into_iter().chain(["--from", "start.ckpt"]);
        assert!(Train::try_parse_from(with_start).is_ok());
        // The anchor is the start's own buffer moves: no start, no anchor.
        let anchor = ["train", "--workload", "w.toml", "--lookahead-buffer-anchor"];
        let refused = Train::try_parse_from(anchor).err().unwrap();
        assert!(refused.to_string().contains("--from"), "{refused}");
    }

    #[test]
    fn a_buffer_loss_other_than_the_labels_is_refused_without_head_only_rounds() {
        use clap::Parser;
        // Refused by `run_train`, not by clap (the option has a default), and before any
        // file is read: the workload named here does not exist.
        let regret = [
            "train",
            "--workload",
            "w.toml",
            "--lookahead-buffer-loss",
            "regret",
        ];
        let refused = run_train(Train::try_parse_from(regret).unwrap().args).unwrap_err();
        let message = refused.to_string();
        assert!(message.contains("--lookahead-buffer-loss"), "{message}");
        assert!(
            message.contains("--lookahead-buffer-head-only"),
            "{message}"
        );
    }
}
