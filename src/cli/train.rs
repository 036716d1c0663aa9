//! `rheo train`: PPO on the calibrated simulator of the shipped training workloads.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rheo::tuner::agent::checkpoint::{CheckpointHeader, save};
use rheo::tuner::agent::curve::{write_csv, write_experience, write_svg};
use rheo::tuner::agent::ppo::{PpoConfig, TrainingWorkload, train};
use rheo::tuner::scoreboard::{Backend, sim_params, tune_ds2};
use rheo::tuner::spec::Workload;

/// Arguments of `rheo train`.
#[derive(clap::Args)]
pub struct Args {
    /// Training workload specs (TOML); held-out workloads are refused.
    #[arg(long, num_args = 1.., required = true)]
    workload: Vec<PathBuf>,
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
    /// Also write every transition as a bincode experience log.
    #[arg(long)]
    experience: Option<PathBuf>,
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or("policy".into(), |s| s.to_string_lossy());
    path.with_file_name(format!("{stem}{suffix}"))
}

/// Trains and writes the checkpoint, the curve (CSV and SVG) and optionally the experience.
pub fn run_train(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut workloads = Vec::new();
    for path in &args.workload {
        if path.components().any(|c| c.as_os_str() == "held_out") {
            return Err(format!(
                "--workload {}: held-out workloads are never used for training",
                path.display()
            )
            .into());
        }
        let workload = Workload::load(path)?;
        let params = sim_params(path, &workload)?;
        let (ds2, _) = tune_ds2(&workload, &params, Backend::Sim)?;
        workloads.push(TrainingWorkload {
            workload,
            params,
            ds2,
        });
    }
    let cfg = PpoConfig {
        iterations: args.iterations,
        envs_per_workload: args.envs,
        seed: args.seed,
        ..PpoConfig::default()
    };
    let bar = ProgressBar::new(cfg.iterations as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} iterations {msg} [{elapsed_precise}, eta {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let trained = train(&workloads, &cfg, |p| {
        bar.set_message(format!("objective {:.3}", p.objective));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut header =
        CheckpointHeader::new(trained.stats.clone(), cfg.seed, command, trained.seconds);
    header.workloads = workloads.iter().map(|w| w.workload.name.clone()).collect();
    save(&args.out, &trained.net, &header)?;
    let csv = beside(&args.out, ".curve.csv");
    let svg = beside(&args.out, ".curve.svg");
    write_csv(&csv, &trained.curve)?;
    write_svg(&svg, &trained.curve)?;
    if let Some(path) = &args.experience {
        write_experience(path, &trained.experience)?;
    }
    let first = trained.curve.first().map_or(0.0, |p| p.objective);
    let last = trained.curve.last().map_or(0.0, |p| p.objective);
    println!(
        "trained {} iterations in {:.0} s: rollout objective {first:.3} → {last:.3}; wrote {}, {}, {}",
        cfg.iterations,
        trained.seconds,
        args.out.display(),
        csv.display(),
        svg.display()
    );
    Ok(())
}
