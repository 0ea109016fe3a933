//! Notification names (contract §10.1): 23 topics and 3 legacy names, as one index space so a
//! connection's subscription set is a bit mask.

/// Every accepted name: the 23 topics, then the 3 legacy names.
pub const NAMES: [&str; 26] = [
    "camera.connected",
    "camera.disconnected",
    "camera.status_change",
    "camera.capability_detected",
    "camera.capability_error",
    "recording.start",
    "recording.stop",
    "recording.progress",
    "recording.error",
    "snapshot.taken",
    "snapshot.error",
    "system.health",
    "system.error",
    "system.startup",
    "system.shutdown",
    "mediamtx.stream",
    "mediamtx.path",
    "mediamtx.error",
    "mediamtx.recording_started",
    "mediamtx.recording_stopped",
    "mediamtx.recording_failed",
    "mediamtx.stream_started",
    "mediamtx.stream_stopped",
    "camera_status_update",
    "recording_status_update",
    "system_health_update",
];

/// A topic or legacy name, by its index in `NAMES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name(pub u8);

/// `camera.connected`
pub(crate) const CAMERA_CONNECTED: Name = Name(0);
/// `camera.disconnected`
pub(crate) const CAMERA_DISCONNECTED: Name = Name(1);
/// `camera.status_change`
pub(crate) const CAMERA_STATUS_CHANGE: Name = Name(2);
/// `camera.capability_detected`
pub(crate) const CAMERA_CAPABILITY_DETECTED: Name = Name(3);
/// `recording.start`
pub(crate) const RECORDING_START: Name = Name(5);
/// `recording.stop`
pub(crate) const RECORDING_STOP: Name = Name(6);
/// `recording.progress`
pub(crate) const RECORDING_PROGRESS: Name = Name(7);
/// `recording.error`
pub(crate) const RECORDING_ERROR: Name = Name(8);
/// `snapshot.taken`
pub(crate) const SNAPSHOT_TAKEN: Name = Name(9);
/// `snapshot.error`
pub(crate) const SNAPSHOT_ERROR: Name = Name(10);
/// `system.health`
pub(crate) const SYSTEM_HEALTH: Name = Name(11);
/// `system.error`
pub(crate) const SYSTEM_ERROR: Name = Name(12);
/// `system.startup`
pub(crate) const SYSTEM_STARTUP: Name = Name(13);
/// `system.shutdown`
pub(crate) const SYSTEM_SHUTDOWN: Name = Name(14);
/// `mediamtx.stream`
pub(crate) const MEDIAMTX_STREAM: Name = Name(15);
/// `mediamtx.path`
pub(crate) const MEDIAMTX_PATH: Name = Name(16);
/// `mediamtx.error`
pub(crate) const MEDIAMTX_ERROR: Name = Name(17);
/// `mediamtx.recording_started`
pub(crate) const MEDIAMTX_RECORDING_STARTED: Name = Name(18);
/// `mediamtx.recording_stopped`
pub(crate) const MEDIAMTX_RECORDING_STOPPED: Name = Name(19);
/// `mediamtx.recording_failed`
pub(crate) const MEDIAMTX_RECORDING_FAILED: Name = Name(20);
/// `mediamtx.stream_started`
pub(crate) const MEDIAMTX_STREAM_STARTED: Name = Name(21);
/// `mediamtx.stream_stopped`
pub(crate) const MEDIAMTX_STREAM_STOPPED: Name = Name(22);
/// Legacy `camera_status_update` (for every `camera.status_change`).
pub(crate) const CAMERA_STATUS_UPDATE: Name = Name(23);
/// Legacy `recording_status_update` (for recording start/error/stop).
pub(crate) const RECORDING_STATUS_UPDATE: Name = Name(24);
/// Legacy `system_health_update` (for every `system.health`).
pub(crate) const SYSTEM_HEALTH_UPDATE: Name = Name(25);

impl Name {
    /// Looks a name up (case-sensitive).
    pub fn parse(s: &str) -> Option<Name> {
        NAMES.iter().position(|n| *n == s).map(|i| Name(i as u8))
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        NAMES[self.0 as usize]
    }

    /// This name's bit in a subscription mask.
    pub fn bit(self) -> u32 {
        1 << self.0
    }

    /// The legacy name that mirrors this topic, if any (§10.6).
    pub fn legacy(self) -> Option<Name> {
        match self.0 {
            2 => Some(CAMERA_STATUS_UPDATE),
            5 | 6 | 8 => Some(RECORDING_STATUS_UPDATE),
            11 => Some(SYSTEM_HEALTH_UPDATE),
            _ => None,
        }
    }
}

/// Names in a mask, in `NAMES` order.
pub(crate) fn names_in(mask: u32) -> impl Iterator<Item = Name> {
    (0..NAMES.len() as u8)
        .map(Name)
        .filter(move |n| mask & n.bit() != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_legacy_map() {
        for (i, n) in NAMES.iter().enumerate() {
            assert_eq!(Name::parse(n), Some(Name(i as u8)));
        }
        assert_eq!(Name::parse("Camera.connected"), None);
        assert_eq!(CAMERA_STATUS_CHANGE.legacy(), Some(CAMERA_STATUS_UPDATE));
        assert_eq!(
            Name::parse("recording.stop").and_then(Name::legacy),
            Some(RECORDING_STATUS_UPDATE)
        );
        assert_eq!(
            Name::parse("recording.progress").and_then(Name::legacy),
            None
        );
        assert_eq!(
            names_in(CAMERA_CONNECTED.bit() | SYSTEM_HEALTH_UPDATE.bit()).count(),
            2
        );
    }
}
