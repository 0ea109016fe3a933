//! Writing live frames to one viewer: the MJPEG stream (`multipart/x-mixed-replace`) and the
//! still frame. Generic over the byte stream, so the same code serves plain TCP and TLS on
//! either runtime backend; the route (`net::live`) sets the socket's write timeout before.
//!
//! # Newest frame, never a queue
//!
//! A viewer is a loop: take the newest frame it has not sent (a [`FrameWatch`], woken by the
//! capture thread), write it, repeat. While a write waits for the socket the capture thread goes
//! on replacing the latest-frame slot, so when the write finishes the viewer skips straight to
//! the newest frame: a slow viewer gets fewer frames, never older ones, and holds at most the
//! one frame it is writing (a shared reference, not a copy). Viewers never wait for each other —
//! each is its own task, writing its own socket — so one that stops reading costs the others
//! nothing; its write times out after `server.slow_consumer_cut_s` and the stream ends.
//!
//! # Framing
//!
//! ```text
//! HTTP/1.1 200 OK, Content-Type: multipart/x-mixed-replace; boundary=camshardframe
//!
//! --camshardframe\r\n
//! Content-Type: image/jpeg\r\nContent-Length: N\r\n\r\n<N bytes of JPEG>\r\n
//! --camshardframe\r\n
//! Content-Type: image/jpeg\r\n…
//! ```
//!
//! Each boundary is written right after the frame before it, not with the frame after it: a
//! browser shows a part once it sees the next boundary, so a frame appears when it has arrived
//! instead of one frame late.

use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::hub::Viewer;
use crate::camera::capture::{CaptureHandle, FrameWatch};
use crate::camera::frame::FrameRef;

/// The multipart boundary.
pub(crate) const BOUNDARY: &str = "camshardframe";

/// What follows each frame: the end of the part and the next boundary.
const TAIL: &[u8] = b"\r\n--camshardframe\r\n";

/// The camera delivered no frame in time; nothing was written (the caller answers 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoFrame;

/// How an MJPEG stream ended (for the debug log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// A write failed or timed out: the client left or stopped reading.
    WriteFailed,
    /// The client closed its side.
    ClientClosed,
    /// The camera's capture ended (unplugged, failed, server stopping).
    CaptureEnded,
}

/// How one MJPEG stream is served.
#[derive(Debug, Clone)]
pub(crate) struct Mjpeg<'a> {
    /// At most this many frames a second (`?fps=`); `None`: as many as the socket takes.
    pub fps: Option<u32>,
    /// How long a cold camera has for its first frame (`snapshot.timeout_ms`).
    pub first_frame: Duration,
    /// Extra response headers, each `Name: value\r\n` (CORS).
    pub extra_headers: &'a str,
}

/// Waits for a frame newer than the watcher's last, at most `within`; `None` when none came or
/// the capture ended.
async fn frame_within(watch: &mut FrameWatch, within: Duration) -> Option<FrameRef> {
    let timeout = async {
        camshard_cores::rt::sleep(within).await;
        None
    };
    futures_lite::future::or(watch.newer(), timeout).await
}

/// The latest frame, starting the camera for it if needed (a still request is demand, as a
/// snapshot is: the idle countdown restarts now).
pub(crate) async fn still(capture: &CaptureHandle, within: Duration) -> Result<FrameRef, NoFrame> {
    if let Some(f) = capture.latest() {
        capture.demand();
        return Ok(f);
    }
    // Held while waiting, so the session cannot stop for idleness between its first frame and
    // this request reading it; dropping the hold restarts the idle countdown.
    let _hold = capture.hold();
    let mut watch = capture.watch();
    frame_within(&mut watch, within).await.ok_or(NoFrame)
}

/// The part header of a frame of `len` bytes.
fn part_header(len: usize) -> String {
    format!("Content-Type: image/jpeg\r\nContent-Length: {len}\r\n\r\n")
}

/// Serves one MJPEG stream to `io` until the client leaves or the capture ends. Keeps the
/// camera capturing meanwhile (a [`crate::camera::capture::Hold`]). `Err(NoFrame)` when the
/// first frame did not come within `opts.first_frame`: nothing was written then.
pub(crate) async fn mjpeg<S>(
    io: &mut S,
    capture: &CaptureHandle,
    viewer: &Viewer,
    opts: &Mjpeg<'_>,
) -> Result<End, NoFrame>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _hold = capture.hold();
    let mut watch = capture.watch();
    let first = frame_within(&mut watch, opts.first_frame)
        .await
        .ok_or(NoFrame)?;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n\
         Cache-Control: no-store\r\nPragma: no-cache\r\nX-Accel-Buffering: no\r\n\
         Connection: close\r\nServer: camshard\r\n{}\r\n--{BOUNDARY}\r\n",
        opts.extra_headers
    );
    let interval = opts
        .fps
        .map(|f| Duration::from_secs_f64(1.0 / f64::from(f.max(1))));
    let mut preamble = Some(head);
    let mut frame = first;
    // Whether to watch the socket for the client closing while waiting for a frame: a client
    // that sends anything after its request (it should not) is no longer read, and is then
    // noticed leaving by the next write failing instead.
    let mut watch_client = true;
    loop {
        let started = Instant::now();
        let mut header = preamble.take().unwrap_or_default();
        header.push_str(&part_header(frame.jpeg.len()));
        let sent = header.len() + frame.jpeg.len() + TAIL.len();
        let wrote = async {
            io.write_all(header.as_bytes()).await?;
            io.write_all(&frame.jpeg).await?;
            io.write_all(TAIL).await?;
            io.flush().await
        };
        if wrote.await.is_err() {
            return Ok(End::WriteFailed);
        }
        viewer.sent(sent);
        // The next frame: not before the rate cap allows, and the newest one then.
        if let Some(iv) = interval {
            let due = started + iv;
            let now = Instant::now();
            if due > now {
                camshard_cores::rt::sleep(due - now).await;
            }
        }
        let next = if watch_client {
            let mut probe = [0u8; 64];
            let frame = async { Event::Frame(watch.newer().await) };
            let client = async { Event::Client(io.read(&mut probe).await.map_err(|_| ())) };
            futures_lite::future::or(frame, client).await
        } else {
            Event::Frame(watch.newer().await)
        };
        frame = match next {
            Event::Frame(Some(f)) => f,
            Event::Frame(None) => return Ok(End::CaptureEnded),
            Event::Client(Ok(0) | Err(())) => return Ok(End::ClientClosed),
            Event::Client(Ok(_)) => {
                watch_client = false;
                match watch.newer().await {
                    Some(f) => f,
                    None => return Ok(End::CaptureEnded),
                }
            }
        };
    }
}

/// What the wait between frames ended with.
enum Event {
    Frame(Option<FrameRef>),
    Client(Result<usize, ()>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_matches_the_interface() {
        assert_eq!(
            part_header(1234),
            "Content-Type: image/jpeg\r\nContent-Length: 1234\r\n\r\n"
        );
        assert_eq!(TAIL, format!("\r\n--{BOUNDARY}\r\n").as_bytes());
    }
}
