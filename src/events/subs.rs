//! A connection's subscription state (contract §10.3–10.4) and its share of the global
//! subscription statistics (`get_subscription_stats`).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;

use super::topic::{names_in, Name};
use crate::metrics::ShardStats;

/// Implicit (legacy broadcast) or explicit mode, the effective name set and the device filter.
#[derive(Debug, Default, Clone)]
pub struct Subs {
    /// Switched on by the first successful subscribe/unsubscribe.
    pub explicit: bool,
    /// Effective set as a bit mask over `topic::NAMES`.
    pub mask: u32,
    /// `filters.device`: camera ids; empty = no restriction. A set, because `wants` consults it
    /// for every event this connection might receive: a list scan would make each event cost
    /// as much as the client's filter is long. (Its length is also capped at
    /// `cameras.max_cameras` by `subscribe_events`.) Ordered, so the echo is sorted like
    /// `topics`.
    pub devices: BTreeSet<String>,
    counted: Option<(bool, u32)>,
}

impl Subs {
    /// Whether an event named `name` about `device` passes this connection's set and filter.
    pub fn wants(&self, name: Name, device: Option<&str>) -> bool {
        if self.mask & name.bit() == 0 {
            return false;
        }
        match device {
            Some(d) if !self.devices.is_empty() => self.devices.contains(d),
            _ => true,
        }
    }

    /// Effective names, sorted.
    pub fn names_sorted(&self) -> Vec<&'static str> {
        let mut v: Vec<&str> = names_in(self.mask).map(Name::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Re-computes this connection's contribution to the shard's subscription counters:
    /// `authenticated` says whether it counts at all.
    pub fn account(&mut self, stats: &ShardStats, authenticated: bool) {
        let now = authenticated.then_some((self.explicit, self.mask));
        if now == self.counted {
            return;
        }
        if let Some((explicit, mask)) = self.counted {
            apply(stats, explicit, mask, -1);
        }
        if let Some((explicit, mask)) = now {
            apply(stats, explicit, mask, 1);
        }
        self.counted = now;
    }
}

fn apply(stats: &ShardStats, explicit: bool, mask: u32, delta: i64) {
    if explicit {
        for n in names_in(mask) {
            stats.sub_counts[n.0 as usize].fetch_add(delta, Relaxed);
        }
        if mask != 0 {
            stats.explicit_clients.fetch_add(delta, Relaxed);
        }
    } else {
        stats.implicit_clients.fetch_add(delta, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::topic::{CAMERA_CONNECTED, SYSTEM_HEALTH};

    #[test]
    fn device_filter_is_a_set_lookup() {
        let mut subs = Subs {
            mask: CAMERA_CONNECTED.bit(),
            ..Subs::default()
        };
        // No filter: every device (and device-less events) pass.
        assert!(subs.wants(CAMERA_CONNECTED, Some("camera9")));
        subs.devices = (0..1024).map(|i| format!("camera{i}")).collect();
        assert!(subs.wants(CAMERA_CONNECTED, Some("camera1023")));
        assert!(!subs.wants(CAMERA_CONNECTED, Some("camera1024")));
        assert!(subs.wants(CAMERA_CONNECTED, None));
        assert!(!subs.wants(SYSTEM_HEALTH, None), "name not in the set");
    }
}
