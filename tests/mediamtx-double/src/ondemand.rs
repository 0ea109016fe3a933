//! `runOnDemand`, as MediaMTX runs it: when a reader asks for a path that nobody publishes, the
//! path's command starts (`sh -c`, in its own process group, with `MTX_PATH` set); it is
//! restarted if it exits while readers remain (`runOnDemandRestart`), and once the path has had no
//! readers for `runOnDemandCloseAfter` its whole process group gets SIGTERM (SIGKILL 2 s later).

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conf::parse_dur;
use crate::Inner;

/// A running `runOnDemand` command.
pub struct Running {
    child: Child,
    cmd: String,
    close_at: Option<Instant>,
}

/// Running commands by path.
#[derive(Default)]
pub struct OnDemand {
    running: HashMap<String, Running>,
    last_start: HashMap<String, Instant>,
}

impl OnDemand {
    /// How many commands run for `path` (0 or 1).
    pub fn count(&mut self, path: &str) -> usize {
        match self.running.get_mut(path) {
            Some(r) => usize::from(matches!(r.child.try_wait(), Ok(None))),
            None => 0,
        }
    }

    /// Stops every command (restart, shutdown).
    pub fn stop_all(&mut self) {
        for (_, r) in self.running.drain() {
            terminate(r.child);
        }
    }
}

fn terminate(mut child: Child) {
    let pid = child.id() as i32;
    // SAFETY: signalling a process group we created; no memory is involved.
    unsafe {
        libc::kill(-pid, libc::SIGTERM);
    }
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = child.wait();
    });
}

/// Supervises on-demand commands every 50 ms until the double stops.
pub fn supervise(inner: Arc<Inner>) {
    while !inner.stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        let (wants, confs) = {
            let st = inner.lock();
            let mut wants: HashMap<String, (usize, bool)> = HashMap::new();
            for p in st.readers.values() {
                let e = wants.entry(p.clone()).or_insert((0, false));
                e.0 += 1;
            }
            for (p, e) in wants.iter_mut() {
                e.1 = st.publishers.contains_key(p);
            }
            let mut confs = HashMap::new();
            for name in st.confs.keys() {
                if let Some(c) = st.newest(name) {
                    confs.insert(name.clone(), c.clone());
                }
            }
            (wants, confs)
        };
        let mut od = match inner.ondemand.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        // Stop commands whose path is gone or changed, or that idled past close-after.
        let names: Vec<String> = od.running.keys().cloned().collect();
        for name in names {
            let conf = confs.get(&name);
            let cmd = conf
                .and_then(|c| c.get("runOnDemand"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let readers = wants.get(&name).map_or(0, |w| w.0);
            let Some(r) = od.running.get_mut(&name) else {
                continue;
            };
            let exited = !matches!(r.child.try_wait(), Ok(None));
            if cmd.is_empty() || cmd != r.cmd {
                if let Some(r) = od.running.remove(&name) {
                    terminate(r.child);
                }
                continue;
            }
            if readers > 0 {
                r.close_at = None;
            } else {
                let after = conf
                    .and_then(|c| c.get("runOnDemandCloseAfter"))
                    .and_then(|v| v.as_str())
                    .and_then(parse_dur)
                    .unwrap_or(10_000_000_000);
                let at = *r
                    .close_at
                    .get_or_insert(now + Duration::from_nanos(after as u64));
                if now >= at {
                    if let Some(r) = od.running.remove(&name) {
                        terminate(r.child);
                    }
                    continue;
                }
            }
            if exited {
                let restart = conf
                    .and_then(|c| c.get("runOnDemandRestart"))
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                od.running.remove(&name);
                if !(restart && readers > 0) {
                    continue;
                }
            }
        }
        // Start commands for paths with readers and no publisher.
        for (name, (readers, published)) in &wants {
            if *readers == 0 || *published || od.running.contains_key(name) {
                continue;
            }
            let Some(cmd) = confs
                .get(name)
                .and_then(|c| c.get("runOnDemand"))
                .and_then(|v| v.as_str())
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            if od
                .last_start
                .get(name)
                .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(500))
            {
                continue;
            }
            od.last_start.insert(name.clone(), now);
            let child = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .env("MTX_PATH", name)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Ok(child) = child {
                od.running.insert(
                    name.clone(),
                    Running {
                        child,
                        cmd: cmd.to_string(),
                        close_at: None,
                    },
                );
            }
        }
    }
    let mut od = match inner.ondemand.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    od.stop_all();
}
