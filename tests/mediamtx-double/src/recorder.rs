//! MediaMTX's recorder, imitated: while a path has `record: true` and a publisher, a segment file
//! grows at `recordPath` (with `%path` and the date fields expanded in local time, plus `.mp4`).
//! The media is a real fragmented MP4 from `ffmpeg -re -f lavfi -i testsrc` (the double does not
//! decode what the publisher sends); it is stopped cleanly (`q` on stdin) when recording ends.
//! Segments are listed by `/v3/recordings/*` with `start` as MediaMTX prints it: local time with
//! nanoseconds and the offset, matching the file name.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Inner;

/// A finished or growing segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// `start` as listed (RFC 3339, local offset, nanoseconds).
    pub start: String,
    /// The file.
    pub file: PathBuf,
}

/// Recording children and segments by path.
#[derive(Default)]
pub struct Recordings {
    running: HashMap<String, Child>,
    /// Every segment written, by path.
    pub segments: HashMap<String, Vec<Segment>>,
}

impl Recordings {
    /// Segments of `path` whose files still exist.
    pub fn list(&self, path: &str) -> Vec<Segment> {
        self.segments
            .get(path)
            .map(|v| v.iter().filter(|s| s.file.exists()).cloned().collect())
            .unwrap_or_default()
    }

    /// Deletes the segment of `path` starting at exactly `start`; false if there is none.
    pub fn delete(&mut self, path: &str, start: &str) -> bool {
        let Some(v) = self.segments.get_mut(path) else {
            return false;
        };
        let Some(i) = v.iter().position(|s| s.start == start && s.file.exists()) else {
            return false;
        };
        let s = v.remove(i);
        std::fs::remove_file(s.file).is_ok()
    }

    /// Stops every recording child (restart, shutdown).
    pub fn stop_all(&mut self) {
        for (_, c) in self.running.drain() {
            finish(c);
        }
    }
}

fn finish(mut c: Child) {
    if let Some(mut stdin) = c.stdin.take() {
        let _ = stdin.write_all(b"q");
    }
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Expands MediaMTX's record path pattern for `path` at the local time `start`.
fn expand(pattern: &str, path: &str, start: &str) -> String {
    // start = YYYY-MM-DDTHH:MM:SS.nnnnnnnnn±hh:mm
    let b = start.as_bytes();
    let part = |a: usize, z: usize| start.get(a..z).unwrap_or("00").to_string();
    let micros = if b.len() >= 26 {
        part(20, 26)
    } else {
        "000000".into()
    };
    pattern
        .replace("%path", path)
        .replace("%Y", &part(0, 4))
        .replace("%m", &part(5, 7))
        .replace("%d", &part(8, 10))
        .replace("%H", &part(11, 13))
        .replace("%M", &part(14, 16))
        .replace("%S", &part(17, 19))
        .replace("%f", &micros)
}

/// Starts and stops recording children every 50 ms until the double stops.
pub fn supervise(inner: Arc<Inner>) {
    while !inner.stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        let wanted: HashMap<String, String> = {
            let st = inner.lock();
            st.confs
                .keys()
                .filter_map(|name| {
                    let c = st.newest(name)?;
                    let rec = c.get("record").and_then(Value::as_bool).unwrap_or(false);
                    let pattern = c
                        .get("recordPath")
                        .and_then(Value::as_str)
                        .unwrap_or("./recordings/%path/%Y-%m-%d_%H-%M-%S-%f")
                        .to_string();
                    (rec && st.publishers.contains_key(name)).then(|| (name.clone(), pattern))
                })
                .collect()
        };
        let mut recs = match inner.recordings.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let stale: Vec<String> = recs
            .running
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for k in stale {
            if let Some(c) = recs.running.remove(&k) {
                // Finishing takes a moment; do not hold the lock meanwhile.
                std::thread::spawn(move || finish(c));
            }
        }
        for (name, pattern) in wanted {
            if recs.running.contains_key(&name) {
                continue;
            }
            let start = crate::state::now_rfc3339();
            let file = PathBuf::from(format!("{}.mp4", expand(&pattern, &name, &start)));
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let child = Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
                .args(["-i", "testsrc=size=640x480:rate=15", "-c:v", "libx264"])
                .args(["-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "15"])
                .args([
                    "-f",
                    "mp4",
                    "-movflags",
                    "+frag_keyframe+empty_moov+default_base_moof",
                ])
                .arg("-y")
                .arg(&file)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Ok(c) = child {
                recs.running.insert(name.clone(), c);
                recs.segments
                    .entry(name)
                    .or_default()
                    .push(Segment { start, file });
            }
        }
    }
    let mut recs = match inner.recordings.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    recs.stop_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_path_expansion() {
        let s = "2026-11-22T12:30:05.123456789+01:00";
        assert_eq!(
            expand("/r/.incoming/%path/%Y-%m-%d_%H-%M-%S-%f", "camera0", s),
            "/r/.incoming/camera0/2026-11-22_12-30-05-123456"
        );
    }
}
