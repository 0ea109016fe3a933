//! The loopback control socket that carries publish demands (contract §9.5, integration doc §4).
//!
//! MediaMTX runs `camshard demand cameraN` when a reader asks for a camera path that nobody
//! publishes, and kills it once the path has had no readers for `runOnDemandCloseAfter`. That
//! process connects to `<state_dir>/control.sock` (mode 0600), says `demand cameraN`, and then
//! simply stays connected: the demand lasts exactly as long as the connection. The server side is
//! one mio thread (an epoll set of the listener and every demand connection); a closed
//! connection, for whatever reason, releases its demand. When the server goes away the
//! connections close and every `demand` process exits.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};

use super::slots::Slots;
use crate::camera::registry::Registry;

/// The socket's file name in the state directory.
pub(crate) const SOCKET_NAME: &str = "control.sock";

/// Where the control socket lives.
pub(crate) fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

const LISTENER: Token = Token(0);

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Camera number once the demand is accepted.
    camera: Option<u32>,
}

/// What the control thread works with (`ServerState::demand_socket` hands it out).
pub struct Demands {
    /// Where the socket lives.
    pub state_dir: PathBuf,
    /// The cameras a demand may name.
    pub cameras: Arc<Registry>,
    /// Per-camera streaming state: a held demand counts in its slot.
    pub streams: Arc<Slots>,
    /// Set when the server shuts down.
    pub stop: Arc<AtomicBool>,
}

/// Binds the socket and starts the `control` thread.
pub(crate) fn spawn(state: Demands) -> std::io::Result<()> {
    let path = socket_path(&state.state_dir);
    // A socket file left by a previous run would make bind fail.
    let _ = std::fs::remove_file(&path);
    let mut listener = bind_private(&path)?;
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || serve(state, poll, listener, path))?;
    Ok(())
}

/// Binds a Unix socket at `path` that is never reachable by anyone but our user.
///
/// `bind` creates the socket file with mode `0777 & !umask`, so binding in place and chmodding
/// afterwards leaves a window in which any local user may connect. Changing the umask is no
/// cure in a threaded process (it is process-wide). Instead the socket is bound inside a fresh
/// 0700 directory next to `path` — nobody else can reach into it — made 0600 there, and then
/// renamed into place: `rename` is atomic, so `path` only ever names a 0600 socket.
pub(crate) fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or(SOCKET_NAME.as_ref());
    let staging = dir.join(format!(".{}.{}.d", SOCKET_NAME, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    // `mode` applies at creation, so the directory is 0700 (or stricter, after the umask) from
    // its first instant.
    std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
    let inner = staging.join(name);
    let result = (|| {
        let listener = UnixListener::bind(&inner)?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&inner, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn serve(state: Demands, mut poll: Poll, listener: UnixListener, path: PathBuf) {
    let mut events = Events::with_capacity(64);
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    while !state.stop.load(Relaxed) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(500)))
            .is_err()
        {
            continue;
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let t = Token(next);
                    next += 1;
                    if poll
                        .registry()
                        .register(&mut stream, t, Interest::READABLE)
                        .is_ok()
                    {
                        conns.insert(
                            t,
                            Conn {
                                stream,
                                buf: Vec::new(),
                                camera: None,
                            },
                        );
                    }
                }
                continue;
            }
            let t = ev.token();
            let close = match conns.get_mut(&t) {
                Some(c) => read_conn(&state, c),
                None => false,
            };
            if close {
                if let Some(mut c) = conns.remove(&t) {
                    let _ = poll.registry().deregister(&mut c.stream);
                    release(&state, c.camera);
                }
            }
        }
    }
    for (_, c) in conns {
        release(&state, c.camera);
    }
    let _ = std::fs::remove_file(path);
}

fn release(state: &Demands, camera: Option<u32>) {
    if let Some(slot) = camera.and_then(|n| state.streams.get(n)) {
        let _ = slot
            .demands
            .fetch_update(Relaxed, Relaxed, |d| Some(d.saturating_sub(1)));
        tracing::info!(camera = camera, "publish demand released");
    }
}

/// Reads what the peer sent; true when the connection must be closed.
fn read_conn(state: &Demands, c: &mut Conn) -> bool {
    let mut tmp = [0u8; 256];
    loop {
        match c.stream.read(&mut tmp) {
            Ok(0) => return true,
            Ok(n) => {
                if c.camera.is_some() {
                    continue; // nothing more is expected; ignore chatter
                }
                c.buf.extend_from_slice(&tmp[..n]);
                if c.buf.len() > 128 {
                    let _ = c.stream.write_all(b"error request too long\n");
                    return true;
                }
                if let Some(end) = c.buf.iter().position(|&b| b == b'\n') {
                    let line = String::from_utf8_lossy(&c.buf[..end]).trim().to_string();
                    match accept(state, &line) {
                        Ok(num) => {
                            c.camera = Some(num);
                            let _ = c.stream.write_all(b"ok\n");
                        }
                        Err(msg) => {
                            let _ = c.stream.write_all(format!("error {msg}\n").as_bytes());
                            return true;
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

fn accept(state: &Demands, line: &str) -> Result<u32, String> {
    let id = line
        .strip_prefix("demand ")
        .ok_or_else(|| "expected: demand cameraN".to_string())?
        .trim();
    let num = crate::camera::registry::parse_camera_id(id)
        .ok_or_else(|| format!("not a camera id: {id}"))?;
    if !state.cameras.snapshot().iter().any(|c| c.num == num) {
        return Err(format!("unknown camera {id}"));
    }
    let slot = state
        .streams
        .get(num)
        .ok_or_else(|| format!("unknown camera {id}"))?;
    slot.demands.fetch_add(1, Relaxed);
    tracing::info!(camera = id, "publish demand held");
    Ok(num)
}

/// `camshard demand cameraN`: holds a demand until the server closes the connection or this
/// process is killed. Returns the process exit code.
pub fn run_client(state_dir: &Path, camera: &str) -> i32 {
    let path = socket_path(state_dir);
    let mut s = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("camshard demand: cannot connect to {}: {e}", path.display());
            return 1;
        }
    };
    if s.write_all(format!("demand {camera}\n").as_bytes())
        .is_err()
    {
        eprintln!("camshard demand: the server closed the connection");
        return 1;
    }
    let mut reply = Vec::new();
    let mut b = [0u8; 1];
    while reply.len() < 256 {
        match s.read(&mut b) {
            Ok(1) if b[0] == b'\n' => break,
            Ok(1) => reply.push(b[0]),
            _ => {
                eprintln!("camshard demand: the server closed the connection");
                return 1;
            }
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    if reply != "ok" {
        eprintln!("camshard demand: {reply}");
        return 1;
    }
    // Hold the demand: block until the server goes away (EOF) or we are killed.
    let mut sink = [0u8; 64];
    loop {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => return 0,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row 13: the socket's final name never refers to a socket wider than 0600 — it appears
    /// there by `rename` (inotify `IN_MOVED_TO`), never by `bind` (`IN_CREATE`, which would
    /// leave it umask-wide until a later chmod).
    #[test]
    fn control_socket_is_never_created_in_place() {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let dir = std::env::temp_dir().join(format!("camshard-demand-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let ino = Inotify::init(InitFlags::IN_NONBLOCK).expect("inotify");
        ino.add_watch(&dir, AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
            .expect("watch");
        let path = socket_path(&dir);
        let _listener = bind_private(&path).expect("bind");
        let mode = std::fs::symlink_metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let events = ino.read_events().expect("events");
        let at_final: Vec<_> = events
            .iter()
            .filter(|e| e.name.as_deref() == Some(std::ffi::OsStr::new(SOCKET_NAME)))
            .map(|e| e.mask)
            .collect();
        assert_eq!(at_final, [AddWatchFlags::IN_MOVED_TO], "{events:?}");
        // Nothing is left beside the socket.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [SOCKET_NAME]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
