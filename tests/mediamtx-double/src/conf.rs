//! Path configurations as MediaMTX handles them.
//!
//! - **Defaults**: a new path starts from `pathDefaults` of the stock `mediamtx.yml` of the
//!   imitated version (`src/defaults/path-*.json`, converted from MediaMTX's own file), then the
//!   fields the request set are copied over (MediaMTX's `copyStructFields`).
//! - **Strict decoding**: an unknown field is a 400 `json: unknown field "x"`, a wrong JSON type
//!   a 400 in Go's words, `null` means "not set". Durations, sizes and enums are checked while
//!   decoding, as their Go `UnmarshalJSON` does.
//! - **Validation**: the checks of MediaMTX's `Path.validate` that can concern a client (path
//!   name, source URL, `sourceOnDemand`, `runOnDemand`, `recordPath`, durations).
//! - **Read-back**: GET renders every field; durations come back in MediaMTX's form (`"24h"` as
//!   `"1d"`, `"90m"` as `"1h30m0s"`, zero as `""`), sizes as `"50M"`, and from v1.20.1 on a
//!   non-empty `publishPass`/`readPass` as `"<redacted>"`.
//! - **Path-name lookup**: `FindPathConf`: exact names first, then regular-expression names
//!   (`~…`, and `all`/`all_others` last).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::BodyStyle;

/// A path configuration: the fields a client set (the rest come from the defaults).
pub type Conf = Map<String, Value>;

/// How a field is decoded and rendered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Str,
    Bool,
    Int,
    UInt,
    Float,
    Dur,
    Size,
    Enum(&'static [&'static str], &'static str),
    StrList,
    UIntList,
    FloatList,
    Objects,
}

const DURATIONS: &[&str] = &[
    "sourceOnDemandStartTimeout",
    "sourceOnDemandCloseAfter",
    "recordPartDuration",
    "recordSegmentDuration",
    "recordDeleteAfter",
    "runOnDemandStartTimeout",
    "runOnDemandCloseAfter",
    "whepSTUNGatherTimeout",
    "whepHandshakeTimeout",
    "whepTrackGatherTimeout",
];

const FLOATS: &[&str] = &[
    "rpiCameraBrightness",
    "rpiCameraContrast",
    "rpiCameraSaturation",
    "rpiCameraSharpness",
    "rpiCameraGain",
    "rpiCameraEV",
    "rpiCameraFPS",
    "rpiCameraLensPosition",
];

const TRANSPORTS: &[&str] = &["automatic", "udp", "multicast", "tcp"];

/// Fields with their own Go types (enums, sizes) or not rendered by default (deprecated
/// pointers with `omitempty`), per version.
fn special(style: BodyStyle, field: &str) -> Option<Kind> {
    let common = match field {
        "recordMaxPartSize" => Some(Kind::Size),
        "recordFormat" => Some(Kind::Enum(&["fmp4", "mpegts"], "invalid record format")),
        "rtspTransport" | "sourceProtocol" => Some(Kind::Enum(TRANSPORTS, "invalid transport")),
        "rtspRangeType" => Some(Kind::Enum(
            &["", "clock", "npt", "smpte"],
            "invalid rtsp range type:",
        )),
        "moqTransport" => Some(Kind::Enum(
            &["quic", "webtransport"],
            "invalid MoQ transport",
        )),
        "playback" | "disablePublisherOverride" | "sourceAnyPortEnable" => Some(Kind::Bool),
        "publishUser" | "publishPass" | "readUser" | "readPass" => Some(Kind::Str),
        "publishIPs" | "readIPs" => Some(Kind::StrList),
        "rpiCameraProfile" | "rpiCameraLevel" => Some(Kind::Str),
        "rpiCameraJPEGQuality" => Some(Kind::UInt),
        "maxReaders" => Some(Kind::Int),
        _ => None,
    };
    if common.is_some() {
        return common;
    }
    match (style, field) {
        (BodyStyle::New, "fallback" | "runOnReady" | "runOnNotReady") => Some(Kind::Str),
        (BodyStyle::New, "runOnReadyRestart") => Some(Kind::Bool),
        (
            BodyStyle::New,
            "rtspUDPReadBufferSize" | "mpegtsUDPReadBufferSize" | "rtpUDPReadBufferSize",
        ) => Some(Kind::UInt),
        (
            BodyStyle::New,
            "rpiCameraHardwareH264Profile"
            | "rpiCameraHardwareH264Level"
            | "rpiCameraSoftwareH264Profile"
            | "rpiCameraSoftwareH264Level",
        ) => Some(Kind::Str),
        _ => None,
    }
}

/// The kind of `field` in `style`'s MediaMTX, or `None` when that version has no such field.
fn kind(style: BodyStyle, field: &str) -> Option<Kind> {
    if DURATIONS.contains(&field) {
        return Some(Kind::Dur);
    }
    if FLOATS.contains(&field) {
        return Some(Kind::Float);
    }
    if let Some(k) = special(style, field) {
        return Some(k);
    }
    match defaults(style).get(field)? {
        Value::String(_) => Some(Kind::Str),
        Value::Bool(_) => Some(Kind::Bool),
        Value::Number(_) => Some(Kind::UInt),
        Value::Array(a) => Some(match a.first() {
            Some(Value::Number(_)) if field == "rpiCameraAWBGains" => Kind::FloatList,
            Some(Value::Number(_)) => Kind::UIntList,
            _ => Kind::Objects,
        }),
        _ => None,
    }
}

/// `pathDefaults` of the imitated version, in MediaMTX's read-back form (field order aside).
pub fn defaults(style: BodyStyle) -> &'static Conf {
    static OLD: OnceLock<Conf> = OnceLock::new();
    static NEW: OnceLock<Conf> = OnceLock::new();
    let (cell, text) = match style {
        BodyStyle::Old => (&OLD, include_str!("defaults/path-v1.15.0.json")),
        BodyStyle::New => (&NEW, include_str!("defaults/path-v1.20.1.json")),
    };
    cell.get_or_init(|| match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    })
}

/// The global configuration of the imitated version's stock `mediamtx.yml`, with the API on and
/// the given addresses.
pub fn global(style: BodyStyle, api_port: u16, rtsp_port: u16) -> Value {
    let text = match style {
        BodyStyle::Old => include_str!("defaults/global-v1.15.0.json"),
        BodyStyle::New => include_str!("defaults/global-v1.20.1.json"),
    };
    let mut g: Value = serde_json::from_str(text).unwrap_or_default();
    if let Some(m) = g.as_object_mut() {
        m.insert("api".into(), true.into());
        m.insert("apiAddress".into(), format!(":{api_port}").into());
        m.insert("rtspAddress".into(), format!(":{rtsp_port}").into());
    }
    g
}

/// How Go's `encoding/json` names a JSON value's type in its errors.
fn json_type(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

fn type_error(v: &Value, go: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {go}",
        json_type(v)
    )
}

/// Decodes one field value as MediaMTX's `UnmarshalJSON` would.
fn decode_value(k: Kind, v: &Value) -> Result<(), String> {
    let is_uint = |v: &Value| v.as_u64().is_some() && v.as_u64() <= Some(u32::MAX as u64);
    match k {
        Kind::Str => v
            .is_string()
            .then_some(())
            .ok_or_else(|| type_error(v, "string")),
        Kind::Bool => v
            .is_boolean()
            .then_some(())
            .ok_or_else(|| type_error(v, "bool")),
        Kind::Int => v.is_i64().then_some(()).ok_or_else(|| type_error(v, "int")),
        Kind::UInt => is_uint(v)
            .then_some(())
            .ok_or_else(|| type_error(v, "uint")),
        Kind::Float => v
            .is_number()
            .then_some(())
            .ok_or_else(|| type_error(v, "float64")),
        Kind::Dur => {
            let s = v.as_str().ok_or_else(|| type_error(v, "string"))?;
            parse_dur(s).map(|_| ())
        }
        Kind::Size => {
            let s = v.as_str().ok_or_else(|| type_error(v, "string"))?;
            parse_size(s).map(|_| ())
        }
        Kind::Enum(values, msg) => {
            let s = v.as_str().ok_or_else(|| type_error(v, "string"))?;
            if values.contains(&s) {
                Ok(())
            } else {
                Err(format!("{msg} '{s}'"))
            }
        }
        Kind::StrList | Kind::UIntList | Kind::FloatList | Kind::Objects => {
            let a = v.as_array().ok_or_else(|| type_error(v, "[]"))?;
            for x in a {
                match k {
                    Kind::StrList => decode_value(Kind::Str, x)?,
                    Kind::UIntList => decode_value(Kind::UInt, x)?,
                    Kind::FloatList => decode_value(Kind::Float, x)?,
                    _ if !x.is_object() => return Err(type_error(x, "struct")),
                    _ => {}
                }
            }
            Ok(())
        }
    }
}

/// Go's words for a body that is not JSON.
fn json_syntax_error(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "unexpected end of JSON input".into();
    }
    let first = body.iter().find(|c| !c.is_ascii_whitespace());
    match first {
        Some(&c) if !b"{[\"-0123456789tfn".contains(&c) => {
            format!(
                "invalid character '{}' looking for beginning of value",
                c as char
            )
        }
        _ => format!("invalid character in JSON: {e}"),
    }
}

/// Decodes a request body strictly (MediaMTX's `jsonwrapper.Decode` into `OptionalPath`).
/// `null` values mean "not set" and are dropped. Returns MediaMTX's error text.
pub fn decode(style: BodyStyle, body: &[u8]) -> Result<Conf, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| json_syntax_error(body, &e))?;
    let Value::Object(m) = v else {
        return Err(type_error(&v, "map[string]json.RawMessage"));
    };
    if let Some(k) = m.keys().find(|k| kind(style, k).is_none()) {
        return Err(format!("json: unknown field \"{k}\""));
    }
    let mut out = Map::new();
    for (k, val) in m {
        if val.is_null() {
            continue;
        }
        if let Some(kd) = kind(style, &k) {
            decode_value(kd, &val)?;
        }
        out.insert(k, val);
    }
    Ok(out)
}

/// The full configuration: defaults with the set fields copied over.
pub fn full(style: BodyStyle, conf: &Conf) -> Conf {
    let mut m = defaults(style).clone();
    for (k, v) in conf {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// A string field of a full configuration.
pub fn str_field<'a>(full: &'a Conf, key: &str) -> &'a str {
    full.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A boolean field of a full configuration.
pub fn bool_field(full: &Conf, key: &str) -> bool {
    full.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// A duration field of a full configuration, in nanoseconds (0 when unparsable).
pub fn dur_field(full: &Conf, key: &str) -> i128 {
    parse_dur(str_field(full, key)).unwrap_or(0)
}

/// Whether a path name is a regular expression (or one of the catch-all aliases).
pub fn is_regexp_name(name: &str) -> bool {
    name == "all" || name == "all_others" || name.starts_with('~')
}

/// The compiled regular expression of a regexp path name.
fn name_regex(name: &str) -> Option<regex::Regex> {
    let pattern = if name == "all" || name == "all_others" {
        "^.*$"
    } else {
        name.strip_prefix('~')?
    };
    regex::Regex::new(pattern).ok()
}

/// MediaMTX's `IsValidPathName` (the allowed characters differ between versions).
pub fn check_path_name(style: BodyStyle, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("cannot be empty".into());
    }
    if name.starts_with('/') {
        return Err("can't begin with a slash".into());
    }
    if name.ends_with('/') {
        return Err("can't end with a slash".into());
    }
    let extra: &[char] = match style {
        BodyStyle::Old => &['_', '-', '/', '.', '~', ':'],
        BodyStyle::New => &['_', '-', '/', '.'],
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    {
        return Err(match style {
            BodyStyle::Old => "can contain only alphanumeric characters, underscore, dot, tilde, \
                               minus, slash, colon"
                .into(),
            BodyStyle::New => {
                "can contain only alphanumeric characters, underscore, dot, minus, slash".into()
            }
        });
    }
    if style == BodyStyle::New && name.split('/').any(|s| s == "." || s == "..") {
        return Err("can't contain dot path segments".into());
    }
    Ok(())
}

/// MediaMTX's `FindPathConf`: the configuration name serving path `name`, with the regular
/// expression's capture groups (for `G1`… in commands).
pub fn find_path_conf<'a>(
    style: BodyStyle,
    confs: &'a BTreeMap<String, Conf>,
    name: &str,
) -> Result<(&'a str, Vec<String>), String> {
    if let Some((k, _)) = confs.get_key_value(name) {
        return Ok((k.as_str(), Vec::new()));
    }
    check_path_name(style, name).map_err(|e| format!("invalid path name: {e} ({name})"))?;
    let mut regexps: Vec<&String> = confs.keys().filter(|k| is_regexp_name(k)).collect();
    // `all` and `all_others` go last; the rest by name.
    regexps.sort_by_key(|k| {
        (
            k.as_str() == "all" || k.as_str() == "all_others",
            k.as_str(),
        )
    });
    for k in regexps {
        if let Some(caps) = name_regex(k).and_then(|r| {
            r.captures(name).map(|c| {
                c.iter()
                    .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                    .collect::<Vec<_>>()
            })
        }) {
            return Ok((k.as_str(), caps));
        }
    }
    Err(format!("path '{name}' is not configured"))
}

/// Go's `url.Parse` plus MediaMTX's `validateURL` (scheme and host required, user and password
/// both or neither). Old MediaMTX (v1.15) only ran `url.Parse`.
fn check_url(style: BodyStyle, source: &str) -> Result<(), String> {
    let invalid = || format!("'{source}' is not a valid URL");
    // `$G1` placeholders stand for regexp groups.
    let s = source.replace(":$G", ":1935$G");
    if s.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid());
    }
    let (_scheme, rest) = s.split_once("://").ok_or_else(invalid)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let port = if let Some(v6) = hostport.strip_prefix('[') {
        let (_, after) = v6.split_once(']').ok_or_else(invalid)?;
        match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(invalid)?),
        }
    } else {
        hostport.rsplit_once(':').map(|(_, p)| p)
    };
    if port.is_some_and(|p| !p.bytes().all(|c| c.is_ascii_digit())) {
        return Err(invalid());
    }
    let host_ok = hostport
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:[]%".contains(c));
    if !host_ok {
        return Err(invalid());
    }
    if style == BodyStyle::New {
        let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
        if host.is_empty() && !hostport.starts_with('[') {
            return Err(invalid());
        }
        if let Some(u) = userinfo {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            if user.is_empty() != pass.is_empty() {
                return Err("username and password must be both provided".into());
            }
        }
    }
    Ok(())
}

/// The `source.type` a path with this static source shows (`None` for publisher/redirect).
pub fn static_source_type(source: &str) -> Option<&'static str> {
    let scheme = source.split("://").next().unwrap_or("");
    match scheme {
        _ if source == "publisher" || source == "redirect" => None,
        _ if source == "rpiCamera" => Some("rpiCameraSource"),
        "rtsp" | "rtsps" | "rtsp+http" | "rtsps+http" | "rtsp+ws" | "rtsps+ws" => {
            Some("rtspSource")
        }
        "rtmp" | "rtmps" => Some("rtmpSource"),
        "http" | "https" => Some("hlsSource"),
        "udp" | "udp+mpegts" | "unix+mpegts" => Some("mpegtsSource"),
        "udp+rtp" | "unix+rtp" => Some("rtpSource"),
        "srt" => Some("srtSource"),
        "whep" | "wheps" => Some("webRTCSource"),
        "moqt" => Some("moqSource"),
        _ => None,
    }
}

/// MediaMTX's `Path.validate` for the checks a client can trip over. `full` is the complete
/// configuration of path `name`; `playback` is the global `playback` switch.
pub fn validate(style: BodyStyle, name: &str, full: &Conf, playback: bool) -> Result<(), String> {
    let regexp = is_regexp_name(name);
    if let Some(pattern) = name.strip_prefix('~') {
        if name_regex(name).is_none() {
            return Err(format!("invalid regular expression: {pattern}"));
        }
    } else if !regexp {
        check_path_name(style, name).map_err(|e| format!("invalid path name '{name}': {e}"))?;
    }
    let source = str_field(full, "source");
    let on_demand = bool_field(full, "sourceOnDemand");
    let static_source = source != "publisher" && source != "redirect";
    if style == BodyStyle::Old && regexp && static_source && !on_demand {
        return Err(
            "a path with a regular expression (or path 'all') and a static source \
                    must have 'sourceOnDemand' set to true"
                .into(),
        );
    }
    if !str_field(full, "srtPublishPassphrase").is_empty() && source != "publisher" {
        return Err("'srtPublishPassphase' can only be used when source is 'publisher'".into());
    }
    if style == BodyStyle::Old && on_demand && source == "publisher" {
        return Err("'sourceOnDemand' is useless when source is 'publisher'".into());
    }
    if source != "redirect" && !str_field(full, "sourceRedirect").is_empty() {
        return Err("'sourceRedirect' is useless when source is not 'redirect'".into());
    }
    let scheme = source.split("://").next().unwrap_or("");
    let url_source = source.contains("://");
    match source {
        "publisher" => {}
        "redirect" => {
            if str_field(full, "sourceRedirect").is_empty() {
                return Err("source redirect must be filled".into());
            }
        }
        "rpiCamera" => {}
        _ if url_source && static_source_type(source).is_some() => {
            if scheme != "unix+mpegts" && scheme != "unix+rtp" {
                check_url(style, source)?;
            }
            let needs_port = matches!(scheme, "udp" | "udp+mpegts" | "udp+rtp");
            if needs_port && style == BodyStyle::New {
                let rest = source.split_once("://").map_or("", |(_, r)| r);
                let host = rest.split('/').next().unwrap_or("");
                if host.rsplit_once(':').is_none_or(|(_, p)| p.is_empty()) {
                    return Err(format!("'{source}' is missing the port"));
                }
            }
            if scheme.ends_with("+rtp") && str_field(full, "rtpSDP").is_empty() {
                return Err("`rtpSDP` was not provided".into());
            }
        }
        _ => return Err(format!("invalid source: '{source}'")),
    }
    if style == BodyStyle::New {
        if on_demand && source == "publisher" {
            return Err("'sourceOnDemand' is useless when source is 'publisher'".into());
        }
        if !on_demand && static_source && regexp {
            return Err(
                "a path with a regular expression (or path 'all_others') and a static \
                        source must have 'sourceOnDemand' set to true"
                    .into(),
            );
        }
        if bool_field(full, "alwaysAvailable") {
            if regexp {
                return Err("'alwaysAvailable' cannot be used in a path with a regular \
                            expression (or path 'all_others')"
                    .into());
            }
            if on_demand {
                return Err("'sourceOnDemand' is not compatible with 'alwaysAvailable'".into());
            }
            if !str_field(full, "runOnDemand").is_empty()
                || !str_field(full, "runOnUnDemand").is_empty()
            {
                return Err(
                    "'runOnDemand' and 'runOnUnDemand' cannot be used with 'alwaysAvailable'"
                        .into(),
                );
            }
            let tracks = full.get("alwaysAvailableTracks").and_then(Value::as_array);
            if str_field(full, "alwaysAvailableFile").is_empty()
                && tracks.is_none_or(|t| t.is_empty())
            {
                return Err("'alwaysAvailableTracks' must contain at least one track".into());
            }
        }
    }
    if let Some(f) = full.get("fallback").and_then(Value::as_str) {
        if !f.is_empty() && !f.starts_with('/') && !f.starts_with("rtsp") {
            return Err(format!("'{f}' is not a valid RTSP URL"));
        }
    }
    let record_path = str_field(full, "recordPath");
    if !record_path.contains("%path") {
        return Err("'recordPath' must contain %path".into());
    }
    let all_date = ["%Y", "%m", "%d", "%H", "%M", "%S"]
        .iter()
        .all(|f| record_path.contains(f));
    if !record_path.contains("%s") && !all_date {
        return Err("'recordPath' must contain either %s or %Y %m %d %H %M %S".into());
    }
    if playback && !record_path.contains("%f") {
        return Err("'recordPath' must contain %f".into());
    }
    let segment = dur_field(full, "recordSegmentDuration");
    if segment > 86_400_000_000_000 {
        return Err("maximum segment duration is 1 day".into());
    }
    let delete_after = dur_field(full, "recordDeleteAfter");
    if delete_after != 0 && delete_after < segment {
        return Err("'recordDeleteAfter' cannot be lower than 'recordSegmentDuration'".into());
    }
    if !str_field(full, "runOnInit").is_empty() && regexp {
        return Err(
            "a path with a regular expression (or path 'all_others') does not support \
                    option 'runOnInit'; use another path"
                .into(),
        );
    }
    let demand_cmd =
        !str_field(full, "runOnDemand").is_empty() || !str_field(full, "runOnUnDemand").is_empty();
    if demand_cmd && source != "publisher" {
        return Err(
            "'runOnDemand' and 'runOnUnDemand' can be used only when source is 'publisher'".into(),
        );
    }
    Ok(())
}

/// Fields that MediaMTX applies to a running path without closing it (`pathConfCanBeUpdated`).
/// v1.15 only hot-reloads `record`; later versions every `record*` field and `forward`.
pub fn hot_reloadable(style: BodyStyle, field: &str) -> bool {
    match style {
        BodyStyle::Old => field == "record",
        BodyStyle::New => matches!(
            field,
            "record"
                | "recordPath"
                | "recordFormat"
                | "recordPartDuration"
                | "recordMaxPartSize"
                | "recordSegmentDuration"
                | "recordDeleteAfter"
                | "forward"
        ),
    }
}

/// Whether changing a path's configuration from `old` to `new` (full forms) closes the path.
pub fn change_closes_path(style: BodyStyle, old: &Conf, new: &Conf) -> bool {
    let keys = old.keys().chain(new.keys());
    keys.filter(|k| !hot_reloadable(style, k))
        .any(|k| old.get(k) != new.get(k))
}

/// The configuration as `config/paths/get` returns it: every field, MediaMTX's read-back forms,
/// credentials redacted from v1.20.1 on.
pub fn render(style: BodyStyle, name: &str, conf: &Conf) -> Value {
    let mut m = full(style, conf);
    m.insert("name".into(), name.into());
    for (k, v) in m.iter_mut() {
        match kind(style, k) {
            Some(Kind::Dur) => {
                if let Some(d) = v.as_str().and_then(|s| parse_dur(s).ok()) {
                    *v = Value::from(format_dur(d));
                }
            }
            Some(Kind::Size) => {
                if let Some(n) = v.as_str().and_then(|s| parse_size(s).ok()) {
                    *v = Value::from(format_size(n));
                }
            }
            Some(Kind::Float) => {
                if let Some(f) = v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15) {
                    *v = Value::from(f as i64);
                }
            }
            _ => {}
        }
    }
    if style == BodyStyle::New {
        for k in ["publishPass", "readPass"] {
            if m.get(k)
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty())
            {
                m.insert(k.into(), "<redacted>".into());
            }
        }
    }
    Value::Object(m)
}

/// Parses a MediaMTX duration to nanoseconds: an optional leading `<n>d`, then Go's
/// `time.ParseDuration` syntax; `""` is zero. Errors are Go's.
pub fn parse_dur(s: &str) -> Result<i128, String> {
    let mut rest = s;
    let mut days: i128 = 0;
    let digits = rest
        .strip_prefix('-')
        .unwrap_or(rest)
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let sign_len = usize::from(rest.starts_with('-'));
    if digits > 0 && rest.as_bytes().get(sign_len + digits) == Some(&b'd') {
        let n: i128 = rest[..sign_len + digits]
            .parse()
            .map_err(|_| format!("time: invalid duration {s:?}"))?;
        days = n;
        rest = &rest[sign_len + digits + 1..];
    }
    let mut ns = if rest.is_empty() {
        0
    } else {
        go_parse_duration(rest)?
    };
    ns += days.abs() * 86_400_000_000_000;
    Ok(if days < 0 { -ns } else { ns })
}

/// Go's `time.ParseDuration`.
fn go_parse_duration(orig: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig;
    let neg = s.starts_with('-');
    if neg || s.starts_with('+') {
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let c = s.as_bytes()[0];
        if !(c == b'.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut num_len = int_len;
        let mut frac_len = 0;
        if s.as_bytes().get(int_len) == Some(&b'.') {
            frac_len = s[int_len + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            num_len = int_len + 1 + frac_len;
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let number: f64 = s[..num_len].trim_end_matches('.').parse().unwrap_or(0.0);
        s = &s[num_len..];
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let unit = &s[..unit_len];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {orig:?}")),
        };
        total += number * scale;
        if total > i64::MAX as f64 {
            return Err(invalid());
        }
        s = &s[unit_len..];
    }
    let ns = total.round() as i128;
    Ok(if neg { -ns } else { ns })
}

/// MediaMTX's duration form: `<n>d` for whole days, then Go's `Duration.String()` of the rest,
/// and `""` for zero.
pub fn format_dur(ns: i128) -> String {
    const DAY: i128 = 86_400_000_000_000;
    let mut out = String::new();
    if ns < 0 {
        out.push('-');
    }
    let u = ns.unsigned_abs();
    let (days, rest) = (u / DAY as u128, u % DAY as u128);
    if days > 0 {
        out.push_str(&format!("{days}d"));
    }
    if rest != 0 {
        out.push_str(&go_duration_string(rest as u64));
    }
    out
}

/// Go's `time.Duration.String()` of a non-negative duration.
pub fn go_duration_string(u: u64) -> String {
    // `frac` formats u / 10^prec's fraction without trailing zeros (and without the point when
    // it is zero), returning the text and the integer part.
    fn frac(u: u64, prec: u32) -> (String, u64) {
        let p = 10u64.pow(prec);
        let f = u % p;
        if f == 0 {
            return (String::new(), u / p);
        }
        let digits = format!("{f:0width$}", width = prec as usize);
        (format!(".{}", digits.trim_end_matches('0')), u / p)
    }
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (f, i) = frac(u, prec);
        return format!("{i}{f}{unit}");
    }
    let (f, secs) = frac(u, 9);
    let (s, mins) = (secs % 60, secs / 60);
    let mut out = format!("{s}{f}s");
    if mins > 0 {
        let (m, hours) = (mins % 60, mins / 60);
        out = format!("{m}m{out}");
        if hours > 0 {
            out = format!("{hours}h{out}");
        }
    }
    out
}

const SIZE_ERROR: &str = "byte quantity must be a positive integer with a unit of measurement \
                          like M, MB, MiB, G, GiB, or GB";

/// `bytefmt.ToBytes` (sizes such as `"50M"`, `"1.5GB"`, `"100KiB"`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim().to_ascii_uppercase();
    let i = s
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or(SIZE_ERROR)?;
    let (num, unit) = s.split_at(i);
    let n: f64 = num.parse().map_err(|_| SIZE_ERROR.to_string())?;
    if n < 0.0 {
        return Err(SIZE_ERROR.into());
    }
    let mult: f64 = match unit {
        "E" | "EB" | "EIB" => 1024f64.powi(6),
        "P" | "PB" | "PIB" => 1024f64.powi(5),
        "T" | "TB" | "TIB" => 1024f64.powi(4),
        "G" | "GB" | "GIB" => 1024f64.powi(3),
        "M" | "MB" | "MIB" => 1024f64.powi(2),
        "K" | "KB" | "KIB" => 1024.0,
        "B" => 1.0,
        _ => return Err(SIZE_ERROR.into()),
    };
    Ok((n * mult) as u64)
}

/// `bytefmt.ByteSize`: the largest unit, one decimal unless it is `.0`.
pub fn format_size(n: u64) -> String {
    let units = [("E", 6), ("P", 5), ("T", 4), ("G", 3), ("M", 2), ("K", 1)];
    for (u, p) in units {
        let m = 1024u64.pow(p);
        if n >= m {
            let v = format!("{:.1}", n as f64 / m as f64);
            return format!("{}{u}", v.strip_suffix(".0").unwrap_or(&v));
        }
    }
    if n == 0 {
        "0B".into()
    } else {
        format!("{n}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        format_dur(parse_dur(s).unwrap_or(-1))
    }

    #[test]
    fn durations_read_back_like_mediamtx() {
        assert_eq!(d("24h"), "1d");
        assert_eq!(d("0s"), "");
        assert_eq!(d(""), "");
        assert_eq!(d("10s"), "10s");
        assert_eq!(d("90m"), "1h30m0s");
        assert_eq!(d("1.5s"), "1.5s");
        assert_eq!(d("1500us"), "1.5ms");
        assert_eq!(d("25h"), "1d1h0m0s");
        assert_eq!(d("2d"), "2d");
        assert_eq!(d("1d30s"), "1d30s");
        assert_eq!(d("300ms"), "300ms");
        assert!(parse_dur("1x").is_err_and(|e| e.contains("unknown unit \"x\"")));
        assert!(parse_dur("10").is_err_and(|e| e.contains("missing unit")));
        assert!(parse_dur("d").is_err_and(|e| e.contains("invalid duration")));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50M"), Ok(50 * 1024 * 1024));
        assert_eq!(format_size(50 * 1024 * 1024), "50M");
        assert_eq!(format_size(1536), "1.5K");
        assert!(parse_size("50").is_err());
    }

    #[test]
    fn strict_decoding() {
        let n = BodyStyle::New;
        assert!(decode(n, br#"{"foo":1}"#).is_err_and(|e| e == "json: unknown field \"foo\""));
        assert!(decode(n, br#"{"record":"yes"}"#)
            .is_err_and(|e| e.contains("cannot unmarshal string into Go value of type bool")));
        assert!(decode(n, br#"{"recordPartDuration":"1x"}"#).is_err());
        assert!(decode(n, br#"{"recordFormat":"avi"}"#)
            .is_err_and(|e| e == "invalid record format 'avi'"));
        assert!(decode(n, b"").is_err_and(|e| e == "unexpected end of JSON input"));
        assert!(decode(n, b"[]").is_err());
        assert!(decode(n, br#"{"record":null}"#).is_ok_and(|m| m.is_empty()));
        // A field v1.15.0 did not have yet.
        assert!(decode(BodyStyle::Old, br#"{"alwaysAvailable":true}"#).is_err());
        assert!(decode(n, br#"{"alwaysAvailable":false}"#).is_ok());
    }

    #[test]
    fn validation() {
        let n = BodyStyle::New;
        let check = |body: &str| {
            let c = decode(n, body.as_bytes()).unwrap_or_default();
            validate(n, "camera0", &full(n, &c), false)
        };
        assert!(check(r#"{"source":"publisher","sourceOnDemand":true}"#)
            .is_err_and(|e| e.contains("useless")));
        assert!(check(r#"{"source":"rtsp://"}"#).is_err_and(|e| e.contains("not a valid URL")));
        assert!(check(r#"{"source":"rtsp://h:x/"}"#).is_err());
        assert!(check(r#"{"source":"ftp://h/"}"#).is_err_and(|e| e.contains("invalid source")));
        assert!(check(r#"{"source":"rtsp://10.0.0.1/x","sourceOnDemand":true}"#).is_ok());
        assert!(check(r#"{"source":"rtsp://u@10.0.0.1/x"}"#).is_err());
        assert!(check(r#"{"recordSegmentDuration":"25h"}"#).is_err());
        assert!(check(r#"{"recordSegmentDuration":"24h","recordDeleteAfter":"0s"}"#).is_ok());
        assert!(check(r#"{"source":"rtsp://h/x","runOnDemand":"x"}"#).is_err());
        assert!(check(r#"{"recordPath":"/r/%Y"}"#).is_err());
        let c = Conf::new();
        assert!(validate(n, "a b", &full(n, &c), false).is_err());
        assert!(validate(n, "a/../b", &full(n, &c), false).is_err());
        assert!(validate(BodyStyle::Old, "a:b", &full(BodyStyle::Old, &c), false).is_ok());
    }

    #[test]
    fn path_conf_lookup() {
        let mut confs = BTreeMap::new();
        confs.insert("cam".to_string(), Conf::new());
        confs.insert("all_others".to_string(), Conf::new());
        confs.insert("~^live/(.+)$".to_string(), Conf::new());
        let n = BodyStyle::New;
        assert_eq!(find_path_conf(n, &confs, "cam").map(|r| r.0), Ok("cam"));
        let (k, g) = find_path_conf(n, &confs, "live/x").unwrap_or(("", vec![]));
        assert_eq!((k, g), ("~^live/(.+)$", vec!["live/x".into(), "x".into()]));
        assert_eq!(
            find_path_conf(n, &confs, "z").map(|r| r.0),
            Ok("all_others")
        );
        confs.remove("all_others");
        assert!(find_path_conf(n, &confs, "z").is_err_and(|e| e.contains("not configured")));
    }
}
