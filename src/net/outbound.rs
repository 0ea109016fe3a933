//! A connection's notification queue with the contract's slow-consumer rule (§10.7): bounded at
//! `server.outbound_queue_limit`; when full, the oldest notifications are dropped to make room,
//! and one `system.events_dropped` is sent as soon as the client reads again. Replies never pass
//! through here (they are bounded by in-flight limits, §2.4).
//!
//! Dropping serves a client that is merely slow. A client that has stopped reading would keep a
//! full queue, a full write buffer and a socket forever (until the keep-alive notices), so
//! [`should_cut`] adds the second half of the rule: a full queue *and* a socket that has accepted
//! no bytes for `server.slow_consumer_cut_s` means the client is gone for practical purposes.

use std::collections::VecDeque;

use std::time::{Duration, Instant};

use bytes::Bytes;

/// Queued notifications and drop counters.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    queue: VecDeque<Bytes>,
    unreported: u64,
    total: u64,
}

impl Outbound {
    /// Queues a notification; returns true when an older one was dropped to make room.
    pub(crate) fn push(&mut self, msg: Bytes, limit: usize) -> bool {
        let mut dropped = false;
        while self.queue.len() >= limit.max(1) {
            self.queue.pop_front();
            self.unreported += 1;
            self.total += 1;
            dropped = true;
        }
        self.queue.push_back(msg);
        dropped
    }

    /// The next message to write: a `system.events_dropped` first when drops are unreported.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        if self.unreported > 0 {
            let msg = format!(
                "{{\"jsonrpc\":\"2.0\",\"method\":\"system.events_dropped\",\"params\":{{\"count\":{},\"total\":{},\"timestamp\":\"{}\"}}}}",
                self.unreported,
                self.total,
                crate::clock::rfc3339_millis(crate::clock::unix_millis())
            );
            self.unreported = 0;
            return Some(Bytes::from(msg));
        }
        let msg = self.queue.pop_front();
        if self.queue.is_empty() && self.queue.capacity() > 64 {
            // A burst grew the queue; an idle connection should not keep that memory.
            self.queue.shrink_to(8);
        }
        msg
    }

    /// Queued messages.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is queued and nothing is unreported.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.unreported == 0
    }
}

/// Whether a connection is a stalled consumer to cut: its notification queue is at `limit` (so
/// notifications are being dropped) and its socket has accepted no bytes since `stalled_since`
/// for at least `cut_after`. `stalled_since` is `None` while writes go through (an idle
/// connection with nothing to send is not stalled, however long ago it last wrote).
///
/// Both halves are needed: a full queue alone is a burst or a brief pause (§10.7 drops and
/// reports, the client catches up); a blocked socket alone may be a client busy with a large
/// reply while no events are due, which the keep-alive and in-flight limits already bound.
pub(crate) fn should_cut(
    queued: usize,
    limit: usize,
    stalled_since: Option<Instant>,
    now: Instant,
    cut_after: Duration,
) -> bool {
    queued >= limit.max(1)
        && stalled_since.is_some_and(|t| now.saturating_duration_since(t) >= cut_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_needs_a_full_queue_and_a_long_stall() {
        let t0 = Instant::now();
        let cut = Duration::from_secs(10);
        let at = |s| t0 + Duration::from_secs(s);
        // Full queue, socket accepted nothing for 10 s: cut.
        assert!(should_cut(16, 16, Some(t0), at(10), cut));
        // A pause shorter than the limit keeps the drop-oldest behaviour.
        assert!(!should_cut(16, 16, Some(t0), at(9), cut));
        // Stalled for long, but the queue has room: nothing is being dropped yet.
        assert!(!should_cut(15, 16, Some(t0), at(60), cut));
        // Full queue but the socket is taking bytes (a burst, or an idle connection's first
        // events): not stalled.
        assert!(!should_cut(16, 16, None, at(60), cut));
        // A stall that started "after" now (clock read earlier by the caller) is no stall.
        assert!(!should_cut(16, 16, Some(at(5)), t0, cut));
        // A zero limit behaves like the queue's own minimum of one.
        assert!(should_cut(1, 0, Some(t0), at(10), cut));
    }

    #[test]
    fn drops_oldest_and_reports_once() {
        let mut o = Outbound::default();
        for i in 0..5 {
            o.push(Bytes::from(format!("m{i}")), 3);
        }
        assert_eq!(o.len(), 3);
        let first = o.pop().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(v["method"], "system.events_dropped");
        assert_eq!(
            (v["params"]["count"].as_u64(), v["params"]["total"].as_u64()),
            (Some(2), Some(2))
        );
        assert_eq!(o.pop().unwrap(), Bytes::from("m2"));
        assert_eq!(o.pop().unwrap(), Bytes::from("m3"));
        o.push(Bytes::from("m5"), 3);
        assert_eq!(o.pop().unwrap(), Bytes::from("m4"));
        assert_eq!(o.pop().unwrap(), Bytes::from("m5"));
        assert!(o.pop().is_none());
    }
}
