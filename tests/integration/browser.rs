//! The web console in a real browser (issue 16 part 3): Debian's Chromium, headless, driven
//! through chromedriver over WebDriver (W3C JSON over HTTP, by the small synchronous client
//! below: a `TcpStream` and serde_json, no WebDriver crate).
//!
//! One scenario, step by step, as a person would use the console: sign in, see both cameras
//! live (pixels change between two screenshots a second apart), take a snapshot and download it
//! (a JPEG of the camera's size), record about two seconds and find the recording, sign in as a
//! viewer and find no record or delete buttons, stop the server and see the console say so,
//! start it again on the same port and see the console recover by itself.
//!
//! Every step leaves a screenshot in `target/browser-screenshots/<backend>/NN-step.png` (not
//! committed) for a person to look at; a failed wait leaves `failed-<what>.png` beside them.
//!
//! Needs `chromium` and `chromium-driver` (`tests/run --deps` installs them, or `apt-get install
//! chromium chromium-driver`). Without them the test fails saying so, unless
//! `CAMSHARD_SKIP_BROWSER=1`, which skips it with a printed notice.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, free_port, token, Server, TestServer};

/// How long a step waits for the page to show what it expects: generous (a loaded CI machine,
/// two runtimes' builds, ffmpeg and Chromium on two cores); every wait polls for an event.
const STEP: Duration = Duration::from_secs(30);
/// The W3C name of an element reference in WebDriver replies.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The two cameras: different sizes, so the download check knows which one it got.
const CAMERAS: &str = "[cameras]\ndiscovery = false\n\
    [[cameras.synthetic]]\nname = \"Lobby\"\nwidth = 640\nheight = 480\nfps = 15\n\
    [[cameras.synthetic]]\nname = \"Yard\"\nwidth = 320\nheight = 240\nfps = 10\n";

/// The browser's programs: Debian's `chromium` (its launcher script) and `chromedriver`.
struct Programs {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// `name` on the `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The programs, or `None` when they are missing and `CAMSHARD_SKIP_BROWSER=1` says to skip;
/// missing without it is a failure that says how to install them.
fn programs() -> Option<Programs> {
    let (chromium, chromedriver) = (which("chromium"), which("chromedriver"));
    if let (Some(chromium), Some(chromedriver)) = (chromium.clone(), chromedriver.clone()) {
        return Some(Programs {
            chromium,
            chromedriver,
        });
    }
    let missing: Vec<&str> = [("chromium", chromium), ("chromedriver", chromedriver)]
        .into_iter()
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| n)
        .collect();
    if std::env::var("CAMSHARD_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!(
            "browser test SKIPPED (CAMSHARD_SKIP_BROWSER=1): {} not found",
            missing.join(" and ")
        );
        return None;
    }
    panic!(
        "the browser test needs {} on the PATH: install them with `tests/run --deps` (or \
         `apt-get install chromium chromium-driver`), or set CAMSHARD_SKIP_BROWSER=1 to skip it",
        missing.join(" and ")
    );
}

// ---------------------------------------------------------------- a minimal WebDriver client

/// A running chromedriver (killed on drop).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(chromedriver: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let d = Driver { child, port };
        let ready = common::wait_until(STEP, || {
            d.request("GET", "/status", None)
                .is_ok_and(|v| v["ready"] == true)
        });
        assert!(ready, "chromedriver did not become ready on port {port}");
        d
    }

    /// One WebDriver command: `Ok(value)` or `Err(the error object)`.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Value> {
        let mut s =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| json!(e.to_string()))?;
        s.set_read_timeout(Some(common::REPLY_TIMEOUT)).ok();
        let body = body.map(Value::to_string).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(req.as_bytes())
            .map_err(|e| json!(e.to_string()))?;
        // chromedriver keeps the connection open whatever the request says: read by length.
        let out = common::read_response(&mut s);
        if !out.windows(4).any(|w| w == b"\r\n\r\n") {
            return Err(json!("no answer from chromedriver"));
        }
        let (status, _, body) = common::split_response(&out);
        let v: Value = serde_json::from_slice(&body).map_err(|e| json!(e.to_string()))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if status == 200 {
            Ok(value)
        } else {
            Err(value)
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session: headless Chromium with a fresh profile.
struct Browser {
    driver: Driver,
    session: String,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    fn open(programs: &Programs) -> Browser {
        let driver = Driver::start(&programs.chromedriver);
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
            "--window-size=1280,900".into(),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": programs.chromium, "args": args},
        }}});
        let v = driver
            .request("POST", "/session", Some(&caps))
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
        let session = v["sessionId"].as_str().expect("sessionId").to_string();
        // target/browser-screenshots/<backend>/: CARGO_TARGET_TMPDIR is target/tmp.
        let backend = std::env::var("CAMSHARD_RUNTIME").unwrap_or_else(|_| "auto".into());
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .join("browser-screenshots")
            .join(backend);
        // This run's pictures only: an earlier run's (a failure's above all) would mislead.
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser {
            driver,
            session,
            _profile: profile,
            shots,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let path = format!("/session/{}{path}", self.session);
        self.driver.request(method, &path, body.as_ref())
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.cmd(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed: {e}"))
    }

    fn goto(&self, url: &str) {
        self.ok("POST", "/url", Some(json!({"url": url})));
    }

    /// Every element matching `css` (ids, in document order).
    fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.ok(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs `script` in the page with `args`; its return value.
    fn js(&self, script: &str, args: Value) -> Value {
        self.ok(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// True when an element matches `css` and is displayed (not `hidden`, not display:none).
    fn visible(&self, css: &str) -> bool {
        self.js(
            "const e = document.querySelector(arguments[0]); \
             return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';",
            json!([css]),
        ) == true
    }

    fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Clicks the first element matching `css` (as a user would: WebDriver scrolls it into view
    /// and fails if something covers it).
    /// Retried while the element is missing, not yet interactable or covered (a toast sliding
    /// by, a layout still settling).
    fn click(&self, css: &str) {
        self.wait(&format!("{css} to take a click"), || {
            let Some(el) = self.find_all(css).into_iter().next() else {
                return false;
            };
            self.cmd("POST", &format!("/element/{el}/click"), Some(json!({})))
                .is_ok()
        });
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.find_all(css).into_iter().next().expect(css);
        self.ok("POST", &format!("/element/{el}/clear"), Some(json!({})));
        self.ok(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        );
    }

    /// The PNG of the element matching `css`, as the page draws it now.
    fn element_png(&self, css: &str) -> Vec<u8> {
        let el = self.find_all(css).into_iter().next().expect(css);
        let b64 = self.ok("GET", &format!("/element/{el}/screenshot"), None);
        base64_decode(b64.as_str().expect("base64 screenshot"))
    }

    /// Saves a screenshot of the whole window as `<name>.png`.
    fn shot(&self, name: &str) {
        if let Ok(v) = self.cmd("GET", "/screenshot", None) {
            if let Some(b64) = v.as_str() {
                let _ = std::fs::write(self.shots.join(format!("{name}.png")), base64_decode(b64));
            }
        }
    }

    /// Polls `f` until it gives `Some` (within [`STEP`]); on timeout, saves a screenshot and
    /// fails naming `what` and what the page showed.
    fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() >= deadline {
                let name: String = what
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                self.shot(&format!("failed-{name}"));
                let page = self.js(
                    "return document.querySelector('#conn-text').textContent + ' | ' + \
                     document.body.innerText.slice(0, 1500);",
                    json!([]),
                );
                panic!("timed out waiting for {what}; the page shows: {page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait(&self, what: &str, mut f: impl FnMut() -> bool) {
        self.wait_for(what, || f().then_some(()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.cmd("DELETE", "", None);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("valid base64")
}

/// A decoded screenshot: its size and one `Vec` of pixels (each `bpp` bytes).
struct Pixels {
    width: u32,
    height: u32,
    bpp: usize,
    data: Vec<u8>,
}

/// Decodes a PNG screenshot. Pixels are compared decoded, not as PNG bytes: two encodings of
/// one picture could differ, two of different pictures cannot be equal.
fn pixels(png_bytes: &[u8]) -> Pixels {
    let decoder = png::Decoder::new(png_bytes);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut data = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut data).expect("PNG frame");
    data.truncate(info.buffer_size());
    let bpp = (data.len() / (info.width as usize * info.height as usize).max(1)).max(1);
    Pixels {
        width: info.width,
        height: info.height,
        bpp,
        data,
    }
}

impl Pixels {
    /// True when at least a tenth of the pixels differ from the first one: a picture, not a
    /// black (or any one-colour) box.
    fn has_picture(&self) -> bool {
        let first = &self.data[..self.bpp.min(self.data.len())];
        let pixels = self.data.chunks(self.bpp);
        let n = pixels.len();
        pixels.filter(|p| *p != first).count() > n / 10
    }
}

/// GETs an absolute `http://127.0.0.1:PORT/...` URL: (status, head, body).
fn get_url(url: &str) -> (u16, String, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(authority).expect("connect");
    s.set_read_timeout(Some(common::REPLY_TIMEOUT)).ok();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n").expect("write");
    common::split_response(&common::read_response(&mut s))
}

// ---------------------------------------------------------------- the scenario

fn start_server(root: &Path, port: u16) -> Server {
    TestServer::new()
        .config(CAMERAS)
        .dirs_under(root)
        .port(port)
        .start()
}

fn sign_in(b: &Browser, token: &str) {
    b.wait("the sign-in form", || b.visible("#signin-form"));
    b.type_into("#token", token);
    b.click("#signin-button");
    b.wait("connected", || {
        b.text("#conn-text") == "Connected" && b.visible("#app")
    });
}

fn tile(device: &str) -> String {
    format!(".tile[data-device=\"{device}\"]")
}

/// Waits until both tiles show a live picture, then checks that each changes: two element
/// screenshots at least a second apart must differ in their pixels.
fn both_tiles_live(b: &Browser) {
    for cam in ["camera0", "camera1"] {
        b.wait(&format!("{cam} playing"), || {
            b.js(
                "const i = document.querySelector(arguments[0]); \
                 return !!i && i.complete && i.naturalWidth > 0 && \
                 i.closest('.tile').classList.contains('playing');",
                json!([format!("{} img.live", tile(cam))]),
            ) == true
        });
    }
    for cam in ["camera0", "camera1"] {
        let css = format!("{} .view", tile(cam));
        let first = pixels(&b.element_png(&css));
        let (w, h) = (first.width, first.height);
        assert!(w > 100 && h > 70, "{cam} tile is {w}x{h}");
        assert!(first.has_picture(), "{cam} shows no picture");
        let taken = Instant::now();
        b.wait(&format!("{cam} pixels to change"), || {
            if taken.elapsed() < Duration::from_secs(1) {
                return false;
            }
            let second = pixels(&b.element_png(&css));
            (second.width, second.height) == (w, h) && second.data != first.data
        });
    }
}

#[test]
fn the_console_in_a_real_browser() {
    let Some(programs) = programs() else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut server = start_server(root.path(), port);
    let b = Browser::open(&programs);
    let base = format!("http://127.0.0.1:{port}");

    // 1. The page, then sign in as admin with a JWT.
    b.goto(&format!("{base}/"));
    b.wait("the sign-in page", || b.visible("#signin-form"));
    b.shot("01-sign-in");
    sign_in(&b, &token("admin"));
    b.wait("two tiles", || b.find_all(".tile").len() == 2);
    assert_eq!(b.text(&format!("{} .res", tile("camera1"))), "320x240");

    // 2. Both cameras live.
    both_tiles_live(&b);
    b.shot("02-live");

    // 3. A snapshot: it appears in the list, and its download is a JPEG of camera0's size.
    b.click(&format!("{} .snap", tile("camera0")));
    b.click(".tab[data-tab=\"snapshots\"]");
    let href = b.wait_for("the snapshot in the list", || {
        b.js(
            "const a = document.querySelector('#snapshots tr[data-file^=\"camera0_snapshot_\"] a.download'); \
             return a ? a.href : null;",
            json!([]),
        )
        .as_str()
        .map(str::to_string)
    });
    b.shot("03-snapshot");
    let (status, head, body) = get_url(&href);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/jpeg"),
        "{head}"
    );
    let mut jpeg = jpeg_decoder::Decoder::new(body.as_slice());
    jpeg.read_info().expect("a JPEG");
    let info = jpeg.info().expect("JPEG info");
    assert_eq!((info.width, info.height), (640, 480));

    // 4. A recording of about two seconds on camera1, with the timer running.
    b.click(".tab[data-tab=\"recordings\"]");
    b.click(&format!("{} .rec-start", tile("camera1")));
    b.wait("the recording timer", || {
        b.visible(&format!("{} .rec-badge", tile("camera1")))
            && b.text(&format!("{} .rec-timer", tile("camera1"))).as_str() >= "00:01"
    });
    assert!(common::wait_recorded_fragments(
        &root.path().join("data"),
        2
    ));
    b.shot("04-recording");
    b.click(&format!("{} .rec-stop", tile("camera1")));
    let name = b.wait_for("the recording in the list", || {
        b.js(
            "const r = document.querySelector('#recordings tr[data-file^=\"camera1_\"]'); \
             return r ? r.dataset.file : null;",
            json!([]),
        )
        .as_str()
        .map(str::to_string)
    });
    assert!(name.ends_with(".mp4"), "{name}");
    b.wait("the timer to go", || {
        !b.visible(&format!("{} .rec-badge", tile("camera1")))
    });
    assert!(
        !b.find_all("#recordings button.delete").is_empty(),
        "an admin can delete"
    );
    b.shot("05-recorded");

    // 5. A viewer sees the cameras and files but no record, snapshot or delete button.
    b.click("#signout");
    sign_in(&b, &token("viewer"));
    b.wait("the viewer's file list", || {
        !b.find_all("#recordings tr[data-file] a.download")
            .is_empty()
    });
    both_tiles_live(&b);
    for css in ["button.delete", ".rec-start", ".rec-stop", ".snap"] {
        assert!(b.find_all(css).is_empty(), "a viewer has no {css}");
    }
    assert_eq!(b.text("#who-role"), "viewer");
    b.shot("06-viewer");

    // 6. The server goes away: the console says so.
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(
        server.wait_exit(common::REPLY_TIMEOUT).is_some(),
        "server stopped"
    );
    drop(server);
    b.wait("the console to say the server is unreachable", || {
        b.visible("#banner") && b.text("#banner").contains("unreachable")
    });
    assert_eq!(
        b.js(
            "return document.querySelector('#conn').dataset.state;",
            json!([])
        ),
        "down"
    );
    b.shot("07-server-down");

    // 7. A server on the same port again: the console reconnects, signs in and plays by itself.
    let server = start_server(root.path(), port);
    b.wait("the console to reconnect", || {
        b.text("#conn-text") == "Connected" && !b.visible("#banner")
    });
    both_tiles_live(&b);
    b.shot("08-recovered");

    // 8. On a phone-sized window nothing is wider than the screen.
    b.ok(
        "POST",
        "/window/rect",
        Some(json!({"width": 390, "height": 844})),
    );
    b.wait("a one-column layout", || {
        b.js(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            json!([]),
        ) == true
    });
    b.shot("09-phone");
    drop(server);
}
