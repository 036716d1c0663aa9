//! Rate profiles: how many events per second a rate-controlled source is asked for, over time.

use std::f64::consts::TAU;

use serde::{Deserialize, Serialize};

/// A rate over time, in events per second, with `t` in seconds since the source started.
///
/// In a workload spec: `rate = { profile = "step", values = [20000, 60000], period_s = 20 }`.
///
/// ```
/// use rheo_engine::source::RateProfile;
/// let p = RateProfile::Step { values: vec![100.0, 300.0], period_s: 10.0 };
/// assert_eq!(p.rate_at(5.0), 100.0);
/// assert_eq!(p.rate_at(15.0), 300.0);
/// assert_eq!(p.offered_at(15.0), 100.0 * 10.0 + 300.0 * 5.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "profile", rename_all = "snake_case", deny_unknown_fields)]
pub enum RateProfile {
    /// `value` events per second.
    Constant {
        /// Events per second.
        value: f64,
    },
    /// `values[i]` during `[i·period_s, (i+1)·period_s)`; the last value holds afterwards.
    Step {
        /// Events per second, one per period.
        values: Vec<f64>,
        /// Length of each step in seconds.
        period_s: f64,
    },
    /// `base + amplitude · sin(2πt / period_s)`.
    Sine {
        /// Mean rate.
        base: f64,
        /// Swing around the mean (at most `base`).
        amplitude: f64,
        /// Period in seconds.
        period_s: f64,
    },
    /// `base`, except `peak` during `[k·every_s, k·every_s + length_s)` for k = 1, 2, ...
    Burst {
        /// Rate outside bursts.
        base: f64,
        /// Rate during bursts.
        peak: f64,
        /// Time between burst starts, in seconds.
        every_s: f64,
        /// Length of a burst, in seconds (at most `every_s`).
        length_s: f64,
    },
}

/// A rate profile value out of range: which field, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ProfileError {
    /// The offending field (`values`, `period_s`, ...).
    pub field: &'static str,
    /// Why it is out of range.
    pub reason: String,
}

fn check(
    ok: bool,
    field: &'static str,
    reason: impl FnOnce() -> String,
) -> Result<(), ProfileError> {
    if ok {
        Ok(())
    } else {
        Err(ProfileError {
            field,
            reason: reason(),
        })
    }
}

fn rate_ok(field: &'static str, v: f64) -> Result<(), ProfileError> {
    check(v.is_finite() && v >= 0.0, field, || {
        format!("must be a finite rate >= 0 events/s (got {v})")
    })
}

fn period_ok(field: &'static str, v: f64) -> Result<(), ProfileError> {
    check(v.is_finite() && v > 0.0, field, || {
        format!("must be a finite number of seconds > 0 (got {v})")
    })
}

impl RateProfile {
    /// Checks that every field is in range.
    pub fn validate(&self) -> Result<(), ProfileError> {
        match self {
            RateProfile::Constant { value } => rate_ok("value", *value),
            RateProfile::Step { values, period_s } => {
                check(!values.is_empty(), "values", || "must not be empty".into())?;
                for v in values {
                    rate_ok("values", *v)?;
                }
                period_ok("period_s", *period_s)
            }
            RateProfile::Sine {
                base,
                amplitude,
                period_s,
            } => {
                rate_ok("base", *base)?;
                rate_ok("amplitude", *amplitude)?;
                check(amplitude <= base, "amplitude", || {
                    format!("must not exceed base ({amplitude} > {base}): rates cannot go negative")
                })?;
                period_ok("period_s", *period_s)
            }
            RateProfile::Burst {
                base,
                peak,
                every_s,
                length_s,
            } => {
                rate_ok("base", *base)?;
                rate_ok("peak", *peak)?;
                period_ok("every_s", *every_s)?;
                period_ok("length_s", *length_s)?;
                check(length_s <= every_s, "length_s", || {
                    format!("must not exceed every_s ({length_s} > {every_s})")
                })
            }
        }
    }

    /// The rate at time `t` (seconds), in events per second.
    pub fn rate_at(&self, t: f64) -> f64 {
        let t = t.max(0.0);
        match self {
            RateProfile::Constant { value } => *value,
            RateProfile::Step { values, period_s } => {
                let i = ((t / period_s) as usize).min(values.len() - 1);
                values[i]
            }
            RateProfile::Sine {
                base,
                amplitude,
                period_s,
            } => base + amplitude * (TAU * t / period_s).sin(),
            RateProfile::Burst {
                base,
                peak,
                every_s,
                length_s,
            } => {
                if t >= *every_s && t % every_s < *length_s {
                    *peak
                } else {
                    *base
                }
            }
        }
    }

    /// Events due in `[0, t]`: the integral of the rate.
    pub fn offered_at(&self, t: f64) -> f64 {
        let t = t.max(0.0);
        match self {
            RateProfile::Constant { value } => value * t,
            RateProfile::Step { values, period_s } => {
                let last = values.len() - 1;
                let i = ((t / period_s) as usize).min(last);
                let full: f64 = values[..i].iter().sum::<f64>() * period_s;
                full + values[i] * (t - i as f64 * period_s)
            }
            RateProfile::Sine {
                base,
                amplitude,
                period_s,
            } => base * t + amplitude * period_s / TAU * (1.0 - (TAU * t / period_s).cos()),
            RateProfile::Burst {
                base,
                peak,
                every_s,
                length_s,
            } => {
                let cycles = (t / every_s).floor();
                let in_burst = if cycles >= 1.0 {
                    (cycles - 1.0) * length_s + (t - cycles * every_s).min(*length_s)
                } else {
                    0.0
                };
                base * t + (peak - base) * in_burst
            }
        }
    }

    /// The time (seconds) at which event `k` (0-based) becomes due: the first `t` with
    /// `offered_at(t) >= k + 1`. Infinite if the profile never offers that many.
    pub fn time_of(&self, k: u64) -> f64 {
        let target = k as f64 + 1.0;
        if let RateProfile::Constant { value } = self {
            return if *value > 0.0 {
                target / value
            } else {
                f64::INFINITY
            };
        }
        let mut hi = 1.0;
        while self.offered_at(hi) < target {
            hi *= 2.0;
            if hi > 1e12 {
                return f64::INFINITY;
            }
        }
        let mut lo = 0.0;
        // 64 halvings take any bracket below 1e12 s to well under a nanosecond.
        for _ in 0..64 {
            let mid = 0.5 * (lo + hi);
            if self.offered_at(mid) >= target {
                hi = mid;
            } else {
                lo = mid;
            }
            if hi - lo < 1e-10 {
                break;
            }
        }
        hi
    }

    /// Times (seconds) in `(0, horizon)` at which the rate changes abruptly (steps and burst
    /// edges); empty for constant and sine profiles.
    pub fn change_points(&self, horizon: f64) -> Vec<f64> {
        match self {
            RateProfile::Constant { .. } | RateProfile::Sine { .. } => Vec::new(),
            RateProfile::Step { values, period_s } => (1..values.len())
                .map(|i| i as f64 * period_s)
                .filter(|t| {
                    *t < horizon
                        && values[(*t / period_s) as usize] != values[(*t / period_s) as usize - 1]
                })
                .collect(),
            RateProfile::Burst {
                every_s, length_s, ..
            } => {
                let mut out = Vec::new();
                let mut k = 1.0;
                while k * every_s < horizon {
                    out.push(k * every_s);
                    let end = k * every_s + length_s;
                    if end < horizon && length_s < every_s {
                        out.push(end);
                    }
                    k += 1.0;
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Vec<RateProfile> {
        vec![
            RateProfile::Constant { value: 1000.0 },
            RateProfile::Step {
                values: vec![100.0, 0.0, 3000.0],
                period_s: 2.0,
            },
            RateProfile::Sine {
                base: 500.0,
                amplitude: 400.0,
                period_s: 3.0,
            },
            RateProfile::Burst {
                base: 100.0,
                peak: 2000.0,
                every_s: 2.0,
                length_s: 0.5,
            },
        ]
    }

    #[test]
    fn offered_is_the_integral_of_the_rate() {
        for p in profiles() {
            let dt = 1e-4;
            let mut acc = 0.0;
            let mut t = 0.0;
            while t < 7.0 {
                acc += p.rate_at(t + dt / 2.0) * dt;
                t += dt;
                let exact = p.offered_at(t);
                assert!(
                    (acc - exact).abs() <= 1.0 + exact * 1e-3,
                    "{p:?} at {t}: {acc} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn time_of_inverts_offered() {
        for p in profiles() {
            for k in [0u64, 1, 10, 199, 200, 201, 999, 4321] {
                let t = p.time_of(k);
                assert!(p.offered_at(t) >= k as f64 + 1.0 - 1e-6, "{p:?} k={k}");
                assert!(
                    p.offered_at((t - 1e-6).max(0.0)) < k as f64 + 1.0,
                    "{p:?} k={k}"
                );
            }
        }
        assert_eq!(
            RateProfile::Constant { value: 0.0 }.time_of(3),
            f64::INFINITY
        );
    }

    #[test]
    fn validation_names_the_field() {
        let bad = RateProfile::Sine {
            base: 10.0,
            amplitude: 20.0,
            period_s: 1.0,
        };
        assert_eq!(bad.validate().unwrap_err().field, "amplitude");
        let bad = RateProfile::Step {
            values: vec![],
            period_s: 1.0,
        };
        assert_eq!(bad.validate().unwrap_err().field, "values");
        let bad = RateProfile::Burst {
            base: 1.0,
            peak: 2.0,
            every_s: 1.0,
            length_s: 3.0,
        };
        assert_eq!(bad.validate().unwrap_err().field, "length_s");
        for p in profiles() {
            p.validate().unwrap();
        }
    }

    #[test]
    fn change_points_mark_steps_and_bursts() {
        let step = RateProfile::Step {
            values: vec![1.0, 1.0, 5.0],
            period_s: 10.0,
        };
        assert_eq!(step.change_points(60.0), vec![20.0]);
        let burst = RateProfile::Burst {
            base: 1.0,
            peak: 5.0,
            every_s: 10.0,
            length_s: 2.0,
        };
        assert_eq!(burst.change_points(25.0), vec![10.0, 12.0, 20.0, 22.0]);
    }

    #[test]
    fn profiles_parse_from_tagged_json() {
        let p: RateProfile = serde_json::from_str(
            r#"{"profile":"burst","base":1,"peak":2,"every_s":3,"length_s":1}"#,
        )
        .unwrap();
        assert!(matches!(p, RateProfile::Burst { .. }));
        let err = serde_json::from_str::<RateProfile>(r#"{"profile":"constant","value":1,"x":2}"#);
        assert!(err.is_err());
    }
}
