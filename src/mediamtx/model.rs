//! MediaMTX's JSON shapes as the server reads and writes them (integration doc §3, §4, §6, §7).
//!
//! Reading is lenient: every field is optional, unknown fields are ignored, and the fields that
//! were renamed between versions are read in both spellings. Writing is strict: the server sends
//! only the fields it owns, all of which exist since MediaMTX v1.15.0 (it decodes requests
//! strictly, so an unknown field would be a 400).

use serde_json::{json, Map, Value};

use super::http::godur::{format_go_duration_secs, parse_go_duration};
use crate::config::{Config, PublishMode};

/// The live state of one path (`/v3/paths/list` item or `/v3/paths/get/{name}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PathLive {
    /// Path name.
    pub name: String,
    /// `available` when present (v1.16+), else `ready`.
    pub ready: bool,
    /// Number of readers.
    pub readers: u64,
    /// `outboundBytes`, else `bytesSent`.
    pub bytes_sent: u64,
    /// `inboundBytes`, else `bytesReceived`.
    pub bytes_received: u64,
    /// `source.type`, `""` when nothing publishes.
    pub source: String,
}

impl PathLive {
    /// Decodes one path object; `None` when it has no name.
    pub(crate) fn from_json(v: &Value) -> Option<PathLive> {
        let name = v.get("name")?.as_str()?.to_string();
        let flag = |k: &str| v.get(k).and_then(Value::as_bool);
        let num = |a: &str, b: &str| {
            v.get(a)
                .and_then(Value::as_u64)
                .or_else(|| v.get(b).and_then(Value::as_u64))
                .unwrap_or(0)
        };
        Some(PathLive {
            name,
            ready: flag("available").or_else(|| flag("ready")).unwrap_or(false),
            readers: v
                .get("readers")
                .and_then(Value::as_array)
                .map_or(0, |a| a.len() as u64),
            bytes_sent: num("outboundBytes", "bytesSent"),
            bytes_received: num("inboundBytes", "bytesReceived"),
            source: v
                .get("source")
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }

    /// The state of a path MediaMTX does not know (or that was just deleted).
    pub(crate) fn absent(name: &str) -> PathLive {
        PathLive {
            name: name.to_string(),
            ..PathLive::default()
        }
    }

    /// The `get_streams` element / `mediamtx.stream` params (without `device`).
    pub(crate) fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.as_str()));
        m.insert("source".into(), Value::from(self.source.as_str()));
        m.insert("ready".into(), Value::from(self.ready));
        m.insert("readers".into(), Value::from(self.readers));
        m.insert("bytes_sent".into(), Value::from(self.bytes_sent));
        m
    }
}

/// Decodes a `/v3/paths/list` page: its items and `pageCount`.
pub(crate) fn decode_list_page(v: &Value) -> (Vec<PathLive>, u64) {
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(PathLive::from_json).collect())
        .unwrap_or_default();
    let pages = v.get("pageCount").and_then(Value::as_u64).unwrap_or(1);
    (items, pages)
}

/// The camera number of an owned camera path name (`camera7` → 7).
pub(crate) fn camera_num(path: &str) -> Option<u32> {
    crate::camera::registry::parse_camera_id(path)
}

/// The `runOnDemand` command of camera `id`: `<exe> demand <id>`, plus `--state-dir` when the
/// server does not use the default state directory (the command must find the control socket).
pub(crate) fn demand_command(config: &Config, exe: &str, id: &str) -> String {
    let mut cmd = format!("{} demand {id}", shell_word(exe));
    if config.paths.state_dir != std::path::Path::new(crate::config::DEFAULT_STATE_DIR) {
        cmd.push_str(" --state-dir ");
        cmd.push_str(&shell_word(&config.paths.state_dir.to_string_lossy()));
    }
    cmd
}

/// Quotes a word for MediaMTX's command splitting (it splits on spaces and honours quotes).
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@".contains(&b))
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The full desired configuration of camera path `id` (integration doc §4), `record` as given.
pub(crate) fn camera_path_conf(config: &Config, exe: &str, id: &str, record: bool) -> Value {
    let rec_dir = config.recordings_dir().join(".incoming");
    let mut v = json!({
        "source": "publisher",
        "overridePublisher": true,
        "record": record,
        "recordPath": format!("{}/%path/%Y-%m-%d_%H-%M-%S-%f", rec_dir.display()),
        "recordFormat": "fmp4",
        "recordPartDuration": "1s",
        "recordSegmentDuration": format_go_duration_secs(config.recording.segment_duration_s),
        "recordDeleteAfter": "0s",
    });
    if config.streaming.publish == PublishMode::OnDemand {
        if let Some(m) = v.as_object_mut() {
            m.insert("runOnDemand".into(), demand_command(config, exe, id).into());
            m.insert("runOnDemandRestart".into(), true.into());
            m.insert("runOnDemandStartTimeout".into(), "10s".into());
            m.insert(
                "runOnDemandCloseAfter".into(),
                format_go_duration_secs(config.streaming.demand_close_after_s).into(),
            );
        }
    }
    v
}

/// The desired configuration of an external stream path (integration doc §6).
pub(crate) fn external_path_conf(url: &str, source_on_demand: bool) -> Value {
    json!({"source": url, "sourceOnDemand": source_on_demand})
}

/// Fields MediaMTX applies without dropping the publisher or readers (integration doc §9).
pub(crate) fn is_live_field(k: &str) -> bool {
    k.starts_with("record") || k == "forward"
}

/// How an actual path configuration differs from the desired one, over the desired fields only.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Diff {
    /// Differing live fields with their desired values (a PATCH body).
    pub live: Map<String, Value>,
    /// Names of differing non-live fields (need a `replace`).
    pub other: Vec<String>,
}

impl Diff {
    /// Nothing differs.
    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty() && self.other.is_empty()
    }
}

/// Compares `desired` with `actual` field by field. Durations are compared parsed (MediaMTX reads
/// `"24h"` back as `"1d"` and zero as `""`), everything else by value.
pub(crate) fn diff(desired: &Value, actual: &Value) -> Diff {
    let mut d = Diff::default();
    let Some(want) = desired.as_object() else {
        return d;
    };
    for (k, w) in want {
        let a = actual.get(k).unwrap_or(&Value::Null);
        if !same(k, w, a) {
            if is_live_field(k) {
                d.live.insert(k.clone(), w.clone());
            } else {
                d.other.push(k.clone());
            }
        }
    }
    d
}

fn same(key: &str, want: &Value, got: &Value) -> bool {
    if want == got {
        return true;
    }
    if is_duration_field(key) {
        let parse = |v: &Value| v.as_str().and_then(parse_go_duration);
        return matches!((parse(want), parse(got)), (Some(a), Some(b)) if a == b);
    }
    false
}

fn is_duration_field(key: &str) -> bool {
    matches!(
        key,
        "recordPartDuration"
            | "recordSegmentDuration"
            | "recordDeleteAfter"
            | "runOnDemandStartTimeout"
            | "runOnDemandCloseAfter"
    )
}

/// `record` of a path configuration (false when absent).
pub(crate) fn record_flag(conf: &Value) -> bool {
    conf.get("record").and_then(Value::as_bool).unwrap_or(false)
}

/// `user:pass@` in a URL replaced by `user:***@` (for command lines and error details).
pub(crate) fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(c) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..c],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_state_reads_both_spellings() {
        let old = json!({"name":"camera0","ready":true,"bytesSent":5,"bytesReceived":7,
                         "readers":[{"type":"rtspSession"}],"source":{"type":"rtspSession","id":"x"}});
        let p = PathLive::from_json(&old).unwrap();
        assert!(p.ready);
        assert_eq!((p.readers, p.bytes_sent, p.bytes_received), (1, 5, 7));
        assert_eq!(p.source, "rtspSession");
        let new = json!({"name":"d","ready":true,"available":false,"outboundBytes":9,
                         "bytesSent":1,"source":null,"readers":[],"unknown":{"x":1}});
        let p = PathLive::from_json(&new).unwrap();
        assert!(!p.ready, "available wins over ready");
        assert_eq!((p.bytes_sent, p.source.as_str()), (9, ""));
        assert!(PathLive::from_json(&json!({"ready":true})).is_none());
    }

    #[test]
    fn diff_compares_durations_parsed_and_splits_live_fields() {
        let want = json!({"source":"publisher","record":false,"recordSegmentDuration":"24h",
                          "recordDeleteAfter":"0s","runOnDemandCloseAfter":"10s"});
        let got = json!({"source":"publisher","record":false,"recordSegmentDuration":"1d",
                         "recordDeleteAfter":"","runOnDemandCloseAfter":"10s","other":1});
        assert!(diff(&want, &got).is_empty());
        let got2 = json!({"source":"rtsp://x","record":true,"recordSegmentDuration":"1h",
                          "recordDeleteAfter":"0s","runOnDemandCloseAfter":"10s"});
        let d = diff(&want, &got2);
        assert_eq!(d.other, vec!["source".to_string()]);
        assert_eq!(
            Value::Object(d.live),
            json!({"record":false,"recordSegmentDuration":"24h"})
        );
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url_password("rtsp://u:secret@127.0.0.1:8554"),
            "rtsp://u:***@127.0.0.1:8554"
        );
        assert_eq!(mask_url_password("rtsp://h:1/p@x"), "rtsp://h:1/p@x");
        assert_eq!(mask_url_password("rtsp://u@h/p"), "rtsp://u@h/p");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/usr/bin/camshard"), "/usr/bin/camshard");
        assert_eq!(shell_word("/tmp/a b"), "\"/tmp/a b\"");
    }
}
