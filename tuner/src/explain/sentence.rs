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
    format!(
        "{verb} ({}, p={:.2}; runner-up {} {:.2}): {}; {ds2}{guard}",
        e.action,
        e.probability,
        e.runner_up.0,
        e.runner_up.1,
        why.join(", ")
    )
}
