//! Rendering cameras as the contract's JSON shapes: `CameraItem` (§8.4), `Streams` (§8.3) and
//! capability lists (§9.2).

use serde_json::{json, Map, Value};

use super::registry::{CameraInfo, Status};
use super::source::Capabilities;
use crate::config::Config;

/// The host stream URLs use: `streams.public_host`, else the client's Host header host, else
/// `localhost`.
pub(crate) fn stream_host(config: &Config, client_host: Option<&str>) -> String {
    if !config.streams.public_host.is_empty() {
        return config.streams.public_host.clone();
    }
    match client_host {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => "localhost".to_string(),
    }
}

/// The `Streams` object for a MediaMTX path name.
pub(crate) fn streams(config: &Config, host: &str, path: &str) -> Value {
    let m = &config.mediamtx;
    let scheme = config.streams.http_scheme.as_str();
    json!({
        "rtsp": format!("rtsp://{host}:{}/{path}", m.rtsp_port),
        "webrtc": format!("{scheme}://{host}:{}/{path}", m.webrtc_port),
        "hls": format!("{scheme}://{host}:{}/{path}/index.m3u8", m.hls_port),
    })
}

/// A `CameraItem` object, with the camera's recording state.
pub(crate) fn camera_item_for(
    config: &Config,
    recordings: &crate::recording::recorder::Recorder,
    host: &str,
    c: &CameraInfo,
) -> Map<String, Value> {
    let mut m = camera_item(config, host, c);
    if let Some(a) = recordings.active(c.num) {
        m.insert("recording".into(), Value::from(true));
        m.insert(
            "recording_session".into(),
            Value::from(a.session_id.as_str()),
        );
        m.insert("current_file".into(), Value::from(a.filename.as_str()));
        m.insert("elapsed_time".into(), Value::from(a.handle.elapsed_s()));
    }
    m
}

/// A `CameraItem` object without recording state (`recording: false`).
pub(crate) fn camera_item(config: &Config, host: &str, c: &CameraInfo) -> Map<String, Value> {
    let connected = c.status == Status::Connected;
    let mut m = Map::new();
    m.insert("device".into(), Value::from(c.id.as_str()));
    m.insert("status".into(), Value::from(c.status.as_str()));
    m.insert("name".into(), Value::from(c.name.as_str()));
    m.insert(
        "resolution".into(),
        Value::from(if connected { c.resolution.as_str() } else { "" }),
    );
    m.insert("fps".into(), Value::from(if connected { c.fps } else { 0 }));
    // Why an ERROR camera is unusable (`busy`, `bandwidth`, …); null in every other status.
    let reason = c
        .error_reason
        .filter(|_| c.status == Status::Error)
        .map(|r| r.as_str());
    m.insert("error_reason".into(), Value::from(reason));
    m.insert("streams".into(), streams(config, host, &c.id));
    m.insert("recording".into(), Value::from(false));
    m.insert("recording_session".into(), Value::Null);
    m.insert("current_file".into(), Value::Null);
    m.insert("elapsed_time".into(), Value::from(0));
    m
}

/// Formats in driver order, FourCC trimmed.
pub(crate) fn formats(caps: &Capabilities) -> Vec<String> {
    caps.formats
        .iter()
        .map(|f| f.fourcc.trim_end().to_string())
        .collect()
}

/// Union of discrete sizes over all formats, `WxH`, largest area first.
pub(crate) fn resolutions(caps: &Capabilities) -> Vec<String> {
    let mut sizes: Vec<(u32, u32)> = caps
        .formats
        .iter()
        .flat_map(|f| f.sizes.iter().map(|s| (s.width, s.height)))
        .collect();
    sizes.sort_by(|a, b| {
        (b.0 as u64 * b.1 as u64)
            .cmp(&(a.0 as u64 * a.1 as u64))
            .then(b.0.cmp(&a.0))
    });
    sizes.dedup();
    sizes.into_iter().map(|(w, h)| format!("{w}x{h}")).collect()
}

/// Union of frame rates, rounded, ascending.
pub(crate) fn fps_options(caps: &Capabilities) -> Vec<u32> {
    let mut v: Vec<u32> = caps
        .formats
        .iter()
        .flat_map(|f| {
            f.sizes
                .iter()
                .flat_map(|s| s.fps.iter().map(|r| r.round() as u32))
        })
        .filter(|r| *r > 0)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// `validation_status` of `get_camera_capabilities`.
pub(crate) fn validation_status(c: &CameraInfo) -> &'static str {
    match (&c.caps, c.status) {
        (None, _) => "NONE",
        (Some(_), Status::Disconnected) => "DISCONNECTED",
        (Some(_), _) => "CONFIRMED",
    }
}

/// The `get_camera_capabilities` result (also `camera.capability_detected` params).
pub(crate) fn capabilities_json(c: &CameraInfo) -> Map<String, Value> {
    let empty = Capabilities::default();
    let caps = c.caps.as_ref().unwrap_or(&empty);
    let mut m = Map::new();
    m.insert("device".into(), Value::from(c.id.as_str()));
    m.insert("formats".into(), json!(formats(caps)));
    m.insert("resolutions".into(), json!(resolutions(caps)));
    m.insert("fps_options".into(), json!(fps_options(caps)));
    m.insert(
        "validation_status".into(),
        Value::from(validation_status(c)),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::source::{FormatDesc, SizeDesc};

    #[test]
    fn capability_unions() {
        let caps = Capabilities {
            formats: vec![
                FormatDesc {
                    fourcc: "MJPG".into(),
                    sizes: vec![
                        SizeDesc {
                            width: 640,
                            height: 480,
                            fps: vec![30.0, 15.0],
                        },
                        SizeDesc {
                            width: 1920,
                            height: 1080,
                            fps: vec![29.97],
                        },
                    ],
                },
                FormatDesc {
                    fourcc: "YUYV".into(),
                    sizes: vec![SizeDesc {
                        width: 1280,
                        height: 720,
                        fps: vec![10.0],
                    }],
                },
            ],
            ..Default::default()
        };
        assert_eq!(formats(&caps), ["MJPG", "YUYV"]);
        assert_eq!(resolutions(&caps), ["1920x1080", "1280x720", "640x480"]);
        assert_eq!(fps_options(&caps), [10, 15, 30]);
    }
}
