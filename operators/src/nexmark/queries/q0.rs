//! Query 0, pass-through: every event through one operator, to measure the engine's and the
//! generator's own cost.

use rheo_engine::Stream;

use crate::map::Map;
use crate::nexmark::Event;

/// Every event, unchanged.
pub fn q0(events: &Stream<Event>) -> Stream<Event> {
    events.map("q0-pass", |e: Event| e)
}
