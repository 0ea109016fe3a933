//! camshard-live-bench: live MJPEG viewers against one camshard camera (issue 16, part 4).
//!
//! Starts a camshard (`--camshard PATH`) with one synthetic camera (640x480 at 15 fps by
//! default) and live limits out of the way, or uses a running one (`--addr` + `--token`), then
//! for each viewer count of `--viewers` opens that many `GET /live/camera0.mjpg` streams from
//! loopback, one blocking std thread each (reading is all a viewer does), parses the multipart
//! framing exactly (boundary, part headers, `Content-Length` bytes, SOI/EOI) and records when
//! each frame completed. After `--warmup` seconds it measures for `--duration` seconds:
//!
//! - frames per second delivered to each viewer (p50, p10 and worst over viewers),
//! - bytes per second over all viewers,
//! - server CPU (utime + stime from `/proc/<pid>/stat`) and this client's CPU, in % of one core,
//! - the camera's own delivered rate over the window (`camshard_camera_frames_total`), so a
//!   viewer below the camera's nominal rate can be told from a camera that was late itself,
//! - with `--paused-at N`, one more run at N viewers plus `--paused` viewers that read the
//!   response head and then stop reading: the others' rates show what a stalled viewer costs,
//!   and "cut" says whether the server had closed the paused ones by the end
//!   (`server.slow_consumer_cut_s`, 10 s).
//!
//! Loopback only; every phase is bounded in time. Prints one markdown table row per run and,
//! with `--json`, writes every run's numbers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camshard_bench::http::get;
use camshard_bench::procstat::{cpu_percent, Sample};
use camshard_bench::server::{self, free_port};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "camshard-live-bench",
    about = "Live MJPEG viewers against one camshard camera"
)]
struct Args {
    /// camshard binary to start (ignored with --addr).
    #[arg(long, default_value = "target/release/camshard")]
    camshard: String,
    /// A running server (127.0.0.1:PORT) instead of starting one; needs --token and
    /// --server-pid for CPU figures.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Viewer token (Bearer) for --addr; a started server gets one minted.
    #[arg(long, default_value = "")]
    token: String,
    /// Server pid for CPU figures with --addr.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Viewer counts, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,50,200")]
    viewers: Vec<usize>,
    /// Also run this viewer count with --paused viewers that stop reading (0 = no such run).
    #[arg(long, default_value_t = 200)]
    paused_at: usize,
    /// Paused viewers in that run.
    #[arg(long, default_value_t = 1)]
    paused: usize,
    /// Camera size and rate of the started server's synthetic camera.
    #[arg(long, default_value_t = 640)]
    width: u32,
    #[arg(long, default_value_t = 480)]
    height: u32,
    #[arg(long, default_value_t = 15)]
    fps: u32,
    /// Shards of the started server (0 = one per core).
    #[arg(long, default_value_t = 0)]
    shards: usize,
    /// Runtime backend of the started server (auto, uring, epoll).
    #[arg(long, default_value = "auto")]
    runtime: String,
    /// Seconds before measuring (viewers connected and receiving).
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 12)]
    duration: u64,
    /// Write all runs as JSON here.
    #[arg(long)]
    json: Option<String>,
}

/// What one viewer thread saw.
#[derive(Default, Clone)]
struct Seen {
    /// Completion times of every frame.
    frames: Vec<Instant>,
    /// (time, bytes) of every frame, framing included.
    bytes: Vec<(Instant, usize)>,
    error: Option<String>,
}

/// A started server, killed on drop.
struct Server {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SECRET: &str = "live-bench-secret-0123456789abcdef0123";

fn start_server(a: &Args) -> Result<(Server, SocketAddr, String), String> {
    let dir = std::env::temp_dir().join(format!("camshard-live-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cfg = dir.join("live.toml");
    // One loopback client: the per-address caps and the head-stage cap would count every viewer
    // as one client; the viewer caps are raised above the largest run.
    let toml = format!(
        "[server]\nmax_connections_per_ip = 0\nmax_handshakes_per_ip = 0\n\
         [http.compat_listener]\nenabled = false\n\
         [cameras]\ndiscovery = false\n\
         [[cameras.synthetic]]\nname = \"Bench\"\nwidth = {}\nheight = {}\nfps = {}\n\
         [live]\nmax_viewers = 4096\nmax_viewers_per_camera = 4096\nmax_viewers_per_ip = 0\n",
        a.width, a.height, a.fps
    );
    std::fs::write(&cfg, toml).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let mut cmd = server::command(&a.camshard, &cfg, &dir, port, &a.runtime, SECRET);
    if a.shards > 0 {
        cmd.args(["--shards", &a.shards.to_string()]);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("start {}: {e}", a.camshard))?;
    let server = Server { child, dir };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    if !server::wait_healthy(addr, Duration::from_secs(20)) {
        return Err("server not ready within 20 s".into());
    }
    let token = server::mint(&a.camshard, &server.dir.join("state"), "viewer", SECRET)?;
    Ok((server, addr, token))
}

/// A sum over `/metrics` lines starting with `prefix`.
fn metric(addr: SocketAddr, prefix: &str) -> f64 {
    get(addr, "/metrics", "")
        .map(|(_, body)| {
            body.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0)
}

/// A TCP connection to `addr`, with SO_RCVBUF set to `rcvbuf` bytes before connecting when
/// given (so the window it advertises stays that small).
fn connect(addr: SocketAddr, rcvbuf: Option<usize>) -> Result<TcpStream, String> {
    let Some(size) = rcvbuf else {
        return TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| e.to_string());
    };
    let SocketAddr::V4(v4) = addr else {
        return Err("IPv4 only".into());
    };
    // SAFETY: plain socket syscalls on a descriptor created here and handed to TcpStream once;
    // every pointer is to a live stack value of the stated size.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let v = size as libc::c_int;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        if libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) != 0
        {
            return Err(std::io::Error::last_os_error().to_string());
        }
        Ok(stream)
    }
}

/// Opens a stream and reads its head; the reader is positioned at the first boundary.
fn open(
    addr: SocketAddr,
    token: &str,
    rcvbuf: Option<usize>,
) -> Result<BufReader<TcpStream>, String> {
    let mut s = connect(addr, rcvbuf)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /live/camera0.mjpg HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut r = BufReader::with_capacity(64 * 1024, s);
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(format!("answer: {}", line.trim()));
    }
    loop {
        line.clear();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        if line == "\r\n" || line.is_empty() {
            return Ok(r);
        }
    }
}

/// Reads one part; its size with framing.
fn read_part(r: &mut BufReader<TcpStream>, jpeg: &mut Vec<u8>) -> Result<usize, String> {
    let mut line = String::new();
    let mut used = 0;
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    if line != "--camshardframe\r\n" {
        return Err(format!("boundary expected, got {line:?}"));
    }
    used += line.len();
    let mut len = None;
    loop {
        line.clear();
        let n = r.read_line(&mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("end of stream".into());
        }
        used += n;
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line
            .to_ascii_lowercase()
            .strip_prefix("content-length:")
            .map(|v| v.trim().to_string())
        {
            len = v.parse::<usize>().ok();
        }
    }
    let len = len.ok_or("part without Content-Length")?;
    jpeg.resize(len + 2, 0);
    r.read_exact(jpeg).map_err(|e| e.to_string())?;
    if jpeg[..2] != [0xFF, 0xD8] || jpeg[len - 2..len] != [0xFF, 0xD9] || &jpeg[len..] != b"\r\n" {
        return Err("bad JPEG or part end".into());
    }
    Ok(used + len + 2)
}

fn viewer(addr: SocketAddr, token: String, stop: Arc<AtomicBool>, out: Arc<Mutex<Seen>>) {
    let mut seen = Seen::default();
    match open(addr, &token, None) {
        Err(e) => seen.error = Some(e),
        Ok(mut r) => {
            let mut jpeg = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match read_part(&mut r, &mut jpeg) {
                    Ok(n) => {
                        let t = Instant::now();
                        seen.frames.push(t);
                        seen.bytes.push((t, n));
                    }
                    Err(e) => {
                        seen.error = Some(e);
                        break;
                    }
                }
            }
        }
    }
    *out.lock().unwrap_or_else(|p| p.into_inner()) = seen;
}

/// Opens a stream, reads its head, then reads nothing more until `stop`. Its receive buffer is
/// small (16 KiB), so the server's writes to it block within a second, as for a client whose
/// buffers are full; with default buffers on loopback the kernel would absorb ~30 s of frames
/// first. Then drains what is buffered: `Ok(true)` when the server had closed the stream (cut
/// for not reading). Draining is bounded: a stream still open is given 3 s.
fn paused_viewer(addr: SocketAddr, token: String, stop: Arc<AtomicBool>) -> Result<bool, String> {
    let mut r = open(addr, &token, Some(16 * 1024))?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = r
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match r.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            // Reset after the server's close, or nothing within 500 ms (still open).
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(true),
            Err(_) => return Ok(false),
        }
    }
    Ok(false)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct RunResult {
    viewers: usize,
    paused: usize,
    p50: f64,
    p10: f64,
    worst: f64,
    mbytes_per_s: f64,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
    errors: usize,
    server_frames_per_s: f64,
    camera_fps: f64,
    /// Paused viewers the server had cut by the end of the run.
    paused_cut: usize,
}

fn run(
    a: &Args,
    addr: SocketAddr,
    token: &str,
    pid: Option<u32>,
    n: usize,
    paused: usize,
) -> RunResult {
    let stop = Arc::new(AtomicBool::new(false));
    let mut slots = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..n {
        let slot = Arc::new(Mutex::new(Seen::default()));
        slots.push(slot.clone());
        let (stop, token) = (stop.clone(), token.to_string());
        threads.push(
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || viewer(addr, token, stop, slot))
                .expect("spawn viewer"),
        );
    }
    let mut paused_threads = Vec::new();
    for _ in 0..paused {
        let (stop, token) = (stop.clone(), token.to_string());
        paused_threads.push(std::thread::spawn(move || paused_viewer(addr, token, stop)));
    }
    std::thread::sleep(Duration::from_secs(a.warmup));
    let sent0 = metric(addr, "camshard_live_frames_sent_total");
    let cam0 = metric(addr, "camshard_camera_frames_total{camera=\"camera0\"}");
    let s0 = pid.map(Sample::take);
    let c0 = Sample::take(std::process::id());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(a.duration));
    let t1 = Instant::now();
    let s1 = pid.map(Sample::take);
    let c1 = Sample::take(std::process::id());
    let sent1 = metric(addr, "camshard_live_frames_sent_total");
    let cam1 = metric(addr, "camshard_camera_frames_total{camera=\"camera0\"}");
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let mut errors = 0;
    let mut paused_cut = 0;
    for t in paused_threads {
        match t.join() {
            Ok(Ok(cut)) => paused_cut += usize::from(cut),
            Ok(Err(e)) => {
                eprintln!("paused viewer: {e}");
                errors += 1;
            }
            Err(_) => errors += 1,
        }
    }
    let secs = (t1 - t0).as_secs_f64();
    let mut rates = Vec::new();
    let mut bytes = 0usize;
    for slot in &slots {
        let seen = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(e) = &seen.error {
            // A stream that failed or ended before the run stopped it.
            eprintln!("viewer: {e}");
            errors += 1;
        }
        let in_window = seen.frames.iter().filter(|t| **t >= t0 && **t < t1).count();
        rates.push(in_window as f64 / secs);
        bytes += seen
            .bytes
            .iter()
            .filter(|(t, _)| *t >= t0 && *t < t1)
            .map(|(_, b)| b)
            .sum::<usize>();
    }
    rates.sort_by(|x, y| x.total_cmp(y));
    RunResult {
        viewers: n,
        paused,
        p50: percentile(&rates, 0.5),
        p10: percentile(&rates, 0.1),
        worst: rates.first().copied().unwrap_or(0.0),
        mbytes_per_s: bytes as f64 / secs / 1e6,
        server_cpu: s0.zip(s1).and_then(|(a, b)| cpu_percent(&a, &b)),
        client_cpu: cpu_percent(&c0, &c1),
        errors,
        server_frames_per_s: (sent1 - sent0) / secs,
        camera_fps: (cam1 - cam0) / secs,
        paused_cut,
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "–".into())
}

fn main() {
    let a = Args::parse();
    let (server, addr, token, pid) = match a.addr {
        Some(addr) => {
            if !addr.ip().is_loopback() {
                eprintln!("--addr must be a loopback address");
                std::process::exit(2);
            }
            (None, addr, a.token.clone(), a.server_pid)
        }
        None => match start_server(&a) {
            Ok((s, addr, token)) => {
                let pid = s.child.id();
                (Some(s), addr, token, Some(pid))
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
    };
    let mut plan: Vec<(usize, usize)> = a.viewers.iter().map(|n| (*n, 0)).collect();
    if a.paused_at > 0 && a.paused > 0 {
        plan.push((a.paused_at, a.paused));
    }
    println!(
        "camera {}x{} at {} fps; {} s warm-up + {} s measured per run",
        a.width, a.height, a.fps, a.warmup, a.duration
    );
    println!("| viewers | paused (cut) | camera fps | fps p50 | fps p10 | fps worst | MB/s (all viewers) | frames/s sent (server) | server CPU | client CPU | errors |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut results = Vec::new();
    for (n, paused) in plan {
        // Every earlier viewer gone before the next run starts.
        let deadline = Instant::now() + Duration::from_secs(30);
        while metric(addr, "camshard_live_viewers") > 0.0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let r = run(&a, addr, &token, pid, n, paused);
        println!(
            "| {} | {} ({}) | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} | {} |",
            r.viewers,
            r.paused,
            r.paused_cut,
            r.camera_fps,
            r.p50,
            r.p10,
            r.worst,
            r.mbytes_per_s,
            r.server_frames_per_s,
            pct(r.server_cpu),
            pct(r.client_cpu),
            r.errors
        );
        results.push(r);
    }
    if let Some(path) = &a.json {
        let runs: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "viewers": r.viewers, "paused": r.paused, "fps_p50": r.p50, "fps_p10": r.p10,
                    "fps_worst": r.worst, "mbytes_per_s": r.mbytes_per_s,
                    "server_frames_per_s": r.server_frames_per_s,
                    "camera_fps": r.camera_fps, "paused_cut": r.paused_cut,
                    "server_cpu_percent": r.server_cpu, "client_cpu_percent": r.client_cpu,
                    "errors": r.errors,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "camera": {"width": a.width, "height": a.height, "fps": a.fps},
            "warmup_s": a.warmup, "duration_s": a.duration, "runs": runs,
        });
        if let Err(e) = std::fs::write(path, doc.to_string()) {
            eprintln!("{path}: {e}");
        }
    }
    drop(server);
}
