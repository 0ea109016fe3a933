//! TEMPORARY stub of the HTTP client API (replaced by the real client on merge).
#![allow(missing_docs, clippy::all)]
use std::time::Duration;
pub mod godur {
    use std::time::Duration;
    pub fn parse_go_duration(s: &str) -> Option<Duration> {
        if s.is_empty() { return Some(Duration::ZERO); }
        if let Some(h) = s.strip_suffix('h') { return h.parse::<u64>().ok().map(|h| Duration::from_secs(h*3600)); }
        if let Some(d) = s.strip_suffix('d') { return d.parse::<u64>().ok().map(|h| Duration::from_secs(h*86400)); }
        if let Some(x) = s.strip_suffix("s") { return x.parse::<u64>().ok().map(Duration::from_secs); }
        None
    }
    pub fn format_go_duration_secs(s: u64) -> String { if s > 0 && s % 3600 == 0 { format!("{}h", s/3600) } else { format!("{s}s") } }
}
pub struct Response { pub status: u16, pub content_type: Option<String>, pub body: Vec<u8>, pub keep_alive: bool }
impl Response { pub fn text(&self) -> String { String::from_utf8_lossy(&self.body).into_owned() } }
#[derive(Debug)]
pub struct HttpError(pub String);
impl HttpError { pub fn is_unreachable(&self) -> bool { true } }
impl std::fmt::Display for HttpError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.0) } }
pub struct Client;
impl Client {
    pub fn new(_u: &str, _a: Option<&str>, _b: Option<&str>) -> Result<Client, String> { Ok(Client) }
    pub async fn request(&self, _m: &str, _p: &str, _b: Option<&[u8]>, _t: Duration) -> Result<Response, HttpError> { Err(HttpError("stub".into())) }
    pub fn requests_sent(&self) -> u64 { 0 }
}
