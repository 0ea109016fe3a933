//! Test harness: starts the real `camshard` binary on a free loopback port with its own state
//! directory, and talks to it over WebSocket (tungstenite, blocking) and raw HTTP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long a test waits for a reply, a close or any other event it expects: generous, so a test
/// on a loaded machine (other builds, a busy CI runner) waits instead of failing. Tests assert
/// behaviour, not speed; a short wait is only for asserting that nothing arrives.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// The JWT secret every test server uses.
pub(crate) const SECRET: &str = "test-secret-0123456789abcdef0123456789";

/// A running server.
pub(crate) struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub log: mpsc::Receiver<String>,
    /// The JSON log lines written up to and including "camshard ready".
    pub startup: Vec<Value>,
}

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_camshard")
}

/// Storage thresholds of every test server started with [`TestServer::config`] (unless its
/// config has its own `[storage]`): tests must not fail because the disk of the machine running
/// them is more than 90 % full, as the shipped `block_percent` would make them.
pub(crate) const TEST_STORAGE: &str =
    "[storage]\nwarn_percent = 80.0\nblock_percent = 99.9\nmin_free_mb = 16\n";

/// How a test starts a server: `TestServer::new()`, then what this test needs, then
/// [`start`](TestServer::start).
///
/// ```ignore
/// let s = TestServer::new()
///     .config("[server]\nmax_connections = 4\n")
///     .args(&["--demo"])
///     .env("CAMSHARD_COMPAT_ENABLED", "true")
///     .nofile(128, 128)
///     .start();
/// ```
///
/// Every server gets a fresh temporary directory holding its config file (`test.toml`), its
/// state dir (`state/`) and data dir (`data/`); a free loopback port; two shards unless the args
/// say `--shards`; the test JWT secret; JSON logs on a piped stderr; and none of the caller's own
/// `CAMSHARD_LISTEN`/`CAMSHARD_LOG`. [`start`](TestServer::start) returns once the server has
/// logged "camshard ready". Everything is set on the server's `Command`, never on the test
/// process, so tests running in parallel threads of the one test binary cannot affect each
/// other.
#[must_use = "a TestServer does nothing until start()"]
#[derive(Default)]
pub(crate) struct TestServer {
    /// TOML appended to the test config (compat listener off, [`TEST_STORAGE`]).
    extra: String,
    /// The whole config file instead, when set.
    exact: Option<String>,
    args: Vec<String>,
    /// Where `state/` and `data/` are, when not in the server's own temporary directory.
    dirs_under: Option<PathBuf>,
    /// A fixed loopback port instead of a free one (a restart on the same address).
    port: Option<u16>,
    /// Changes to the command, in the order they were asked for.
    customize: Vec<CommandChange>,
}

/// One change to a server's command, applied just before it is spawned.
type CommandChange = Box<dyn FnOnce(&mut Command)>;

impl TestServer {
    /// A server with the test config and no extra arguments.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends `toml` to the test config: the compat listener off and [`TEST_STORAGE`] (left
    /// out when the config given here has its own `[storage]`), then `toml`.
    pub(crate) fn config(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self
    }

    /// Uses exactly `toml` as the config file, without the test config (the compat listener
    /// and storage thresholds stay as `toml` leaves them). Not combined with
    /// [`config`](Self::config).
    pub(crate) fn exact_config(mut self, toml: &str) -> Self {
        self.exact = Some(toml.to_string());
        self
    }

    /// Extra command-line arguments, after the harness's own.
    pub(crate) fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Sets an environment variable of the server (only of the server: the test process's own
    /// environment is shared by every test and never changed).
    pub(crate) fn env(self, key: &str, value: &str) -> Self {
        let (key, value) = (key.to_string(), value.to_string());
        self.command(move |cmd| {
            cmd.env(key, value);
        })
    }

    /// Removes an environment variable from the server's environment.
    pub(crate) fn env_remove(self, key: &str) -> Self {
        let key = key.to_string();
        self.command(move |cmd| {
            cmd.env_remove(key);
        })
    }

    /// Runs the server with RLIMIT_NOFILE `soft`/`hard` (set in the child before exec).
    pub(crate) fn nofile(self, soft: u64, hard: u64) -> Self {
        self.command(move |cmd| limit_nofile(cmd, soft, hard))
    }

    /// A last say on the server's command (e.g. a `pre_exec` restriction), after everything the
    /// harness and the other builder calls set.
    pub(crate) fn command(mut self, f: impl FnOnce(&mut Command) + 'static) -> Self {
        self.customize.push(Box::new(f));
        self
    }

    /// Puts the state and data dirs at `root/state` and `root/data` (which may hold another
    /// server's files, as after a restart) instead of in the server's own temporary directory;
    /// [`Server::state_dir`] still names the latter.
    pub(crate) fn dirs_under(mut self, root: &Path) -> Self {
        self.dirs_under = Some(root.to_path_buf());
        self
    }

    /// Listens on loopback port `port` instead of a free one the server picks: for a test that
    /// stops a server and starts another on the same address (with [`dirs_under`](Self::dirs_under)
    /// for the same files), as a client sees a restart. Get the port from [`free_port`].
    pub(crate) fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Starts the server and waits for its "camshard ready" line.
    pub(crate) fn start(self) -> Server {
        let toml = match self.exact {
            Some(toml) => {
                assert!(self.extra.is_empty(), "exact_config and config together");
                toml
            }
            None => {
                let storage = if self.extra.contains("[storage]") {
                    ""
                } else {
                    TEST_STORAGE
                };
                format!(
                    "[http.compat_listener]\nenabled = false\n{storage}{}",
                    self.extra
                )
            }
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("test.toml");
        std::fs::write(&cfg, toml).expect("write config");
        let root = self.dirs_under.as_deref().unwrap_or(dir.path());
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let listen = format!("127.0.0.1:{}", self.port.unwrap_or(0));
        let mut cmd = command(
            &listen,
            &cfg,
            &root.join("state"),
            &root.join("data"),
            &args,
        );
        for f in self.customize {
            f(&mut cmd);
        }
        spawn_ready(cmd, dir, &args)
    }
}

/// The test command line for listen address `listen` (port 0: a free one), config file `cfg`,
/// state dir `state`, data dir `data` and extra `args`: two shards (unless `args` say), the test
/// secret, JSON logs on a piped stderr, and none of the caller's own
/// `CAMSHARD_LISTEN`/`CAMSHARD_LOG` settings.
fn command(listen: &str, cfg: &Path, state: &Path, data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    // Two shards unless the test chose its own number (clap refuses a repeated flag).
    let shards: &[&str] = if args.contains(&"--shards") {
        &[]
    } else {
        &["--shards", "2"]
    };
    cmd.args(["--listen", listen])
        .args(shards)
        .arg("--config")
        .arg(cfg)
        .arg("--state-dir")
        .arg(state)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("CAMSHARD_JWT_SECRET", SECRET)
        .env("CAMSHARD_LOG_FORMAT", "json")
        .env_remove("CAMSHARD_LISTEN")
        .env_remove("CAMSHARD_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Spawns `cmd` (from [`command`], `args` being the extra arguments it was given) and waits for
/// its "camshard ready" line. `dir` is kept alive with the server; the log lines written before
/// the ready line are kept in [`Server::startup`].
// The child is owned by `Server`, whose `Drop` kills and waits for it.
#[allow(clippy::zombie_processes)]
fn spawn_ready(mut cmd: Command, dir: tempfile::TempDir, args: &[&str]) -> Server {
    let mut child = cmd.spawn().expect("spawn camshard");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let mut startup = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("server did not become ready"));
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v["message"] != "camshard ready" {
            startup.push(v);
            continue;
        }
        // The suite runs once per backend (CAMSHARD_RUNTIME): make sure the server really runs
        // on the one under test.
        if let Ok(want) = std::env::var("CAMSHARD_RUNTIME") {
            if (want == "epoll" || want == "uring") && !args.contains(&"--runtime") {
                assert_eq!(v["runtime"], want.as_str(), "runtime in use");
            }
        }
        let port = v["listen"]
            .as_str()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("port in the ready line");
        startup.push(v);
        return Server {
            child,
            port,
            dir,
            log: rx,
            startup,
        };
    }
}

impl Server {
    pub(crate) fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Opens a WebSocket client.
    pub(crate) fn connect(&self) -> Client {
        Client::connect(&self.url())
    }

    /// Runs a camshard subcommand against this server's state dir and returns stdout.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        cli(&self.state_dir(), args)
    }

    pub(crate) fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig)
            .expect("kill");
    }

    /// Sends a raw HTTP request and returns (status, headers+body text).
    pub(crate) fn http(&self, request: &str) -> (u16, String) {
        http(self.port, request)
    }

    /// `GET path` without credentials: (status, the `reason` of a JSON error body, or "").
    pub(crate) fn get_reason(&self, path: &str) -> (u16, String) {
        let (status, resp) = self.http(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let reason = serde_json::from_str::<Value>(body(&resp))
            .ok()
            .and_then(|v| v["reason"].as_str().map(str::to_string))
            .unwrap_or_default();
        (status, reason)
    }

    /// Reads the server's log until a line contains `needle` (true) or `within` passes (false).
    /// Lines read on the way are consumed.
    pub(crate) fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Kills the server with SIGKILL (no shutdown of any kind: a crash or a power cut as the
    /// rest of the world sees it) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit and returns its status code.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn cli(state_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .env("CAMSHARD_JWT_SECRET", SECRET)
        .output()
        .expect("run camshard subcommand");
    assert!(
        out.status.success(),
        "camshard {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

pub(crate) fn http(port: u16, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
    s.write_all(request.as_bytes()).expect("write");
    let out = String::from_utf8_lossy(&read_response(&mut s)).into_owned();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// Reads one HTTP response: up to the end of its head for a `101` (the connection then stays
/// open), up to `Content-Length` bytes of body when the head has one, else until the server
/// closes. Never waits for a timeout when the response is complete (a read timeout used to be
/// what ended a `101`, and a loaded machine needs long timeouts).
pub(crate) fn read_response(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            if head.starts_with("http/1.1 101") {
                break;
            }
            let length = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            if length.is_some_and(|n| out.len() >= end + 4 + n) {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Makes `cmd` run with RLIMIT_NOFILE `soft`/`hard` (set in the child before exec).
pub(crate) fn limit_nofile(cmd: &mut Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Splits a whole HTTP response into (status, head, body bytes); status 0 if unreadable.
pub(crate) fn split_response(out: &[u8]) -> (u16, String, Vec<u8>) {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, out[split + 4..].to_vec())
}

/// The body of an HTTP response text.
pub(crate) fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

/// A blocking WebSocket JSON-RPC client.
pub(crate) struct Client {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
    pub next_id: u64,
    /// Notifications read while waiting for a reply, kept for `wait_for`.
    pub notes: std::collections::VecDeque<Value>,
}

impl Client {
    /// Opens a client to any `ws://` URL (for servers the test started itself).
    pub(crate) fn connect(url: &str) -> Client {
        let (ws, _) = tungstenite::connect(url).expect("connect");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
        }
        Client {
            ws,
            next_id: 1,
            notes: Default::default(),
        }
    }

    /// Sends raw text and returns the next reply parsed as JSON (notifications are set aside).
    pub(crate) fn raw(&mut self, text: &str) -> Value {
        self.ws.send(Message::text(text)).expect("send");
        loop {
            let v = self.recv();
            if v.get("method").is_some() && v.get("id").is_none() {
                self.notes.push_back(v);
                continue;
            }
            return v;
        }
    }

    /// Reads the next text message (skipping pings).
    pub(crate) fn recv(&mut self) -> Value {
        loop {
            match self.ws.read().expect("read") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json reply"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// Calls `method` with `params` and returns the whole reply.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let reply =
            self.raw(&json!({"jsonrpc":"2.0","method":method,"params":params,"id":id}).to_string());
        assert_eq!(reply["id"], json!(id), "reply id mismatch: {reply}");
        reply
    }

    /// Authenticates with `token` and asserts success.
    pub(crate) fn auth(&mut self, token: &str) -> Value {
        let r = self.call("authenticate", json!({"auth_token": token}));
        assert_eq!(r["result"]["authenticated"], true, "{r}");
        r["result"].clone()
    }

    /// Waits up to `within` for a notification named `method` (other messages are skipped).
    pub(crate) fn wait_for(&mut self, method: &str, within: Duration) -> Option<Value> {
        if let Some(i) = self.notes.iter().position(|n| n["method"] == method) {
            return self.notes.remove(i);
        }
        let found = self.read_for(method, within);
        // Whatever the outcome, later calls wait for their replies as long as ever (a timed-out
        // wait used to leave its last, nearly spent timeout on the socket).
        if let MaybeTlsStream::Plain(s) = self.ws.get_ref() {
            s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
        }
        found
    }

    fn read_for(&mut self, method: &str, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if let MaybeTlsStream::Plain(s) = self.ws.get_ref() {
                s.set_read_timeout(Some(left)).ok();
            }
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("json");
                    if v["method"] == method {
                        return Some(v);
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Reads until the server closes; returns the close code seen (if any).
    pub(crate) fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(Some(f))) => return Some(f.code.into()),
                Ok(Message::Close(None)) => return None,
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// The error code of a reply.
pub(crate) fn code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error reply: {reply}"))
}

/// The error reason of a reply.
pub(crate) fn reason(reply: &Value) -> String {
    reply["error"]["data"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A JWT for `role` valid for an hour, signed with the test secret.
pub(crate) fn token(role: &str) -> String {
    let now = camshard::clock::now_unix();
    let role = camshard::auth::Role::parse(role).expect("role");
    camshard::auth::jwt::mint_hs256(SECRET.as_bytes(), "tester", role, now, now + 3600)
}

/// A loopback port that was free a moment ago (bound, read and released), for
/// [`TestServer::port`]. Another process could take it in between; the kernel hands out ports
/// round the ephemeral range, so that is unlikely within one test.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `f` every 50 ms until it holds or `within` passes; its last answer.
pub(crate) fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Waits (up to `REPLY_TIMEOUT`) until a local recording in progress under `data_dir` holds at
/// least `seconds` complete one-second fragments (its hidden `.…partial…` file has `seconds + 1`
/// `moof` boxes: the last one may still be open). Tests that stop or break a recording wait for
/// this instead of sleeping: on a loaded machine ffmpeg can take seconds to write its first
/// fragment, and a recording stopped before that has no media at all.
pub(crate) fn wait_recorded_fragments(data_dir: &Path, seconds: usize) -> bool {
    let dir = data_dir.join("recordings");
    wait_until(REPLY_TIMEOUT, || {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with('.') && name.contains(".partial")) {
                return false;
            }
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            bytes.windows(4).filter(|w| w == b"moof").count() > seconds
        })
    })
}

/// Whether ffmpeg decodes every frame of `path` without an error exit.
pub(crate) fn decodes(path: &Path) -> bool {
    Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

// ---- raw WebSocket helpers (frames tungstenite's client will not send) ----

/// Opens a socket and upgrades it by hand.
pub(crate) fn raw_upgrade(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s
}

/// Writes one frame (`masked` as a client must, or not, to test the refusal).
pub(crate) fn write_frame(s: &mut TcpStream, fin: bool, opcode: u8, payload: &[u8], masked: bool) {
    let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n < 65536 => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let mask = [1u8, 2, 3, 4];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    let _ = s.write_all(&f);
}

/// Reads one frame: (opcode, payload).
pub(crate) fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    let mut len = (h[1] & 0x7f) as u64;
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).ok()?;
        len = u16::from_be_bytes(b) as u64;
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).ok()?;
        len = u64::from_be_bytes(b);
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).ok()?;
    Some((h[0] & 0x0f, payload))
}

/// Reads frames until a Close and returns its code.
pub(crate) fn read_close_code(s: &mut TcpStream) -> Option<u16> {
    while let Some((opcode, payload)) = read_frame(s) {
        if opcode == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
    None
}

// ---- clients that stop reading (slow-consumer cuts) ----

/// A TCP connection to the server on `port` whose receive buffer and segment size are set as
/// small as the kernel allows *before* connecting (the window is negotiated in the handshake):
/// the server's socket fills after a few KiB instead of megabytes, so a client that stops
/// reading is felt quickly.
pub(crate) fn small_window_socket(port: u16) -> TcpStream {
    use nix::sys::socket::{
        connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    setsockopt(&fd, sockopt::RcvBuf, &1).expect("SO_RCVBUF");
    // A small MSS shrinks the send buffer the server's kernel sizes for this connection.
    let _ = setsockopt(&fd, sockopt::TcpMaxSeg, &536);
    let addr = SockaddrIn::new(127, 0, 0, 1, port);
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).expect("connect");
    TcpStream::from(fd)
}

// ---- other source addresses (per-address limits) ----

/// A TCP connection to the server on `port` from loopback source address `src` (any 127.x.y.z
/// is local on Linux, so binding to 127.0.0.2 before connecting gives the server a second
/// client address without any network setup).
pub(crate) fn connect_from(src: std::net::Ipv4Addr, port: u16) -> TcpStream {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    let [a, b, c, d] = src.octets();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(a, b, c, d, 0),
    )
    .unwrap_or_else(|e| panic!("bind {src}: {e}"));
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, port),
    )
    .expect("connect");
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
    s
}

/// A WebSocket client on the server at `port`, connecting from loopback address `src`; the
/// HTTP status of a refused upgrade, or 0 when the socket was closed without an answer.
pub(crate) fn client_from(src: std::net::Ipv4Addr, port: u16) -> Result<Client, u16> {
    let stream = connect_from(src, port);
    let url = format!("ws://127.0.0.1:{port}/ws");
    match tungstenite::client(url.as_str(), MaybeTlsStream::Plain(stream)) {
        Ok((ws, _)) => Ok(Client {
            ws,
            next_id: 1,
            notes: Default::default(),
        }),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            Err(resp.status().as_u16())
        }
        // Closed without an answer (a head-stage cap) or another failure: no status to give.
        Err(_) => Err(0),
    }
}

/// Waits (up to [`REPLY_TIMEOUT`]) until the server has closed at least `want` of `sockets`
/// (end of stream or an error; bytes received are ignored) and returns how many it closed. The
/// sockets are switched to non-blocking so the ones the server keeps open are polled, not waited
/// on.
pub(crate) fn count_closed(sockets: &[TcpStream], want: usize) -> usize {
    for c in sockets {
        c.set_nonblocking(true).expect("nonblocking");
    }
    let mut is_closed = vec![false; sockets.len()];
    let mut closed = 0;
    wait_until(REPLY_TIMEOUT, || {
        for (mut c, done) in sockets.iter().zip(is_closed.iter_mut()) {
            if *done {
                continue;
            }
            let mut b = [0u8; 64];
            *done = match c.read(&mut b) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
            closed += usize::from(*done);
        }
        closed >= want
    });
    closed
}

/// Runs the server with `toml` as its config; returns (exit code, stderr). Fails if it is still
/// running after [`REPLY_TIMEOUT`] (a configuration that should stop the start).
pub(crate) fn run_to_exit(toml: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!("[http.compat_listener]\nenabled = false\n{toml}"),
    )
    .expect("write config");
    let mut child = Command::new(bin())
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--config"])
        .arg(&cfg)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("CAMSHARD_JWT_SECRET", SECRET)
        .env("CAMSHARD_LOG_FORMAT", "text")
        .env_remove("CAMSHARD_LISTEN")
        .env_remove("CAMSHARD_TLS_ENABLED")
        .env_remove("CAMSHARD_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn camshard");
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("camshard kept running with {toml}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (code, err)
}
