//! Checks HTTP exchanges against MediaMTX's own OpenAPI 3.0 document (`spec/openapi.yaml`).
//!
//! The schemas are used as JSON Schema with the two corrections the spec's README names:
//! `nullable: true` next to `allOf` accepts `null`, and `PathTrackCodecProps`' `oneOf` is read as
//! `anyOf` (its H264 and H265 shapes are identical). The spec marks nothing required and allows
//! unknown fields, so the checks are about routes, methods, types and enums.
//!
//! Rules for responses (`validate_response`), in order:
//! 1. gin's plain-text `404 page not found` is accepted for any route, listed or not: it is how
//!    MediaMTX answers a route it does not have (`/v3/info` before v1.15.2, disabled servers).
//! 2. Otherwise the route and method must be in the spec.
//! 3. The status's response entry is used, else `default`. A status the operation does not list
//!    (401 is never listed) must have an empty body or an `Error` body.
//! 4. An entry without JSON content accepts any body.
//! 5. An empty 2xx body is accepted only where the schema is `OK`: MediaMTX before v1.15.5
//!    answers writes with an empty 200 (integration doc §7). Everywhere else the body must be
//!    JSON that validates against the schema.
//!
//! Requests (`validate_request`): the route and method must exist, required query parameters
//! must be present, and the body must be JSON valid for the request schema, or empty where the
//! operation takes no body.

use std::path::Path;

use serde_json::Value;

/// A loaded spec.
pub struct Spec {
    doc: Value,
}

impl Spec {
    /// Loads the YAML spec.
    pub fn load(path: &Path) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let doc: Value = serde_yaml_ng::from_str(&text).map_err(|e| format!("YAML: {e}"))?;
        if doc.get("paths").is_none() {
            return Err("no paths in the spec".into());
        }
        Ok(Spec { doc })
    }

    fn operation(&self, method: &str, path_and_query: &str) -> Result<&Value, String> {
        let path = path_and_query.split('?').next().unwrap_or("");
        let paths = self
            .doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("no paths")?;
        let item = paths
            .iter()
            .find(|(template, _)| matches(template, path))
            .map(|(_, v)| v)
            .ok_or_else(|| format!("route {path} is not in the spec"))?;
        item.get(method.to_ascii_lowercase())
            .ok_or_else(|| format!("{method} is not allowed on {path}"))
    }

    /// Validates a request the server sent.
    pub fn validate_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<(), String> {
        let op = self.operation(method, path_and_query)?;
        let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
        for p in op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let is_query = p.get("in").and_then(Value::as_str) == Some("query");
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if required
                && is_query
                && !query
                    .split('&')
                    .any(|kv| kv.split('=').next() == Some(name))
            {
                return Err(format!("query parameter {name} is required"));
            }
        }
        let schema = op.pointer("/requestBody/content/application~1json/schema");
        match schema {
            None if body.is_empty() => Ok(()),
            None => Err("this operation takes no body".into()),
            Some(s) => {
                let v: Value =
                    serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
                self.check(s, &v, "body")
            }
        }
    }

    /// Validates a response the double (or MediaMTX) gave.
    pub fn validate_response(
        &self,
        method: &str,
        path_and_query: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), String> {
        if status == 404 && body == b"404 page not found" {
            return Ok(());
        }
        let op = self.operation(method, path_and_query)?;
        let responses = op.get("responses").ok_or("operation has no responses")?;
        let resp = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"));
        let Some(resp) = resp else {
            if body.is_empty() {
                return Ok(());
            }
            let v: Value =
                serde_json::from_slice(body).map_err(|e| format!("{status} body: {e}"))?;
            let err = serde_json::json!({"$ref": "#/components/schemas/Error"});
            return self.check(&err, &v, "body");
        };
        let schema = resp.pointer("/content/application~1json/schema");
        let ok_schema =
            |s: &Value| s.get("$ref").and_then(Value::as_str) == Some("#/components/schemas/OK");
        match schema {
            None => Ok(()),
            Some(s) if body.is_empty() && (200..300).contains(&status) && ok_schema(s) => Ok(()),
            Some(s) => {
                let v: Value =
                    serde_json::from_slice(body).map_err(|e| format!("{status} body: {e}"))?;
                self.check(s, &v, "body")
            }
        }
    }

    fn resolve<'a>(&'a self, r: &str) -> Result<&'a Value, String> {
        let ptr = r
            .strip_prefix('#')
            .ok_or_else(|| format!("external $ref {r}"))?;
        self.doc
            .pointer(ptr)
            .ok_or_else(|| format!("dangling $ref {r}"))
    }

    fn check(&self, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let target = self.resolve(r)?;
            if r.ends_with("/PathTrackCodecProps") {
                return self.any_of(target.get("oneOf").unwrap_or(target), v, at);
            }
            return self.check(target, v, at);
        }
        if v.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.check(s, v, at)?;
            }
        }
        if let Some(any) = schema.get("anyOf") {
            self.any_of(any, v, at)?;
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let n = one.iter().filter(|s| self.check(s, v, at).is_ok()).count();
            if n != 1 {
                return Err(format!("{at}: matches {n} of the oneOf shapes"));
            }
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                return Err(format!(
                    "{at}: {v} is not one of {}",
                    Value::Array(e.clone())
                ));
            }
        }
        let Some(t) = schema.get("type").and_then(Value::as_str) else {
            return Ok(());
        };
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: expected {t}, got {v}"));
        }
        if let (Some(props), Some(obj)) = (
            schema.get("properties").and_then(Value::as_object),
            v.as_object(),
        ) {
            for (k, val) in obj {
                match props.get(k) {
                    Some(s) => self.check(s, val, &format!("{at}.{k}"))?,
                    None => {
                        if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                            return Err(format!("{at}: unknown member {k}"));
                        }
                    }
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
            for (i, x) in arr.iter().enumerate() {
                self.check(items, x, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    fn any_of(&self, shapes: &Value, v: &Value, at: &str) -> Result<(), String> {
        let Some(list) = shapes.as_array() else {
            return self.check(shapes, v, at);
        };
        if list.iter().any(|s| self.check(s, v, at).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: matches none of the shapes"))
        }
    }
}

/// Whether `path` fits an OpenAPI path template: `{x}` matches one non-empty segment, except a
/// final `{name}`, which matches the rest (MediaMTX routes names as gin catch-alls, `*name`, so
/// a path called `a/b` is `/v3/paths/get/a/b`).
fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    let catch_all = t.last() == Some(&"{name}");
    let fits = t.len() == p.len() || (catch_all && p.len() > t.len());
    fits && t.iter().enumerate().all(|(i, a)| {
        if a.starts_with('{') && a.ends_with('}') {
            if catch_all && i == t.len() - 1 {
                p[i..].iter().all(|s| !s.is_empty())
            } else {
                p.get(i).is_some_and(|s| !s.is_empty())
            }
        } else {
            p.get(i) == Some(a)
        }
    })
}
