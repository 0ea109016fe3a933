//! Storage figures and the storage rule.
//!
//! - [`storage_info`]: the `get_storage_info` result (§9.6), df semantics on the filesystem that
//!   holds the recordings directory.
//! - [`check_storage`]: the §9.3 rule new snapshots and recordings must pass — refused as
//!   [`StorageError::Critical`] at or above `storage.block_percent` used, and as
//!   [`StorageError::Low`] when less than `storage.min_free_mb` MiB are available (the methods
//!   answer -32060 `storage_critical` / `storage_low`).

use std::path::Path;

use serde_json::{json, Value};

use super::listing::{list, Files};
use super::names::Kind;
use crate::config::Config;
use crate::metrics::system::{fs_usage, FsUsage};

/// The `get_storage_info` result. Disk work (statvfs and a listing of both directories): call it
/// off the shard.
pub(crate) fn storage_info(files: &Files) -> Value {
    let cfg = files.config();
    // A filesystem that cannot be measured reports zeros rather than failing the call.
    let u = fs_usage(&cfg.recordings_dir()).unwrap_or_default();
    let sum = |k: Kind| list(files, k).iter().map(|e| e.size).sum::<u64>();
    json!({
        "total_space": u.total,
        "used_space": u.used,
        "available_space": u.available,
        "usage_percentage": u.usage_percent,
        "recordings_size": sum(Kind::Recordings),
        "snapshots_size": sum(Kind::Snapshots),
        "low_space_warning": u.usage_percent >= cfg.storage.warn_percent,
        "critical_space_warning": u.usage_percent >= cfg.storage.block_percent,
    })
}

/// Why the storage rule refuses a new file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StorageError {
    /// At or above `storage.block_percent` used.
    Critical {
        /// Percent of the filesystem used.
        used_percent: f64,
        /// `storage.block_percent`.
        block_percent: f64,
    },
    /// Less than `storage.min_free_mb` MiB available.
    Low {
        /// Bytes available.
        available: u64,
        /// `storage.min_free_mb`.
        min_free_mb: u64,
    },
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            StorageError::Critical {
                used_percent,
                block_percent,
            } => write!(
                f,
                "Storage is {used_percent:.1}% used (limit {block_percent:.1}%)"
            ),
            StorageError::Low {
                available,
                min_free_mb,
            } => write!(
                f,
                "{} MiB available (minimum {min_free_mb} MiB)",
                available >> 20
            ),
        }
    }
}

impl std::error::Error for StorageError {}

/// Applies the storage rule to the filesystem holding `dir` (one statvfs: cheap, but a syscall
/// on a possibly slow mount, so callers on a shard should prefer the blocking pool).
pub(crate) fn check_storage(cfg: &Config, dir: &Path) -> Result<(), StorageError> {
    match fs_usage(dir) {
        Some(u) => check_usage(cfg, &u),
        // Nothing to measure is no reason to refuse; the write itself reports real failures.
        None => Ok(()),
    }
}

/// The rule on given figures (separate so tests can use fake usage).
pub(crate) fn check_usage(cfg: &Config, u: &FsUsage) -> Result<(), StorageError> {
    let st = &cfg.storage;
    if u.usage_percent >= st.block_percent {
        return Err(StorageError::Critical {
            used_percent: u.usage_percent,
            block_percent: st.block_percent,
        });
    }
    if u.available < st.min_free_mb.saturating_mul(1 << 20) {
        return Err(StorageError::Low {
            available: u.available,
            min_free_mb: st.min_free_mb,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let cfg: Config = toml::from_str(crate::config::DEFAULT_TOML).expect("defaults");
        let gib = 1u64 << 30;
        let ok = FsUsage {
            total: 100 * gib,
            used: 50 * gib,
            available: 50 * gib,
            usage_percent: 50.0,
        };
        assert!(check_usage(&cfg, &ok).is_ok());
        let reason = |u: FsUsage| {
            check_usage(&cfg, &u).map_err(|e| match e {
                StorageError::Critical { .. } => "storage_critical",
                StorageError::Low { .. } => "storage_low",
            })
        };
        // At the block level exactly: critical (≥, not >); just below: fine.
        assert_eq!(
            reason(FsUsage {
                usage_percent: 90.0,
                ..ok
            }),
            Err("storage_critical")
        );
        assert_eq!(
            reason(FsUsage {
                usage_percent: 89.99,
                ..ok
            }),
            Ok(())
        );
        // Critical wins over low when both hold.
        assert_eq!(
            reason(FsUsage {
                usage_percent: 95.0,
                available: 1 << 20,
                ..ok
            }),
            Err("storage_critical")
        );
        // 512 MiB is the minimum: one byte less is low, exactly 512 MiB is fine.
        assert_eq!(
            reason(FsUsage {
                available: (512 << 20) - 1,
                ..ok
            }),
            Err("storage_low")
        );
        assert_eq!(
            reason(FsUsage {
                available: 512 << 20,
                ..ok
            }),
            Ok(())
        );
    }

    #[test]
    fn unmeasurable_is_not_refused() {
        let cfg: Config = toml::from_str(crate::config::DEFAULT_TOML).expect("defaults");
        // fs_usage walks up to the nearest existing ancestor, so a missing dir still measures.
        assert!(fs_usage(Path::new("/definitely/missing/dir")).is_some());
        let _ = check_storage(&cfg, Path::new("/definitely/missing/dir"));
    }
}
