//! A 2-D projection of observations: their first two principal components.

use linfa_linalg::eigh::Eigh;
use ndarray::Array2;

use crate::agent::features::FEATURES;

/// Points of `rows` (standardised feature rows) on their first two principal components, and
/// the share of the variance each component explains.
pub fn principal_components(rows: &[[f32; FEATURES]]) -> (Vec<(f64, f64)>, [f64; 2]) {
    let n = rows.len();
    if n < 2 {
        return (vec![(0.0, 0.0); n], [0.0; 2]);
    }
    let mut mean = [0.0f64; FEATURES];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += *v as f64 / n as f64;
        }
    }
    let mut cov = Array2::<f64>::zeros((FEATURES, FEATURES));
    for r in rows {
        for i in 0..FEATURES {
            let a = r[i] as f64 - mean[i];
            for j in 0..FEATURES {
                cov[[i, j]] += a * (r[j] as f64 - mean[j]) / (n - 1) as f64;
            }
        }
    }
    let Ok((values, vectors)) = cov.eigh() else {
        return (vec![(0.0, 0.0); n], [0.0; 2]);
    };
    // Eigenvalues in no promised order: take the two largest, eigenvectors are columns.
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum::<f64>().max(1e-12);
    let (c1, c2) = (order[0], order[1]);
    let points = rows
        .iter()
        .map(|r| {
            let mut p = (0.0, 0.0);
            for i in 0..FEATURES {
                let a = r[i] as f64 - mean[i];
                p.0 += a * vectors[[i, c1]];
                p.1 += a * vectors[[i, c2]];
            }
            p
        })
        .collect();
    (
        points,
        [values[c1].max(0.0) / total, values[c2].max(0.0) / total],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_component_follows_the_direction_of_most_variance() {
        // Points spread along feature 3 (±5) with a little spread on feature 7 (±1).
        let rows: Vec<[f32; FEATURES]> = (0..40)
            .map(|i| {
                let mut r = [0.0; FEATURES];
                r[3] = (i as f32 - 19.5) / 4.0;
                r[7] = if i % 2 == 0 { 1.0 } else { -1.0 };
                r
            })
            .collect();
        let (points, share) = principal_components(&rows);
        assert!(share[0] > share[1] && share[0] > 0.8, "{share:?}");
        // The first coordinate orders the points as feature 3 does (up to sign).
        let rising = points.windows(2).all(|w| w[1].0 > w[0].0);
        let falling = points.windows(2).all(|w| w[1].0 < w[0].0);
        assert!(rising || falling);
    }
}
