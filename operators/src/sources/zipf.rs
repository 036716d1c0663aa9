//! `ZipfKeys`: keys with a Zipf (power-law) popularity, for skewed workloads.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};
use rheo_engine::source::Generator;

/// Keys in `0..key_space` where key `k` has probability ∝ `1 / (k + 1)^exponent`: exponent 0
/// is uniform, 1 is classic Zipf, larger is more skewed (key 0 is the hottest).
///
/// The key of event `seq` depends only on the seed and `seq`, so the key sequence is the same
/// whatever the number of source workers a [`RateSource`](rheo_engine::source::RateSource)
/// splits it over.
///
/// ```
/// use std::time::Duration;
/// use rheo_engine::source::{RateProfile, RateSource};
/// use rheo_operators::sources::ZipfKeys;
///
/// let keys = ZipfKeys::new(10_000, 1.1, 42)?;
/// assert_eq!(keys.key(7), keys.key(7));
/// let source = RateSource::new(RateProfile::Constant { value: 50_000.0 }, keys).limit(100_000);
/// # let _ = source;
/// # Ok::<(), rheo_operators::sources::ZipfError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ZipfKeys {
    dist: Zipf<f64>,
    key_space: u64,
    seed: u64,
}

/// An invalid Zipf parameter: which one and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ZipfError {
    /// `key_space` or `key_skew`.
    pub field: &'static str,
    /// Why it is out of range.
    pub reason: String,
}

impl ZipfKeys {
    /// Keys in `0..key_space` with skew `exponent`, drawn from `seed`.
    pub fn new(key_space: u64, exponent: f64, seed: u64) -> Result<ZipfKeys, ZipfError> {
        if key_space == 0 {
            return Err(ZipfError {
                field: "key_space",
                reason: "must be at least 1".into(),
            });
        }
        if !(exponent.is_finite() && exponent >= 0.0) {
            return Err(ZipfError {
                field: "key_skew",
                reason: format!("must be a finite exponent >= 0 (got {exponent})"),
            });
        }
        let dist = Zipf::new(key_space as f64, exponent).map_err(|e| ZipfError {
            field: "key_skew",
            reason: e.to_string(),
        })?;
        Ok(ZipfKeys {
            dist,
            key_space,
            seed,
        })
    }

    /// The key of event `seq`.
    pub fn key(&self, seq: u64) -> u64 {
        let mut rng = SmallRng::seed_from_u64(self.seed ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let rank = self.dist.sample(&mut rng) as u64;
        rank.clamp(1, self.key_space) - 1
    }

    /// Number of distinct keys.
    pub fn key_space(&self) -> u64 {
        self.key_space
    }
}

impl Generator for ZipfKeys {
    type Out = u64;

    fn generate(&mut self, seq: u64, _: Duration) -> u64 {
        self.key(seq)
    }
}

/// The maximum-likelihood Zipf exponent of key counts (`counts[k]` = occurrences of key `k`,
/// key 0 the most popular rank), over `counts.len()` keys.
pub fn fit_exponent(counts: &[u64]) -> f64 {
    let n: f64 = counts.iter().sum::<u64>() as f64;
    if n == 0.0 {
        return 0.0;
    }
    let mean_log_rank: f64 = counts
        .iter()
        .enumerate()
        .map(|(k, c)| *c as f64 * ((k + 1) as f64).ln())
        .sum::<f64>()
        / n;
    // d/ds log L = -Σ log k + N · Σ k^-s log k / Σ k^-s = 0: the model's expected log rank
    // decreases in s, so bisect for the s where it meets the sample's.
    let expected_log_rank = |s: f64| {
        let (mut z, mut w) = (0.0, 0.0);
        for k in 1..=counts.len() {
            let p = (k as f64).powf(-s);
            z += p;
            w += p * (k as f64).ln();
        }
        w / z
    };
    let (mut lo, mut hi) = (0.0, 10.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if expected_log_rank(mid) > mean_log_rank {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_exponent_matches_the_requested_one() {
        for s in [0.0, 0.8, 1.1, 1.5] {
            let keys = ZipfKeys::new(1000, s, 7).unwrap();
            let mut counts = vec![0u64; 1000];
            for seq in 0..400_000 {
                counts[keys.key(seq) as usize] += 1;
            }
            let fitted = fit_exponent(&counts);
            assert!((fitted - s).abs() <= 0.05, "requested {s}, fitted {fitted}");
        }
    }

    #[test]
    fn bad_parameters_name_the_field() {
        assert_eq!(ZipfKeys::new(0, 1.0, 0).unwrap_err().field, "key_space");
        assert_eq!(ZipfKeys::new(10, -1.0, 0).unwrap_err().field, "key_skew");
        assert_eq!(
            ZipfKeys::new(10, f64::NAN, 0).unwrap_err().field,
            "key_skew"
        );
    }

    #[test]
    fn keys_stay_in_range_and_depend_only_on_seed_and_seq() {
        let a = ZipfKeys::new(5, 2.0, 1).unwrap();
        let b = ZipfKeys::new(5, 2.0, 1).unwrap();
        for seq in 0..1000 {
            assert!(a.key(seq) < 5);
            assert_eq!(a.key(seq), b.key(seq));
        }
    }
}
