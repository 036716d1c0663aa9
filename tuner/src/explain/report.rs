//! The self-contained HTML report of a run: plots of the run with decisions and fallbacks
//! marked, the decisions with their sentences, importance, the projection and the tree.
//! Inline SVG and CSS only — no script, no external URL — so it opens in any browser offline.

use std::fmt::Write;
use std::path::Path;

use super::plots::{Marks, Series, bars, scatter, time_plot};
use super::runlog::LoggedEpoch;
use super::tree::{TREE_CLASSES, effect_label};
use super::{Analysis, ExplainError};

/// The sections every report has, in order (their `id`s).
pub const SECTIONS: [&str; 8] = [
    "summary",
    "throughput",
    "backlog",
    "latency",
    "configuration",
    "decisions",
    "importance",
    "projection",
];
/// The section holding the distilled tree.
pub const TREE_SECTION: &str = "tree";

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Inline SVG drops the namespace declaration: HTML5 does not need it, and the report holds
/// no URL at all.
fn inline(svg: String) -> String {
    svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "")
}

fn section(out: &mut String, id: &str, title: &str, body: &str) {
    let _ = write!(
        out,
        "<section id=\"{id}\"><h2>{}</h2>\n{body}\n</section>\n",
        escape(title)
    );
}

/// Renders the report of a run (its header and epochs) and its analysis (`None` for tuners
/// other than the agent).
pub fn render(
    header: &serde_json::Value,
    epochs: &[LoggedEpoch],
    analysis: Option<&Analysis>,
) -> Result<String, ExplainError> {
    let t = |e: &LoggedEpoch| e.snapshot.time_s;
    let tuner = header["tuner"].as_str().unwrap_or("?");
    let workload = header["workload"].as_str().unwrap_or("?");
    let slo = header["latency_slo_ms"].as_f64();
    let objective = if epochs.is_empty() {
        0.0
    } else {
        epochs.iter().map(|e| e.record.score.reward).sum::<f64>() / epochs.len() as f64
    };
    let changes = epochs.iter().filter(|e| e.record.score.changed).count();
    let fallbacks = epochs.iter().filter(|e| e.record.fallback).count();
    let ds2_fallbacks = epochs
        .iter()
        .filter(|e| e.record.decision.detail.get("fallback").is_some())
        .count();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>rheo: {tuner} on {workload}</title><style>\
         body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}\
         pre{{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}}\
         .fallback{{color:#c00}}</style></head><body>\n<h1>rheo: {} on {}</h1>\n",
        escape(tuner),
        escape(workload),
    );
    let mut summary = String::from("<table>");
    let mut row = |k: &str, v: String| {
        let _ = write!(
            summary,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v)
        );
    };
    row("workload", workload.to_owned());
    row("tuner", tuner.to_owned());
    row(
        "backend",
        header["backend"].as_str().unwrap_or("?").to_owned(),
    );
    row("seed", header["seed"].to_string());
    if let Some(c) = header["settings"]["checkpoint"].as_str() {
        let crc = header["settings"]["checkpoint_crc32"]
            .as_str()
            .unwrap_or("?");
        row("checkpoint", format!("{c} (crc32 {crc})"));
    }
    row("epochs", epochs.len().to_string());
    row("objective (mean epoch reward)", format!("{objective:.3}"));
    row("reconfigurations", changes.to_string());
    row(
        "fallback share (applied ≠ proposal)",
        format!(
            "{:.3} ({fallbacks} epochs; DS2 fallback on {ds2_fallbacks})",
            fallbacks as f64 / epochs.len().max(1) as f64
        ),
    );
    if let Some(slo) = slo {
        row("latency SLO (p99)", format!("{slo} ms"));
    }
    summary.push_str("</table>");
    section(&mut html, "summary", "Summary", &summary);

    let line = |name: &str, f: &dyn Fn(&LoggedEpoch) -> f64| Series {
        name: name.to_owned(),
        points: epochs.iter().map(|e| (t(e), f(e))).collect(),
        steps: false,
    };
    let none: Marks = Vec::new();
    let svg = time_plot(
        "offered rate and throughput",
        "events/s",
        &[
            line("offered", &|e| e.record.offered_rate),
            line("throughput", &|e| e.record.throughput),
        ],
        None,
        &none,
    )?;
    section(
        &mut html,
        "throughput",
        "Offered rate vs throughput",
        &inline(svg),
    );
    let svg = time_plot(
        "backlog",
        "events",
        &[line("backlog", &|e| e.record.backlog as f64)],
        None,
        &none,
    )?;
    section(&mut html, "backlog", "Backlog", &inline(svg));
    let svg = time_plot(
        "p99 latency",
        "ms",
        &[line("p99", &|e| e.record.p99_ms)],
        slo.map(|s| (s, "SLO")),
        &none,
    )?;
    section(&mut html, "latency", "p99 latency vs SLO", &inline(svg));

    // Configuration per stage over time: a decision is marked at the epoch it was made, on
    // the parallelism it applied; DS2 fallbacks as red crosses.
    let stages: Vec<String> = epochs
        .first()
        .map(|e| e.snapshot.config.stages.keys().cloned().collect())
        .unwrap_or_default();
    // The stages the agent decided on (all stages for other tuners), in pipeline order.
    let tunable: Vec<String> = match analysis {
        Some(a) => {
            let mut seen: Vec<String> = Vec::new();
            for d in &a.decisions {
                if !seen.contains(&d.stage) {
                    seen.push(d.stage.clone());
                }
            }
            seen
        }
        None => stages,
    };
    let threads: Vec<Series> = tunable
        .iter()
        .map(|s| Series {
            name: format!("{s} threads"),
            points: epochs
                .iter()
                .map(|e| {
                    (
                        t(e),
                        e.record.decision.config.parallelism(s).unwrap_or(0) as f64,
                    )
                })
                .collect(),
            steps: true,
        })
        .collect();
    let mut marks: Marks = Vec::new();
    for e in epochs {
        let before = &e.snapshot.config;
        let after = &e.record.decision.config;
        let fell_back = e.record.decision.detail.get("fallback").is_some();
        for s in &tunable {
            let (a, b) = (before.parallelism(s), after.parallelism(s));
            if a != b {
                marks.push((t(e), b.unwrap_or(0) as f64, fell_back));
            }
        }
    }
    let mut body = inline(time_plot(
        "threads per stage (○ a change, red × the DS2 fallback)",
        "threads",
        &threads,
        None,
        &marks,
    )?);
    let buffers: Vec<Series> = tunable
        .iter()
        .map(|s| Series {
            name: format!("{s} input buffer"),
            points: epochs
                .iter()
                .map(|e| {
                    let c = crate::agent::actions::input_capacity(&e.record.decision.config, s);
                    (t(e), c as f64)
                })
                .collect(),
            steps: true,
        })
        .collect();
    body.push_str(&inline(time_plot(
        "input buffer per stage",
        "batches",
        &buffers,
        None,
        &none,
    )?));
    section(
        &mut html,
        "configuration",
        "Threads and buffers per stage",
        &body,
    );

    match analysis {
        Some(a) => analysis_sections(&mut html, a)?,
        None => {
            for id in ["decisions", "importance", "projection", TREE_SECTION] {
                section(
                    &mut html,
                    id,
                    id,
                    "<p>This run's tuner is not the agent: nothing to explain.</p>",
                );
            }
        }
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

fn analysis_sections(html: &mut String, a: &Analysis) -> Result<(), ExplainError> {
    let mut body = String::from(
        "<p>Decisions that changed a stage or that the DS2 fallback took, with the features \
         ranked on top by masking importance (the change in the move probabilities were the \
         feature at its training mean) and each one's gradient saliency. Every other decision \
         kept its stage.</p><table>\
         <tr><th>epoch</th><th>stage</th><th>decision</th><th>p</th><th>runner-up</th>\
         <th>DS2</th><th>top features: value (saliency / masking)</th></tr>",
    );
    let mut shown = 0;
    for (d, e) in a.decisions.iter().zip(&a.explanations) {
        if !d.changed() && e.fallback.is_none() {
            continue;
        }
        shown += 1;
        let top: Vec<String> = e
            .top
            .iter()
            .map(|f| {
                format!(
                    "{} = {:.2} ({:.2} / {:.2})",
                    f.name,
                    f.value,
                    f.importance,
                    e.masking.get(f.feature).copied().unwrap_or(0.0)
                )
            })
            .collect();
        let class = if e.fallback.is_some() {
            " class=\"fallback\""
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{} {:.2}</td><td>{}</td><td>{}</td></tr>",
            e.epoch,
            escape(&e.stage),
            escape(&e.sentence),
            e.probability,
            escape(&e.runner_up.0),
            e.runner_up.1,
            e.ds2.map(|p| p.to_string()).unwrap_or_default(),
            escape(&top.join("; "))
        );
    }
    let _ = write!(
        body,
        "</table><p>{shown} of {} stage decisions shown.</p>",
        a.decisions.len()
    );
    section(html, "decisions", "Decisions", &body);

    let top: Vec<_> = a.importance.iter().take(12).collect();
    let labels: Vec<String> = top.iter().map(|f| f.name.clone()).collect();
    let svg = bars(
        "feature importance over the run",
        &labels,
        &[
            ("saliency", top.iter().map(|f| f.saliency).collect()),
            ("masking", top.iter().map(|f| f.masking).collect()),
            ("permutation", top.iter().map(|f| f.permutation).collect()),
        ],
    )?;
    section(
        html,
        "importance",
        "Feature importance (gradient saliency, masking, permutation)",
        &inline(svg),
    );

    let classes: Vec<String> = (0..TREE_CLASSES).map(effect_label).collect();
    let svg = scatter(
        "observations on their first two principal components, coloured by the policy's move",
        (
            &format!("PC1 ({:.0}% of variance)", a.projection_share[0] * 100.0),
            &format!("PC2 ({:.0}%)", a.projection_share[1] * 100.0),
        ),
        &a.projection,
        &classes,
    )?;
    section(
        html,
        "projection",
        "Projection of observations",
        &inline(svg),
    );

    let body = match &a.tree {
        Some(t) => format!(
            "<p>Depth {} (limit {}), {} leaves, fitted on {} decisions. Fidelity on {} held-out \
             decisions: {:.1}% overall, {:.1}% on the {} that change their stage ({} of them move \
             its input buffer).</p><pre>{}</pre>",
            t.depth,
            t.max_depth,
            t.leaves,
            t.trained_on,
            t.held_out,
            t.fidelity * 100.0,
            t.fidelity_on_moves * 100.0,
            t.held_out_moves,
            t.held_out_buffer_moves,
            escape(&t.rules.join("\n"))
        ),
        None => "<p>No decisions to distil.</p>".to_owned(),
    };
    section(html, TREE_SECTION, "Distilled decision tree", &body);
    Ok(())
}

/// Writes `html` to `path`.
pub fn write(path: &Path, html: &str) -> Result<(), ExplainError> {
    std::fs::write(path, html).map_err(|source| ExplainError::Io {
        path: path.to_path_buf(),
        source,
    })
}
