//! The edge of the fleet with real parts (issue 18, items 5 and 6): one `nats-server -js`,
//! three camshard hosts `A`, `B`, `C` (two synthetic cameras each, `heartbeat_s = 1`), and
//! Debian's `haproxy` in front of them on one loopback address, run with the configuration of
//! `config/haproxy-fleet.cfg` itself (rendered for these hosts by [`render_haproxy_example`]), so
//! the example operators copy is what is tested.
//!
//! Each host's `http.public_base_url` is its prefix on HAProxy (`http://127.0.0.1:<port>/<host>`),
//! as the example tells operators to set it: the download URLs a host hands out and the
//! inventory's `api_url`/`download_base` point through HAProxy. A killed host is asserted
//! against the host-down design of docs/operations.md ("A dead host"): `fleet.host_offline` from
//! the live host with the lowest id, events of a NATS outage published in order afterwards.
//!
//! `haproxy` and `nats-server` are test dependencies (`tests/run --deps` installs both); without
//! them these tests fail naming the install command, unless `CAMSHARD_SKIP_FLEET=1` skips them.

use std::cell::{Ref, RefCell};
use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::common::{
    free_port, read_response, split_response, token, wait_until, Client, Server, TestServer,
    REPLY_TIMEOUT,
};
use crate::fleet::{error_code, metric, Listener, Nats, CAMERAS, WITHIN};

/// The example operators copy; the tests run exactly this, rendered for their hosts.
const HAPROXY_EXAMPLE: &str = include_str!("../../config/haproxy-fleet.cfg");

/// The hosts of the scenario, in the order they start.
const HOSTS: [&str; 3] = ["A", "B", "C"];

/// The heartbeat of every host, seconds: the inventory's TTL is three of them.
const HEARTBEAT_S: u64 = 1;

/// `config/haproxy-fleet.cfg` for `hosts` (host id, loopback port) behind `127.0.0.1:port`:
/// the example's `bind :8080` is bound to that address, and its first backend
/// (`camshard_rack1`, up to the next blank line) is the template of one backend per host, with
/// `rack1` and its address replaced. Everything else — defaults, the frontend's routing, the
/// 404 backend — is the example verbatim.
pub(crate) fn render_haproxy_example(port: u16, hosts: &[(&str, u16)]) -> String {
    const BIND: &str = "    bind :8080\n";
    const FIRST: &str = "backend camshard_rack1\n";
    assert_eq!(HAPROXY_EXAMPLE.matches(BIND).count(), 1, "one bind line");
    let start = HAPROXY_EXAMPLE
        .find(FIRST)
        .expect("the example has backend camshard_rack1");
    let (head, rest) = HAPROXY_EXAMPLE.split_at(start);
    let template = rest.split("\n\n").next().unwrap_or(rest);
    assert!(template.contains("10.0.0.11:8002"), "{template}");
    // The comment just above the first backend belongs to the head; the backends follow.
    let mut out = head.replacen(BIND, &format!("    bind 127.0.0.1:{port}\n"), 1);
    for (host, host_port) in hosts {
        out.push_str(
            &template
                .replace("10.0.0.11:8002", &format!("127.0.0.1:{host_port}"))
                .replace("rack1", host),
        );
        out.push_str("\n\n");
    }
    out
}

/// An `haproxy -db` (foreground, no daemon) on a loopback port with a generated configuration,
/// killed (by its PID) on drop.
pub(crate) struct Haproxy {
    child: Child,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts one on `port` with `cfg`, and waits until it accepts; `None` when skipped.
    pub(crate) fn start(port: u16, cfg: &str) -> Option<Haproxy> {
        let program = crate::fleet::fleet_program("haproxy")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("write haproxy.cfg");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log file");
        let child = Command::new(program)
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn haproxy");
        let mut h = Haproxy {
            child,
            port,
            _dir: dir,
        };
        let up = wait_until(WITHIN, || {
            if let Ok(Some(status)) = h.child.try_wait() {
                let log = std::fs::read_to_string(h._dir.path().join("haproxy.log"));
                panic!(
                    "haproxy exited ({status}): {}\n{cfg}",
                    log.unwrap_or_default()
                );
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "haproxy did not listen on {port}");
        Some(h)
    }

    /// `GET path` through HAProxy: (status, head, body bytes).
    pub(crate) fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect haproxy");
        s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("write");
        split_response(&read_response(&mut s))
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scenario's parts: NATS, the three hosts (`None` once killed), HAProxy in front, and a
/// NATS client for the test.
///
/// Hosts and NATS are behind `RefCell`s so that a test can keep the listener's runtime entered
/// (a borrow of the listener) while it kills a host or restarts NATS.
struct Fleet {
    // Dropped in this order: the listener first (its runtime), the hosts, then NATS.
    listener: Listener,
    hosts: RefCell<Vec<Option<Server>>>,
    haproxy: Haproxy,
    nats: RefCell<Nats>,
}

impl Fleet {
    /// Starts NATS, the hosts A, B, C (each with `public_base_url` on HAProxy's port, picked
    /// first) and HAProxy rendered from the example; `None` when the fleet tests are skipped.
    fn start() -> Option<Fleet> {
        // Both programs are looked up first, so a skip skips before anything starts.
        crate::fleet::fleet_program("haproxy")?;
        let nats = Nats::start()?;
        let proxy_port = free_port();
        let hosts: Vec<Server> = HOSTS
            .iter()
            .map(|id| {
                TestServer::new()
                    .config(&format!(
                        "{CAMERAS}[http]\npublic_base_url = \"http://127.0.0.1:{proxy_port}/{id}\"\n\
                         [fleet]\nenabled = true\nservers = [\"{}\"]\nhost_id = \"{id}\"\n\
                         heartbeat_s = {HEARTBEAT_S}\n",
                        nats.url()
                    ))
                    .start()
            })
            .collect();
        let backends: Vec<(&str, u16)> = HOSTS
            .iter()
            .copied()
            .zip(hosts.iter().map(|h| h.port))
            .collect();
        let haproxy = Haproxy::start(proxy_port, &render_haproxy_example(proxy_port, &backends))?;
        let listener = Listener::connect(&nats);
        Some(Fleet {
            listener,
            hosts: RefCell::new(hosts.into_iter().map(Some).collect()),
            haproxy,
            nats: RefCell::new(nats),
        })
    }

    /// Host `id` (panics once it was killed).
    fn host(&self, id: &str) -> Ref<'_, Server> {
        let i = index(id);
        Ref::map(self.hosts.borrow(), |h| {
            h[i].as_ref().expect("host still running")
        })
    }

    /// SIGKILLs host `id`: no shutdown, no goodbye on NATS.
    fn kill(&self, id: &str) {
        let gone = self.hosts.borrow_mut()[index(id)].take();
        if let Some(mut s) = gone {
            s.kill();
        }
    }

    /// The inventory keys of `hosts`' two cameras each, sorted as the bucket lists them.
    fn keys_of(hosts: &[&str]) -> Vec<String> {
        let mut keys: Vec<String> = hosts
            .iter()
            .flat_map(|h| [format!("{h}.camera0"), format!("{h}.camera1")])
            .collect();
        keys.sort();
        keys
    }

    /// A JSON-RPC request on `camshard.<host>.rpc` with these headers.
    fn rpc(&self, host: &str, headers: &[(&str, &str)], method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        self.listener
            .request(&format!("camshard.{host}.rpc"), headers, &body.to_string())
    }

    /// `take_snapshot` of `device` on `host` through NATS with an operator bearer header,
    /// retried until the camera is up; the result.
    fn snapshot_over_nats(&self, host: &str, device: &str) -> Value {
        let operator = format!("Bearer {}", token("operator"));
        let mut last = Value::Null;
        let ok = wait_until(WITHIN, || {
            last = self.rpc(
                host,
                &[("Authorization", &operator)],
                "take_snapshot",
                json!({"device": device}),
            );
            last.get("result").is_some()
        });
        assert!(ok, "take_snapshot on {host}: {last}");
        last["result"].clone()
    }
}

impl Listener {
    /// Publishes `body` on `subject` and flushes; an error (NATS away) is ignored: the caller
    /// waits for what the message should cause.
    fn publish(&self, subject: &str, body: &Value) {
        let client = self.client.clone();
        let (subject, body) = (subject.to_string(), body.to_string());
        self.rt.block_on(async move {
            let _ = client.publish(subject, body.into()).await;
            let _ = client.flush().await;
        });
    }
}

/// The position of host `id` in [`HOSTS`].
fn index(id: &str) -> usize {
    HOSTS
        .iter()
        .position(|h| *h == id)
        .expect("a host of the scenario")
}

/// The fields of an inventory entry that must survive anything but the host's own change.
fn identity(entry: &Value) -> Value {
    json!({
        "host": entry["host"],
        "device": entry["camera"]["device"],
        "api_url": entry["api_url"],
        "download_base": entry["download_base"],
    })
}

/// The whole edge in one scenario (its parts take seconds to start, so they are shared): the
/// inventory lists all 6 cameras with URLs through HAProxy; a snapshot on B through NATS gives
/// a download URL that HAProxy serves; A's live view (still and MJPEG) and B's WebSocket work
/// through HAProxy; C's event reaches `camshard.C.events.>`; requests without credentials or
/// with too low a role are refused; B killed is announced (`fleet.host_offline` from A) and
/// leaves the inventory within the documented bound; C's events while NATS is away wait and
/// arrive in order when NATS returns empty, every living host says `fleet.host_online` and
/// writes its inventory again, unchanged.
#[test]
fn three_hosts_behind_one_haproxy() {
    let Some(fleet) = Fleet::start() else {
        return;
    };
    // A subscriber unsubscribes on drop, which needs its runtime: entered while it lives.
    let _rt = fleet.listener.rt.enter();
    let proxy = fleet.haproxy.port;

    // 1. The inventory: all 6 cameras, each naming its host and URLs through HAProxy.
    let all = Fleet::keys_of(&HOSTS);
    assert!(
        wait_until(WITHIN, || fleet.listener.inventory_keys() == all),
        "inventory: {:?}",
        fleet.listener.inventory_keys()
    );
    let mut before = Vec::new();
    for key in &all {
        let entry = fleet
            .listener
            .inventory_entry(key)
            .unwrap_or_else(|| panic!("{key}"));
        let (host, device) = key.split_once('.').expect("<host>.<camera>");
        assert_eq!(entry["host"], host, "{entry}");
        assert_eq!(entry["camera"]["device"], device, "{entry}");
        assert_eq!(
            entry["download_base"],
            format!("http://127.0.0.1:{proxy}/{host}"),
            "{entry}"
        );
        assert_eq!(
            entry["api_url"],
            format!("ws://127.0.0.1:{proxy}/{host}/ws"),
            "{entry}"
        );
        before.push(identity(&entry));
    }

    // 2. A snapshot on B through NATS; its download URL works through HAProxy.
    let shot = fleet.snapshot_over_nats("B", "camera0");
    let url = shot["download_url"].as_str().expect("download_url");
    let prefix = format!("http://127.0.0.1:{proxy}/B/files/snapshots/");
    assert!(url.starts_with(&prefix), "{url} is not under {prefix}");
    let path = &url[format!("http://127.0.0.1:{proxy}").len()..];
    let (status, head, body) = fleet.haproxy.get(path);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/jpeg"),
        "{head}"
    );
    assert_eq!(
        Some(body.len() as u64),
        shot["file_size"].as_u64(),
        "{head}"
    );
    assert!(body.starts_with(&[0xFF, 0xD8]), "a JPEG");
    // Without its token the same path is refused by B (HAProxy forwards, B decides).
    let bare = path.split('?').next().unwrap_or(path);
    assert_eq!(fleet.haproxy.get(bare).0, 401);
    // An unknown host, or a path outside the routes: HAProxy's own 404.
    assert_eq!(fleet.haproxy.get("/Z/files/snapshots/x.jpg").0, 404);
    assert_eq!(fleet.haproxy.get("/B/metrics").0, 404);

    // A's live view through HAProxy: get_live_url over NATS names URLs under /A/live/, the
    // still frame and the MJPEG stream (one whole part) come through.
    let viewer = format!("Bearer {}", token("viewer"));
    let live = fleet.rpc(
        "A",
        &[("Authorization", &viewer)],
        "get_live_url",
        json!({"device": "camera0"}),
    );
    let base = format!("http://127.0.0.1:{proxy}");
    let live_path = |field: &str| {
        let url = live["result"][field].as_str().unwrap_or_default();
        assert!(url.starts_with(&format!("{base}/A/live/")), "{live}");
        url[base.len()..].to_string()
    };
    let (status, head, still) = fleet.haproxy.get(&live_path("still_url"));
    assert_eq!(status, 200, "{head}");
    assert!(still.starts_with(&[0xFF, 0xD8]), "{head}");
    let mut s = TcpStream::connect(("127.0.0.1", proxy)).expect("connect haproxy");
    s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: x\r\n\r\n",
        live_path("mjpeg_url")
    )
    .expect("write");
    let mut stream = crate::live::Mjpeg::open(s).expect("the MJPEG stream through HAProxy");
    assert!(stream.next_frame().is_some(), "one MJPEG part");
    drop(stream);

    // B's WebSocket through HAProxy: upgraded, and it answers.
    let mut ws = Client::connect(&format!("ws://127.0.0.1:{proxy}/B/ws"));
    let pong = ws.call("ping", json!({}));
    assert_eq!(pong["result"], "pong", "{pong}");
    drop(ws);

    // 3. An event from C arrives on C's fleet subject.
    let mut c_events = fleet.listener.subscribe("camshard.C.events.>");
    let c_shot = fleet.snapshot_over_nats("C", "camera1");
    let file = c_shot["filename"].clone();
    let ev = fleet
        .listener
        .next_json(&mut c_events, WITHIN, |s, v| {
            s == "camshard.C.events.snapshot.taken" && v["params"]["filename"] == file
        })
        .expect("C's snapshot.taken on camshard.C.events.>");
    assert_eq!(ev["host"], "C", "{ev}");
    assert_eq!(ev["method"], "snapshot.taken", "{ev}");

    // 4. Refusals over NATS, with the WebSocket's codes (api-reference §6): no credential
    // → -32001 auth_required; a viewer asking for an operator method → -32002.
    let anon = fleet.rpc("A", &[], "get_camera_list", json!({}));
    assert_eq!(error_code(&anon), -32001, "{anon}");
    let low = fleet.rpc(
        "A",
        &[("Authorization", &viewer)],
        "take_snapshot",
        json!({"device": "camera0"}),
    );
    assert_eq!(error_code(&low), -32002, "{low}");
    let list = fleet.rpc(
        "A",
        &[("Authorization", &viewer)],
        "get_camera_list",
        json!({}),
    );
    assert!(
        list["result"]["cameras"].is_array(),
        "the viewer may list: {list}"
    );

    // 5. B is killed (SIGKILL: no goodbye). The live host with the lowest id, A, announces it
    // on B's events subject and deletes its entries, within 3 × heartbeat_s + 2 s
    // (docs/operations.md, "A dead host"); A's and C's entries stay.
    let mut events = fleet.listener.subscribe("camshard.*.events.>");
    let living = Fleet::keys_of(&["A", "C"]);
    fleet.kill("B");
    let killed = Instant::now();
    let offline = fleet
        .listener
        .next_json(&mut events, WITHIN, |s, _| {
            s == "camshard.B.events.fleet.host_offline"
        })
        .expect("fleet.host_offline for B");
    let bound = Duration::from_secs(3 * HEARTBEAT_S + 2) + SLACK;
    assert!(
        killed.elapsed() < bound,
        "B announced within {bound:?}: {:?}",
        killed.elapsed()
    );
    assert_eq!(offline["host"], "B", "{offline}");
    assert_eq!(offline["jsonrpc"], "2.0", "{offline}");
    assert_eq!(offline["method"], "fleet.host_offline", "{offline}");
    let p = &offline["params"];
    assert_eq!(p["host"], "B", "{offline}");
    assert_eq!(p["reason"], "heartbeat_timeout", "{offline}");
    assert_eq!(p["reported_by"], "A", "{offline}");
    assert_eq!(p["cameras"], json!(["camera0", "camera1"]), "{offline}");
    assert!(p["last_seen"].as_u64().is_some_and(|t| t > 0), "{offline}");
    assert!(!p["timestamp"].is_null(), "{offline}");
    assert!(
        wait_until(WITHIN, || fleet.listener.inventory_keys() == living),
        "B's entries deleted: {:?}",
        fleet.listener.inventory_keys()
    );
    assert!(
        killed.elapsed() < bound,
        "B left the inventory within {bound:?}: {:?}",
        killed.elapsed()
    );
    // HAProxy no longer reaches B: a gateway error, not a hang.
    let (status, _, _) = fleet.haproxy.get("/B/files/snapshots/x.jpg");
    assert!(status == 502 || status == 503, "{status}");

    // 6. NATS goes away; C keeps serving its own clients, and its events wait in its queue.
    fleet.nats.borrow_mut().stop();
    for id in ["A", "C"] {
        assert!(
            wait_until(WITHIN, || metric(
                &fleet.host(id),
                "camshard_fleet_connected"
            ) == 0),
            "{id} noticed NATS left"
        );
    }
    let mut ws = fleet.host("C").connect();
    ws.auth(&token("operator"));
    let mut files = Vec::new();
    for device in ["camera0", "camera1"] {
        let r = ws.call("take_snapshot", json!({"device": device}));
        assert!(
            r["result"]["filename"].is_string(),
            "served without NATS: {r}"
        );
        files.push(r["result"]["filename"].clone());
    }
    // NATS comes back with empty storage (a replaced node). The hosts are held (SIGSTOP) until
    // the test listens again, so nothing they publish on their return can race past the
    // listener's own reconnection.
    for id in ["A", "C"] {
        fleet.host(id).signal(Signal::SIGSTOP);
    }
    fleet.nats.borrow_mut().restart_empty();
    assert!(
        wait_until(WITHIN, || fleet.listener.client.connection_state()
            == async_nats::connection::State::Connected),
        "the listener reconnected"
    );
    drop(events);
    let mut events = fleet.listener.subscribe("camshard.*.events.>");
    // Connected and flushed is not yet "the server has the subscription" (a reconnected client
    // resubscribes in the background): a probe that comes back through it is.
    let mut probes = 0;
    let heard = wait_until(WITHIN, || {
        probes += 1;
        fleet
            .listener
            .publish("camshard.probe.events.ready", &json!({"probe": probes}));
        fleet
            .listener
            .next_json(&mut events, Duration::from_millis(500), |s, _| {
                s == "camshard.probe.events.ready"
            })
            .is_some()
    });
    assert!(heard, "the listener's subscription is live on the new NATS");
    for id in ["A", "C"] {
        fleet.host(id).signal(Signal::SIGCONT);
    }
    // C's two waiting snapshot events, in order, and each host's host_online (reconnect), in
    // whatever order the hosts come back.
    let (mut shots, mut online) = (Vec::new(), Vec::new());
    while shots.len() < files.len() || online.len() < 2 {
        let Some(ev) = fleet.listener.next_json(&mut events, WITHIN, |_, _| true) else {
            panic!("waiting snapshots {shots:?} and host_online {online:?} incomplete");
        };
        match (ev["method"].as_str(), ev["host"].as_str()) {
            (Some("snapshot.taken"), Some("C")) => shots.push(ev["params"]["filename"].clone()),
            (Some("fleet.host_online"), Some(host)) => {
                assert_eq!(ev["params"]["reason"], "reconnect", "{ev}");
                assert_eq!(ev["params"]["cameras"], 2, "{ev}");
                online.push(host.to_string());
            }
            _ => {}
        }
    }
    assert_eq!(shots, files, "the events that waited, in order");
    online.sort();
    assert_eq!(online, ["A", "C"]);
    // Every living host wrote its inventory again: the same entries as before.
    assert!(
        wait_until(WITHIN, || fleet.listener.inventory_keys() == living),
        "A and C re-published: {:?}",
        fleet.listener.inventory_keys()
    );
    for key in &living {
        let entry = fleet
            .listener
            .inventory_entry(key)
            .unwrap_or_else(|| panic!("{key}"));
        assert!(
            before.contains(&identity(&entry)),
            "{key} came back changed: {entry}"
        );
    }
}

/// What a loaded CI machine adds to a timing bound (the bound itself is the documented one).
const SLACK: Duration = Duration::from_secs(2);

/// The rendered example keeps the frontend verbatim and gives each host its backend.
#[test]
fn the_haproxy_example_renders_one_backend_per_host() {
    let cfg = render_haproxy_example(18080, &[("A", 1), ("B", 2)]);
    assert!(cfg.contains("    bind 127.0.0.1:18080\n"), "{cfg}");
    assert!(!cfg.contains("backend camshard_rack"), "{cfg}");
    assert!(!cfg.contains("10.0.0."), "{cfg}");
    assert!(cfg.contains("backend camshard_A\n"), "{cfg}");
    assert!(
        cfg.contains("http-request replace-path ^/B(/.*)$ \\1\n"),
        "{cfg}"
    );
    assert!(cfg.contains("server B 127.0.0.1:2\n"), "{cfg}");
    assert!(
        cfg.contains("use_backend camshard_%[var(txn.fleet_host)]"),
        "{cfg}"
    );
}
