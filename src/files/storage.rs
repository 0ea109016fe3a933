//! The storage rule (§9.3): new snapshots and recordings are refused when the target filesystem
//! is at or above `storage.block_percent` used, or has less than `storage.min_free_mb` available.

use std::path::Path;

use crate::config::Config;
use crate::metrics::system::{fs_usage, FsUsage};
use crate::rpc::error::{RpcError, STORAGE};

/// Applies the rule to the filesystem holding `dir`.
pub fn check_storage(cfg: &Config, dir: &Path) -> Result<(), RpcError> {
    match fs_usage(dir) {
        Some(u) => check_usage(cfg, &u),
        // Nothing to measure is not a reason to refuse; the write itself will report failures.
        None => Ok(()),
    }
}

/// The rule on given figures (separated for tests).
pub fn check_usage(cfg: &Config, u: &FsUsage) -> Result<(), RpcError> {
    let st = &cfg.storage;
    if u.usage_percent >= st.block_percent {
        return Err(RpcError::new(STORAGE, "storage_critical")
            .details(format!(
                "storage {:.1}% used (limit {:.1}%)",
                u.usage_percent, st.block_percent
            ))
            .suggest("Free space or run cleanup_old_files"));
    }
    if u.available < st.min_free_mb.saturating_mul(1 << 20) {
        return Err(RpcError::new(STORAGE, "storage_low")
            .details(format!(
                "{} MiB available (minimum {} MiB)",
                u.available >> 20,
                st.min_free_mb
            ))
            .suggest("Free space or run cleanup_old_files"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let cfg: Config = toml::from_str(crate::config::DEFAULT_TOML).unwrap();
        let gib = 1u64 << 30;
        let ok = FsUsage {
            total: 100 * gib,
            used: 50 * gib,
            available: 50 * gib,
            usage_percent: 50.0,
        };
        assert!(check_usage(&cfg, &ok).is_ok());
        let full = FsUsage {
            usage_percent: 90.0,
            ..ok
        };
        assert_eq!(
            check_usage(&cfg, &full).unwrap_err().reason,
            "storage_critical"
        );
        let low = FsUsage {
            available: 100 << 20,
            ..ok
        };
        assert_eq!(check_usage(&cfg, &low).unwrap_err().reason, "storage_low");
    }
}
