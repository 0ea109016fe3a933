//! The v3 API routes: what each answers, with MediaMTX's status codes and (Old or New) bodies.

use serde_json::{json, Value};

use crate::conf;
use crate::recorder::Recordings;
use crate::state::State;
use crate::BodyStyle;

/// An HTTP answer: status, content type, body.
pub type Answer = (u16, Option<&'static str>, Vec<u8>);

const JSON: Option<&str> = Some("application/json; charset=utf-8");

fn ok(st: &State) -> Answer {
    match st.style {
        BodyStyle::Old => (200, None, Vec::new()),
        BodyStyle::New => (200, JSON, br#"{"status":"ok"}"#.to_vec()),
    }
}

fn error(st: &State, code: u16, text: &str) -> Answer {
    let body = match st.style {
        BodyStyle::Old => json!({"error": text}),
        BodyStyle::New => json!({"status": "error", "error": text}),
    };
    (code, JSON, body.to_string().into_bytes())
}

fn data(v: Value) -> Answer {
    (200, JSON, v.to_string().into_bytes())
}

/// A source the test told the double to refuse.
fn refused(st: &State, conf: &serde_json::Map<String, Value>) -> Option<String> {
    let src = conf.get("source")?.as_str()?;
    st.refused_sources
        .iter()
        .any(|p| src.contains(p.as_str()))
        .then(|| format!("invalid source: '{src}'"))
}

/// gin's answer for a route that does not exist.
pub fn no_route() -> Answer {
    (404, Some("text/plain"), b"404 page not found".to_vec())
}

fn page(items: Vec<Value>, query: &str) -> Value {
    let param = |k: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(a, _)| *a == k)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let per = param("itemsPerPage").unwrap_or(100).max(1);
    let p = param("page").unwrap_or(0);
    let count = items.len();
    let pages = count.div_ceil(per);
    let items: Vec<Value> = items.into_iter().skip(p * per).take(per).collect();
    json!({"itemCount": count, "pageCount": pages, "items": items})
}

/// Answers one API request. `write` tells the caller whether the config changed (for the
/// on-demand supervisor).
pub fn handle(
    st: &mut State,
    recs: &mut Recordings,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> Answer {
    let seg = |prefix: &str| path.strip_prefix(prefix).filter(|n| !n.is_empty());
    match (method, path) {
        ("GET", "/v3/info") => match st.style {
            BodyStyle::Old => no_route(),
            BodyStyle::New => data(json!({"version": st.version, "started": st.started})),
        },
        ("GET", "/v3/config/global/get") => data(json!({
            "logLevel": "info", "api": true, "apiAddress": ":9997", "metrics": false,
            "playback": false, "playbackAddress": ":9996", "rtsp": true,
            "rtspAddress": format!(":{}", st.rtsp_port), "rtspTransports": ["udp", "multicast", "tcp"],
            "rtmp": false, "hls": true, "hlsAddress": ":8888", "webrtc": true,
            "webrtcAddress": ":8889", "srt": false, "readTimeout": "10s", "writeTimeout": "10s",
        })),
        ("GET", "/v3/config/paths/list") => {
            let items = st
                .visible_names()
                .into_iter()
                .filter_map(|n| st.visible(&n).map(|c| conf::render(&n, c)))
                .collect();
            data(page(items, query))
        }
        ("GET", "/v3/paths/list") => {
            let mut names: Vec<String> = st.confs.keys().cloned().collect();
            names.extend(st.publishers.keys().cloned());
            names.sort();
            names.dedup();
            let items = names.iter().filter_map(|n| st.live(n)).collect();
            data(page(items, query))
        }
        ("GET", "/v3/recordings/list") => {
            let mut names: Vec<&String> = recs.segments.keys().collect();
            names.sort();
            let items = names
                .into_iter()
                .map(|n| (n, recs.list(n)))
                .filter(|(_, l)| !l.is_empty())
                .map(|(n, l)| segments_json(n, &l))
                .collect();
            data(page(items, query))
        }
        ("DELETE", "/v3/recordings/deletesegment") => {
            let (name, start) = (query_param(query, "path"), query_param(query, "start"));
            match (name, start) {
                (Some(n), Some(s)) if recs.delete(&n, &s) => ok(st),
                (Some(_), Some(_)) => error(st, 404, "segment not found"),
                _ => error(st, 400, "invalid query"),
            }
        }
        _ => {
            if let Some(name) = seg("/v3/config/paths/get/").filter(|_| method == "GET") {
                return match st.visible(name) {
                    Some(c) => data(conf::render(name, c)),
                    None => error(st, 404, "path configuration not found"),
                };
            }
            if let Some(name) = seg("/v3/paths/get/").filter(|_| method == "GET") {
                return match st.live(name) {
                    Some(v) => data(v),
                    None => error(st, 404, "path not found"),
                };
            }
            if let Some(name) = seg("/v3/recordings/get/").filter(|_| method == "GET") {
                let l = recs.list(name);
                return if !l.is_empty() {
                    data(segments_json(name, &l))
                } else if st.newest(name).is_some() {
                    error(st, 404, "recording not found")
                } else {
                    error(st, 400, "path not found")
                };
            }
            if let Some(name) = seg("/v3/config/paths/add/").filter(|_| method == "POST") {
                let new = match conf::decode(body) {
                    Ok(m) => m,
                    Err(e) => return error(st, 400, &e),
                };
                if st.newest(name).is_some() {
                    return error(st, 400, "path already exists");
                }
                if let Err(e) = conf::validate(&new) {
                    return error(st, 400, &e);
                }
                if let Some(e) = refused(st, &new) {
                    return error(st, 400, &e);
                }
                st.write(name, Some(Value::Object(new)));
                return ok(st);
            }
            if let Some(name) = seg("/v3/config/paths/patch/").filter(|_| method == "PATCH") {
                let patch = match conf::decode(body) {
                    Ok(m) => m,
                    Err(e) => return error(st, 400, &e),
                };
                let Some(cur) = st.newest(name).cloned() else {
                    return error(st, 404, "path configuration not found");
                };
                let mut merged = cur.as_object().cloned().unwrap_or_default();
                for (k, v) in patch {
                    merged.insert(k, v);
                }
                if let Err(e) = conf::validate(&merged) {
                    return error(st, 400, &e);
                }
                st.write(name, Some(Value::Object(merged)));
                return ok(st);
            }
            if let Some(name) = seg("/v3/config/paths/replace/").filter(|_| method == "POST") {
                let new = match conf::decode(body) {
                    Ok(m) => m,
                    Err(e) => return error(st, 400, &e),
                };
                if let Err(e) = conf::validate(&new) {
                    return error(st, 400, &e);
                }
                st.write(name, Some(Value::Object(new)));
                return ok(st);
            }
            if let Some(name) = seg("/v3/config/paths/delete/").filter(|_| method == "DELETE") {
                if st.newest(name).is_none() {
                    return error(st, 404, "path configuration not found");
                }
                st.write(name, None);
                st.publishers.remove(name);
                return ok(st);
            }
            no_route()
        }
    }
}

fn segments_json(name: &str, l: &[crate::recorder::Segment]) -> Value {
    let segs: Vec<Value> = l.iter().map(|s| json!({"start": s.start})).collect();
    json!({"name": name, "segments": segs})
}

/// A query parameter, percent-decoded.
fn query_param(query: &str, key: &str) -> Option<String> {
    let raw = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)?
        .1;
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let v = u8::from_str_radix(raw.get(i + 1..i + 3)?, 16).ok()?;
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
