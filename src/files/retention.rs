//! Retention (§9.6): a persisted policy (`<state_dir>/retention.json`) applied every
//! `retention.interval_s` and after each finished recording when enabled, or once on demand by
//! `cleanup_old_files`. Files of active or finalizing recordings, hidden and partial files are
//! never deleted. One cleanup runs at a time.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::listing::{dir, entries, Entry};
use super::names::Kind;
use crate::rpc::error::{RpcError, STORAGE};
use crate::state::ServerState;

/// The retention policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// `age` | `size` | `manual`.
    pub policy_type: String,
    /// Applied on the schedule when true.
    pub enabled: bool,
    /// Age limit in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<f64>,
    /// Size limit in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_gb: Option<f64>,
}

/// Serializes cleanups ("runs after any cleanup already in progress"); never on another path.
static RUNNING: Mutex<()> = Mutex::new(());

fn path(state: &ServerState) -> PathBuf {
    state.config.state_dir().join("retention.json")
}

/// The stored policy (none = manual).
pub fn load(state: &ServerState) -> Option<Policy> {
    let text = std::fs::read_to_string(path(state)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Stores the policy atomically (tmp + fsync + rename).
pub fn save(state: &ServerState, p: &Policy) -> std::io::Result<()> {
    let target = path(state);
    let tmp = target.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(p).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &target)
}

/// Applies `p`'s rule once; returns (files deleted, bytes freed).
pub fn apply(state: &ServerState, p: &Policy) -> Result<(u64, u64), RpcError> {
    let _one_at_a_time = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let mut all: Vec<(Kind, Entry)> = Vec::new();
    for k in [Kind::Recordings, Kind::Snapshots] {
        all.extend(entries(state, k).into_iter().map(|e| (k, e)));
    }
    let victims: Vec<(Kind, Entry)> = match p.policy_type.as_str() {
        "age" => {
            let Some(days) = p.max_age_days else {
                return Ok((0, 0));
            };
            let cutoff = crate::state::unix_millis().saturating_sub((days * 86_400_000.0) as u64);
            all.into_iter()
                .filter(|(_, e)| e.mtime_ms < cutoff)
                .collect()
        }
        "size" => {
            let Some(gb) = p.max_size_gb else {
                return Ok((0, 0));
            };
            let limit = (gb * (1u64 << 30) as f64) as u64;
            all.sort_by_key(|(_, e)| e.mtime_ms);
            let mut total: u64 = all.iter().map(|(_, e)| e.size).sum();
            let mut v = Vec::new();
            for item in all {
                if total <= limit {
                    break;
                }
                total = total.saturating_sub(item.1.size);
                v.push(item);
            }
            v
        }
        _ => Vec::new(),
    };
    let (mut files, mut bytes) = (0, 0);
    for (k, e) in victims {
        if k == Kind::Recordings && state.recording_busy(&e.name) {
            continue;
        }
        std::fs::remove_file(dir(state, k).join(&e.name)).map_err(|err| {
            RpcError::new(STORAGE, "write_failed").details(format!("{}: {err}", e.name))
        })?;
        files += 1;
        bytes += e.size;
    }
    if files > 0 {
        tracing::info!(files, bytes, policy = %p.policy_type, "retention deleted old files");
    }
    Ok((files, bytes))
}

/// After a finished recording: apply an enabled age/size policy.
pub fn after_recording(state: &ServerState) {
    if let Some(p) = load(state).filter(|p| p.enabled) {
        let _ = apply(state, &p);
    }
}

/// Applies an enabled policy every `retention.interval_s` until shutdown.
pub fn spawn_scheduler(state: Arc<ServerState>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            let every = Duration::from_secs(state.config.retention.interval_s);
            let mut waited = Duration::ZERO;
            while !state.shutting_down.load(Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                waited += Duration::from_secs(1);
                if waited >= every {
                    waited = Duration::ZERO;
                    after_recording(&state);
                }
            }
        })
}
