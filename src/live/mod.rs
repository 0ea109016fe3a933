//! Live view over HTTP (issue 16, contract §11.5): `GET /live/{camera}.mjpg`, an MJPEG stream
//! (`multipart/x-mixed-replace`) of the camera's frames, and `GET /live/{camera}.jpg`, its
//! latest frame as one JPEG (nothing written to disk). Both are served by the shards straight
//! from the capture thread's latest-frame slot; the route itself is `net::live`, the JSON-RPC
//! method handing out signed URLs `get_live_url`.
//!
//! - `hub`: viewer counts and the `[live]` limits (total, per camera, per address), frames and
//!   bytes sent, refusals — what `/metrics` shows.
//! - `token`: the short-lived `?token=` bound to one camera and the minting credential (the
//!   download token's design with its own label).
//! - `stream`: the per-viewer writer — newest frame the socket can take, optional rate cap, the
//!   multipart framing — and the still frame.
//!
//! Viewers are demand, as snapshots are: a stream holds its camera's capture on
//! (`camera::capture::Hold`) and the idle countdown starts when the last viewer leaves; a still
//! request starts a cold camera and waits for its first frame.

pub(crate) mod hub;
pub(crate) mod stream;
pub(crate) mod token;

pub(crate) use hub::Hub;
