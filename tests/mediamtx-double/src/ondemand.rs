//! `runOnDemand` commands, run as MediaMTX's `externalcmd` runs them on Unix:
//!
//! - the command line is split into words with shell quoting rules (`go-shellquote`), `$VAR` and
//!   `${VAR}` in each word are expanded from the path's environment (`MTX_PATH`, `RTSP_PORT`,
//!   `G1`…) or the process's, and the program is executed directly — no shell;
//! - the process gets its own process group, and the environment has `MTX_PATH`, `RTSP_PATH`
//!   (deprecated alias) and `RTSP_PORT`;
//! - to stop it MediaMTX sends **SIGINT to the whole process group** and waits. (The double sends
//!   SIGKILL to the group if it is still there 5 s later, so a stuck child cannot hang a test.)
//! - with `runOnDemandRestart`, a command that exits is started again after 5 s, for as long as
//!   the path still wants it.
//!
//! *When* a command should run is decided by the path state (`state.rs`); this module only makes
//! the processes follow it.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::recorder::die_with_parent;
use crate::state::DemandCmd;
use crate::Inner;

/// MediaMTX's pause before restarting a command that exited.
const RESTART_PAUSE: Duration = Duration::from_secs(5);

/// A command run for a path.
struct Running {
    want: DemandCmd,
    /// The process, or `None` while it waits to be restarted.
    child: Option<Child>,
    /// When it exited (restart after the pause).
    exited_at: Option<Instant>,
}

/// Running commands by path.
#[derive(Default)]
pub struct OnDemand {
    running: HashMap<String, Running>,
}

impl OnDemand {
    /// How many processes run for `path` (0 or 1).
    pub fn count(&mut self, path: &str) -> usize {
        match self.running.get_mut(path).and_then(|r| r.child.as_mut()) {
            Some(c) => usize::from(matches!(c.try_wait(), Ok(None))),
            None => 0,
        }
    }

    /// Stops every command and waits for them (restart, shutdown).
    pub fn stop_all(&mut self) {
        let waits: Vec<_> = self
            .running
            .drain()
            .filter_map(|(_, r)| r.child)
            .map(|c| std::thread::spawn(move || terminate(c)))
            .collect();
        for w in waits {
            let _ = w.join();
        }
    }

    /// Makes the processes match `wanted`.
    fn reconcile(&mut self, wanted: Vec<DemandCmd>) {
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(k, r)| !wanted.iter().any(|w| &w.path == *k && *w == r.want))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(c) = self.running.remove(&k).and_then(|r| r.child) {
                std::thread::spawn(move || terminate(c));
            }
        }
        for w in wanted {
            let r = self.running.entry(w.path.clone()).or_insert(Running {
                want: w.clone(),
                child: None,
                exited_at: None,
            });
            let exited = match r.child.as_mut() {
                Some(c) => !matches!(c.try_wait(), Ok(None)),
                None => false,
            };
            if exited {
                r.child = None;
                r.exited_at = Some(Instant::now());
            }
            if r.child.is_some() {
                continue;
            }
            let first = r.exited_at.is_none();
            let due = r.exited_at.is_some_and(|t| t.elapsed() >= RESTART_PAUSE);
            if first || (r.want.restart && due) {
                r.exited_at = Some(Instant::now());
                r.child = spawn(&r.want);
            }
        }
    }
}

/// Starts the command of `w` (no shell; own process group).
fn spawn(w: &DemandCmd) -> Option<Child> {
    let words = split_words(&w.cmd)?;
    let lookup = |var: &str| {
        w.env
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(var).ok())
            .unwrap_or_default()
    };
    let words: Vec<String> = words.iter().map(|x| expand(x, &lookup)).collect();
    let (prog, args) = words.split_first()?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .envs(w.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    die_with_parent(&mut cmd, libc::SIGTERM);
    cmd.spawn().ok()
}

/// SIGINT to the process group, SIGKILL after 5 s, then reaps it.
fn terminate(mut child: Child) {
    let pgid = child.id() as i32;
    // SAFETY: signalling a process group we created; no memory is involved.
    unsafe {
        libc::kill(-pgid, libc::SIGINT);
    }
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Splits a command line into words as `go-shellquote` does: blanks separate words; single
/// quotes keep everything; double quotes keep everything but `\"`, `\\`, `\$`, `` \` ``; a
/// backslash outside quotes escapes the next character. `None` on an unterminated quote.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&x) if "\"\\$`".contains(x) => {
                                cur.push(x);
                                chars.next();
                            }
                            Some('\n') => {
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(x) => cur.push(x),
                    None => return None,
                }
            }
            x => {
                in_word = true;
                cur.push(x);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Go's `os.Expand`: `$VAR` and `${VAR}` replaced by `lookup`.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => {
                    out.push_str(&lookup(&inner[..end]));
                    rest = &inner[end + 1..];
                }
                None => {
                    // Go drops a bad `${` syntax.
                    rest = "";
                }
            }
            continue;
        }
        let n = after
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(after.len(), |(i, _)| i);
        if n == 0 {
            // A lone `$` (or a special one) is kept as Go keeps `$` before a non-name byte.
            out.push('$');
            rest = after;
        } else {
            out.push_str(&lookup(&after[..n]));
            rest = &after[n..];
        }
    }
    out.push_str(rest);
    out
}

/// Keeps the processes in step with the state every 20 ms until the double stops.
pub fn supervise(inner: Arc<Inner>) {
    while !inner.stop.load(SeqCst) {
        let wanted = inner.lock().demand_wanted();
        let mut od = inner.ondemand();
        // Checked under the lock `Drop` takes, so nothing starts after its `stop_all`.
        if !inner.stop.load(SeqCst) {
            od.reconcile(wanted);
        }
        drop(od);
        std::thread::sleep(Duration::from_millis(20));
    }
    inner.ondemand().stop_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_shellquote() {
        let w = split_words(r#"/usr/bin/camshard demand camera0"#).unwrap_or_default();
        assert_eq!(w, ["/usr/bin/camshard", "demand", "camera0"]);
        let w = split_words(r#"a 'b c' "d \"e\" $X" f\ g"#).unwrap_or_default();
        assert_eq!(w, ["a", "b c", "d \"e\" $X", "f g"]);
        assert!(split_words("a 'b").is_none());
    }

    #[test]
    fn env_expansion_like_go() {
        let look = |k: &str| {
            if k == "MTX_PATH" {
                "cam".to_string()
            } else {
                String::new()
            }
        };
        assert_eq!(expand("x/$MTX_PATH/${MTX_PATH}.y", &look), "x/cam/cam.y");
        assert_eq!(expand("$NOPE-a", &look), "-a");
        assert_eq!(expand("a$", &look), "a$");
    }
}
