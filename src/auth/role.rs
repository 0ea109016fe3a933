//! Roles (contract §6) and the `permissions` each grants (§5.3).
//!
//! Roles are totally ordered, viewer < operator < admin, and a role may do everything a lower
//! one may; the derived `Ord` follows the declaration order, so `role >= required` is the whole
//! permission check.

use std::fmt;

/// A caller's role; ordered so that `Viewer < Operator < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// May read state.
    Viewer,
    /// May also operate cameras (snapshots, recording, streaming).
    Operator,
    /// May also delete files and change server settings.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// Parses the wire name (`viewer`, `operator`, `admin`; exact, lower case).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The `permissions` array `authenticate` returns for this role (§5.3).
    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Role::Viewer => &["view"],
            Role::Operator => &["view", "control"],
            Role::Admin => &["view", "control", "admin"],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_is_exact() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse(""), None);
    }

    #[test]
    fn ordering_and_permissions() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(Role::Viewer.permissions(), ["view"]);
        assert_eq!(Role::Operator.permissions(), ["view", "control"]);
        assert_eq!(Role::Admin.permissions(), ["view", "control", "admin"]);
    }
}
