//! Delivery on a shard: who receives an event (contract §10.3), under which names, rendered for
//! the connection's Host (§10.2), into its bounded notification queue (§10.7).
//!
//! It lives with the shard, not with the events, because it walks the shard's connections and
//! reads their sessions; `events` only says what an event is and how it reads on the wire.

use crate::camera::item::stream_host;
use crate::events::render::Renders;
use crate::events::topic::{self, Name};
use crate::events::Event;
use crate::metrics::bump;
use crate::rpc::session::AuthState;
use crate::shard::local::{Shard, SIG_OUTBOUND};

/// Delivers one event to every eligible connection of `shard`.
pub(crate) fn deliver(shard: &Shard, ev: &Event) {
    let state = &shard.state;
    let cfg = state.config();
    let limit = cfg.server.outbound_queue_limit;
    let legacy = ev.name.legacy();
    // Legacy broadcast to implicit-mode connections covers these two names only (§10.3).
    let broadcast = cfg.notifications.legacy_broadcast
        && matches!(legacy, Some(l) if l == topic::CAMERA_STATUS_UPDATE || l == topic::RECORDING_STATUS_UPDATE);
    let now_unix = crate::clock::now_unix();
    let auth = state.credentials().current();
    let mut cache = Renders::default();
    shard.conns.borrow().for_each(|h| {
        if h.is_closing() {
            return;
        }
        let authenticated = matches!(
            h.session.borrow().state(now_unix, |k| auth.is_revoked(k)),
            AuthState::Authenticated(_)
        );
        if !authenticated {
            return;
        }
        let mut names: [Option<Name>; 2] = [None, None];
        {
            let subs = h.subs.borrow();
            if subs.explicit {
                if subs.wants(ev.name, ev.device.as_deref()) {
                    names[0] = Some(ev.name);
                }
                if let Some(l) = legacy {
                    if subs.wants(l, ev.device.as_deref()) {
                        names[1] = Some(l);
                    }
                }
            } else if broadcast {
                names[1] = legacy;
            }
        }
        let mut queued = false;
        for name in names.into_iter().flatten() {
            let host = stream_host(cfg, h.peer.host().as_deref());
            let msg = cache.get(state.config(), state.recordings(), ev, name, host);
            if h.outbound.borrow_mut().push(msg, limit) {
                bump(&shard.stats.notifications_dropped);
            }
            bump(&shard.stats.notifications_sent[name.0 as usize]);
            queued = true;
        }
        if queued {
            h.signal(SIG_OUTBOUND);
        }
    });
}
