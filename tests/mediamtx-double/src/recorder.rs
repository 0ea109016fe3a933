//! MediaMTX's recorder and record store, imitated.
//!
//! **Writing.** While a path has `record: true` and a publisher, one segment file grows at
//! `recordPath` (`%path` and the date fields expanded in local time, `%f` = microseconds) plus
//! `.mp4` (`.ts` for `recordFormat: mpegts`). The double does not decode what the publisher
//! sends: the media is a real fragmented MP4 from `ffmpeg -re -f lavfi -i testsrc …`, stopped
//! cleanly (`q` on its stdin) when recording is switched off, the publisher leaves or the path
//! closes. A new segment starts after `recordSegmentDuration`, and with every new publisher.
//!
//! **Listing.** Like MediaMTX's `recordstore`, `/v3/recordings/*` scan the file system: every
//! file under the pattern's fixed leading directories whose path matches the pattern is a
//! segment, and its `start` is decoded from the name (local time, so it prints with the local
//! offset and at most microseconds). Files written by anyone count, as with MediaMTX.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::WallTime;
use crate::conf::{self, Conf};
use crate::state::RecordWant;
use crate::{BodyStyle, Inner};

/// `PathAddExtension`.
fn add_extension(pattern: &str, format: &str) -> String {
    if format == "mpegts" {
        format!("{pattern}.ts")
    } else {
        format!("{pattern}.mp4")
    }
}

/// `recordstore.Path.Encode`: the file name of a segment of `path` starting at `t`.
pub fn encode(pattern: &str, path: &str, t: &WallTime) -> String {
    let z = match t.offset {
        0 => "Z".to_string(),
        o => format!(
            "{}{:02}{:02}",
            if o < 0 { '-' } else { '+' },
            o.abs() / 3600,
            (o.abs() % 3600) / 60
        ),
    };
    pattern
        .replace("%path", path)
        .replace("%Y", &t.year.to_string())
        .replace("%m", &format!("{:02}", t.month))
        .replace("%d", &format!("{:02}", t.day))
        .replace("%H", &format!("{:02}", t.hour))
        .replace("%M", &format!("{:02}", t.minute))
        .replace("%S", &format!("{:02}", t.second))
        .replace("%f", &format!("{:06}", t.nanos / 1000))
        .replace("%z", &z)
        .replace("%s", &t.unix().to_string())
}

/// The segment file of `path` starting at `t`, for a complete configuration.
pub fn segment_file(full: &Conf, path: &str, t: &WallTime) -> String {
    let pattern = add_extension(
        conf::str_field(full, "recordPath"),
        conf::str_field(full, "recordFormat"),
    );
    encode(&pattern, path, t)
}

/// `recordstore.Path.Decode`: the path name and start time a file name encodes, if it fits the
/// pattern. (As in MediaMTX, the match is not anchored.)
pub fn decode(pattern: &str, fpath: &str) -> Option<(String, WallTime)> {
    let mut re = regex::escape(pattern);
    let mut order = Vec::new();
    // Find the placeholders in pattern order, then swap each for its group.
    let mut i = 0;
    while let Some(pos) = pattern[i..].find('%') {
        let at = i + pos;
        for v in [
            "%path", "%Y", "%m", "%d", "%H", "%M", "%S", "%f", "%z", "%s",
        ] {
            if pattern[at..].starts_with(v) {
                order.push(v);
            }
        }
        i = at + 1;
    }
    for (v, group) in [
        ("%path", "(.*?)"),
        ("%Y", "([0-9]{4})"),
        ("%m", "([0-9]{2})"),
        ("%d", "([0-9]{2})"),
        ("%H", "([0-9]{2})"),
        ("%M", "([0-9]{2})"),
        ("%S", "([0-9]{2})"),
        ("%f", "([0-9]{6})"),
        ("%z", r"(Z|\+[0-9]{4}|-[0-9]{4})"),
        ("%s", "([0-9]{10})"),
    ] {
        re = re.replace(v, group);
    }
    let caps = regex::Regex::new(&re).ok()?.captures(fpath)?;
    let mut path = String::new();
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut us) = (0i64, 1u32, 1u32, 0, 0, 0, 0u32);
    let mut offset: Option<i32> = None;
    let mut unix: i64 = -1;
    for (k, v) in order.iter().zip(caps.iter().skip(1)) {
        let v = v.map_or("", |m| m.as_str());
        let n = v.parse::<i64>().unwrap_or(0);
        match *k {
            "%path" => path = v.to_string(),
            "%Y" => y = n,
            "%m" => mo = n as u32,
            "%d" => d = n as u32,
            "%H" => h = n as u32,
            "%M" => mi = n as u32,
            "%S" => s = n as u32,
            "%f" => us = n as u32,
            "%z" => {
                offset = Some(match v {
                    "Z" => 0,
                    _ => {
                        let hh: i32 = v.get(1..3).and_then(|x| x.parse().ok()).unwrap_or(0);
                        let mm: i32 = v.get(3..5).and_then(|x| x.parse().ok()).unwrap_or(0);
                        let o = hh * 3600 + mm * 60;
                        if v.starts_with('-') {
                            -o
                        } else {
                            o
                        }
                    }
                })
            }
            "%s" => unix = n,
            _ => {}
        }
    }
    let t = if unix > 0 {
        WallTime::from_unix(unix, us * 1000)
    } else if let Some(off) = offset {
        // Wall-clock fields in a fixed zone.
        WallTime {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
            nanos: us * 1000,
            offset: off,
        }
    } else {
        WallTime::from_local_fields(y, mo, d, h, mi, s, us * 1000)
    };
    Some((path, t))
}

/// `CommonPath`: the pattern's leading directories that hold no placeholder.
pub fn common_path(pattern: &str) -> String {
    let mut common = String::new();
    let mut rest = pattern;
    while let Some(i) = rest.find(['/', '\\']) {
        let (part, after) = rest.split_at(i + 1);
        if part.contains('%') {
            break;
        }
        common.push_str(part);
        rest = after;
    }
    common.pop();
    common
}

/// `filepath.Abs`: joined with the working directory and cleaned lexically.
fn absolute(p: &str) -> PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(x) => out.push(x),
            _ => {}
        }
    }
    out
}

/// v1.20's `absolutePathInside`: whether `candidate` stays under `base` (a string prefix test
/// of the cleaned absolute paths, as in MediaMTX).
pub fn inside(base: &Path, candidate: &Path) -> bool {
    let b = absolute(&base.to_string_lossy());
    let c = absolute(&candidate.to_string_lossy());
    c.to_string_lossy().starts_with(&*b.to_string_lossy())
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out),
            Ok(_) => out.push(p),
            Err(_) => {}
        }
    }
}

/// `FindSegments`: the segments of path `name` (complete configuration `full`), by start.
pub fn segments(full: &Conf, name: &str) -> Vec<(WallTime, PathBuf)> {
    let pattern = add_extension(
        &conf::str_field(full, "recordPath").replace("%path", name),
        conf::str_field(full, "recordFormat"),
    );
    let pattern = absolute(&pattern).to_string_lossy().into_owned();
    let mut files = Vec::new();
    walk(Path::new(&common_path(&pattern)), &mut files);
    let mut segs: Vec<(WallTime, PathBuf)> = files
        .into_iter()
        .filter_map(|f| Some((decode(&pattern, &f.to_string_lossy())?.1, f)))
        .collect();
    segs.sort_by_key(|(t, _)| (t.unix(), t.nanos));
    segs
}

/// `FindAllPathsWithSegments`: names of paths that have segments, sorted.
pub fn paths_with_segments(style: BodyStyle, confs: &BTreeMap<String, Conf>) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for (k, c) in confs {
        let full = conf::full(style, c);
        if !conf::is_regexp_name(k) {
            if !segments(&full, k).is_empty() {
                names.insert(k.clone());
            }
            continue;
        }
        let pattern = add_extension(
            conf::str_field(&full, "recordPath"),
            conf::str_field(&full, "recordFormat"),
        );
        let pattern = absolute(&pattern).to_string_lossy().into_owned();
        let mut files = Vec::new();
        walk(Path::new(&common_path(&pattern)), &mut files);
        for f in files {
            if let Some((p, _)) = decode(&pattern, &f.to_string_lossy()) {
                let served = conf::find_path_conf(style, confs, &p).is_ok_and(|(n, _)| n == k);
                if conf::check_path_name(style, &p).is_ok() && served {
                    names.insert(p);
                }
            }
        }
    }
    names.into_iter().collect()
}

/// A recording child.
struct Running {
    want: RecordWant,
    child: Child,
    since: Instant,
}

/// Recording children by path.
#[derive(Default)]
pub struct Recorders {
    running: HashMap<String, Running>,
}

impl Recorders {
    /// Stops every recording and waits for the files to be closed.
    pub fn stop_all(&mut self) {
        let all: Vec<Running> = self.running.drain().map(|(_, r)| r).collect();
        let waits: Vec<_> = all
            .into_iter()
            .map(|r| std::thread::spawn(move || finish(r.child)))
            .collect();
        for w in waits {
            let _ = w.join();
        }
    }

    /// Starts, rotates and stops children to match `wanted`.
    fn reconcile(&mut self, wanted: Vec<RecordWant>) {
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(k, r)| {
                let w = wanted.iter().find(|w| &w.path == *k);
                let rotate =
                    r.want.segment > 0 && r.since.elapsed().as_nanos() as i128 >= r.want.segment;
                w != Some(&r.want) || rotate
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(r) = self.running.remove(&k) {
                // Closing takes a moment; the next segment does not wait for it.
                std::thread::spawn(move || finish(r.child));
            }
        }
        for w in wanted {
            if self.running.contains_key(&w.path) {
                continue;
            }
            let start = WallTime::now_micros();
            let file = encode(&add_extension(&w.pattern, &w.format), &w.path, &start);
            let file = PathBuf::from(file);
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let muxer: &[&str] = if w.format == "mpegts" {
                &["-f", "mpegts"]
            } else {
                &[
                    "-f",
                    "mp4",
                    "-movflags",
                    "+frag_keyframe+empty_moov+default_base_moof",
                ]
            };
            let mut cmd = Command::new("ffmpeg");
            cmd.args(["-hide_banner", "-loglevel", "error", "-nostats", "-re"])
                .args(["-f", "lavfi", "-i", "testsrc=size=640x480:rate=15"])
                .args([
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-pix_fmt",
                    "yuv420p",
                ])
                .args(["-g", "15"])
                .args(muxer)
                .arg("-y")
                .arg(&file)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            die_with_parent(&mut cmd, libc::SIGKILL);
            if let Ok(child) = cmd.spawn() {
                self.running.insert(
                    w.path.clone(),
                    Running {
                        want: w,
                        child,
                        since: Instant::now(),
                    },
                );
            }
        }
    }
}

/// Asks the kernel to signal the child when the thread that spawned it dies, so no child
/// outlives a crashed test.
pub fn die_with_parent(cmd: &mut Command, sig: libc::c_int) {
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong);
            Ok(())
        });
    }
}

/// Stops ffmpeg cleanly (`q`), killing it if it does not finish within 5 s.
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

/// Keeps the recording children in step with the state every 50 ms until the double stops.
pub fn supervise(inner: Arc<Inner>) {
    while !inner.stop.load(SeqCst) {
        let wanted = inner.lock().recordings_wanted();
        let mut rec = inner.recorders();
        // Checked under the lock `Drop` takes, so nothing starts after its `stop_all`.
        if !inner.stop.load(SeqCst) {
            rec.reconcile(wanted);
        }
        drop(rec);
        std::thread::sleep(Duration::from_millis(50));
    }
    inner.recorders().stop_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_and_decode() {
        let t = WallTime::parse_rfc3339("2026-11-22T12:30:05.123456789+01:00").expect("time");
        let pattern = "/r/.incoming/%path/%Y-%m-%d_%H-%M-%S-%f.mp4";
        let f = encode(pattern, "camera0", &t);
        assert_eq!(f, "/r/.incoming/camera0/2026-11-22_12-30-05-123456.mp4");
        let (p, back) = decode(pattern, &f).expect("decodes");
        assert_eq!(p, "camera0");
        assert_eq!(
            (
                back.year,
                back.month,
                back.day,
                back.hour,
                back.minute,
                back.second
            ),
            (2026, 11, 22, 12, 30, 5)
        );
        assert_eq!(back.nanos, 123_456_000);
        assert!(decode(pattern, "/r/.incoming/camera0/notes.txt").is_none());
        assert_eq!(common_path(pattern), "/r/.incoming");
        assert_eq!(common_path("./recordings/%path/x"), "./recordings");
        assert!(inside(Path::new("/r"), Path::new("/r/a/../b.mp4")));
        assert!(!inside(
            Path::new("/r/x"),
            Path::new("/r/x/../../etc/passwd")
        ));
    }
}
