//! The live-view hub: who is watching, within which limits, and what they were sent.
//!
//! One `Hub` lives in `ServerState` and every shard counts into it: a viewer (an MJPEG stream,
//! or a still request while it waits for its frame) takes one place of `live.max_viewers`, one
//! of its camera's `live.max_viewers_per_camera` and one of its address's
//! `live.max_viewers_per_ip`, and gives them back when its [`Viewer`] is dropped — however the
//! request ends (served, refused later, client gone, shard stopping).
//!
//! Counting is lock-free: atomics, compare-and-swap for the total, fetch-add with a rollback for
//! the per-camera and per-address caps (the same per-address table as the connection caps,
//! `net::addr`, with its own random key). Frames and bytes sent are shared atomics too: a few
//! thousand increments a second over all shards, nothing a cache line notices next to writing
//! the frames themselves.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use crate::config::LiveConfig;
use crate::net::addr::AddrCounts;

/// Why a viewer was turned away (503), or what else was refused: the label of
/// `camshard_live_refused_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `live.max_viewers` over all cameras.
    Total,
    /// `live.max_viewers_per_camera`.
    Camera,
    /// `live.max_viewers_per_ip`.
    Address,
    /// The camera delivered no frame within `snapshot.timeout_ms`.
    NoFrame,
}

impl Refusal {
    /// Every refusal, in metrics order.
    pub(crate) const ALL: [Refusal; 4] = [
        Refusal::Total,
        Refusal::Camera,
        Refusal::Address,
        Refusal::NoFrame,
    ];

    /// The metrics label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::Total => "max_viewers",
            Refusal::Camera => "max_viewers_per_camera",
            Refusal::Address => "max_viewers_per_ip",
            Refusal::NoFrame => "no_frame",
        }
    }

    /// The `reason` of the 503 body.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Total => "too_many_viewers",
            Refusal::Camera => "too_many_viewers_for_camera",
            Refusal::Address => "too_many_viewers_from_address",
            Refusal::NoFrame => "capture_timeout",
        }
    }
}

/// The live-view state every shard shares (cheap to clone: one reference count).
#[derive(Clone)]
pub(crate) struct Hub(Arc<Inner>);

struct Inner {
    cfg: LiveConfig,
    total: AtomicUsize,
    /// Viewers per camera number (`0..cameras.max_cameras`, like every per-camera slot).
    per_camera: Box<[AtomicUsize]>,
    per_ip: AddrCounts,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
}

impl Hub {
    /// A hub for `[live]` and camera numbers below `max_cameras`.
    pub(crate) fn new(cfg: &LiveConfig, max_cameras: usize) -> Hub {
        Hub(Arc::new(Inner {
            cfg: cfg.clone(),
            total: AtomicUsize::new(0),
            per_camera: (0..max_cameras).map(|_| AtomicUsize::new(0)).collect(),
            per_ip: AddrCounts::default(),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
        }))
    }

    /// The `[live]` section.
    pub(crate) fn config(&self) -> &LiveConfig {
        &self.0.cfg
    }

    /// Takes a viewer's places for camera `num`, watched from `ip` (`None`: address unknown,
    /// not counted per address). Refusals are counted.
    pub(crate) fn enter(&self, num: u32, ip: Option<IpAddr>) -> Result<Viewer, Refusal> {
        let inner = &self.0;
        let cfg = &inner.cfg;
        let refuse = |r: Refusal| {
            self.count_refusal(r);
            Err(r)
        };
        // A camera number outside the slots cannot be counted; the caller has resolved it
        // against the registry, whose numbers stay below `cameras.max_cameras`.
        let Some(camera) = inner.per_camera.get(num as usize) else {
            return refuse(Refusal::Camera);
        };
        let mut cur = inner.total.load(Relaxed);
        loop {
            if cur >= cfg.max_viewers {
                return refuse(Refusal::Total);
            }
            match inner
                .total
                .compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if camera.fetch_add(1, Relaxed) >= cfg.max_viewers_per_camera {
            camera.fetch_sub(1, Relaxed);
            inner.total.fetch_sub(1, Relaxed);
            return refuse(Refusal::Camera);
        }
        let ip_bucket = match ip {
            Some(ip) => match inner.per_ip.try_acquire(ip, cfg.max_viewers_per_ip) {
                Ok(b) => b,
                Err(_) => {
                    camera.fetch_sub(1, Relaxed);
                    inner.total.fetch_sub(1, Relaxed);
                    return refuse(Refusal::Address);
                }
            },
            None => None,
        };
        Ok(Viewer {
            hub: Arc::clone(inner),
            camera: num as usize,
            ip_bucket,
        })
    }

    /// Counts a refusal that is not a limit (a camera without a frame in time).
    pub(crate) fn count_refusal(&self, r: Refusal) {
        if let Some(i) = Refusal::ALL.iter().position(|x| *x == r) {
            self.0.refused[i].fetch_add(1, Relaxed);
        }
    }

    /// Viewers of camera `num` now.
    pub(crate) fn viewers(&self, num: u32) -> usize {
        self.0
            .per_camera
            .get(num as usize)
            .map_or(0, |c| c.load(Relaxed))
    }

    /// Viewers over all cameras now.
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        self.0.total.load(Relaxed)
    }

    /// JPEG frames sent to MJPEG viewers and still requests since start.
    pub(crate) fn frames_sent(&self) -> u64 {
        self.0.frames_sent.load(Relaxed)
    }

    /// Bytes of those frames, multipart framing included.
    pub(crate) fn bytes_sent(&self) -> u64 {
        self.0.bytes_sent.load(Relaxed)
    }

    /// Refusals since start, by `Refusal::ALL` order.
    pub(crate) fn refusals(&self) -> impl Iterator<Item = (Refusal, u64)> + '_ {
        Refusal::ALL
            .iter()
            .zip(&self.0.refused)
            .map(|(r, n)| (*r, n.load(Relaxed)))
    }
}

/// One viewer's places in the hub's counts; dropping it gives them back.
pub(crate) struct Viewer {
    hub: Arc<Inner>,
    camera: usize,
    ip_bucket: Option<usize>,
}

impl Viewer {
    /// Counts one frame of `bytes` (framing included) sent to this viewer.
    pub(crate) fn sent(&self, bytes: usize) {
        self.hub.frames_sent.fetch_add(1, Relaxed);
        self.hub.bytes_sent.fetch_add(bytes as u64, Relaxed);
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if let Some(c) = self.hub.per_camera.get(self.camera) {
            c.fetch_sub(1, Relaxed);
        }
        self.hub.total.fetch_sub(1, Relaxed);
        if let Some(b) = self.ip_bucket {
            self.hub.per_ip.release(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(total: usize, camera: usize, ip: usize) -> Hub {
        Hub::new(
            &LiveConfig {
                enabled: true,
                max_viewers: total,
                max_viewers_per_camera: camera,
                max_viewers_per_ip: ip,
                max_fps: 30,
            },
            4,
        )
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn each_limit_refuses_and_places_come_back_on_drop() {
        let h = hub(3, 2, 1);
        let a = h.enter(0, ip(1)).expect("first");
        assert!(matches!(h.enter(0, ip(1)), Err(Refusal::Address)));
        let b = h.enter(0, ip(2)).expect("second of camera0");
        assert!(matches!(h.enter(0, ip(3)), Err(Refusal::Camera)));
        let c = h.enter(1, ip(3)).expect("camera1");
        assert!(matches!(h.enter(2, ip(4)), Err(Refusal::Total)));
        assert_eq!((h.viewers(0), h.viewers(1), h.total()), (2, 1, 3));
        drop((a, b, c));
        assert_eq!((h.viewers(0), h.viewers(1), h.total()), (0, 0, 0));
        // Refusals rolled back what they had taken: every place is free again.
        let again: Vec<_> = [(0, 1), (0, 2), (1, 3)]
            .iter()
            .map(|&(cam, a)| h.enter(cam, ip(a)).expect("free again"))
            .collect();
        assert_eq!(again.len(), 3);
        let counts: Vec<_> = h.refusals().map(|(r, n)| (r.label(), n)).collect();
        assert_eq!(
            counts,
            [
                ("max_viewers", 1),
                ("max_viewers_per_camera", 1),
                ("max_viewers_per_ip", 1),
                ("no_frame", 0)
            ]
        );
    }

    #[test]
    fn no_address_limit_at_zero_and_unknown_cameras_are_refused() {
        let h = hub(10, 10, 0);
        let v: Vec<_> = (0..5).map(|_| h.enter(0, ip(1)).expect("no cap")).collect();
        assert_eq!(h.viewers(0), 5);
        assert!(matches!(h.enter(99, ip(1)), Err(Refusal::Camera)));
        assert_eq!(h.total(), 5);
        v[0].sent(100);
        assert_eq!((h.frames_sent(), h.bytes_sent()), (1, 100));
    }
}
