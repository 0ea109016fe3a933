//! `mediamtx-double`: runs the MediaMTX test double on fixed ports (for benchmarks and manual
//! tries). Prints `api=<url> rtsp=<url>` once listening; runs until stdin closes or SIGTERM.

use std::io::Read;
use std::time::Duration;

use mediamtx_double::{BodyStyle, Double, Options};

fn main() {
    let mut o = Options::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--api" => o.api_addr = v.parse().unwrap_or(o.api_addr),
            "--rtsp" => o.rtsp_addr = v.parse().ok(),
            "--style" => {
                o.style = if v == "old" {
                    BodyStyle::Old
                } else {
                    BodyStyle::New
                }
            }
            "--write-lag-ms" => o.write_lag = Duration::from_millis(v.parse().unwrap_or(0)),
            "--version" => o.version = v,
            other => {
                eprintln!("usage: mediamtx-double [--api ADDR] [--rtsp ADDR] [--style new|old] [--write-lag-ms N] [--version V] (unknown {other})");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let d = match Double::start(o) {
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
    // Until stdin closes (or the process is killed).
    let mut sink = [0u8; 64];
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    drop(d);
}
