//! Run-time control of the agent from standard input (`rheo tune --tuner agent --control`):
//! one command per line, applied at the next epoch boundary.
//!
//! - `budget N` — thread budget of N (`budget off`: the workload's again);
//! - `advisory on` / `advisory off` — log what the agent would do, change nothing;
//! - `fixed` — hand control back to the workload's starting configuration;
//! - `agent` — give control back to the agent.

use std::io::BufRead;

use rheo::engine::JobConfig;
use rheo::tuner::agent::guard::Controls;

/// One control command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A thread budget (`None`: the workload's).
    Budget(Option<usize>),
    /// Advisory mode on or off.
    Advisory(bool),
    /// Hand control to the fixed configuration.
    Fixed,
    /// Give control back to the agent.
    Agent,
}

/// Parses one line.
pub fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["budget", "off"] => Ok(Command::Budget(None)),
        ["budget", n] => match n.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Command::Budget(Some(n))),
            _ => Err(format!(
                "`{line}`: the budget is a positive number of threads or `off`"
            )),
        },
        ["advisory", "on"] => Ok(Command::Advisory(true)),
        ["advisory", "off"] => Ok(Command::Advisory(false)),
        ["fixed"] => Ok(Command::Fixed),
        ["agent"] => Ok(Command::Agent),
        _ => Err(format!(
            "`{line}`: unknown command (budget N|off, advisory on|off, fixed, agent)"
        )),
    }
}

/// Applies `command` to `controls`; `fixed` is the configuration `Command::Fixed` hands to.
pub fn apply(command: &Command, controls: &Controls, fixed: &JobConfig) -> String {
    match command {
        Command::Budget(Some(n)) => {
            controls.set_thread_budget(*n);
            format!("thread budget {n}")
        }
        Command::Budget(None) => {
            controls.set_thread_budget(0);
            "thread budget: the workload's".into()
        }
        Command::Advisory(on) => {
            controls.set_advisory(*on);
            format!("advisory {}", if *on { "on" } else { "off" })
        }
        Command::Fixed => {
            controls.set_fixed(Some(fixed.clone()));
            "control handed back to the starting configuration".into()
        }
        Command::Agent => {
            controls.set_fixed(None);
            "control given back to the agent".into()
        }
    }
}

/// Reads commands from standard input on a thread of its own until it closes.
pub fn spawn(controls: Controls, fixed: JobConfig) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("rheo-control".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                match parse(&line) {
                    Ok(command) => eprintln!("control: {}", apply(&command, &controls, &fixed)),
                    Err(e) => eprintln!("control: {e}"),
                }
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_reach_the_controls() {
        let controls = Controls::default();
        let fixed = JobConfig::default();
        for (line, expect) in [
            ("budget 6", "thread budget 6"),
            ("advisory on", "advisory on"),
            ("fixed", "control handed back to the starting configuration"),
        ] {
            assert_eq!(apply(&parse(line).unwrap(), &controls, &fixed), expect);
        }
        assert_eq!(controls.thread_budget(), Some(6));
        assert!(controls.advisory());
        assert!(controls.fixed().is_some());
        apply(&parse("  agent ").unwrap(), &controls, &fixed);
        apply(&parse("budget off").unwrap(), &controls, &fixed);
        assert!(controls.fixed().is_none());
        assert_eq!(controls.thread_budget(), None);
        for bad in ["budget 0", "budget many", "advisory maybe", "scale up"] {
            assert!(parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }
}
