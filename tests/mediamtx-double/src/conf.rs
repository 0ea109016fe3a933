//! Path configurations as MediaMTX handles them: strict decoding of request bodies (an unknown
//! field or a wrong type is a 400), validation of `source`, defaults for every field, and Go
//! duration read-back (`"24h"` comes back as `"1d"`, zero as `""`).

use serde_json::{json, Map, Value};

/// The type of each `PathConf` field the double knows (a subset of MediaMTX's 115; all the
/// fields the server sends are here, plus some an operator would set by hand).
const FIELDS: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("source", Kind::Str),
    ("sourceFingerprint", Kind::Str),
    ("sourceOnDemand", Kind::Bool),
    ("sourceOnDemandStartTimeout", Kind::Dur),
    ("sourceOnDemandCloseAfter", Kind::Dur),
    ("maxReaders", Kind::Int),
    ("fallback", Kind::Str),
    ("useAbsoluteTimestamp", Kind::Bool),
    ("record", Kind::Bool),
    ("recordPath", Kind::Str),
    ("recordFormat", Kind::Str),
    ("recordPartDuration", Kind::Dur),
    ("recordMaxPartSize", Kind::Str),
    ("recordSegmentDuration", Kind::Dur),
    ("recordDeleteAfter", Kind::Dur),
    ("overridePublisher", Kind::Bool),
    ("publishUser", Kind::Str),
    ("publishPass", Kind::Str),
    ("readUser", Kind::Str),
    ("readPass", Kind::Str),
    ("rtspTransport", Kind::Str),
    ("runOnInit", Kind::Str),
    ("runOnInitRestart", Kind::Bool),
    ("runOnDemand", Kind::Str),
    ("runOnDemandRestart", Kind::Bool),
    ("runOnDemandStartTimeout", Kind::Dur),
    ("runOnDemandCloseAfter", Kind::Dur),
    ("runOnUnDemand", Kind::Str),
    ("runOnReady", Kind::Str),
    ("runOnReadyRestart", Kind::Bool),
    ("runOnNotReady", Kind::Str),
    ("runOnRead", Kind::Str),
    ("runOnReadRestart", Kind::Bool),
    ("runOnUnread", Kind::Str),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Str,
    Bool,
    Int,
    Dur,
}

fn kind(field: &str) -> Option<Kind> {
    FIELDS.iter().find(|(n, _)| *n == field).map(|(_, k)| *k)
}

/// MediaMTX's defaults for a new path.
pub fn defaults(name: &str) -> Map<String, Value> {
    let v = json!({
        "name": name, "source": "publisher", "sourceFingerprint": "", "sourceOnDemand": false,
        "sourceOnDemandStartTimeout": "10s", "sourceOnDemandCloseAfter": "10s", "maxReaders": 0,
        "fallback": "", "useAbsoluteTimestamp": false, "record": false,
        "recordPath": "./recordings/%path/%Y-%m-%d_%H-%M-%S-%f", "recordFormat": "fmp4",
        "recordPartDuration": "1s", "recordMaxPartSize": "50M", "recordSegmentDuration": "1h",
        "recordDeleteAfter": "1d", "overridePublisher": true, "publishUser": "",
        "publishPass": "", "readUser": "", "readPass": "", "rtspTransport": "automatic",
        "runOnInit": "", "runOnInitRestart": false, "runOnDemand": "",
        "runOnDemandRestart": false, "runOnDemandStartTimeout": "10s",
        "runOnDemandCloseAfter": "10s", "runOnUnDemand": "", "runOnReady": "",
        "runOnReadyRestart": false, "runOnNotReady": "", "runOnRead": "",
        "runOnReadRestart": false, "runOnUnread": ""
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Decodes a request body strictly, as MediaMTX does: a JSON object of known fields with the
/// right types. Returns MediaMTX's error text on failure.
pub fn decode(body: &[u8]) -> Result<Map<String, Value>, String> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?
    };
    let Value::Object(m) = v else {
        return Err("json: cannot unmarshal into Go value of type conf.OptionalPath".into());
    };
    for (k, val) in &m {
        let Some(kind) = kind(k) else {
            return Err(format!("json: unknown field \"{k}\""));
        };
        let ok = match kind {
            Kind::Str => val.is_string(),
            Kind::Bool => val.is_boolean(),
            Kind::Int => val.is_u64() || val.is_i64(),
            Kind::Dur => val.as_str().is_some_and(|s| parse_dur(s).is_some()),
        };
        if !ok {
            return Err(format!("json: invalid value for field \"{k}\""));
        }
    }
    Ok(m)
}

/// Validates a complete configuration the way MediaMTX does when it loads it.
pub fn validate(conf: &Map<String, Value>) -> Result<(), String> {
    let source = conf
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("publisher");
    let on_demand = conf
        .get("sourceOnDemand")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if source == "publisher" {
        if on_demand {
            return Err("'sourceOnDemand' is useless when source is 'publisher'".into());
        }
    } else if !valid_source_url(source) {
        return Err(format!("invalid source: '{source}'"));
    }
    if let Some(p) = conf.get("recordPath").and_then(Value::as_str) {
        if conf.get("record").and_then(Value::as_bool) == Some(true) && !p.contains("%path") {
            return Err("'recordPath' must contain %path".into());
        }
    }
    Ok(())
}

fn valid_source_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let known = matches!(
        scheme,
        "rtsp" | "rtsps" | "rtmp" | "rtmps" | "http" | "https" | "udp" | "srt" | "whep" | "wheps"
    );
    let host = rest.split('/').next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    // Go's url.Parse refuses a port that is not a number below 65536.
    let port_ok = match host.rsplit_once(':') {
        Some((_, p)) if !host.ends_with(']') => p.parse::<u16>().is_ok(),
        _ => true,
    };
    known && !host.is_empty() && !host.starts_with(':') && port_ok
}

/// The configuration as GET returns it: defaults filled in, durations in MediaMTX's read-back
/// form.
pub fn render(name: &str, conf: &Value) -> Value {
    let mut m = defaults(name);
    if let Some(c) = conf.as_object() {
        for (k, v) in c {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert("name".into(), name.into());
    for (k, v) in m.iter_mut() {
        if kind(k) == Some(Kind::Dur) {
            if let Some(d) = v.as_str().and_then(parse_dur) {
                *v = Value::from(format_dur(d));
            }
        }
    }
    Value::Object(m)
}

/// Parses a Go duration to nanoseconds (`""` = 0; `d` = days, MediaMTX's extension).
pub fn parse_dur(s: &str) -> Option<u128> {
    if s.is_empty() || s == "0" {
        return Some(0);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let (num, after) = rest.split_at(n);
        let u = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(u);
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            _ => return None,
        };
        let x: f64 = num.parse().ok()?;
        total += (x * scale) as u128;
        rest = next;
    }
    Some(total)
}

/// Formats nanoseconds as MediaMTX prints durations: whole days as `"<n>d"`, zero as `""`,
/// otherwise Go's `time.Duration.String()` form (`"1h30m0s"`, `"10s"`, `"1.5s"`, `"300ms"`).
pub fn format_dur(ns: u128) -> String {
    if ns == 0 {
        return String::new();
    }
    const DAY: u128 = 86_400_000_000_000;
    if ns % DAY == 0 {
        return format!("{}d", ns / DAY);
    }
    if ns < 1_000_000_000 {
        return if ns % 1_000_000 == 0 {
            format!("{}ms", ns / 1_000_000)
        } else {
            format!("{ns}ns")
        };
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s_ns = ns % 60_000_000_000;
    let secs = if s_ns % 1_000_000_000 == 0 {
        format!("{}s", s_ns / 1_000_000_000)
    } else {
        let s = format!("{:.9}", s_ns as f64 / 1e9);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    };
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_back_like_mediamtx() {
        assert_eq!(format_dur(parse_dur("24h").unwrap_or(0)), "1d");
        assert_eq!(format_dur(parse_dur("0s").unwrap_or(1)), "");
        assert_eq!(format_dur(parse_dur("10s").unwrap_or(0)), "10s");
        assert_eq!(format_dur(parse_dur("90m").unwrap_or(0)), "1h30m0s");
        assert_eq!(format_dur(parse_dur("1.5s").unwrap_or(0)), "1.5s");
    }

    #[test]
    fn strict_decoding() {
        assert!(decode(br#"{"foo":1}"#).is_err_and(|e| e.contains("unknown field")));
        assert!(decode(br#"{"record":"yes"}"#).is_err());
        assert!(decode(br#"{"recordPartDuration":"1x"}"#).is_err());
        assert!(decode(br#"{"source":"publisher","record":true}"#).is_ok());
        let bad = decode(br#"{"source":"publisher","sourceOnDemand":true}"#).unwrap_or_default();
        assert!(validate(&bad).is_err());
        let bad = decode(br#"{"source":"rtsp://"}"#).unwrap_or_default();
        assert!(validate(&bad).is_err_and(|e| e.contains("invalid source")));
        let ok =
            decode(br#"{"source":"rtsp://10.0.0.1/x","sourceOnDemand":true}"#).unwrap_or_default();
        assert!(validate(&ok).is_ok());
    }
}
