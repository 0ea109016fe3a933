//! `camshard token --role R [--ttl SECS]`: prints only a JWT, signed with the secret the server
//! would use with the same config, environment and state directory.

use crate::auth::{jwt, secret, Role};
use crate::cli::TokenArgs;
use crate::clock::now_unix;
use crate::config::Config;

/// Runs the subcommand; the error is printed by `main`.
pub fn run(config: &Config, args: &TokenArgs) -> Result<(), String> {
    let role = Role::parse(&args.role)
        .ok_or_else(|| format!("unknown role \"{}\" (viewer, operator, admin)", args.role))?;
    if args.ttl == 0 {
        return Err("--ttl must be at least 1 second".into());
    }
    let configured =
        (!config.security.jwt_secret.is_empty()).then_some(config.security.jwt_secret.as_str());
    // Creating the secret (and a 0700 state dir) here is what the server would do at its first
    // start, so a token minted before the first start still verifies afterwards.
    let (secret, _) = secret::resolve_jwt_secret(configured, config.state_dir(), true)
        .map_err(|e| format!("JWT secret: {e}"))?;
    let now = now_unix();
    println!(
        "{}",
        jwt::mint_hs256(&secret, &args.user, role, now, now.saturating_add(args.ttl))
    );
    Ok(())
}
