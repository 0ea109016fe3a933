//! A connection's notification queue with the contract's slow-consumer rule (§10.7): bounded at
//! `server.outbound_queue_limit`; when full, the oldest notifications are dropped to make room,
//! and one `system.events_dropped` is sent as soon as the client reads again. Replies never pass
//! through here (they are bounded by in-flight limits, §2.4).

use std::collections::VecDeque;

use bytes::Bytes;

/// Queued notifications and drop counters.
#[derive(Debug, Default)]
pub struct Outbound {
    queue: VecDeque<Bytes>,
    unreported: u64,
    total: u64,
}

impl Outbound {
    /// Queues a notification; returns true when an older one was dropped to make room.
    pub fn push(&mut self, msg: Bytes, limit: usize) -> bool {
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
    pub fn pop(&mut self) -> Option<Bytes> {
        if self.unreported > 0 {
            let msg = format!(
                "{{\"jsonrpc\":\"2.0\",\"method\":\"system.events_dropped\",\"params\":{{\"count\":{},\"total\":{},\"timestamp\":\"{}\"}}}}",
                self.unreported,
                self.total,
                crate::auth::rfc3339_millis(crate::state::unix_millis())
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
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is queued and nothing is unreported.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.unreported == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
