//! The fleet over NATS (`[fleet]`, docs/operations.md "Fleet (NATS)") with real parts: each test
//! starts Debian's `nats-server -js` on a free loopback port ([`Nats`]) and camshard hosts joined
//! to it, and listens or asks with the official `async-nats` client ([`Listener`]).
//!
//! `nats-server` is a test dependency (`tests/run --deps` installs it); without it these tests
//! fail naming the install command, unless `CAMSHARD_SKIP_FLEET=1` skips them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{free_port, wait_until, Client, TestServer};

/// Two synthetic cameras, small and fast.
pub(crate) const CAMERAS: &str =
    "[[cameras.synthetic]]\nname = \"Fleet A\"\nwidth = 160\nheight = 120\nfps = 15\n\
    [[cameras.synthetic]]\nname = \"Fleet B\"\nwidth = 160\nheight = 120\nfps = 15\n";

/// A deadline for anything crossing NATS.
pub(crate) const WITHIN: Duration = Duration::from_secs(20);

/// A program the fleet tests run (`nats-server`, `haproxy`: Debian packages of the same name,
/// in /usr/sbin), or `None` when it is missing and `CAMSHARD_SKIP_FLEET=1` skips those tests;
/// missing otherwise, the test fails naming the install command.
pub(crate) fn fleet_program(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("CAMSHARD_SKIP_FLEET").as_deref() == Ok("1") {
            eprintln!("fleet tests skipped: no {name} (CAMSHARD_SKIP_FLEET=1)");
            return None;
        }
        panic!(
            "the fleet tests need {name}: `apt-get install -y {name}` \
             (or tests/run --deps), or set CAMSHARD_SKIP_FLEET=1 to skip them"
        );
    }
    found
}

/// A `nats-server -js` on a loopback port, killed (by its PID) on drop.
pub(crate) struct Nats {
    program: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra `nats-server` configuration (authorization, TLS, operator mode), written to a
    /// `-c` file at each start; "" = none, the command line alone.
    conf: String,
    /// JetStream on (`-js`, stored in `dir`).
    jetstream: bool,
}

impl Nats {
    /// Starts one on a free port; `None` when the fleet tests are skipped.
    pub(crate) fn start() -> Option<Nats> {
        Nats::start_with("")
    }

    /// Starts one whose configuration file holds `conf` (nats-server's own syntax); the
    /// command line's port, address and JetStream store still apply (flags win over the file).
    pub(crate) fn start_with(conf: &str) -> Option<Nats> {
        Nats::launch(conf, true)
    }

    /// Starts one with `conf` and without JetStream (a leaf node that leaves it to its hub).
    pub(crate) fn start_without_jetstream(conf: &str) -> Option<Nats> {
        Nats::launch(conf, false)
    }

    fn launch(conf: &str, jetstream: bool) -> Option<Nats> {
        let program = fleet_program("nats-server")?;
        let mut n = Nats {
            program,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            conf: conf.to_string(),
            jetstream,
        };
        n.spawn();
        Some(n)
    }

    /// Starts the server process (again, on the same port) and waits until it accepts.
    pub(crate) fn spawn(&mut self) {
        let mut cmd = Command::new(&self.program);
        if !self.conf.is_empty() {
            let file = self.dir.path().join("nats.conf");
            std::fs::write(&file, &self.conf).expect("write nats.conf");
            cmd.arg("-c").arg(file);
        }
        cmd.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.jetstream {
            cmd.arg("-js").arg("-sd").arg(self.dir.path());
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(WITHIN, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "nats-server did not listen on {port}"
        );
    }

    /// Kills the server process and waits for it.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts the server with empty JetStream storage (a replaced NATS node).
    pub(crate) fn restart_empty(&mut self) {
        self.stop();
        self.dir = tempfile::tempdir().expect("tempdir");
        self.spawn();
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A camshard host with two synthetic cameras joined to this NATS as `host`.
    pub(crate) fn host(&self, host: &str) -> crate::common::Server {
        self.host_with(host, "")
    }

    /// The same with more `[fleet]` lines (`heartbeat_s = 1\n` …).
    pub(crate) fn host_with(&self, host: &str, fleet: &str) -> crate::common::Server {
        TestServer::new()
            .config(&format!(
                "{CAMERAS}[fleet]\nenabled = true\nservers = [\"{}\"]\nhost_id = \"{host}\"\n{fleet}",
                self.url()
            ))
            .start()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `camshard_fleet_*` value of `/metrics` (-1 when absent).
pub(crate) fn metric(server: &crate::common::Server, name: &str) -> i64 {
    let (_, text) = server.http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(-1)
}

/// Without `[fleet]` nothing of the fleet runs: no fleet metrics, no NATS connection.
#[test]
fn off_by_default() {
    let server = TestServer::new().start();
    assert_eq!(metric(&server, "camshard_fleet_connected"), -1);
    assert_eq!(metric(&server, "camshard_fleet_events_published_total"), -1);
}

/// A NATS client for the test, on a current-thread runtime of its own.
pub(crate) struct Listener {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) client: async_nats::Client,
}

impl Listener {
    pub(crate) fn connect(nats: &Nats) -> Listener {
        Listener::connect_with(nats, async_nats::ConnectOptions::new())
    }

    /// Connects with `options` (a credential, TLS), retrying until the server accepts.
    pub(crate) fn connect_with(nats: &Nats, options: async_nats::ConnectOptions) -> Listener {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let url = nats.url();
        let client = rt.block_on(async {
            options
                .retry_on_initial_connect()
                .max_reconnects(None)
                .reconnect_delay_callback(|_| Duration::from_millis(100))
                .connect(url)
                .await
                .expect("connect to nats")
        });
        Listener { rt, client }
    }

    pub(crate) fn subscribe(&self, subject: &str) -> async_nats::Subscriber {
        let client = self.client.clone();
        let subject = subject.to_string();
        self.rt.block_on(async move {
            let s = client.subscribe(subject).await.expect("subscribe");
            client.flush().await.expect("flush");
            s
        })
    }

    /// The next message on `sub` whose JSON satisfies `want`, within `within`.
    pub(crate) fn next_json(
        &self,
        sub: &mut async_nats::Subscriber,
        within: Duration,
        want: impl Fn(&str, &Value) -> bool,
    ) -> Option<Value> {
        use futures_lite::StreamExt;
        let deadline = Instant::now() + within;
        self.rt.block_on(async {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let msg = tokio::time::timeout(left, sub.next()).await.ok()??;
                let Ok(v) = serde_json::from_slice::<Value>(&msg.payload) else {
                    continue;
                };
                if want(msg.subject.as_str(), &v) {
                    return Some(v);
                }
            }
        })
    }
}

/// An event from a host arrives on `camshard.<host>.events.<topic>`, as the WebSocket
/// notification plus the host id; after NATS restarts, events flow again.
#[test]
fn events_reach_the_fleet_subject_and_survive_a_nats_restart() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let listener = Listener::connect(&nats);
    // A subscriber unsubscribes on drop, which needs its runtime: entered while it lives.
    let _rt = listener.rt.enter();
    let mut sub = listener.subscribe("camshard.*.events.>");
    let server = nats.host("host-a");
    assert!(
        wait_until(WITHIN, || metric(&server, "camshard_fleet_connected") == 1),
        "the host joined NATS"
    );
    let mut ws = Client::connect(&server.url());
    ws.auth(&crate::common::token("operator"));
    let r = ws.call("take_snapshot", json!({"device": "camera0"}));
    assert!(r.get("result").is_some(), "{r}");
    let ev = listener
        .next_json(&mut sub, WITHIN, |s, _| {
            s == "camshard.host-a.events.snapshot.taken"
        })
        .expect("snapshot.taken on the fleet subject");
    assert_eq!(ev["host"], "host-a", "{ev}");
    assert_eq!(ev["jsonrpc"], "2.0", "{ev}");
    assert_eq!(ev["method"], "snapshot.taken", "{ev}");
    assert_eq!(ev["params"]["device"], "camera0", "{ev}");
    assert!(ev["params"]["timestamp"].is_string(), "{ev}");

    assert!(
        wait_until(WITHIN, || metric(
            &server,
            "camshard_fleet_events_published_total"
        ) >= 1),
        "published counted"
    );
    assert_eq!(metric(&server, "camshard_fleet_connected"), 1);

    // NATS goes away: the host keeps serving its own clients, keeps the events meanwhile, and
    // publishes them once NATS is back. A JetStream stream (kept on disk across the restart)
    // records the fleet's events, so what the host sends on reconnection is seen whenever it
    // is sent.
    listener.record_events();
    nats.stop();
    assert!(
        wait_until(WITHIN, || metric(&server, "camshard_fleet_connected") == 0),
        "the host noticed NATS left"
    );
    let dropped = metric(&server, "camshard_fleet_events_dropped_total");
    let r = ws.call("take_snapshot", json!({"device": "camera1"}));
    assert!(r.get("result").is_some(), "served without NATS: {r}");
    let taken_offline = r["result"]["filename"].clone();
    nats.spawn();
    let mut caught_up = None;
    assert!(
        wait_until(WITHIN, || {
            caught_up = listener.last_recorded("camshard.host-a.events.snapshot.taken");
            caught_up
                .as_ref()
                .is_some_and(|ev| ev["params"]["device"] == "camera1")
        }),
        "the event of the outage was published after it: {caught_up:?}"
    );
    let ev = caught_up.unwrap_or_default();
    assert_eq!(ev["params"]["filename"], taken_offline, "{ev}");
    assert_eq!(
        metric(&server, "camshard_fleet_events_dropped_total"),
        dropped,
        "nothing dropped over a short outage"
    );
    let mut online = None;
    assert!(
        wait_until(WITHIN, || {
            online = listener.last_recorded("camshard.host-a.events.fleet.host_online");
            online.is_some()
        }),
        "host_online after the reconnection"
    );
    let online = online.unwrap_or_default();
    assert_eq!(online["params"]["reason"], "reconnect", "{online}");
    assert_eq!(online["params"]["cameras"], 2, "{online}");
}

impl Listener {
    /// Sends `body` to `subject` with these headers and returns the reply as JSON, retrying
    /// while nobody answers yet (the host subscribes once it has connected).
    pub(crate) fn request(&self, subject: &str, headers: &[(&str, &str)], body: &str) -> Value {
        let mut map = async_nats::HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, *v);
        }
        let deadline = Instant::now() + WITHIN;
        self.rt.block_on(async {
            loop {
                let sent = self
                    .client
                    .request_with_headers(
                        subject.to_string(),
                        map.clone(),
                        bytes::Bytes::from(body.to_string()),
                    )
                    .await;
                match sent {
                    Ok(msg) => return serde_json::from_slice(&msg.payload).expect("JSON reply"),
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("no reply on {subject}: {e}"),
                }
            }
        })
    }
}

/// The error code of a JSON-RPC reply (0 when it is a result).
pub(crate) fn error_code(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap_or(0)
}

/// `camshard.<host>.rpc` answers through the WebSocket's dispatcher: `ping` without
/// credentials, `get_camera_list` with a bearer header (the same cameras as over a WebSocket),
/// batches; refused without credentials, and with a viewer token for an operator method, with
/// the WebSocket's error codes.
#[test]
fn control_over_nats_answers_like_a_websocket() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let listener = Listener::connect(&nats);
    let server = nats.host("host-b");
    let subject = "camshard.host-b.rpc";
    let call = |method: &str, params: Value| {
        json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 7}).to_string()
    };

    let pong = listener.request(subject, &[], &call("ping", json!({})));
    assert_eq!(pong["id"], 7, "{pong}");
    assert!(
        pong.get("result").is_some(),
        "ping needs no credential: {pong}"
    );

    let viewer = crate::common::token("viewer");
    let bearer = format!("Bearer {viewer}");
    let mut ws = Client::connect(&server.url());
    ws.auth(&viewer);
    // Both cameras up (their status is part of the list).
    assert!(wait_until(WITHIN, || {
        let r = ws.call("get_camera_list", json!({}));
        r["result"]["connected"].as_u64() == Some(2)
    }));
    let over_ws = ws.call("get_camera_list", json!({}));
    let over_nats = listener.request(
        subject,
        &[("Authorization", &bearer)],
        &call("get_camera_list", json!({})),
    );
    let devices = |v: &Value| -> Vec<(Value, Value, Value)> {
        v["result"]["cameras"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| (c["device"].clone(), c["name"].clone(), c["status"].clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(devices(&over_nats).len(), 2, "{over_nats}");
    assert_eq!(
        devices(&over_nats),
        devices(&over_ws),
        "{over_nats} vs {over_ws}"
    );
    assert_eq!(over_nats["result"]["total"], over_ws["result"]["total"]);

    // A batch answers as one array, in the WebSocket's way.
    let batch = format!(
        "[{},{}]",
        call("ping", json!({})),
        call("get_camera_list", json!({}))
    );
    let both = listener.request(subject, &[("authorization", &bearer)], &batch);
    assert_eq!(both.as_array().map(Vec::len), Some(2), "{both}");

    // Refusals: the codes a WebSocket gets.
    let mut anon = Client::connect(&server.url());
    let ws_anon = anon.call("get_camera_list", json!({}));
    let nats_anon = listener.request(subject, &[], &call("get_camera_list", json!({})));
    assert_eq!(error_code(&nats_anon), -32001, "{nats_anon}");
    assert_eq!(error_code(&nats_anon), error_code(&ws_anon));
    let ws_viewer = ws.call("take_snapshot", json!({"device": "camera0"}));
    let nats_viewer = listener.request(
        subject,
        &[("Authorization", &bearer)],
        &call("take_snapshot", json!({"device": "camera0"})),
    );
    assert_eq!(error_code(&nats_viewer), -32002, "{nats_viewer}");
    assert_eq!(error_code(&nats_viewer), error_code(&ws_viewer));
    assert_eq!(nats_viewer["error"]["data"], ws_viewer["error"]["data"]);
    let bad = listener.request(
        subject,
        &[("Authorization", "Bearer not-a-token")],
        &call("get_camera_list", json!({})),
    );
    assert_eq!(error_code(&bad), -32001, "{bad}");

    // An operator token through NATS: the snapshot is taken (an asynchronous method).
    let operator = format!("Bearer {}", crate::common::token("operator"));
    let shot = listener.request(
        subject,
        &[("Authorization", &operator)],
        &call("take_snapshot", json!({"device": "camera0"})),
    );
    assert!(shot["result"]["filename"].is_string(), "{shot}");
}

/// Two hosts on one NATS: each answers its own subject, and one subscriber hears both, each
/// event naming its host.
#[test]
fn two_hosts_share_one_nats() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let listener = Listener::connect(&nats);
    let _rt = listener.rt.enter();
    let mut sub = listener.subscribe("camshard.*.events.snapshot.taken");
    let hosts = [nats.host("east"), nats.host("west")];
    let operator = format!("Bearer {}", crate::common::token("operator"));
    for (name, server) in ["east", "west"].iter().zip(&hosts) {
        assert!(
            wait_until(WITHIN, || metric(server, "camshard_fleet_connected") == 1),
            "{name} joined NATS"
        );
        // A snapshot through NATS on this host; its event comes back from this host only.
        let body = json!({"jsonrpc": "2.0", "method": "take_snapshot",
                          "params": {"device": "camera1"}, "id": 1})
        .to_string();
        let shot = listener.request(
            &format!("camshard.{name}.rpc"),
            &[("Authorization", &operator)],
            &body,
        );
        let file = shot["result"]["filename"].clone();
        assert!(file.is_string(), "{name}: {shot}");
        let ev = listener
            .next_json(&mut sub, WITHIN, |_, v| v["params"]["filename"] == file)
            .unwrap_or_else(|| panic!("{name}'s snapshot.taken"));
        assert_eq!(ev["host"], *name, "{ev}");
    }
}

impl Listener {
    /// Records every fleet event in a JetStream stream `EVENTS` (on the server's disk, so it
    /// outlives a restart that keeps the storage).
    fn record_events(&self) {
        let js = async_nats::jetstream::new(self.client.clone());
        self.rt.block_on(async {
            js.get_or_create_stream(async_nats::jetstream::stream::Config {
                name: "EVENTS".into(),
                subjects: vec!["camshard.*.events.>".into()],
                ..Default::default()
            })
            .await
            .expect("EVENTS stream");
        });
    }

    /// The last event `EVENTS` recorded on `subject`.
    fn last_recorded(&self, subject: &str) -> Option<Value> {
        let js = async_nats::jetstream::new(self.client.clone());
        self.rt.block_on(async {
            let stream = js.get_stream("EVENTS").await.ok()?;
            let m = stream.get_last_raw_message_by_subject(subject).await.ok()?;
            serde_json::from_slice(&m.payload).ok()
        })
    }

    /// The replicas of the inventory bucket's stream.
    fn inventory_replicas(&self) -> Option<usize> {
        let js = async_nats::jetstream::new(self.client.clone());
        self.rt.block_on(async {
            let mut stream = js.get_stream("KV_camshard_inventory").await.ok()?;
            Some(stream.info().await.ok()?.config.num_replicas)
        })
    }

    /// The keys of the fleet's inventory bucket (empty while it does not exist).
    pub(crate) fn inventory_keys(&self) -> Vec<String> {
        use futures_lite::StreamExt;
        let js = async_nats::jetstream::new(self.client.clone());
        self.rt.block_on(async {
            let Ok(kv) = js.get_key_value("camshard_inventory").await else {
                return Vec::new();
            };
            let Ok(keys) = kv.keys().await else {
                return Vec::new();
            };
            let mut keys: Vec<String> = keys.filter_map(Result::ok).collect().await;
            keys.sort();
            keys
        })
    }

    /// One inventory entry as JSON.
    pub(crate) fn inventory_entry(&self, key: &str) -> Option<Value> {
        let js = async_nats::jetstream::new(self.client.clone());
        self.rt.block_on(async {
            let kv = js.get_key_value("camshard_inventory").await.ok()?;
            let v = kv.get(key).await.ok()??;
            serde_json::from_slice(&v).ok()
        })
    }
}

/// The inventory: each host's cameras as `<host>.<cameraN>` entries in the JetStream bucket,
/// with a heartbeat; a killed host's entries vanish within the documented bound (3 heartbeats
/// plus the expiry sweep) while the other host's stay; after NATS restarts with nothing stored,
/// the living host writes its entries again.
#[test]
fn inventory_lists_every_camera_and_forgets_a_dead_host() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let listener = Listener::connect(&nats);
    let _rt = listener.rt.enter();
    let mut beats = listener.subscribe("camshard.*.heartbeat");
    let mut fleet_events = listener.subscribe("camshard.*.events.fleet.>");
    let host = |name: &str| nats.host_with(name, "heartbeat_s = 1\n");
    let north = host("north");
    let mut south = host("south");
    let all = [
        "north.camera0",
        "north.camera1",
        "south.camera0",
        "south.camera1",
    ];
    assert!(
        wait_until(WITHIN, || listener.inventory_keys() == all),
        "inventory: {:?}",
        listener.inventory_keys()
    );
    let entry = listener
        .inventory_entry("south.camera1")
        .expect("south.camera1 entry");
    assert_eq!(entry["host"], "south", "{entry}");
    assert_eq!(entry["camera"]["device"], "camera1", "{entry}");
    assert!(entry["download_base"].is_string(), "{entry}");
    assert!(
        entry["api_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("ws://")),
        "{entry}"
    );
    let beat = listener
        .next_json(&mut beats, WITHIN, |s, _| s == "camshard.north.heartbeat")
        .expect("north's heartbeat");
    assert_eq!(beat["cameras"], 2, "{beat}");
    for name in ["north", "south"] {
        let online = listener
            .next_json(&mut fleet_events, WITHIN, |s, _| {
                s == format!("camshard.{name}.events.fleet.host_online")
            })
            .unwrap_or_else(|| panic!("{name}'s host_online"));
        assert_eq!(online["params"]["reason"], "start", "{online}");
        assert_eq!(online["params"]["cameras"], 2, "{online}");
    }

    // South dies: north, the lowest living host, notices the missing heartbeats (3 ×
    // heartbeat_s = 3 s, swept every second), deletes south's entries and announces it.
    south.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = south.wait_exit(WITHIN);
    let killed = Instant::now();
    let offline = listener
        .next_json(&mut fleet_events, WITHIN, |s, _| {
            s == "camshard.south.events.fleet.host_offline"
        })
        .expect("south's host_offline");
    assert_eq!(offline["host"], "south", "{offline}");
    assert_eq!(offline["method"], "fleet.host_offline", "{offline}");
    assert_eq!(
        offline["params"]["reason"], "heartbeat_timeout",
        "{offline}"
    );
    assert_eq!(offline["params"]["reported_by"], "north", "{offline}");
    assert_eq!(
        offline["params"]["cameras"],
        json!(["camera0", "camera1"]),
        "{offline}"
    );
    assert!(
        offline["params"]["last_seen"].as_u64().is_some(),
        "{offline}"
    );
    assert!(
        wait_until(WITHIN, || listener.inventory_keys() == all[..2]),
        "south's entries gone: {:?}",
        listener.inventory_keys()
    );
    // The documented bound: 3 heartbeats + the 1 s sweep, with slack for a busy machine.
    assert!(
        killed.elapsed() < Duration::from_secs(3 + 1 + 6),
        "within the bound: {:?}",
        killed.elapsed()
    );

    // NATS comes back empty (bucket lost): the living host writes its inventory again.
    nats.restart_empty();
    assert!(
        wait_until(WITHIN, || listener.inventory_keys() == all[..2]),
        "north re-published: {:?}",
        listener.inventory_keys()
    );
    drop(north);
}

/// A host frozen (SIGSTOP) past the heartbeat timeout is announced offline by the other; thawed,
/// its NATS connection never dropped, so it does not say `fleet.host_online` itself: the host
/// that announced it says it for it (`heard_again`), and its entries come back.
#[test]
fn a_frozen_host_is_announced_offline_then_back_online() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let listener = Listener::connect(&nats);
    let _rt = listener.rt.enter();
    let mut fleet_events = listener.subscribe("camshard.*.events.fleet.>");
    let host = |name: &str| nats.host_with(name, "heartbeat_s = 1\n");
    let alpha = host("alpha");
    let beta = host("beta");
    for name in ["alpha", "beta"] {
        listener
            .next_json(&mut fleet_events, WITHIN, |s, _| {
                s == format!("camshard.{name}.events.fleet.host_online")
            })
            .unwrap_or_else(|| panic!("{name}'s host_online"));
    }
    let all = [
        "alpha.camera0",
        "alpha.camera1",
        "beta.camera0",
        "beta.camera1",
    ];
    assert!(wait_until(WITHIN, || listener.inventory_keys() == all));

    beta.signal(nix::sys::signal::Signal::SIGSTOP);
    let offline = listener
        .next_json(&mut fleet_events, WITHIN, |s, _| {
            s == "camshard.beta.events.fleet.host_offline"
        })
        .expect("beta's host_offline");
    assert_eq!(
        offline["params"]["reason"], "heartbeat_timeout",
        "{offline}"
    );
    assert_eq!(offline["params"]["reported_by"], "alpha", "{offline}");
    assert!(
        wait_until(WITHIN, || listener.inventory_keys() == all[..2]),
        "beta's entries gone: {:?}",
        listener.inventory_keys()
    );

    beta.signal(nix::sys::signal::Signal::SIGCONT);
    let online = listener
        .next_json(&mut fleet_events, WITHIN, |s, _| {
            s == "camshard.beta.events.fleet.host_online"
        })
        .expect("beta back online");
    assert_eq!(online["params"]["reason"], "heard_again", "{online}");
    assert_eq!(online["params"]["reported_by"], "alpha", "{online}");
    assert!(
        wait_until(WITHIN, || listener.inventory_keys() == all),
        "beta's entries back: {:?}",
        listener.inventory_keys()
    );
    drop(alpha);
}

/// Leaf nodes: a site's hosts connect to a leaf node without JetStream, which links to the hub
/// whose JetStream (domain `hub`) holds the fleet's inventory (`fleet.jetstream_domain`).
/// Events, control and the inventory all cross the leaf link; a client of the hub sees them.
#[test]
fn hosts_behind_a_leaf_node_reach_the_hub() {
    let leaf_port = free_port();
    let Some(hub) = Nats::start_with(&format!(
        "jetstream {{ domain: hub }}\nleafnodes {{ host: 127.0.0.1, port: {leaf_port} }}\n"
    )) else {
        return;
    };
    let Some(leaf) = Nats::start_without_jetstream(&format!(
        "leafnodes {{ remotes = [ {{ url: \"nats-leaf://127.0.0.1:{leaf_port}\" }} ] }}\n"
    )) else {
        return;
    };
    let listener = Listener::connect(&hub);
    let _rt = listener.rt.enter();
    let mut sub = listener.subscribe("camshard.*.events.>");
    let server = TestServer::new()
        .config(&format!(
            "{CAMERAS}[fleet]\nenabled = true\nservers = [\"{}\"]\nhost_id = \"site1\"\n\
             heartbeat_s = 1\njetstream_domain = \"hub\"\n",
            leaf.url()
        ))
        .start();
    let online = listener
        .next_json(&mut sub, WITHIN, |s, _| {
            s == "camshard.site1.events.fleet.host_online"
        })
        .expect("host_online crossed the leaf link");
    assert_eq!(online["params"]["cameras"], 2, "{online}");
    assert!(
        wait_until(WITHIN, || listener.inventory_keys()
            == ["site1.camera0", "site1.camera1"]),
        "the inventory is in the hub's JetStream: {:?}",
        listener.inventory_keys()
    );
    let reply = listener.request(
        "camshard.site1.rpc",
        &[],
        r#"{"jsonrpc":"2.0","method":"ping","id":1}"#,
    );
    assert_eq!(reply["result"], "pong", "{reply}");
    drop(server);
}

/// A deadline for a JetStream cluster: electing its meta leader and the bucket's stream leader
/// (again, after a server is lost) takes NATS seconds to tens of seconds on a busy machine.
const CLUSTER_WITHIN: Duration = Duration::from_secs(90);

/// A three-server NATS cluster with the inventory replicated (`inventory_replicas = 3`): the
/// server the host was given dies, the host fails over to another it learned from the cluster,
/// and the inventory, heartbeats and control go on.
#[test]
fn a_cluster_loses_a_server_and_the_fleet_goes_on() {
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut servers = Vec::new();
    for (i, port) in routes.iter().enumerate() {
        let others: Vec<String> = routes
            .iter()
            .filter(|p| *p != port)
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect();
        let conf = format!(
            "server_name: n{i}\ncluster {{ name: camfleet, host: 127.0.0.1, port: {port}, \
             routes: [{}] }}\n",
            others.join(", ")
        );
        let Some(n) = Nats::start_with(&conf) else {
            return;
        };
        servers.push(n);
    }
    // Only the first server is configured: the others are learned from it.
    let server = TestServer::new()
        .config(&format!(
            "{CAMERAS}[fleet]\nenabled = true\nservers = [\"{}\"]\nhost_id = \"clustered\"\n\
             heartbeat_s = 1\ninventory_replicas = 3\n",
            servers[0].url()
        ))
        .start();
    let keys = ["clustered.camera0", "clustered.camera1"];
    {
        let listener = Listener::connect(&servers[2]);
        assert!(
            wait_until(CLUSTER_WITHIN, || listener.inventory_keys() == keys),
            "inventory on the cluster: {:?}",
            listener.inventory_keys()
        );
        assert_eq!(listener.inventory_replicas(), Some(3));
    }
    // The host's server goes away; two of three keep the quorum.
    servers[0].stop();
    let listener = Listener::connect(&servers[1]);
    let _rt = listener.rt.enter();
    let mut beats = listener.subscribe("camshard.clustered.heartbeat");
    assert!(
        listener
            .next_json(&mut beats, CLUSTER_WITHIN, |_, _| true)
            .is_some(),
        "the host beats through the cluster after losing a server"
    );
    assert!(
        wait_until(WITHIN, || metric(&server, "camshard_fleet_connected") == 1),
        "connected again"
    );
    // The bucket's stream may elect a new leader first (its old one may have been the dead
    // server): readable again within seconds, with every entry.
    assert!(
        wait_until(CLUSTER_WITHIN, || listener.inventory_keys() == keys),
        "inventory after the loss: {:?}",
        listener.inventory_keys()
    );
    let reply = listener.request(
        "camshard.clustered.rpc",
        &[],
        r#"{"jsonrpc":"2.0","method":"ping","id":1}"#,
    );
    assert_eq!(reply["result"], "pong", "{reply}");
}

/// A host that stops cleanly leaves at once: its entries are deleted and it announces itself
/// offline (`reason: "shutdown"`), long before its entries' TTL (here 3 × 30 s) would matter.
#[test]
fn a_clean_stop_leaves_the_fleet_at_once() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let listener = Listener::connect(&nats);
    let _rt = listener.rt.enter();
    let mut fleet_events = listener.subscribe("camshard.*.events.>");
    let mut east = nats.host_with("east", "heartbeat_s = 30\n");
    listener
        .next_json(&mut fleet_events, WITHIN, |s, _| {
            s == "camshard.east.events.fleet.host_online"
        })
        .expect("east's host_online");
    assert_eq!(listener.inventory_keys(), ["east.camera0", "east.camera1"]);

    east.signal(nix::sys::signal::Signal::SIGTERM);
    let stopped = Instant::now();
    // The bus's last event goes out before the goodbye.
    let shutdown = listener
        .next_json(&mut fleet_events, WITHIN, |s, _| {
            s == "camshard.east.events.system.shutdown"
        })
        .expect("system.shutdown on the fleet subject");
    assert_eq!(shutdown["host"], "east", "{shutdown}");
    let offline = listener
        .next_json(&mut fleet_events, WITHIN, |s, _| {
            s == "camshard.east.events.fleet.host_offline"
        })
        .expect("east's host_offline");
    assert_eq!(offline["params"]["reason"], "shutdown", "{offline}");
    assert_eq!(offline["params"]["reported_by"], "east", "{offline}");
    assert_eq!(
        offline["params"]["cameras"],
        json!(["camera0", "camera1"]),
        "{offline}"
    );
    assert!(
        listener.inventory_keys().is_empty(),
        "{:?}",
        listener.inventory_keys()
    );
    assert_eq!(east.wait_exit(WITHIN), Some(0), "a clean exit");
    assert!(stopped.elapsed() < WITHIN);
}

/// The WebSocket's rate limit applies over NATS, one bucket per credential: a burst beyond
/// `security.rate_limit.burst` gets -32040, and another credential still has its own bucket.
#[test]
fn the_rate_limit_applies_per_credential() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let listener = Listener::connect(&nats);
    let _server = TestServer::new()
        .config(&format!(
            "[security.rate_limit]\nrequests_per_second = 1\nburst = 3\n\
             [fleet]\nenabled = true\nservers = [\"{}\"]\nhost_id = \"rl\"\n",
            nats.url()
        ))
        .start();
    let ping = json!({"jsonrpc": "2.0", "method": "ping", "id": 1}).to_string();
    let codes: Vec<i64> = (0..8)
        .map(|_| error_code(&listener.request("camshard.rl.rpc", &[], &ping)))
        .collect();
    assert!(codes.contains(&-32040), "no request was limited: {codes:?}");
    let limited = listener.request("camshard.rl.rpc", &[], &ping);
    assert_eq!(
        limited["error"]["data"]["reason"], "rate_limited",
        "{limited}"
    );
    let other = format!("Bearer {}", crate::common::token("viewer"));
    let own = listener.request("camshard.rl.rpc", &[("Authorization", &other)], &ping);
    assert_eq!(
        own["result"], "pong",
        "another credential, another bucket: {own}"
    );
}

/// At most `max_inflight_rpc` requests are in dispatch: a burst beyond it is answered at once
/// with -32040 and the host's "busy" details, and every request gets an answer.
#[test]
fn a_burst_beyond_max_inflight_is_answered_busy() {
    use futures_lite::StreamExt;
    let Some(nats) = Nats::start() else {
        return;
    };
    let listener = Listener::connect(&nats);
    let _rt = listener.rt.enter();
    let server = TestServer::new()
        .config(&format!(
            "{CAMERAS}[security.rate_limit]\nrequests_per_second = 100000\nburst = 100000\n\
             [fleet]\nenabled = true\nservers = [\"{}\"]\nhost_id = \"busy\"\nmax_inflight_rpc = 1\n",
            nats.url()
        ))
        .start();
    assert!(
        wait_until(WITHIN, || metric(&server, "camshard_fleet_connected") == 1),
        "joined NATS"
    );
    // Answered before the burst: the subscription is in place.
    let ping = json!({"jsonrpc": "2.0", "method": "ping", "id": 1}).to_string();
    assert_eq!(
        listener.request("camshard.busy.rpc", &[], &ping)["result"],
        "pong"
    );
    const N: usize = 64;
    let client = listener.client.clone();
    let replies: Vec<Value> = listener.rt.block_on(async move {
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(inbox.clone()).await.expect("subscribe");
        for _ in 0..N {
            client
                .publish_with_reply("camshard.busy.rpc", inbox.clone(), ping.clone().into())
                .await
                .expect("publish");
        }
        client.flush().await.expect("flush");
        let mut out = Vec::new();
        while out.len() < N {
            match tokio::time::timeout(WITHIN, sub.next()).await {
                Ok(Some(m)) => out.push(serde_json::from_slice(&m.payload).expect("JSON")),
                _ => break,
            }
        }
        out
    });
    assert_eq!(replies.len(), N, "every request is answered");
    let busy: Vec<&Value> = replies.iter().filter(|r| error_code(r) == -32040).collect();
    assert!(
        !busy.is_empty(),
        "a burst of {N} beyond 1 in flight: none busy"
    );
    assert!(
        busy.iter().all(|r| r["error"]["data"]["details"]
            .as_str()
            .is_some_and(|d| d.contains("NATS"))),
        "{busy:?}"
    );
    assert!(metric(&server, "camshard_fleet_requests_busy_total") >= busy.len() as i64);
}

/// `X-API-Key` authenticates a NATS request as it does a download; a revoked key no longer does.
#[test]
fn an_api_key_header_authenticates_until_revoked() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let listener = Listener::connect(&nats);
    let server = nats.host("keys");
    let key = server.cli(&["apikey", "create", "--role", "viewer", "--name", "fleet"]);
    let key_id = key.split('_').nth(1).expect("key id").to_string();
    server.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(server.wait_log("API key store reloaded (SIGHUP)", WITHIN));
    let list = json!({"jsonrpc": "2.0", "method": "get_camera_list", "id": 3}).to_string();
    let ok = listener.request("camshard.keys.rpc", &[("X-API-Key", &key)], &list);
    assert!(ok["result"]["cameras"].is_array(), "{ok}");
    server.cli(&["apikey", "revoke", &key_id]);
    server.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(server.wait_log("API key store reloaded (SIGHUP)", WITHIN));
    let refused = listener.request("camshard.keys.rpc", &[("X-API-Key", &key)], &list);
    assert_eq!(error_code(&refused), -32001, "{refused}");
}
