//! The policy network: one small MLP shared by every stage, scoring per stage a parallelism
//! move relative to DS2's suggestion, a buffer move, and the stage's share of the state value.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

/// Inputs per stage row: the stage's features followed by the pipeline's global features.
pub const INPUTS: usize = super::features::FEATURES;
/// Parallelism actions per stage: keep the current parallelism, or DS2's suggestion plus an
/// offset of −1, 0, +1 or +2.
pub const PARALLELISM_ACTIONS: usize = 5;
/// Buffer actions per stage: halve, keep, double the input buffer.
pub const BUFFER_ACTIONS: usize = 3;
/// Outputs per stage row: both heads' logits and a value share.
pub const OUTPUTS: usize = PARALLELISM_ACTIONS + BUFFER_ACTIONS + 1;
/// Hidden units.
pub const HIDDEN: usize = 64;

/// The shared per-stage network.
#[derive(Module, Debug)]
pub struct PolicyNet {
    hidden1: Linear,
    hidden2: Linear,
    heads: Linear,
}

impl PolicyNet {
    /// A freshly initialised network on `device`.
    pub fn new(device: &Device) -> PolicyNet {
        PolicyNet {
            hidden1: LinearConfig::new(INPUTS, HIDDEN).init(device),
            hidden2: LinearConfig::new(HIDDEN, HIDDEN).init(device),
            heads: LinearConfig::new(HIDDEN, OUTPUTS).init(device),
        }
    }

    /// Rows of stage inputs `[rows, INPUTS]` to rows of outputs `[rows, OUTPUTS]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = relu(self.hidden1.forward(x));
        let h = relu(self.hidden2.forward(h));
        self.heads.forward(h)
    }

    /// [`PolicyNet::forward`] of the rows `x` with the hidden layers out of the gradient: a
    /// loss on the outputs trains only the output layer, and only its rows for the outputs the
    /// loss reads. The hidden layers run on the inference copy of the weights and their output
    /// enters `device`'s graph as a new leaf; detaching a tracked tensor instead left the hidden
    /// layers' nodes in the autodiff graph, which no backward pass freed, and training and
    /// inference slowed as they piled up.
    pub fn forward_heads_only(&self, x: TensorData, device: &Device) -> Tensor<2> {
        let inner = self.valid();
        let x = Tensor::<2>::from_data(x, &Device::flex());
        let h = relu(inner.hidden2.forward(relu(inner.hidden1.forward(x))));
        self.heads
            .forward(Tensor::<2>::from_data(h.into_data(), device))
    }

    /// Runs the network on plain rows and reads the outputs back once.
    pub fn infer(&self, rows: &[[f32; INPUTS]], device: &Device) -> Vec<[f32; OUTPUTS]> {
        if rows.is_empty() {
            return Vec::new();
        }
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        let x = Tensor::<2>::from_data(TensorData::new(flat, [rows.len(), INPUTS]), device);
        let out: Vec<f32> = self
            .forward(x)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        out.chunks_exact(OUTPUTS)
            .map(|c| {
                let mut row = [0.0; OUTPUTS];
                row.copy_from_slice(c);
                row
            })
            .collect()
    }
}

/// Softmax over the allowed entries of `logits` (masked ones get probability 0).
pub fn masked_softmax<const N: usize>(logits: &[f32], mask: &[bool; N]) -> [f32; N] {
    let mut out = [0.0f32; N];
    let max = (0..N)
        .filter(|&i| mask[i])
        .map(|i| logits[i])
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return out;
    }
    let mut sum = 0.0;
    for i in 0..N {
        if mask[i] {
            out[i] = (logits[i] - max).exp();
            sum += out[i];
        }
    }
    for v in &mut out {
        *v /= sum;
    }
    out
}

/// The index of the largest probability.
pub fn argmax(probs: &[f32]) -> usize {
    probs
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 { (i, p) } else { best }
        })
        .0
}

/// Draws an index from `probs` with a uniform `u` in [0, 1).
pub fn sample(probs: &[f32], u: f32) -> usize {
    let mut acc = 0.0;
    for (i, &p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    // Rounding left `u` past the end: the last allowed entry.
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}
