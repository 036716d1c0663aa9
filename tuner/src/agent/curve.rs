//! The learning curve as CSV and SVG, and the experience log as bincode.

use std::path::Path;

use plotters::prelude::*;

use super::ppo::{Candidate, CurvePoint, SelectionRow, Transition};

/// Writes the curve as CSV.
pub fn write_csv(path: &Path, curve: &[CurvePoint]) -> std::io::Result<()> {
    let mut out =
        String::from("iteration,phase,steps,objective,policy_loss,value_loss,entropy,seconds\n");
    for p in curve {
        let phase = if p.lookahead { "lookahead" } else { "ppo" };
        out.push_str(&format!(
            "{},{phase},{},{:.5},{:.5},{:.5},{:.5},{:.2}\n",
            p.iteration, p.steps, p.objective, p.policy_loss, p.value_loss, p.entropy, p.seconds
        ));
    }
    std::fs::write(path, out)
}

/// Writes model selection as CSV: one line per candidate policy and training workload (named by
/// `workloads`), beside tuned DS2 on the same selection runs.
pub fn write_selection_csv(
    path: &Path,
    workloads: &[String],
    baseline: &[SelectionRow],
    candidates: &[Candidate],
) -> std::io::Result<()> {
    let mut out = String::from(
        "iteration,score,workload,objective,ds2_objective,reconfigurations,ds2_reconfigurations\n",
    );
    for c in candidates {
        for ((name, own), ds2) in workloads.iter().zip(&c.rows).zip(baseline) {
            out.push_str(&format!(
                "{},{:.5},{name},{:.5},{:.5},{:.2},{:.2}\n",
                c.iteration,
                c.score,
                own.objective,
                ds2.objective,
                own.reconfigurations,
                ds2.reconfigurations
            ));
        }
    }
    std::fs::write(path, out)
}

/// Plots the mean rollout objective per iteration as SVG.
pub fn write_svg(path: &Path, curve: &[CurvePoint]) -> Result<(), String> {
    let root = SVGBackend::new(path, (720, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (lo, hi) = curve
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.objective), h.max(p.objective))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo - 0.05, hi + 0.05)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "PPO: mean rollout objective per iteration",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..curve.len().max(1) as f64, lo..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("objective")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            curve.iter().map(|p| (p.iteration as f64, p.objective)),
            &BLUE,
        ))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Writes transitions as a bincode experience log.
pub fn write_experience(path: &Path, experience: &[Transition]) -> Result<(), String> {
    let bytes = bincode::serde::encode_to_vec(experience, bincode::config::standard())
        .map_err(|e| e.to_string())?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads an experience log written by [`write_experience`].
pub fn read_experience(path: &Path) -> Result<Vec<Transition>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| format!("{}: not an experience log: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_csv_has_a_line_per_candidate_and_workload() {
        let row = |objective, reconfigurations| SelectionRow {
            objective,
            reconfigurations,
        };
        let baseline = [row(0.8, 2.0), row(0.7, 5.0)];
        let candidates = [0, 10].map(|iteration| Candidate {
            iteration,
            rows: vec![row(0.75, 3.0), row(0.72, 4.0)],
            score: 0.7,
        });
        let path = std::env::temp_dir().join(format!("rheo-selection-{}.csv", std::process::id()));
        let names = ["a".to_string(), "b".to_string()];
        write_selection_csv(&path, &names, &baseline, &candidates).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 2 * 2);
        assert_eq!(lines[4], "10,0.70000,b,0.72000,0.70000,4.00,5.00");
    }
}
