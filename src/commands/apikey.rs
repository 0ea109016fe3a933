//! `camshard apikey create|list|revoke`: the admin CLI for API keys (contract §5.1).

use crate::auth::apikey::{parse_expiry, KeyStore};
use crate::auth::Role;
use crate::cli::ApikeyAction;
use crate::clock::now_unix;
use crate::config::Config;

/// Runs the subcommand; the error is printed by `main`.
pub fn run(config: &Config, action: &ApikeyAction) -> Result<(), String> {
    let store = KeyStore::new(config.state_dir());
    let now = now_unix();
    match action {
        ApikeyAction::Create {
            role,
            name,
            expires,
        } => {
            let role = Role::parse(role)
                .ok_or_else(|| format!("unknown role \"{role}\" (viewer, operator, admin)"))?;
            let expires = expires
                .as_deref()
                .map(|e| parse_expiry(e, now))
                .transpose()?;
            let (key, record) = store
                .create(role, name.as_deref(), expires, now)
                .map_err(|e| e.to_string())?;
            eprintln!(
                "created key {} ({}); it is shown only once:",
                record.key_id, record.role
            );
            println!("{key}");
        }
        ApikeyAction::List => {
            let set = store.load().map_err(|e| e.to_string())?;
            println!(
                "{:<14} {:<9} {:<25} {:<25} {:<25} NAME",
                "KEY_ID", "ROLE", "CREATED", "EXPIRES", "REVOKED"
            );
            for r in set.records() {
                println!(
                    "{:<14} {:<9} {:<25} {:<25} {:<25} {}",
                    r.key_id,
                    r.role,
                    r.created_at,
                    r.expires_at.as_deref().unwrap_or("-"),
                    r.revoked_at.as_deref().unwrap_or("-"),
                    r.name
                );
            }
        }
        ApikeyAction::Revoke { key_id } => {
            if !store.revoke(key_id, now).map_err(|e| e.to_string())? {
                return Err(format!("no key with id {key_id}"));
            }
            eprintln!(
                "revoked {key_id}; running servers drop its sessions within 10 s (or at SIGHUP)"
            );
        }
    }
    Ok(())
}
