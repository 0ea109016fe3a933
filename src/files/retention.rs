//! Retention (§9.6): the persisted policy (`<state_dir>/retention.json`) and the cleanup that
//! applies it.
//!
//! - `set_retention_policy` replaces the policy as a whole ([`save`], atomic).
//! - An enabled `age`/`size` policy runs every `retention.interval_s` ([`spawn_scheduler`], also
//!   once at start-up) and after each finished recording ([`after_recording`]).
//! - `cleanup_old_files` runs the current rule once, enabled or not ([`cleanup_once`]).
//!
//! The file is the single source of truth: it is read whenever a cleanup runs (at most a few
//! times an hour), so there is no second copy in memory to keep coherent and a policy written
//! before a restart is in force right after it. Cleanups take one process-wide lock — a later
//! one waits for the running one ("runs after any cleanup already in progress"); only cleanup
//! threads and the blocking pool ever touch it, never a shard's request path.
//!
//! Only listable files are candidates (valid names, recognised extensions, regular files), so
//! hidden `.partial` files and anything foreign in the directories are never deleted, and files
//! of active or finalizing recordings are excluded both when listing and again just before each
//! deletion.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::listing::{list, Entry, Files};
use super::names::Kind;

/// Which rule a policy applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PolicyType {
    /// Delete files older than `max_age_days`.
    Age,
    /// Delete the oldest files until the total is at most `max_size_gb`.
    Size,
    /// Delete nothing automatically.
    Manual,
}

impl PolicyType {
    /// Parses the wire name.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "age" => Some(PolicyType::Age),
            "size" => Some(PolicyType::Size),
            "manual" => Some(PolicyType::Manual),
            _ => None,
        }
    }

    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PolicyType::Age => "age",
            PolicyType::Size => "size",
            PolicyType::Manual => "manual",
        }
    }
}

/// The retention policy as set and persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Policy {
    /// The rule.
    pub policy_type: PolicyType,
    /// Applied automatically (schedule, after recordings) when true.
    pub enabled: bool,
    /// Age limit in days (0 < x ≤ 36500), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<f64>,
    /// Size limit in GiB (1 GB = 2^30 bytes, > 0), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_gb: Option<f64>,
}

/// Largest accepted `max_age_days` (100 years).
pub(crate) const MAX_AGE_DAYS: f64 = 36_500.0;

/// Serialises cleanups process-wide.
static RUNNING: Mutex<()> = Mutex::new(());
/// Serialises policy writes (two concurrent `set_retention_policy` calls must not interleave).
static SAVING: Mutex<()> = Mutex::new(());

/// Where the policy is stored.
pub(crate) fn policy_path(state_dir: &Path) -> PathBuf {
    state_dir.join("retention.json")
}

/// The stored policy; `None` (= manual) when none was ever set. A file that cannot be read or
/// parsed is logged and treated as no policy: deleting nothing is the safe reading.
pub(crate) fn load(files: &Files) -> Option<Policy> {
    let path = policy_path(files.config().state_dir());
    match load_from(&path) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "retention policy unreadable; nothing will be deleted");
            None
        }
    }
}

/// Reads a policy file: `Ok(None)` when it does not exist.
pub(crate) fn load_from(path: &Path) -> Result<Option<Policy>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Stores the policy atomically: a temporary file, fsync, rename over the old one, fsync of the
/// directory. A crash leaves either the old or the new policy, never a torn file.
pub(crate) fn save(files: &Files, p: &Policy) -> std::io::Result<()> {
    save_to(files.config().state_dir(), p)
}

/// [`save`] into `state_dir`.
pub(crate) fn save_to(state_dir: &Path, p: &Policy) -> std::io::Result<()> {
    use std::io::Write;
    let _one_writer = SAVING.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(state_dir)?;
    let target = policy_path(state_dir);
    let tmp = state_dir.join(".retention.json.tmp");
    let text = serde_json::to_vec_pretty(p).map_err(std::io::Error::other)?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        // The rename itself is durable only once the directory is synced.
        std::fs::File::open(state_dir)?.sync_all()
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The files `p` deletes out of `files` (every listable recording and snapshot) at `now_ms`,
/// oldest first. Pure: callers have already excluded busy recordings.
pub(crate) fn select(p: &Policy, mut files: Vec<(Kind, Entry)>, now_ms: u64) -> Vec<(Kind, Entry)> {
    // Oldest first, ties by name, so a size cleanup is deterministic.
    files.sort_by(|a, b| {
        a.1.mtime_ms
            .cmp(&b.1.mtime_ms)
            .then_with(|| a.1.name.cmp(&b.1.name))
    });
    match p.policy_type {
        PolicyType::Age => {
            let Some(days) = p.max_age_days.filter(|d| *d > 0.0) else {
                return Vec::new();
            };
            let max_age_ms = (days * 86_400_000.0) as u64;
            let cutoff = now_ms.saturating_sub(max_age_ms);
            files.retain(|(_, e)| e.mtime_ms < cutoff);
            files
        }
        PolicyType::Size => {
            let Some(gb) = p.max_size_gb.filter(|g| *g > 0.0) else {
                return Vec::new();
            };
            // Float-to-int casts saturate, so an enormous limit is simply "never exceeded".
            let limit = (gb * (1u64 << 30) as f64) as u64;
            let mut total: u64 = files.iter().map(|(_, e)| e.size).sum();
            let mut victims = Vec::new();
            for f in files {
                if total <= limit {
                    break;
                }
                total = total.saturating_sub(f.1.size);
                victims.push(f);
            }
            victims
        }
        PolicyType::Manual => Vec::new(),
    }
}

/// A deletion that failed (other than the file being gone already).
#[derive(Debug)]
pub struct CleanupError {
    /// The file that could not be deleted.
    pub name: String,
    /// Why.
    pub error: std::io::Error,
}

impl std::fmt::Display for CleanupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Could not delete {}: {}", self.name, self.error)
    }
}

impl std::error::Error for CleanupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Applies `p`'s rule once now (after any cleanup already running); returns (files deleted,
/// bytes freed). The first failed deletion ends the cleanup (the methods answer -32060
/// `write_failed`); files deleted before it stay deleted. A file that vanished meanwhile (deleted by a client) is skipped, not an error.
pub(crate) fn apply(data: &Files, p: &Policy) -> Result<(u64, u64), CleanupError> {
    let _one_at_a_time = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let mut all: Vec<(Kind, Entry)> = Vec::new();
    for k in [Kind::Recordings, Kind::Snapshots] {
        all.extend(list(data, k).into_iter().map(|e| (k, e)));
    }
    let victims = select(p, all, crate::clock::unix_millis());
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut result = Ok(());
    for (k, e) in victims {
        // Re-checked here: a name can become busy between the listing and now.
        if k == Kind::Recordings && data.is_busy(&e.name) {
            continue;
        }
        match super::beneath::remove_beneath(
            &data.config().paths.data_dir,
            k.as_str().as_ref(),
            &e.name,
        ) {
            Ok(()) => {
                files += 1;
                bytes += e.size;
                tracing::debug!(file = %e.name, kind = k.as_str(), "retention deleted a file");
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(file = %e.name, error = %err, "retention could not delete a file");
                result = Err(CleanupError {
                    name: e.name,
                    error: err,
                });
                break;
            }
        }
    }
    if files > 0 {
        tracing::info!(
            files,
            bytes,
            policy = p.policy_type.as_str(),
            "retention deleted old files"
        );
    }
    result.map(|()| (files, bytes))
}

/// `cleanup_old_files`: the current policy's rule once, whether or not it is enabled; no policy
/// or `manual` deletes nothing. Disk work: run it off the shard.
pub(crate) fn cleanup_once(files: &Files) -> Result<(u64, u64), CleanupError> {
    match load(files) {
        Some(p) => apply(files, &p),
        None => Ok((0, 0)),
    }
}

/// Applies the policy if it is enabled (age or size); errors are logged. Blocking: call it from
/// a thread of its own (the recorder glue does, after each finished recording).
pub(crate) fn after_recording(files: &Files) {
    let Some(p) = load(files).filter(|p| p.enabled && p.policy_type != PolicyType::Manual) else {
        return;
    };
    if let Err(e) = apply(files, &p) {
        tracing::warn!(error = %e, "retention cleanup failed");
    }
}

/// Starts the `retention` thread: applies an enabled policy once at start-up and then every
/// `retention.interval_s`, until `stop` is set (checked every 250 ms).
pub(crate) fn spawn_scheduler(
    files: Files,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            let every = files
                .config()
                .retention
                .interval_s
                .max(Duration::from_secs(1));
            if let Some(p) = load(&files) {
                tracing::info!(
                    policy = p.policy_type.as_str(),
                    enabled = p.enabled,
                    "retention policy loaded"
                );
            }
            let mut next = Instant::now();
            while !stop.load(Relaxed) {
                if Instant::now() >= next {
                    after_recording(&files);
                    next = Instant::now() + every;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: u64 = 86_400_000;
    const NOW: u64 = 1_000 * DAY_MS;

    fn f(kind: Kind, name: &str, size: u64, age_days: f64) -> (Kind, Entry) {
        let mtime_ms = NOW - (age_days * DAY_MS as f64) as u64;
        (
            kind,
            Entry {
                name: name.into(),
                size,
                mtime_ms,
                created_ms: mtime_ms,
                file: Default::default(),
            },
        )
    }

    fn policy(t: PolicyType, age: Option<f64>, gb: Option<f64>) -> Policy {
        Policy {
            policy_type: t,
            enabled: true,
            max_age_days: age,
            max_size_gb: gb,
        }
    }

    fn names(v: &[(Kind, Entry)]) -> Vec<&str> {
        v.iter().map(|(_, e)| e.name.as_str()).collect()
    }

    fn sample() -> Vec<(Kind, Entry)> {
        let gib = 1u64 << 30;
        vec![
            f(Kind::Recordings, "r_new.mp4", gib, 1.0),
            f(Kind::Snapshots, "s_old.jpg", gib / 2, 40.0),
            f(Kind::Recordings, "r_old.mp4", gib, 31.0),
            f(Kind::Snapshots, "s_mid.jpg", gib / 2, 10.0),
            f(Kind::Recordings, "r_edge.mp4", gib, 30.0),
        ]
    }

    #[test]
    fn age_deletes_only_older_files_of_both_kinds() {
        let v = select(&policy(PolicyType::Age, Some(30.0), None), sample(), NOW);
        // Exactly 30 days old is not older than 30 days.
        assert_eq!(names(&v), ["s_old.jpg", "r_old.mp4"]);
        let v = select(
            &policy(PolicyType::Age, Some(0.5), Some(0.001)),
            sample(),
            NOW,
        );
        assert_eq!(
            v.len(),
            5,
            "everything older than 12 h; max_size_gb ignored"
        );
        assert!(select(&policy(PolicyType::Age, None, Some(1.0)), sample(), NOW).is_empty());
    }

    #[test]
    fn size_deletes_oldest_until_within_limit() {
        // Total 4 GiB; limit 2 GiB: the oldest go first until the rest fits.
        let v = select(
            &policy(PolicyType::Size, Some(1.0), Some(2.0)),
            sample(),
            NOW,
        );
        assert_eq!(names(&v), ["s_old.jpg", "r_old.mp4", "r_edge.mp4"]);
        let v = select(&policy(PolicyType::Size, None, Some(4.0)), sample(), NOW);
        assert!(v.is_empty(), "exactly at the limit deletes nothing");
        let v = select(&policy(PolicyType::Size, None, Some(0.0001)), sample(), NOW);
        assert_eq!(v.len(), 5);
        let v = select(&policy(PolicyType::Size, None, Some(1e300)), sample(), NOW);
        assert!(v.is_empty());
        assert!(select(
            &policy(PolicyType::Manual, Some(1.0), Some(1.0)),
            sample(),
            NOW
        )
        .is_empty());
    }

    #[test]
    fn busy_recordings_are_never_candidates() {
        let d = tempfile::tempdir().expect("tempdir");
        for (name, age) in [("old.mp4", 90u64), ("busy.mp4", 90), (".x.partial.mp4", 90)] {
            let p = d.path().join(name);
            std::fs::write(&p, b"data").expect("write");
            let t = std::time::SystemTime::now() - Duration::from_secs(age * 86_400);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .and_then(|f| f.set_modified(t))
                .expect("mtime");
        }
        let files = super::super::listing::scan(d.path(), Kind::Recordings, &|n| n == "busy.mp4")
            .into_iter()
            .map(|e| (Kind::Recordings, e))
            .collect();
        let now = crate::clock::unix_millis();
        let v = select(&policy(PolicyType::Age, Some(30.0), None), files, now);
        assert_eq!(names(&v), ["old.mp4"]);
    }

    #[test]
    fn policy_file_round_trip() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(load_from(&policy_path(d.path())), Ok(None));
        let p = policy(PolicyType::Size, Some(30.0), Some(2.5));
        save_to(d.path(), &p).expect("save");
        assert_eq!(load_from(&policy_path(d.path())), Ok(Some(p)));
        let p2 = Policy {
            enabled: false,
            ..policy(PolicyType::Manual, None, None)
        };
        save_to(d.path(), &p2).expect("save");
        assert_eq!(load_from(&policy_path(d.path())), Ok(Some(p2)));
        let text = std::fs::read_to_string(policy_path(d.path())).expect("read");
        assert!(
            !text.contains("max_age_days"),
            "a replaced policy keeps no old limits"
        );
        assert!(!d.path().join(".retention.json.tmp").exists());
        std::fs::write(policy_path(d.path()), b"{not json").expect("write");
        assert!(load_from(&policy_path(d.path())).is_err());
    }
}
