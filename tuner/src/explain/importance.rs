//! Importance over many decisions, and rank correlation for the saliency sanity check.

use serde::{Deserialize, Serialize};

use super::Explanation;
use crate::agent::features::{FEATURE_NAMES, FEATURES};

/// A feature's importance over a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    /// The feature's name.
    pub name: String,
    /// Mean saliency, each decision's normalised so its top feature has 1.
    pub saliency: f64,
    /// Mean masking importance.
    pub masking: f64,
    /// Mean permutation importance.
    pub permutation: f64,
}

/// Per feature, its importance averaged over `explanations`, most salient first.
pub fn aggregate_importance(explanations: &[Explanation]) -> Vec<FeatureImportance> {
    let n = explanations.len().max(1) as f64;
    let mut out: Vec<FeatureImportance> = (0..FEATURES)
        .map(|f| FeatureImportance {
            name: FEATURE_NAMES[f].to_owned(),
            saliency: 0.0,
            masking: 0.0,
            permutation: 0.0,
        })
        .collect();
    for e in explanations {
        let top = e.saliency.iter().copied().fold(0.0f32, f32::max).max(1e-12) as f64;
        for (f, row) in out.iter_mut().enumerate() {
            row.saliency += e.saliency.get(f).copied().unwrap_or(0.0) as f64 / top / n;
            row.masking += e.masking.get(f).copied().unwrap_or(0.0) as f64 / n;
            row.permutation += e.permutation.get(f).copied().unwrap_or(0.0) as f64 / n;
        }
    }
    out.sort_by(|a, b| b.saliency.total_cmp(&a.saliency));
    out
}

/// Ranks of `v` (1 = smallest), ties sharing their mean rank.
fn ranks(v: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of `a` and `b` (0 when either is constant).
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len().min(rb.len());
    if n < 2 {
        return 0.0;
    }
    let mean = (n as f64 + 1.0) / 2.0;
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (x, y) = (ra[i] - mean, rb[i] - mean);
        cov += x * y;
        va += x * x;
        vb += y * y;
    }
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_is_one_for_the_same_order_and_minus_one_for_the_reverse() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((spearman(&a, &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-9);
        assert!((spearman(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-9);
        assert_eq!(spearman(&a, &[5.0; 4]), 0.0);
    }
}
