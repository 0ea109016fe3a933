//! The v3 API routes, answering as MediaMTX's `internal/api` does: the same status codes and
//! error texts, with v1.15.0 bodies (`Old`: empty 200, `{"error":…}`, no `/v3/info`) or current
//! ones (`New`: `{"status":"ok"}`, `{"status":"error","error":…}`).
//!
//! Routes follow gin's rules: an unknown route (or a known route with another method) is the
//! plain-text `404 page not found`; `{name}` parameters are gin catch-alls (`*name`), so names
//! may contain slashes, and an empty name is a 400 `invalid name`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::clock::WallTime;
use crate::conf::{self, Conf};
use crate::recorder;
use crate::state::State;
use crate::BodyStyle;

/// An HTTP answer: status, content type, body.
pub type Answer = (u16, Option<&'static str>, Vec<u8>);

/// gin's JSON content type.
pub const JSON: Option<&str> = Some("application/json; charset=utf-8");

fn ok(st: &State) -> Answer {
    match st.style {
        BodyStyle::Old => (200, None, Vec::new()),
        BodyStyle::New => (200, JSON, br#"{"status":"ok"}"#.to_vec()),
    }
}

/// A JSON error in the style's shape.
pub fn error(style: BodyStyle, code: u16, text: &str) -> Answer {
    let body = match style {
        BodyStyle::Old => json!({"error": text}),
        BodyStyle::New => json!({"status": "error", "error": text}),
    };
    (code, JSON, body.to_string().into_bytes())
}

fn data(v: Value) -> Answer {
    (200, JSON, v.to_string().into_bytes())
}

/// gin's answer for a route that does not exist.
pub fn no_route() -> Answer {
    (404, Some("text/plain"), b"404 page not found".to_vec())
}

/// Percent-decodes a URL component (`plus_space`: `+` is a space, as in queries).
pub fn percent_decode(raw: &str, plus_space: bool) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let v = u8::from_str_radix(raw.get(i + 1..i + 3)?, 16).ok()?;
                out.push(v);
                i += 3;
            }
            b'+' if plus_space => {
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

/// A query parameter (`ctx.Query`): the first value, decoded; `""` when absent.
fn query_param(query: &str, key: &str) -> String {
    query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true)? == key).then(|| percent_decode(v, true))?
        })
        .next()
        .unwrap_or_default()
}

/// Go's `strconv.ParseUint(s, 10, 31)`.
fn parse_u31(s: &str) -> Result<usize, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    match s.parse::<u64>() {
        Ok(v) if v < (1 << 31) => Ok(v as usize),
        _ => Err(format!(
            "strconv.ParseUint: parsing {s:?}: value out of range"
        )),
    }
}

/// MediaMTX's `paginate`: `itemsPerPage` (default 100, not 0) and `page` (default 0).
fn paginate(items: Vec<Value>, query: &str) -> Result<Value, String> {
    let per = match query_param(query, "itemsPerPage").as_str() {
        "" => 100,
        s => match parse_u31(s)? {
            0 => return Err("invalid items per page".into()),
            n => n,
        },
    };
    let page = match query_param(query, "page").as_str() {
        "" => 0,
        s => parse_u31(s)?,
    };
    let count = items.len();
    let pages = count.div_ceil(per);
    let items: Vec<Value> = items.into_iter().skip(page * per).take(per).collect();
    Ok(json!({"itemCount": count, "pageCount": pages, "items": items}))
}

/// The `*name` parameter after `prefix`: `None` when the route does not match, `Some(Err)` for
/// gin's empty name.
fn name_after(path: &str, prefix: &str) -> Option<Result<String, ()>> {
    let rest = path.strip_prefix(prefix)?;
    let rest = rest.strip_prefix('/')?;
    Some(match percent_decode(rest, false) {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(()),
    })
}

/// Answers one API request (`path` without the query).
pub fn handle(st: &mut State, method: &str, path: &str, query: &str, body: &[u8]) -> Answer {
    let style = st.style;
    let fail = |code: u16, text: &str| error(style, code, text);
    match (method, path) {
        ("GET", "/v3/info") if style == BodyStyle::New => {
            return data(json!({"version": st.version, "started": st.started}));
        }
        ("GET", "/v3/config/global/get") => {
            return data(conf::global(style, st.api_port, st.rtsp_port));
        }
        ("GET", "/v3/config/paths/list") => {
            let items = st
                .visible_all()
                .iter()
                .map(|(n, c)| conf::render(style, n, c))
                .collect();
            return match paginate(items, query) {
                Ok(v) => data(v),
                Err(e) => fail(400, &e),
            };
        }
        ("GET", "/v3/paths/list") => {
            let items = st.paths.keys().filter_map(|n| st.live(n)).collect();
            return match paginate(items, query) {
                Ok(v) => data(v),
                Err(e) => fail(400, &e),
            };
        }
        ("GET", "/v3/recordings/list") => {
            let applied = st.applied().clone();
            let names = recorder::paths_with_segments(style, &applied);
            let items = names
                .iter()
                .map(|n| Value::String(n.clone()))
                .collect::<Vec<_>>();
            return match paginate(items, query) {
                Ok(v) => {
                    let mut v = v;
                    let page: Vec<Value> = v["items"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|n| recording(style, &applied, n))
                        .collect();
                    v["items"] = Value::Array(page);
                    data(v)
                }
                Err(e) => fail(400, &e),
            };
        }
        ("DELETE", "/v3/recordings/deletesegment") => return delete_segment(st, query),
        _ => {}
    }
    type Route = fn(&mut State, &str, &[u8]) -> Answer;
    let routes: [(&str, &str, Route); 7] = [
        ("GET", "/v3/config/paths/get", config_get),
        ("POST", "/v3/config/paths/add", config_add),
        ("PATCH", "/v3/config/paths/patch", config_patch),
        ("POST", "/v3/config/paths/replace", config_replace),
        ("DELETE", "/v3/config/paths/delete", config_delete),
        ("GET", "/v3/paths/get", paths_get),
        ("GET", "/v3/recordings/get", recordings_get),
    ];
    for (m, prefix, route) in routes {
        if m != method {
            continue;
        }
        match name_after(path, prefix) {
            None => continue,
            Some(Err(())) => return fail(400, "invalid name"),
            Some(Ok(name)) => return route(st, &name, body),
        }
    }
    no_route()
}

fn config_get(st: &mut State, name: &str, _: &[u8]) -> Answer {
    match st.visible(name) {
        Some(c) => data(conf::render(st.style, name, c)),
        None => error(st.style, 404, "path configuration not found"),
    }
}

/// Validates `confs` with `name` set to `new`, as MediaMTX validates the whole new config.
fn check_write(st: &State, name: &str, new: &Conf) -> Result<(), String> {
    let mut all = st.newest_all();
    all.insert(name.to_string(), new.clone());
    let aliases = all
        .keys()
        .filter(|k| ["all", "all_others", "~^.*$"].contains(&k.as_str()))
        .count();
    if aliases > 1 {
        return Err("all_others, all and '~^.*$' are aliases".into());
    }
    for (k, c) in &all {
        conf::validate(st.style, k, &conf::full(st.style, c), false)?;
    }
    if let Some(src) = new.get("source").and_then(Value::as_str) {
        if st.refused_sources.iter().any(|p| src.contains(p.as_str())) {
            return Err(format!("invalid source: '{src}'"));
        }
    }
    Ok(())
}

fn config_add(st: &mut State, name: &str, body: &[u8]) -> Answer {
    let new = match conf::decode(st.style, body) {
        Ok(m) => m,
        Err(e) => return error(st.style, 400, &e),
    };
    if st.newest(name).is_some() {
        return error(st.style, 400, "path already exists");
    }
    if let Err(e) = check_write(st, name, &new) {
        return error(st.style, 400, &e);
    }
    st.write(name, Some(new));
    ok(st)
}

fn config_patch(st: &mut State, name: &str, body: &[u8]) -> Answer {
    let patch = match conf::decode(st.style, body) {
        Ok(m) => m,
        Err(e) => return error(st.style, 400, &e),
    };
    let Some(mut merged) = st.newest(name).cloned() else {
        return error(st.style, 404, "path not found");
    };
    for (k, v) in patch {
        merged.insert(k, v);
    }
    if let Err(e) = check_write(st, name, &merged) {
        return error(st.style, 400, &e);
    }
    st.write(name, Some(merged));
    ok(st)
}

fn config_replace(st: &mut State, name: &str, body: &[u8]) -> Answer {
    let new = match conf::decode(st.style, body) {
        Ok(m) => m,
        Err(e) => return error(st.style, 400, &e),
    };
    if let Err(e) = check_write(st, name, &new) {
        return error(st.style, 400, &e);
    }
    st.write(name, Some(new));
    ok(st)
}

fn config_delete(st: &mut State, name: &str, _: &[u8]) -> Answer {
    if st.newest(name).is_none() {
        return error(st.style, 404, "path not found");
    }
    st.write(name, None);
    ok(st)
}

fn paths_get(st: &mut State, name: &str, _: &[u8]) -> Answer {
    match st.live(name) {
        Some(v) => data(v),
        None => error(st.style, 404, "path not found"),
    }
}

fn recording(style: BodyStyle, applied: &BTreeMap<String, Conf>, name: &str) -> Value {
    let segs: Vec<Value> = conf::find_path_conf(style, applied, name)
        .ok()
        .map(|(k, _)| recorder::segments(&conf::full(style, &applied[k]), name))
        .unwrap_or_default()
        .iter()
        .map(|(t, _)| json!({"start": t.rfc3339_nano()}))
        .collect();
    json!({"name": name, "segments": segs})
}

fn recordings_get(st: &mut State, name: &str, _: &[u8]) -> Answer {
    let applied = st.applied().clone();
    if let Err(e) = conf::find_path_conf(st.style, &applied, name) {
        return error(st.style, 400, &e);
    }
    data(recording(st.style, &applied, name))
}

fn delete_segment(st: &mut State, query: &str) -> Answer {
    let style = st.style;
    let name = query_param(query, "path");
    let raw_start = query_param(query, "start");
    let Some(start) = WallTime::parse_rfc3339(&raw_start) else {
        let e = format!(
            "invalid 'start' parameter: parsing time {raw_start:?} as \
             \"2006-01-02T15:04:05Z07:00\": cannot parse {raw_start:?} as \"2006\""
        );
        return error(style, 400, &e);
    };
    let applied = st.applied().clone();
    let conf_name = match conf::find_path_conf(style, &applied, &name) {
        Ok((k, _)) => k.to_string(),
        Err(e) => return error(style, 400, &e),
    };
    let full = conf::full(style, &applied[&conf_name]);
    let file = recorder::segment_file(&full, &name, &start);
    if style == BodyStyle::New {
        let base = recorder::common_path(conf::str_field(&full, "recordPath"));
        if !recorder::inside(Path::new(&base), Path::new(&file)) {
            return error(style, 400, "path escapes base directory");
        }
    }
    match std::fs::remove_file(&file) {
        Ok(()) => ok(st),
        Err(e) => {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                _ => e.to_string(),
            };
            error(style, 400, &format!("remove {file}: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_like_mediamtx() {
        let items: Vec<Value> = (0..5).map(Value::from).collect();
        let p = paginate(items.clone(), "itemsPerPage=2&page=2").unwrap_or_default();
        assert_eq!(p, json!({"itemCount": 5, "pageCount": 3, "items": [4]}));
        let p = paginate(items.clone(), "page=9").unwrap_or_default();
        assert_eq!(p, json!({"itemCount": 5, "pageCount": 1, "items": []}));
        assert!(paginate(items.clone(), "itemsPerPage=0").is_err());
        assert!(paginate(items, "page=x").is_err_and(|e| e.contains("invalid syntax")));
        let p = paginate(vec![], "").unwrap_or_default();
        assert_eq!(p, json!({"itemCount": 0, "pageCount": 0, "items": []}));
    }

    #[test]
    fn names_and_queries() {
        assert_eq!(
            name_after("/v3/paths/get/a%2Fb", "/v3/paths/get"),
            Some(Ok("a/b".into()))
        );
        assert_eq!(name_after("/v3/paths/get/", "/v3/paths/get"), Some(Err(())));
        assert_eq!(name_after("/v3/paths/getx", "/v3/paths/get"), None);
        assert_eq!(
            query_param("path=a&start=2026-01-01T00%3A00%3A00%2B01%3A00", "start"),
            "2026-01-01T00:00:00+01:00"
        );
    }
}
