//! `mediamtx-double`: runs the MediaMTX test double on fixed ports (for benchmarks and manual
//! tries). Prints `api=<url> rtsp=<url>` once listening; runs until stdin reaches EOF or the
//! process gets SIGTERM/SIGINT, then stops its children (on-demand commands, recorders).

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use mediamtx_double::{BodyStyle, Double, Options};

/// Set by the signal handler or the stdin watcher.
static QUIT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    QUIT.store(true, SeqCst);
}

const USAGE: &str = "usage: mediamtx-double [--api ADDR] [--rtsp ADDR] [--style new|old] \
                     [--write-lag-ms N] [--version V] [--user USER:PASS]";

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        api_addr: ([127, 0, 0, 1], 9997).into(),
        ..Options::default()
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("bad {what}: {v}");
        match flag.as_str() {
            "--api" => o.api_addr = v.parse().map_err(|_| bad("address"))?,
            "--rtsp" => o.rtsp_addr = Some(v.parse().map_err(|_| bad("address"))?),
            "--style" => {
                o.style = match v.as_str() {
                    "old" => BodyStyle::Old,
                    "new" => BodyStyle::New,
                    _ => return Err(bad("style")),
                }
            }
            "--write-lag-ms" => {
                o.write_lag = Duration::from_millis(v.parse().map_err(|_| bad("lag"))?)
            }
            "--version" => o.version = v.clone(),
            "--user" => {
                let (u, p) = v.split_once(':').ok_or_else(|| bad("USER:PASS"))?;
                o.api_user_pass = Some((u.to_string(), p.to_string()));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("mediamtx-double: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let d = match Double::start(opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mediamtx-double: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "api={} rtsp={}",
        d.api_url(),
        d.rtsp_url().unwrap_or_default()
    );
    std::thread::spawn(|| {
        let mut sink = [0u8; 256];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        QUIT.store(true, SeqCst);
    });
    while !QUIT.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(d);
}
