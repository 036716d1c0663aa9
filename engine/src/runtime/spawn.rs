//! Spawning a generation: channels, writers and the worker threads of every stage.

use std::sync::Arc;

use crate::error::JobError;
use crate::graph::{AnyBox, Preludes, Runner};
use crate::metrics::StageKind;
use crate::metrics::counters::WorkerCounters;
use crate::operator::WorkerInfo;
use crate::worker::{SourceCommand, SourceSetup, WorkerSetup};

use super::controller::SourceWorker;
use super::*;

impl Controller {
    pub(crate) fn parallelism(&self, stage: usize) -> usize {
        let s = &self.pipeline.stages[stage];
        self.config.parallelism(&s.name).unwrap_or(s.parallelism)
    }

    pub(super) fn initial_states(&self) -> Vec<Vec<AnyBox>> {
        self.pipeline
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| match &s.runner {
                Runner::Operator(r) => r.initial_states(self.parallelism(i), s.key_groups),
                Runner::Source(_) => Vec::new(),
            })
            .collect()
    }

    /// Builds the channels of a new generation and starts its operator workers with `states`
    /// (per stage, per worker) and, after a hand-over, `preludes` (per edge, per downstream
    /// worker: the records it takes first; empty otherwise). Returns the output writers of
    /// every source worker.
    pub(crate) fn spawn_generation(
        &mut self,
        states: Vec<Vec<AnyBox>>,
        mut preludes: Preludes,
    ) -> Result<Vec<Vec<Vec<AnyBox>>>, JobError> {
        let internal = |what: &str| JobError::Internal(format!("building generation: {what}"));
        // Threads of earlier generations have exited; forget their handles.
        self.handles.retain(|h| !h.is_finished());
        let mut channels = Vec::with_capacity(self.pipeline.edges.len());
        let mut receivers: Vec<Vec<Option<AnyBox>>> = Vec::with_capacity(self.pipeline.edges.len());
        for (i, e) in self.pipeline.edges.iter().enumerate() {
            let cfg = self
                .config
                .edges
                .get(&e.name)
                .copied()
                .ok_or_else(|| internal("edge without configuration"))?;
            let p_to = self.parallelism(e.to);
            let mut ch = e.factory.channels(p_to, cfg.capacity);
            self.collector.install_probes(
                i,
                std::mem::take(&mut ch.probes),
                cfg.capacity,
                cfg.batch_size,
            );
            receivers.push(
                std::mem::take(&mut ch.receivers)
                    .into_iter()
                    .map(Some)
                    .collect(),
            );
            channels.push(ch);
        }
        let writers_for =
            |ctl: &Controller, stage: usize, worker: usize| -> Result<Vec<AnyBox>, JobError> {
                let s = &ctl.pipeline.stages[stage];
                let p = ctl.parallelism(stage);
                s.outputs
                    .iter()
                    .map(|&e| {
                        let edge = &ctl.pipeline.edges[e];
                        let cfg = ctl
                            .config
                            .edges
                            .get(&edge.name)
                            .copied()
                            .ok_or_else(|| internal("edge without configuration"))?;
                        let groups = ctl.pipeline.stages[edge.to].key_groups;
                        edge.factory
                            .writer(&channels[e], worker, p, cfg.batch_size, groups)
                            .ok_or_else(|| internal("edge writer of unexpected type"))
                    })
                    .collect()
            };
        let mut source_outputs = Vec::new();
        for (stage, stage_states) in states.into_iter().enumerate() {
            let p = self.parallelism(stage);
            let node = &self.pipeline.stages[stage];
            match &node.runner {
                Runner::Source(_) => {
                    let outputs = (0..p)
                        .map(|w| writers_for(self, stage, w))
                        .collect::<Result<Vec<_>, _>>()?;
                    source_outputs.push(outputs);
                }
                Runner::Operator(runner) => {
                    if stage_states.len() != p {
                        return Err(internal("state count differs from parallelism"));
                    }
                    let mut counters = Vec::with_capacity(p);
                    for (w, state) in stage_states.into_iter().enumerate() {
                        let inputs = node
                            .inputs
                            .iter()
                            .map(|&e| {
                                receivers[e][w]
                                    .take()
                                    .ok_or_else(|| internal("receiver taken twice"))
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        let prelude = if preludes.is_empty() {
                            Vec::new()
                        } else {
                            node.inputs
                                .iter()
                                .map(|&e| {
                                    preludes
                                        .get_mut(e)
                                        .and_then(|p| p.get_mut(w))
                                        .and_then(Option::take)
                                        .ok_or_else(|| internal("hand-over prelude missing"))
                                })
                                .collect::<Result<Vec<_>, _>>()?
                        };
                        let upstream = node
                            .inputs
                            .iter()
                            .map(|&e| self.parallelism(self.pipeline.edges[e].from))
                            .collect();
                        let c = Arc::new(WorkerCounters::new(node.kind == StageKind::Sink));
                        counters.push(c.clone());
                        let setup = WorkerSetup {
                            stage,
                            info: WorkerInfo {
                                stage: node.name.clone(),
                                index: w,
                                parallelism: p,
                                generation: self.generation,
                            },
                            inputs,
                            prelude,
                            upstream,
                            outputs: writers_for(self, stage, w)?,
                            state,
                            watermark: self.watermarks[stage],
                            counters: c,
                            env: self.env.clone(),
                            is_sink: node.kind == StageKind::Sink,
                        };
                        let handle = runner.spawn(setup).map_err(|source| JobError::Spawn {
                            stage: node.name.to_string(),
                            source,
                        })?;
                        self.handles.push(handle);
                        self.live_operators += 1;
                    }
                    self.collector.install_workers(stage, counters);
                }
            }
        }
        Ok(source_outputs)
    }

    /// Largest batch size of a stage's output edges: how many records a source polls at once.
    pub(crate) fn chunk(&self, stage: usize) -> usize {
        self.pipeline.stages[stage]
            .outputs
            .iter()
            .filter_map(|&e| self.config.edges.get(&self.pipeline.edges[e].name))
            .map(|c| c.batch_size)
            .max()
            .unwrap_or(1024)
    }

    pub(super) fn spawn_sources(&mut self, outputs: Vec<Vec<Vec<AnyBox>>>) -> Result<(), JobError> {
        let source_stages: Vec<usize> = (0..self.pipeline.stages.len())
            .filter(|&s| matches!(self.pipeline.stages[s].runner, Runner::Source(_)))
            .collect();
        for (stage, stage_outputs) in source_stages.into_iter().zip(outputs) {
            let p = stage_outputs.len();
            let mut counters = Vec::with_capacity(p);
            for (w, outs) in stage_outputs.into_iter().enumerate() {
                let (tx, rx) = crossbeam_channel::unbounded();
                let c = Arc::new(WorkerCounters::new(false));
                counters.push(c.clone());
                let node = &self.pipeline.stages[stage];
                let setup = SourceSetup {
                    stage,
                    info: WorkerInfo {
                        stage: node.name.clone(),
                        index: w,
                        parallelism: p,
                        generation: 0,
                    },
                    outputs: outs,
                    chunk: self.chunk(stage),
                    counters: c,
                    env: self.env.clone(),
                    commands: rx,
                };
                let Runner::Source(runner) = &node.runner else {
                    return Err(JobError::Internal(
                        "source stage without a source runner".into(),
                    ));
                };
                let handle = runner.spawn(setup).map_err(|source| JobError::Spawn {
                    stage: node.name.to_string(),
                    source,
                })?;
                self.handles.push(handle);
                self.sources.push(SourceWorker {
                    stage,
                    commands: tx,
                });
                self.live_sources += 1;
            }
            self.collector.install_workers(stage, counters);
        }
        Ok(())
    }

    /// Sends a command to every source worker.
    pub(crate) fn tell_sources(&self, mut command: impl FnMut(usize, usize) -> SourceCommand) {
        let mut index = 0;
        let mut last_stage = usize::MAX;
        for s in &self.sources {
            if s.stage != last_stage {
                index = 0;
                last_stage = s.stage;
            }
            let _ = s.commands.send(command(s.stage, index));
            index += 1;
        }
    }
}
