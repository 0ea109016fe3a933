//! `GET`/`HEAD /live/{camera}.mjpg` and `/live/{camera}.jpg` (contract §11.5): the route of
//! live view. It decides — method, `?fps=`, authorization (exactly as for downloads: bearer
//! credential, `X-API-Key`, or a live token for this camera), the camera, the viewer limits —
//! and hands the socket to the writer in `live::stream`. One request per connection, as for
//! every HTTP route.
//!
//! The stream runs on the shard as one task per viewer. Its writes are the socket's own async
//! writes with a timeout of `server.slow_consumer_cut_s` (the stall rule of WebSocket consumers),
//! so a viewer that stops reading waits on its socket without holding the shard, and is cut when
//! the timeout passes. `TCP_NOTSENT_LOWAT` keeps the kernel from queueing more than about one
//! frame of unsent bytes per viewer: what the viewer is sent is as fresh as its link allows, not
//! a backlog the size of an auto-tuned send buffer.

use std::os::fd::AsRawFd;
use std::time::Duration;

use futures_lite::AsyncWriteExt;

use super::download::{cors_headers, credential_or_token, preflight_or_refusal, send};
use super::head::Head;
use super::http::Response;
use super::stream::Conn;
use crate::camera::registry::{parse_camera_id, Status};
use crate::live::hub::Refusal;
use crate::live::stream::{self, Mjpeg, BOUNDARY};
use crate::shard::local::Shard;
use crate::state::ServerState;

/// Unsent bytes the kernel may hold for one viewer before the socket counts as full.
const NOTSENT_LOWAT: libc::c_int = 64 * 1024;

/// Which of the two live routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `.mjpg`: the MJPEG stream.
    Mjpeg,
    /// `.jpg`: one still frame.
    Still,
}

/// A live path: the camera id as written (canonical `cameraN`), its number, the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// `cameraN`.
    pub camera: &'a str,
    /// N.
    pub num: u32,
    /// Stream or still.
    pub kind: Kind,
}

/// `/live/cameraN.mjpg` or `/live/cameraN.jpg`; `None` for anything else (a 404 like any
/// unknown path). The id must be canonical (`camera0`, not `camera00` or a percent-encoding):
/// tokens bind the id's exact text.
pub(crate) fn split_path(path: &str) -> Option<Target<'_>> {
    let rest = path.strip_prefix("/live/")?;
    let (camera, kind) = if let Some(c) = rest.strip_suffix(".mjpg") {
        (c, Kind::Mjpeg)
    } else {
        (rest.strip_suffix(".jpg")?, Kind::Still)
    };
    let num = parse_camera_id(camera)?;
    Some(Target { camera, num, kind })
}

/// `?fps=N`: `Ok(None)` when absent, `Err` unless N is a plain integer in `1..=max`.
pub(crate) fn parse_fps(head: &Head, max: u32) -> Result<Option<u32>, ()> {
    let Some(raw) = head.query_param("fps") else {
        return Ok(None);
    };
    // At most three digits are looked at: no value in range is longer, and a long digit run
    // must not cost more than a short one.
    if raw.is_empty() || raw.len() > 3 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    match raw.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(()),
    }
}

/// Any valid bearer credential (JWT or API key, any role), `X-API-Key`, or a live token for
/// this camera from a credential that is still live — the rule of downloads (§11.2), with the
/// token bound to the camera instead of a file. Otherwise the -32001 reason for the 401,
/// preferring the token's.
pub(crate) fn authorize(
    state: &ServerState,
    head: &Head,
    camera: &str,
) -> Result<(), &'static str> {
    credential_or_token(state, head, |token, key_live| {
        crate::live::token::verify(
            state.credentials().download_key(),
            camera,
            token,
            crate::clock::now_unix(),
            key_live,
        )
        .map_err(|f| f.reason())
    })
}

/// Serves a `/live/…` request and closes the connection. Returns false (nothing written) when
/// live view is disabled or the path is not a live route; the caller then routes as usual
/// (404).
pub(crate) async fn serve(shard: &Shard, stream: &mut Conn, head: &Head) -> bool {
    if !shard.state.live().config().enabled {
        return false;
    }
    let Some(target) = split_path(&head.path) else {
        return false;
    };
    let status = handle(shard, stream, head, target).await;
    shard.stats.count_http("live", status);
    let _ = stream.close().await;
    true
}

/// CORS headers as `Name: value\r\n` lines.
fn header_lines(h: &[(&'static str, String)]) -> String {
    h.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect()
}

async fn handle(shard: &Shard, stream: &mut Conn, head: &Head, target: Target<'_>) -> u16 {
    let state = &shard.state;
    let cors = cors_headers(shard, head);
    if let Some(r) = preflight_or_refusal(head, "Authorization, X-API-Key") {
        return send(stream, head, r, &cors).await;
    }
    let live = state.live();
    let fps = match target.kind {
        Kind::Mjpeg => match parse_fps(head, live.config().max_fps) {
            Ok(f) => f,
            Err(()) => return send(stream, head, Response::error(400, "invalid_fps"), &cors).await,
        },
        // A still has no rate; a copied stream URL's `fps` is ignored.
        Kind::Still => None,
    };
    if let Err(reason) = authorize(state, head, target.camera) {
        let r = Response::error(401, reason).header("WWW-Authenticate", "Bearer");
        return send(stream, head, r, &cors).await;
    }
    let cameras = state.cameras().snapshot();
    let Some(cam) = cameras.iter().find(|c| c.num == target.num) else {
        return send(
            stream,
            head,
            Response::error(404, "camera_not_found"),
            &cors,
        )
        .await;
    };
    let capture = match (&cam.capture, cam.status) {
        (Some(c), Status::Connected) => c.clone(),
        (_, Status::Error) => {
            return send(stream, head, Response::error(404, "camera_error"), &cors).await
        }
        _ => {
            return send(
                stream,
                head,
                Response::error(404, "camera_disconnected"),
                &cors,
            )
            .await
        }
    };
    drop(cameras);
    let extra = header_lines(&cors);
    if head.method == "HEAD" {
        // The headers a GET would get, without starting the camera or taking a viewer's place.
        let h = match target.kind {
            Kind::Mjpeg => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n\
                 Cache-Control: no-store\r\nPragma: no-cache\r\nConnection: close\r\n\
                 Server: camshard\r\n{extra}\r\n"
            ),
            Kind::Still => {
                let length = capture
                    .latest()
                    .map(|f| format!("Content-Length: {}\r\n", f.jpeg.len()))
                    .unwrap_or_default();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n{length}Cache-Control: no-store\r\n\
                     Connection: close\r\nServer: camshard\r\n{extra}\r\n"
                )
            }
        };
        let _ = stream.write_all(h.as_bytes()).await;
        return 200;
    }
    let ip = stream.peer_addr().ok().map(|a| a.ip());
    let viewer = match live.enter(target.num, ip) {
        Ok(v) => v,
        Err(r) => {
            let resp = Response::error(503, r.reason()).header("Retry-After", "1");
            return send(stream, head, resp, &cors).await;
        }
    };
    let cfg = state.config();
    let _ = stream.set_write_timeout(Some(Duration::from_secs(cfg.server.slow_consumer_cut_s)));
    set_notsent_lowat(stream);
    let first_frame = cfg.snapshot.timeout_ms;
    let no_frame = || {
        live.count_refusal(Refusal::NoFrame);
        Response::error(503, Refusal::NoFrame.reason()).header("Retry-After", "1")
    };
    match target.kind {
        Kind::Still => {
            let frame = match stream::still(&capture, first_frame).await {
                Ok(f) => f,
                Err(stream::NoFrame) => return send(stream, head, no_frame(), &cors).await,
            };
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
                 Cache-Control: no-store\r\nConnection: close\r\nServer: camshard\r\n{extra}\r\n",
                frame.jpeg.len()
            );
            if stream.write_all(h.as_bytes()).await.is_ok()
                && stream.write_all(&frame.jpeg).await.is_ok()
                && stream.flush().await.is_ok()
            {
                viewer.sent(frame.jpeg.len());
            }
            200
        }
        Kind::Mjpeg => {
            let opts = Mjpeg {
                fps,
                first_frame,
                extra_headers: &extra,
            };
            match stream::mjpeg(stream, &capture, &viewer, &opts).await {
                Ok(end) => {
                    tracing::debug!(
                        shard = shard.id,
                        camera = target.camera,
                        ?end,
                        "live stream ended"
                    );
                    200
                }
                Err(stream::NoFrame) => send(stream, head, no_frame(), &cors).await,
            }
        }
    }
}

/// Sets `TCP_NOTSENT_LOWAT` on the viewer's socket (see the module docs). Best effort: without
/// it the stream still works, only with more latency for a slow viewer.
fn set_notsent_lowat(stream: &Conn) {
    let v = NOTSENT_LOWAT;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live stack variable, on a
    // descriptor this connection owns.
    let _ = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = |p| split_path(p).map(|t| (t.camera, t.num, t.kind));
        assert_eq!(t("/live/camera0.mjpg"), Some(("camera0", 0, Kind::Mjpeg)));
        assert_eq!(t("/live/camera12.jpg"), Some(("camera12", 12, Kind::Still)));
        for bad in [
            "/live/camera01.mjpg",
            "/live/camera0.jpeg",
            "/live/camera0",
            "/live/camera.mjpg",
            "/live/Camera0.jpg",
            "/live/camera0.mjpg/",
            "/live/%63amera0.jpg",
            "/live/../camera0.jpg",
            "/live/camera0.jpg.mjpg",
            "/live/",
            "/livecamera0.jpg",
            "/live/camera99999999999.jpg",
        ] {
            assert_eq!(split_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn fps_values() {
        let head = |q: &str| Head {
            query: q.to_string(),
            ..Head::default()
        };
        assert_eq!(parse_fps(&head(""), 30), Ok(None));
        assert_eq!(parse_fps(&head("token=x"), 30), Ok(None));
        assert_eq!(parse_fps(&head("fps=5&token=x"), 30), Ok(Some(5)));
        assert_eq!(parse_fps(&head("fps=30"), 30), Ok(Some(30)));
        for bad in [
            "fps=0",
            "fps=31",
            "fps=",
            "fps",
            "fps=-1",
            "fps=+5",
            "fps=5.0",
            "fps=0005",
            "fps=99999999999999999999",
        ] {
            assert_eq!(parse_fps(&head(bad), 30), Err(()), "{bad}");
        }
    }
}
