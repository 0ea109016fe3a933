//! The `[fleet]` configuration section, parsed once: the NATS servers this host joins, the one
//! credential it presents, TLS, its host id (the subject token every fleet subject carries) and
//! the bridge's bounds. `fleet` reads it typed; nothing here talks to NATS.
//!
//! Every field has a default and the section is off (`enabled = false`), so a configuration
//! without it behaves exactly as before the fleet existed. [`FleetConfig::validate`] reports the
//! first problem as a dotted key and a message, the shape the main configuration's error wants.

use std::fmt;

use serde::Deserialize;

/// Longest host id: it is one token of every fleet subject.
const MAX_HOST_ID: usize = 64;

/// Most NATS server URLs (a cluster's seeds; the client learns the rest from the servers).
const MAX_SERVERS: usize = 32;

/// `[fleet]`: joining a fleet of camshard hosts over NATS (docs/operations.md "Fleet (NATS)").
#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// Off: no NATS client runs, nothing is published, nothing answers.
    pub enabled: bool,
    /// `nats://` (or `tls://`) URLs of the NATS servers; at least one when enabled.
    pub servers: Vec<String>,
    /// This host's token in every subject (`camshard.<host_id>.…`); "" = the hostname (with
    /// characters a subject token cannot hold replaced by `-`). Letters, digits, `-` and `_`.
    pub host_id: String,
    /// Seconds between heartbeats and inventory refreshes, 1..=3600; a host's inventory entries
    /// live 3 heartbeats (`fleet::inventory`).
    pub heartbeat_s: u64,
    /// User name for user/password authentication ("" = none); needs `password`.
    pub user: String,
    /// Password that goes with `user`.
    pub password: String,
    /// A NATS authentication token ("" = none).
    pub token: String,
    /// An NKey seed (`SU…`) ("" = none).
    pub nkey_seed: String,
    /// A `.creds` file (user JWT and NKey seed) ("" = none).
    pub creds_file: String,
    /// Require TLS even for `nats://` URLs.
    pub tls_required: bool,
    /// A PEM file of the CA that signs the NATS servers' certificates ("" = system roots).
    pub tls_ca_file: String,
    /// Events waiting for NATS at most: while it is away the newest are kept and published in
    /// order when it returns; beyond, the oldest are dropped and counted
    /// (`camshard_fleet_events_dropped_total`), so a NATS outage never holds the bus.
    pub event_queue: usize,
    /// JSON-RPC requests over NATS being dispatched at once at most; beyond, the request is
    /// answered with the overload error.
    pub max_inflight_rpc: usize,
    /// The JetStream key-value bucket of the fleet's inventory (the same on every host).
    pub inventory_bucket: String,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            enabled: false,
            servers: vec!["nats://127.0.0.1:4222".into()],
            host_id: String::new(),
            heartbeat_s: 5,
            user: String::new(),
            password: String::new(),
            token: String::new(),
            nkey_seed: String::new(),
            creds_file: String::new(),
            tls_required: false,
            tls_ca_file: String::new(),
            event_queue: 4096,
            max_inflight_rpc: 256,
            inventory_bucket: "camshard_inventory".into(),
        }
    }
}

/// The one credential a host presents to NATS, from the section's optional fields.
#[derive(Clone)]
pub(crate) enum FleetAuth {
    /// No credential.
    None,
    /// User and password.
    UserPassword {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// An authentication token.
    Token(String),
    /// An NKey seed.
    NkeySeed(String),
    /// A `.creds` file.
    CredsFile(String),
}

impl FleetConfig {
    /// Checks every value; `Err((dotted key, message))` for the first problem. Only an enabled
    /// section is judged: a disabled one is never used.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, why: &str| Err((format!("fleet.{k}"), why.to_string()));
        if !self.enabled {
            return Ok(());
        }
        if self.servers.is_empty() || self.servers.len() > MAX_SERVERS {
            return bad("servers", "must list 1 to 32 NATS URLs");
        }
        for s in &self.servers {
            let ok = ["nats://", "tls://"]
                .iter()
                .any(|p| s.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
            if !ok {
                return bad("servers", "each must be a nats:// or tls:// URL");
            }
        }
        if !self.host_id.is_empty() && !is_token(&self.host_id) {
            return bad(
                "host_id",
                "must be 1 to 64 letters, digits, '-' or '_' (one NATS subject token)",
            );
        }
        if !(1..=3600).contains(&self.heartbeat_s) {
            return bad("heartbeat_s", "must be between 1 and 3600");
        }
        if !(16..=1 << 20).contains(&self.event_queue) {
            return bad("event_queue", "must be between 16 and 1048576");
        }
        if !(1..=65_536).contains(&self.max_inflight_rpc) {
            return bad("max_inflight_rpc", "must be between 1 and 65536");
        }
        if !is_token(&self.inventory_bucket) {
            return bad(
                "inventory_bucket",
                "must be 1 to 64 letters, digits, '-' or '_' (a JetStream bucket name)",
            );
        }
        if self.user.is_empty() != self.password.is_empty() {
            return bad("user", "user and password go together");
        }
        let given = [
            !self.user.is_empty(),
            !self.token.is_empty(),
            !self.nkey_seed.is_empty(),
            !self.creds_file.is_empty(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return bad(
                "user",
                "set at most one of user/password, token, nkey_seed, creds_file",
            );
        }
        if !self.nkey_seed.is_empty() && !self.nkey_seed.starts_with("SU") {
            return bad("nkey_seed", "must be a user NKey seed (SU…)");
        }
        Ok(())
    }

    /// The credential to present (validated: at most one is set).
    pub(crate) fn auth(&self) -> FleetAuth {
        if !self.user.is_empty() {
            FleetAuth::UserPassword {
                user: self.user.clone(),
                password: self.password.clone(),
            }
        } else if !self.token.is_empty() {
            FleetAuth::Token(self.token.clone())
        } else if !self.nkey_seed.is_empty() {
            FleetAuth::NkeySeed(self.nkey_seed.clone())
        } else if !self.creds_file.is_empty() {
            FleetAuth::CredsFile(self.creds_file.clone())
        } else {
            FleetAuth::None
        }
    }

    /// The host id in force: `host_id`, or else this machine's hostname made into a subject
    /// token (`camshard` if there is none).
    pub(crate) fn resolved_host_id(&self) -> String {
        if !self.host_id.is_empty() {
            return self.host_id.clone();
        }
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let token: String = name
            .trim()
            .chars()
            .take(MAX_HOST_ID)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if token.is_empty() {
            "camshard".into()
        } else {
            token
        }
    }
}

/// One NATS subject token of ours: 1..=64 of `[A-Za-z0-9_-]` (no `.`, `*`, `>` or space).
fn is_token(s: &str) -> bool {
    (1..=MAX_HOST_ID).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// By hand: the password, token and seed are never shown (`Config` is logged with `{:?}`).
impl fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("FleetConfig")
            .field("enabled", &self.enabled)
            .field("servers", &self.servers)
            .field("host_id", &self.host_id)
            .field("heartbeat_s", &self.heartbeat_s)
            .field("user", &self.user)
            .field("password", &redact(&self.password))
            .field("token", &redact(&self.token))
            .field("nkey_seed", &redact(&self.nkey_seed))
            .field("creds_file", &self.creds_file)
            .field("tls_required", &self.tls_required)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("event_queue", &self.event_queue)
            .field("max_inflight_rpc", &self.max_inflight_rpc)
            .field("inventory_bucket", &self.inventory_bucket)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> FleetConfig {
        FleetConfig {
            enabled: true,
            ..FleetConfig::default()
        }
    }

    #[test]
    fn off_by_default_and_valid() {
        let d = FleetConfig::default();
        assert!(!d.enabled);
        assert_eq!(d.validate(), Ok(()));
        assert_eq!(on().validate(), Ok(()));
        assert!(matches!(on().auth(), FleetAuth::None));
    }

    #[test]
    fn refuses_bad_values() {
        let key = |c: FleetConfig| c.validate().err().map(|(k, _)| k);
        let mut c = on();
        c.servers = vec!["http://x".into()];
        assert_eq!(key(c).as_deref(), Some("fleet.servers"));
        let mut c = on();
        c.host_id = "a.b".into();
        assert_eq!(key(c).as_deref(), Some("fleet.host_id"));
        let mut c = on();
        c.heartbeat_s = 0;
        assert_eq!(key(c).as_deref(), Some("fleet.heartbeat_s"));
        let mut c = on();
        c.user = "u".into();
        assert_eq!(key(c).as_deref(), Some("fleet.user"));
        let mut c = on();
        c.token = "t".into();
        c.creds_file = "/x.creds".into();
        assert_eq!(key(c).as_deref(), Some("fleet.user"));
        let mut c = on();
        c.nkey_seed = "nope".into();
        assert_eq!(key(c).as_deref(), Some("fleet.nkey_seed"));
    }

    #[test]
    fn one_credential_typed_and_redacted() {
        let mut c = on();
        c.user = "cam".into();
        c.password = "pw-SECRET".into();
        assert_eq!(c.validate(), Ok(()));
        assert!(matches!(
            c.auth(),
            FleetAuth::UserPassword { user, password } if user == "cam" && password == "pw-SECRET"
        ));
        assert!(!format!("{c:?}").contains("SECRET"));
        let mut c = on();
        c.token = "tok".into();
        assert!(matches!(c.auth(), FleetAuth::Token(t) if t == "tok"));
    }

    #[test]
    fn host_id_defaults_to_a_token() {
        let id = on().resolved_host_id();
        assert!(is_token(&id), "{id}");
        let mut c = on();
        c.host_id = "cam-host_1".into();
        assert_eq!(c.resolved_host_id(), "cam-host_1");
    }
}
