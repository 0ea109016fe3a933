//! Who is alive: every host listens to the fleet's heartbeats and notices a host that fell
//! silent, so subscribers learn of a dead host by an event instead of by missing answers.
//!
//! The inventory bucket's TTL alone cannot tell anyone: JetStream (2.9, what Debian ships)
//! expires old entries without leaving a delete marker, so a key-value watcher never sees them
//! go. Hence, on top of the TTL:
//!
//! - every host subscribes `camshard.*.heartbeat` and remembers when it last heard each host
//!   (at most [`MAX_HOSTS`]; heartbeats of hosts beyond that are ignored);
//! - a host unheard for `3 × heartbeat_s` (the entries' TTL) is dead; the check runs every
//!   [`SWEEP`];
//! - of the hosts still alive in its own view (itself included), the one with the lowest host
//!   id is the announcer: it deletes the dead host's remaining entries (delete markers, which
//!   key-value watchers do see) and publishes `camshard.<dead>.events.fleet.host_offline` with
//!   `reason: "heartbeat_timeout"`.
//!
//! A dead host is thus announced within `3 × heartbeat_s + SWEEP` of its last heartbeat. The
//! election needs no messages of its own: hosts that hear the same heartbeats agree on who is
//! lowest. While views differ (a host that just joined, a partition) two hosts may both
//! announce, so a subscriber may see the event twice; it is never lost while one host is alive.
//! A host that stops cleanly announces itself (`reason: "shutdown"`, `inventory::goodbye`).
//!
//! Coming back: a host says `fleet.host_online` itself on every connection to NATS, before its
//! first heartbeat on it. A host announced offline whose connection never dropped (a partition
//! between NATS servers, a leaf node's link) does not; its announcer, hearing it beat again
//! without that, says `fleet.host_online` for it with `reason: "heard_again"`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use futures_lite::StreamExt;

use super::{events, inventory};

/// How often silent hosts are looked for.
pub(crate) const SWEEP: Duration = Duration::from_secs(1);

/// Hosts remembered at most: heartbeats are not authenticated beyond NATS's own permissions,
/// so their number is bounded like any other outside input.
pub(crate) const MAX_HOSTS: usize = 4096;

/// Longest host id taken from a heartbeat's subject (as the configuration allows).
const MAX_HOST_ID: usize = 64;

/// Camera ids kept from one heartbeat at most.
const MAX_CAMERAS: usize = 1024;

/// A heartbeat's payload (`inventory`): its time and its host's cameras.
#[derive(serde::Deserialize, Default)]
pub(crate) struct Beat {
    /// The sender's time, ms since the epoch.
    #[serde(default)]
    pub(crate) at: u64,
    /// The sender's camera ids.
    #[serde(default)]
    pub(crate) camera_ids: Vec<String>,
}

/// When a host was last heard, and what it had.
struct Seen {
    /// On this host's monotonic clock: what the timeout is measured on.
    at: Instant,
    /// The heartbeat's own time (ms since the epoch), reported in the event.
    at_ms: u64,
    /// Its cameras then: the event names them even when the entries expired first.
    cameras: Vec<String>,
}

/// A host found dead.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Dead {
    /// Its id.
    pub(crate) host: String,
    /// Its last heartbeat's time, ms since the epoch.
    pub(crate) last_seen: u64,
    /// Its cameras as of that heartbeat.
    pub(crate) cameras: Vec<String>,
}

/// The hosts this host has heard, and when.
pub(crate) struct Watch {
    me: String,
    dead_after: Duration,
    seen: HashMap<String, Seen>,
    /// Hosts this host announced offline and has not heard from since (at most [`MAX_HOSTS`]).
    announced: HashSet<String>,
}

/// What one sweep found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Sweep {
    /// Hosts found dead now, by id; each is reported once, then forgotten until it beats again.
    pub(crate) dead: Vec<Dead>,
    /// Whether this host is the one to announce them.
    pub(crate) announce: bool,
}

impl Watch {
    /// The watch of host `me`; a host unheard for `dead_after` is dead.
    pub(crate) fn new(me: String, dead_after: Duration) -> Watch {
        Watch {
            me,
            dead_after,
            seen: HashMap::new(),
            announced: HashSet::new(),
        }
    }

    /// A heartbeat `beat` from `host` (its subject's token), heard `now`; true when this host
    /// had announced it offline and it never said it was back: this host tells the fleet.
    pub(crate) fn heard(&mut self, host: &str, mut beat: Beat, now: Instant) -> bool {
        if host == self.me || host.is_empty() || host.len() > MAX_HOST_ID {
            return false;
        }
        let back = self.announced.remove(host);
        beat.camera_ids.truncate(MAX_CAMERAS);
        let seen = Seen {
            at: now,
            at_ms: beat.at,
            cameras: beat.camera_ids,
        };
        if let Some(s) = self.seen.get_mut(host) {
            *s = seen;
        } else if self.seen.len() < MAX_HOSTS {
            self.seen.insert(host.to_string(), seen);
        }
        back
    }

    /// `host` said itself it is online (`fleet.host_online`, sent before its first heartbeat on
    /// a connection): nobody needs to say it for it.
    pub(crate) fn online(&mut self, host: &str) {
        self.announced.remove(host);
    }

    /// Takes the hosts silent for `dead_after` at `now` out of the watch, and says whether this
    /// host announces them: it does when its id is the lowest of the hosts still alive.
    pub(crate) fn sweep(&mut self, now: Instant) -> Sweep {
        let dead_after = self.dead_after;
        let mut silent: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.at) >= dead_after)
            .map(|(h, _)| h.clone())
            .collect();
        silent.sort();
        let dead: Vec<Dead> = silent
            .into_iter()
            .filter_map(|host| {
                let s = self.seen.remove(&host)?;
                Some(Dead {
                    host,
                    last_seen: s.at_ms,
                    cameras: s.cameras,
                })
            })
            .collect();
        let announce = !dead.is_empty() && self.seen.keys().all(|h| *h > self.me);
        if announce {
            for d in &dead {
                if self.announced.len() < MAX_HOSTS {
                    self.announced.insert(d.host.clone());
                }
            }
        }
        Sweep { dead, announce }
    }

    /// Everyone counts as heard at `at`: after NATS was away, nobody is dead for having been
    /// unheard meanwhile; each host gets a full `dead_after` from then to beat again.
    fn forgive(&mut self, at: Instant) {
        for s in self.seen.values_mut() {
            s.at = at;
        }
    }
}

/// The watch's task on the bridge's runtime: hears heartbeats, sweeps every [`SWEEP`], and
/// announces the dead when it is this host's turn. Runs as long as the bridge. `reconnect_grace`
/// is the client's longest reconnection delay: after NATS was away, hosts get that much on top
/// of `dead_after`.
pub(crate) async fn run(
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    me: String,
    bucket: String,
    dead_after: Duration,
    reconnect_grace: Duration,
) {
    let beats = subscribe(&client, "camshard.*.heartbeat").await;
    let onlines = subscribe(
        &client,
        &format!("camshard.*.events.{}", events::HOST_ONLINE),
    )
    .await;
    // One stream of both, `host_online` first when both have messages waiting.
    let mut heard = futures_lite::stream::or(onlines.map(|m| (true, m)), beats.map(|m| (false, m)));
    let mut watch = Watch::new(me.clone(), dead_after);
    let mut next_sweep = Instant::now() + SWEEP;
    loop {
        let left = next_sweep.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, heard.next()).await {
            Ok(Some((online, msg))) => {
                let host = msg.subject.as_str().split('.').nth(1).unwrap_or("");
                if online {
                    watch.online(host);
                } else {
                    let beat = serde_json::from_slice::<Beat>(&msg.payload).unwrap_or_default();
                    if watch.heard(host, beat, Instant::now()) {
                        // Announced offline, beating again without having said so itself (a
                        // partition healed: its connection never dropped).
                        tracing::info!(host = %host, "fleet: host heard again, announced online");
                        let params = serde_json::json!(
                            {"host": host, "reason": "heard_again", "reported_by": me}
                        );
                        let (subject, payload) =
                            events::fleet_message(host, events::HOST_ONLINE, params);
                        let _ = client.publish(subject, payload).await;
                    }
                }
                if Instant::now() < next_sweep {
                    continue;
                }
            }
            Ok(None) => return,
            Err(_) => {}
        }
        let now = Instant::now();
        next_sweep = now + SWEEP;
        if client.connection_state() != State::Connected {
            // The others reconnect on their own backoff, up to its longest delay after this
            // host: they get that much more than `dead_after`, so an outage of NATS itself
            // makes no host look dead.
            watch.forgive(now + reconnect_grace);
            continue;
        }
        let found = watch.sweep(now);
        for dead in found.dead {
            if !found.announce {
                tracing::info!(host = %dead.host, "fleet: host silent; another host announces it");
                continue;
            }
            // Its cameras: as its last heartbeat listed them, and any entry still in the bucket
            // (deleted now; those expired already are gone without a trace).
            let mut cameras = dead.cameras;
            cameras.extend(inventory::forget_host(&js, &bucket, &dead.host).await);
            cameras.sort();
            cameras.dedup();
            tracing::warn!(host = %dead.host, cameras = cameras.len(), "fleet: host silent, announced offline");
            let (subject, payload) = events::host_offline(
                &dead.host,
                "heartbeat_timeout",
                &me,
                dead.last_seen,
                &cameras,
            );
            let _ = client.publish(subject, payload).await;
        }
    }
}

/// A subscription to `subject`, retried until NATS takes it.
async fn subscribe(client: &async_nats::Client, subject: &str) -> async_nats::Subscriber {
    loop {
        match client.subscribe(subject.to_string()).await {
            Ok(s) => return s,
            Err(e) => {
                tracing::warn!(error = %e, subject, "fleet: subscription failed, retrying");
                tokio::time::sleep(SWEEP).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(3);

    fn beat(at: u64) -> Beat {
        Beat {
            at,
            camera_ids: vec![format!("cam{at}")],
        }
    }

    fn dead(host: &str, at: u64) -> Dead {
        Dead {
            host: host.into(),
            last_seen: at,
            cameras: vec![format!("cam{at}")],
        }
    }

    #[test]
    fn a_silent_host_is_dead_once_and_the_lowest_living_host_announces() {
        let t0 = Instant::now();
        let mut b = Watch::new("b".into(), AFTER);
        let mut c = Watch::new("c".into(), AFTER);
        for w in [&mut b, &mut c] {
            w.heard("a", beat(10), t0);
            w.heard("b", beat(11), t0);
            w.heard("c", beat(12), t0);
        }
        // Everyone beats until t0 + 2 s except a.
        let t2 = t0 + Duration::from_secs(2);
        b.heard("c", beat(14), t2);
        c.heard("b", beat(13), t2);
        assert!(b.sweep(t2).dead.is_empty());
        let t3 = t0 + AFTER;
        let sb = b.sweep(t3);
        let sc = c.sweep(t3);
        assert_eq!(sb.dead, vec![dead("a", 10)]);
        assert_eq!(sc.dead, sb.dead);
        assert!(sb.announce, "b is the lowest living host");
        assert!(!sc.announce, "c leaves it to b");
        // Reported once.
        assert!(b.sweep(t3 + Duration::from_secs(1)).dead.is_empty());
        // a beats again without saying it is online itself: b, its announcer, says it.
        assert!(
            b.heard("a", beat(20), t3),
            "b announced a: b tells of its return"
        );
        assert!(!c.heard("a", beat(20), t3), "c did not announce a");
        assert!(!b.heard("a", beat(20), t3), "told once");
        b.heard("c", beat(21), t3);
        let later = t3 + AFTER;
        let s = b.sweep(later);
        assert_eq!(
            s.dead,
            vec![dead("a", 20), dead("c", 21)],
            "both fell silent"
        );
        assert!(s.announce);
    }

    #[test]
    fn after_an_outage_of_nats_everyone_gets_the_grace_again() {
        let t0 = Instant::now();
        let mut w = Watch::new("a".into(), AFTER);
        w.heard("b", beat(1), t0);
        // NATS was away until t0 + 10 s; the grace runs from then plus 5 s.
        let back = t0 + Duration::from_secs(10);
        w.forgive(back + Duration::from_secs(5));
        assert!(
            w.sweep(back + AFTER).dead.is_empty(),
            "b may still be reconnecting"
        );
        assert_eq!(w.sweep(back + Duration::from_secs(5) + AFTER).dead.len(), 1);
    }

    #[test]
    fn its_own_heartbeat_and_odd_ids_are_ignored_and_the_hosts_are_bounded() {
        let t0 = Instant::now();
        let mut w = Watch::new("me".into(), AFTER);
        w.heard("me", beat(1), t0);
        w.heard("", beat(1), t0);
        w.heard(&"x".repeat(MAX_HOST_ID + 1), beat(1), t0);
        assert!(w.seen.is_empty());
        for i in 0..MAX_HOSTS + 10 {
            w.heard(&format!("h{i}"), beat(1), t0);
        }
        let many = Beat {
            at: 1,
            camera_ids: vec!["camera0".into(); MAX_CAMERAS + 5],
        };
        w.heard("h0", many, t0);
        assert_eq!(w.seen["h0"].cameras.len(), MAX_CAMERAS);
        assert_eq!(w.seen.len(), MAX_HOSTS);
        let s = w.sweep(t0 + AFTER);
        assert_eq!(s.dead.len(), MAX_HOSTS);
        assert!(
            s.announce,
            "every other host is dead: this one is the lowest left"
        );
    }
}
