//! Checkpoints: the rheo envelope around Burn's weight bytes.
//!
//! Layout: the magic `RHEOCKPT`, the schema version (u32, little-endian), the header length
//! (u32) and the header as JSON (features, their training statistics, the network's shape,
//! seed, command, times, commit), the weights length (u64) and Burn's weight bytes, then a
//! CRC-32 of everything before it. The checksum is verified and the header checked against
//! this build before Burn sees the bytes, so a truncated, corrupt or mismatched file is a clear
//! error naming the file, never a panic.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use super::features::{FEATURE_NAMES, FeatureStats};
use super::policy::{BUFFER_ACTIONS, HIDDEN, INPUTS, OUTPUTS, PARALLELISM_ACTIONS, PolicyNet};

/// The first eight bytes of every checkpoint.
pub const MAGIC: &[u8; 8] = b"RHEOCKPT";
/// The envelope's schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a checkpoint says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    /// The envelope's schema version.
    pub schema_version: u32,
    /// Feature names, in row order.
    pub features: Vec<String>,
    /// Statistics of the training observations (normalisation, out-of-distribution check).
    pub stats: FeatureStats,
    /// Network shape: inputs, hidden units, outputs, parallelism and buffer actions.
    pub shape: [usize; 5],
    /// Training seed.
    pub seed: u64,
    /// The command that produced it.
    pub command: String,
    /// Unix time it was written.
    pub created_unix_s: u64,
    /// Wall-clock seconds of training.
    pub training_s: f64,
    /// The project commit it was trained at.
    pub commit: String,
    /// Workloads it was trained on.
    pub workloads: Vec<String>,
    /// Trained with each workload's tuned DS2 as the base of its moves (`rheo train
    /// --tuned-base`): run it with the DS2 settings its operator would run. False: DS2 without
    /// over-provisioning or catch-up.
    #[serde(default)]
    pub tuned_ds2_base: bool,
}

impl CheckpointHeader {
    /// A header for this build's network, with the given provenance.
    pub fn new(stats: FeatureStats, seed: u64, command: String, training_s: f64) -> Self {
        CheckpointHeader {
            schema_version: SCHEMA_VERSION,
            features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            stats,
            shape: SHAPE,
            seed,
            command,
            created_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            training_s,
            commit: current_commit(),
            workloads: Vec::new(),
            tuned_ds2_base: false,
        }
    }
}

const SHAPE: [usize; 5] = [INPUTS, HIDDEN, OUTPUTS, PARALLELISM_ACTIONS, BUFFER_ACTIONS];

/// A checkpoint that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint {path}: {reason}")]
pub struct CheckpointError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// The commit of the working tree, if git can tell, with `-dirty` when tracked files outside
/// `models/` differ from it: a checkpoint trained on uncommitted code says so, since its
/// command alone would not reproduce it.
pub fn current_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    let changed = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ":(top)",
        ":(top,exclude)models",
    ]);
    match changed {
        Some(files) if !files.is_empty() => format!("{commit}-dirty"),
        _ => commit,
    }
}

/// Writes `net` with `header` to `path`.
pub fn save(
    path: &Path,
    net: &PolicyNet,
    header: &CheckpointHeader,
) -> Result<(), CheckpointError> {
    let fail = |reason: String| CheckpointError {
        path: path.to_owned(),
        reason,
    };
    let weights = net
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| fail(format!("serialising the weights: {e:?}")))?;
    let header_json = serde_json::to_vec(header).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::with_capacity(32 + header_json.len() + weights.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    out.extend_from_slice(&header_json);
    out.extend_from_slice(&(weights.len() as u64).to_le_bytes());
    out.extend_from_slice(&weights);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    // Write beside and rename, so a crash never leaves half a checkpoint under the name.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, &out).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
}

/// Reads a checkpoint: its header, and the network loaded on `device`.
pub fn load(
    path: &Path,
    device: &Device,
) -> Result<(CheckpointHeader, PolicyNet), CheckpointError> {
    load_with_checksum(path, device).map(|(header, net, _)| (header, net))
}

/// Like [`load`], also returning the CRC-32 the file ends with (checked before Burn sees the
/// weights), which names the checkpoint in run logs.
pub fn load_with_checksum(
    path: &Path,
    device: &Device,
) -> Result<(CheckpointHeader, PolicyNet, u32), CheckpointError> {
    let fail = |reason: String| CheckpointError {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let (header, weights, crc) = parse(&bytes).map_err(fail)?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights.to_vec()))
        .map_err(|e| fail(format!("weights: {e:?}")))?;
    let net = PolicyNet::new(device)
        .try_load_record(record)
        .map_err(|e| fail(format!("weights do not fit the network: {e:?}")))?;
    Ok((header, net, crc))
}

/// Splits and checks a checkpoint's bytes: the header, the weights and the stored CRC-32.
fn parse(bytes: &[u8]) -> Result<(CheckpointHeader, &[u8], u32), String> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err("not a rheo checkpoint (bad magic)".into());
    }
    if bytes.len() < 8 + 4 + 4 + 8 + 4 {
        return Err(format!("truncated ({} bytes)", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != stored {
        return Err("checksum mismatch: the file is corrupt or truncated".into());
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
    let version = u32_at(8);
    if version != SCHEMA_VERSION {
        return Err(format!(
            "schema version {version}, this build reads version {SCHEMA_VERSION}"
        ));
    }
    let header_len = u32_at(12) as usize;
    let header_end = 16 + header_len;
    if body.len() < header_end + 8 {
        return Err("truncated header".into());
    }
    let header: CheckpointHeader =
        serde_json::from_slice(&body[16..header_end]).map_err(|e| format!("header: {e}"))?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&body[header_end..header_end + 8]);
    let weights_len = u64::from_le_bytes(len) as usize;
    let weights = body
        .get(header_end + 8..header_end + 8 + weights_len)
        .ok_or("truncated weights")?;
    let names: Vec<&str> = header.features.iter().map(String::as_str).collect();
    if names != FEATURE_NAMES {
        return Err(format!(
            "feature list differs from this build's ({} features vs {}): retrain or use a matching build",
            names.len(),
            FEATURE_NAMES.len()
        ));
    }
    if header.shape != SHAPE {
        return Err(format!(
            "network shape {:?}, this build's is {SHAPE:?}",
            header.shape
        ));
    }
    if header.stats.mean.len() != FEATURE_NAMES.len()
        || header.stats.m2.len() != FEATURE_NAMES.len()
    {
        return Err("feature statistics have the wrong length".into());
    }
    Ok((header, weights, stored))
}
