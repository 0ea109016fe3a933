//! `Kick`: how the rest of the server wakes the publisher supervisor at once instead of at its
//! next tick. A leaf, so that the server state can hold one without importing the supervisor.

use crossbeam_channel::{Receiver, Sender};

/// Wakes the supervisor at once (e.g. after `start_streaming` set a hold).
#[derive(Clone, Debug)]
pub struct Kick(Sender<()>);

impl Kick {
    /// Asks for an immediate pass.
    pub fn kick(&self) {
        let _ = self.0.try_send(());
    }
}

/// A kick handle and its receiving end (given to `spawn`).
pub(crate) fn kick_channel() -> (Kick, Receiver<()>) {
    let (tx, rx) = crossbeam_channel::bounded(1);
    (Kick(tx), rx)
}
