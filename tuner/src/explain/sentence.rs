//! The one-line sentence of an explanation.

use super::{Explanation, StageDecision};

/// A feature's value as people read it: fractions as percentages where the name says
/// "fraction" or "occupancy", other values with two decimals.
fn value(name: &str, v: f32) -> String {
    if name.contains("fraction") || name.contains("occupancy") {
        format!("{name} {:.0}%", v * 100.0)
    } else {
        format!("{name} {v:.2}")
    }
}

/// "raised `enrich` 3→5: busy fraction 97%, input queue occupancy 92%; DS2 suggested 5" — the
/// move as applied, the features ranked on top, and DS2's view.
pub fn sentence(e: &Explanation, d: &StageDecision) -> String {
    let verb = match e.to.cmp(&e.from) {
        std::cmp::Ordering::Greater => format!("raised `{}` {}→{}", e.stage, e.from, e.to),
        std::cmp::Ordering::Less => format!("lowered `{}` {}→{}", e.stage, e.from, e.to),
        std::cmp::Ordering::Equal if d.buffer.0 != d.buffer.1 => format!(
            "kept `{}` at {}, buffer {}→{}",
            e.stage, e.from, d.buffer.0, d.buffer.1
        ),
        std::cmp::Ordering::Equal => format!("kept `{}` at {}", e.stage, e.from),
    };
    let why: Vec<String> = e.top.iter().map(|f| value(&f.name, f.value)).collect();
    let ds2 = match (e.ds2, &e.fallback) {
        (Some(p), Some(reason)) if e.to == p => format!("DS2's {p} applied (fallback: {reason})"),
        (Some(p), Some(reason)) => format!(
            "fallback ({reason}) to DS2's {p}, held by {}",
            d.guardrail.as_deref().unwrap_or("a guardrail")
        ),
        (Some(p), None) if e.agreed_with_ds2 => format!("DS2 suggested {p} too"),
        (Some(p), None) => format!("DS2 suggested {p}"),
        (None, _) => "no DS2 suggestion".to_owned(),
    };
    let guard = match &d.guardrail {
        Some(g) if e.fallback.is_none() => format!(" [{g}]"),
        _ => String::new(),
    };
    // The greedy rule (`actions::greedy_move`) can pick a move less probable than the
    // runner-up: its outcome is DS2's on a near-tie, or shared with other moves.
    let rule = match (&e.fallback, &d.guardrail) {
        (None, None) if e.runner_up.1 > e.probability => {
            if e.agreed_with_ds2 {
                " — a near-tie, DS2's outcome taken"
            } else {
                " — moves with the same outcome pooled"
            }
        }
        _ => "",
    };
    format!(
        "{verb} ({}, p={:.2}; runner-up {} {:.2}{rule}): {}; {ds2}{guard}",
        e.action,
        e.probability,
        e.runner_up.0,
        e.runner_up.1,
        why.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::features::FEATURES;

    fn kept_at_ds2(probability: f32, runner_up: f32) -> Explanation {
        Explanation {
            epoch: 3,
            stage: "format".to_owned(),
            action: "ds2".to_owned(),
            probability,
            runner_up: ("ds2+2".to_owned(), runner_up),
            saliency: vec![0.0; FEATURES],
            masking: vec![0.0; FEATURES],
            permutation: vec![0.0; FEATURES],
            top: Vec::new(),
            from: 2,
            to: 2,
            ds2: Some(2),
            agreed_with_ds2: true,
            fallback: None,
            sentence: String::new(),
        }
    }

    #[test]
    fn the_sentence_says_when_the_greedy_rule_took_the_less_probable_move() {
        let d = StageDecision::example("format", [0.0; FEATURES]);
        let tie = sentence(&kept_at_ds2(0.44, 0.46), &d);
        assert!(tie.contains("a near-tie, DS2's outcome taken"), "{tie}");
        let plain = sentence(&kept_at_ds2(0.80, 0.10), &d);
        assert!(
            !plain.contains("near-tie") && !plain.contains("pooled"),
            "{plain}"
        );
    }
}
