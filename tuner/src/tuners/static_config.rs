//! `static`: the initial configuration, unchanged.

use rheo_engine::MetricsSnapshot;

use super::{Decision, TuneContext, Tuner};

/// Never changes anything.
#[derive(Debug, Clone, Default)]
pub struct Static;

impl Tuner for Static {
    fn name(&self) -> &str {
        "static"
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, _: &TuneContext) -> Decision {
        Decision {
            config: snapshot.config.clone(),
            reason: "keep".into(),
            detail: serde_json::Value::Null,
        }
    }
}
