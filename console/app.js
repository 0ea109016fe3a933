// The camshard web console: sign in, live camera tiles, snapshots and recordings, the file
// lists, the event log and a small server panel. Plain modern JavaScript, no build step, no
// external URL: everything it loads comes from the server that served it, and everything it
// does goes through the same WebSocket JSON-RPC API (docs/api-reference.md) and HTTP routes
// (downloads, live views, /health) as any other client.
//
// Text from the server (camera names, file names, event fields) is only ever put into the page
// with textContent, never parsed as markup.

import { Rpc, RpcError, AUTH_ERROR } from "./rpc.js";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const TOKEN_KEY = "camshard.token";
const RANK = { viewer: 1, operator: 2, admin: 3 };
// Every topic of contract §10.1: the log shows them all; tiles and lists react to some.
const TOPICS = [
  "camera.connected", "camera.disconnected", "camera.status_change", "camera.capability_detected",
  "camera.capability_error", "recording.start", "recording.stop", "recording.progress",
  "recording.error", "snapshot.taken", "snapshot.error", "system.health", "system.error",
  "system.startup", "system.shutdown", "mediamtx.stream", "mediamtx.path", "mediamtx.error",
  "mediamtx.recording_started", "mediamtx.recording_stopped", "mediamtx.recording_failed",
  "mediamtx.stream_started", "mediamtx.stream_stopped",
];
// A browser opens at most six HTTP/1.1 connections to one server, and every MJPEG tile holds
// one for as long as it plays: beyond this many cameras, tiles show stills refreshed once a
// second instead, so downloads and the page itself always find a free connection.
const MAX_MJPEG = 4;
const STILL_INTERVAL_MS = 1000;
const PAGE = 20;
const METRICS_INTERVAL_MS = 2000;
const SLOW_INTERVAL_MS = 10000;
const HISTORY = 60;
const MAX_EVENTS = 200;
// Download URLs carry a token that lives http.download_token_ttl_s (900 s by default): the lists
// are reloaded well within that, so a link is never stale.
const FILES_REFRESH_MS = 5 * 60 * 1000;

const st = {
  role: null,
  cams: new Map(), // id -> camera state (see camera())
  files: { recordings: { offset: 0, total: 0 }, snapshots: { offset: 0, total: 0 } },
  hist: { conn: [], rate: [], avg: [], p99: [] },
  lastTotals: null,
  info: null,
  health: null,
  timers: [],
  liveUnsupported: false,
  everUp: false,
};

const rpc = new Rpc({
  onState: connectionState,
  onNotification: notification,
  onAuthenticated: authenticated,
});

// ---------------------------------------------------------------- helpers

function can(role) {
  return (RANK[st.role] || 0) >= RANK[role];
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x) => String(x).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

// A duration for people: "45 s", "12 min", "3 h 20 min", "2 d 4 h".
function span(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function when(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return "";
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

function toast(text, kind = "info") {
  const t = el("div", { class: `toast ${kind}`, text });
  $("#toasts").append(t);
  setTimeout(() => t.remove(), kind === "error" ? 7000 : 4000);
}

function failure(what, e) {
  const reason = e instanceof RpcError ? e.reason || e.message : String(e);
  const details = e instanceof RpcError && e.data.details ? `: ${e.data.details}` : "";
  toast(`${what} failed — ${reason}${details}`, "error");
  if (e instanceof RpcError && e.code === AUTH_ERROR) {
    // The session ended under us (token expired, key revoked): ask for a new credential.
    signOut(`Signed out: ${e.reason || "authentication needed"}.`);
  }
}

function every(ms, f) {
  st.timers.push(setInterval(f, ms));
}

// Runs `f` once `ms` after the last of a burst of calls (event storms reload a list once).
function debounce(f, ms) {
  let t = null;
  return () => {
    clearTimeout(t);
    t = setTimeout(f, ms);
  };
}

// ---------------------------------------------------------------- sign-in and connection

function showSignIn(message) {
  $("#app").hidden = true;
  $("#who").hidden = true;
  $("#signin").hidden = false;
  const err = $("#signin-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("#token").focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  rpc.signOut();
  reset();
  showSignIn(message);
}

// Forgets everything shown for the previous session.
function reset() {
  for (const t of st.timers) clearInterval(t);
  st.timers = [];
  for (const cam of st.cams.values()) stopLive(cam);
  st.cams.clear();
  $("#grid").replaceChildren();
  $("#toasts").replaceChildren();
  $("#events").replaceChildren();
  st.hist = { conn: [], rate: [], avg: [], p99: [] };
  st.lastTotals = null;
  st.files = { recordings: { offset: 0, total: 0 }, snapshots: { offset: 0, total: 0 } };
  st.role = null;
  st.everUp = false;
  st.liveUnsupported = false;
  document.body.removeAttribute("data-role");
}

function connectionState(s, detail) {
  const conn = $("#conn");
  if (s === "down" && conn.dataset.state === "up") logLine("console", "Connection to the server lost", "error");
  conn.dataset.state = s;
  const text = {
    idle: "Not connected",
    connecting: st.everUp ? "Reconnecting…" : "Connecting…",
    up: "Connected",
    down: "Server unreachable — reconnecting",
    denied: "Signed out",
  }[s];
  $("#conn-text").textContent = text;
  const banner = $("#banner");
  if (s === "down" || (s === "connecting" && st.everUp)) {
    banner.hidden = false;
    banner.textContent = "Server unreachable — reconnecting… The page recovers by itself when the server is back.";
    document.body.classList.add("offline");
  } else {
    banner.hidden = true;
    document.body.classList.remove("offline");
  }
  if (s === "down") {
    // Live views died with the server; they are asked for again once it is back.
    for (const cam of st.cams.values()) stopLive(cam, "Waiting for the server…");
    const badge = $("#health");
    badge.textContent = "unreachable";
    badge.dataset.status = "unhealthy";
  }
  if (s === "denied") {
    sessionStorage.removeItem(TOKEN_KEY);
    reset();
    const reason = detail && detail.reason ? detail.reason.replace(/_/g, " ") : "refused";
    showSignIn(`The server refused this credential (${reason}).`);
  }
}

async function authenticated(session) {
  const firstTime = !st.everUp;
  st.everUp = true;
  st.role = session.role;
  document.body.dataset.role = session.role;
  $("#who-role").textContent = session.role;
  $("#who").hidden = false;
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#metrics-note").hidden = can("admin");
  $("#metrics").hidden = !can("admin");
  $("#storage").hidden = !can("admin");
  try {
    // Explicit mode: exactly these topics, no legacy broadcast (contract §10.3).
    await rpc.call("subscribe_events", { topics: TOPICS });
  } catch (e) {
    failure("Subscribing to events", e);
  }
  if (firstTime) {
    logLine("console", `Signed in as ${session.role}`, "system");
    every(500, tickTimers);
    every(METRICS_INTERVAL_MS, pollMetrics);
    every(SLOW_INTERVAL_MS, pollSlow);
    every(FILES_REFRESH_MS, () => { loadFiles("recordings"); loadFiles("snapshots"); });
  } else {
    $("#toasts").replaceChildren(); // ("shutting down" and the like are old news now)
    logLine("console", "Reconnected", "system");
  }
  await Promise.all([loadCameras(), loadFiles("recordings"), loadFiles("snapshots"), loadInfo(), pollSlow(), pollMetrics()]);
}

// ---------------------------------------------------------------- cameras

function camera(id) {
  let cam = st.cams.get(id);
  if (cam) return cam;
  const tile = $("#tile-template").content.firstElementChild.cloneNode(true);
  tile.dataset.device = id;
  if (!can("operator")) {
    // A viewer gets no controls at all (not merely hidden ones).
    for (const c of $$(".op-only", tile)) c.remove();
  }
  cam = {
    id,
    item: null,
    tile,
    img: $("img.live", tile),
    live: null, // { mode: "mjpeg"|"still", url, still, expires, renew, poll }
    liveGen: 0,
    rec: null, // { start: performance.now() at elapsed 0, duration }
  };
  cam.img.alt = `Live view of ${id}`;
  cam.img.addEventListener("error", () => liveFailed(cam));
  cam.img.addEventListener("load", () => {
    // (An MJPEG <img> fires this once, at its first frame.)
    cam.tile.classList.add("playing");
    overlay(cam, "");
    if (cam.live && cam.live.mode === "still") scheduleStill(cam);
  });
  const snap = $(".snap", tile);
  if (snap) snap.addEventListener("click", () => snapshot(cam, snap));
  const start = $(".rec-start", tile);
  if (start) start.addEventListener("click", () => startRecording(cam, start));
  const stop = $(".rec-stop", tile);
  if (stop) stop.addEventListener("click", () => stopRecording(cam, stop));
  st.cams.set(id, cam);
  // Keep tiles in camera order (camera2 before camera10).
  const num = (d) => Number(d.replace(/^camera/, "")) || 0;
  const after = $$(".tile", $("#grid")).find((t) => num(t.dataset.device) > num(id));
  $("#grid").insertBefore(tile, after || null);
  $("#no-cams").hidden = true;
  return cam;
}

async function loadCameras() {
  try {
    const r = await rpc.call("get_camera_list");
    const seen = new Set();
    for (const item of r.cameras) {
      seen.add(item.device);
      showCamera(item);
    }
    for (const [id, cam] of st.cams) {
      if (!seen.has(id)) {
        stopLive(cam);
        cam.tile.remove();
        st.cams.delete(id);
      }
    }
    $("#no-cams").hidden = st.cams.size > 0;
    summary();
  } catch (e) {
    failure("Loading cameras", e);
  }
}

function summary() {
  const all = [...st.cams.values()];
  const on = all.filter((c) => c.item && c.item.status === "CONNECTED").length;
  $("#cams-summary").textContent = `${on} of ${all.length} connected`;
}

// Shows a CameraItem (from get_camera_list or a camera.* event).
function showCamera(item) {
  const cam = camera(item.device);
  const was = cam.item ? cam.item.status : null;
  cam.item = item;
  const t = cam.tile;
  $(".name", t).textContent = item.name || item.device;
  $(".id", t).textContent = item.device;
  $(".res", t).textContent = item.resolution || "–";
  $(".fps", t).textContent = item.fps ? `${item.fps} fps` : "– fps";
  const badge = $(".status", t);
  badge.textContent = item.status === "ERROR" && item.error_reason ? `ERROR · ${item.error_reason}` : item.status;
  badge.dataset.status = item.status;
  t.dataset.status = item.status;
  for (const b of $$(".controls button, .controls input, .controls select", t)) {
    b.disabled = item.status !== "CONNECTED";
  }
  if (item.recording) {
    if (!cam.rec) cam.rec = { start: performance.now() - (item.elapsed_time || 0) * 1000 };
  } else if (cam.rec && performance.now() - cam.rec.start > 3000) {
    // (An item sent just before our own start_recording was answered is not news.)
    cam.rec = null;
  }
  recordingUi(cam);
  if (item.status === "CONNECTED") {
    if (was !== "CONNECTED" || !cam.live) startLive(cam);
  } else {
    stopLive(cam, item.status === "ERROR" ? `Camera error${item.error_reason ? `: ${item.error_reason}` : ""}` : "Camera disconnected");
  }
  summary();
}

// ---------------------------------------------------------------- live view

function liveMode(cam) {
  const connected = [...st.cams.values()]
    .filter((c) => c.item && c.item.status === "CONNECTED")
    .map((c) => c.id)
    .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));
  return connected.indexOf(cam.id) < MAX_MJPEG ? "mjpeg" : "still";
}

function overlay(cam, text) {
  const ov = $(".overlay", cam.tile);
  ov.hidden = !text;
  $(".ov-text", cam.tile).textContent = text || "";
}

function stopLive(cam, text) {
  cam.liveGen++;
  if (cam.live) {
    clearTimeout(cam.live.renew);
    clearTimeout(cam.live.poll);
  }
  cam.live = null;
  // An <img> keeps its MJPEG connection until its source changes: drop it.
  cam.img.removeAttribute("src");
  cam.tile.classList.remove("playing");
  overlay(cam, text || "");
}

// Asks for a live URL (get_live_url) and points the tile at it; renews it before it expires.
async function startLive(cam) {
  if (st.liveUnsupported) return overlay(cam, "Live view is not available on this server");
  const gen = ++cam.liveGen;
  if (cam.live) {
    clearTimeout(cam.live.renew);
    clearTimeout(cam.live.poll);
  }
  if (!cam.img.getAttribute("src")) overlay(cam, "Starting live view…");
  let r;
  try {
    r = await rpc.call("get_live_url", { device: cam.id });
  } catch (e) {
    if (gen !== cam.liveGen) return;
    if (e instanceof RpcError && (e.code === -32601 || e.reason === "live_disabled")) {
      // An older server, or [live] enabled = false: no tile will get a picture; say so once.
      st.liveUnsupported = true;
      for (const c of st.cams.values()) overlay(c, "Live view is not available on this server");
      return;
    }
    if (e instanceof RpcError && e.code === AUTH_ERROR) return failure("Live view", e);
    overlay(cam, `Live view unavailable${e.reason ? ` (${e.reason})` : ""}`);
    if (rpc.state === "up") cam.live = { renew: setTimeout(() => gen === cam.liveGen && startLive(cam), 5000) };
    return;
  }
  if (gen !== cam.liveGen) return;
  const mode = liveMode(cam);
  const lifetime = Math.max(10, r.expires_at - Date.now() / 1000);
  cam.live = {
    mode,
    url: r.mjpeg_url,
    still: r.still_url,
    // Renew at four fifths of the token's life: the stream never outlives its URL.
    renew: setTimeout(() => gen === cam.liveGen && startLive(cam), lifetime * 800),
    poll: null,
    failures: 0,
  };
  if (mode === "mjpeg") {
    cam.img.src = r.mjpeg_url;
  } else {
    cam.img.src = stillUrl(cam);
  }
  overlay(cam, cam.tile.classList.contains("playing") ? "" : "Starting live view…");
}

function stillUrl(cam) {
  // A changing parameter makes the browser fetch again (the server ignores it).
  return `${cam.live.still}&t=${Date.now()}`;
}

function scheduleStill(cam) {
  const live = cam.live;
  clearTimeout(live.poll);
  live.poll = setTimeout(() => {
    if (cam.live === live) cam.img.src = stillUrl(cam);
  }, STILL_INTERVAL_MS);
}

function liveFailed(cam) {
  if (!cam.live || !cam.img.getAttribute("src")) return;
  cam.tile.classList.remove("playing");
  if (rpc.state !== "up") return; // reconnecting: authenticated() starts it again
  const live = cam.live;
  live.failures = (live.failures || 0) + 1;
  overlay(cam, "Live view interrupted — retrying…");
  const gen = cam.liveGen;
  setTimeout(() => {
    if (gen === cam.liveGen && cam.item && cam.item.status === "CONNECTED") startLive(cam);
  }, Math.min(1000 * 2 ** live.failures, 15000));
}

// ---------------------------------------------------------------- snapshot and recording

async function snapshot(cam, button) {
  button.disabled = true;
  try {
    const r = await rpc.call("take_snapshot", { device: cam.id });
    toast(`Snapshot saved: ${r.filename} (${bytes(r.file_size)})`, "ok");
    reloadSnapshots();
  } catch (e) {
    failure(`Snapshot of ${cam.id}`, e);
  } finally {
    button.disabled = !(cam.item && cam.item.status === "CONNECTED");
  }
}

async function startRecording(cam, button) {
  const params = { device: cam.id, format: $(".rec-format", cam.tile).value };
  const raw = $(".rec-duration", cam.tile).value.trim();
  if (raw !== "") {
    const d = Number(raw);
    if (!(d >= 1 && d <= 86400)) {
      toast("Duration: 1 to 86400 seconds, or empty for no limit", "error");
      return;
    }
    params.duration = d;
  }
  button.disabled = true;
  try {
    const r = await rpc.call("start_recording", params);
    cam.rec = { start: performance.now(), duration: r.duration };
    recordingUi(cam);
    toast(`Recording ${r.filename}`, "ok");
  } catch (e) {
    failure(`Recording on ${cam.id}`, e);
  } finally {
    button.disabled = !(cam.item && cam.item.status === "CONNECTED");
  }
}

async function stopRecording(cam, button) {
  button.disabled = true;
  button.textContent = "Finishing…";
  try {
    const r = await rpc.call("stop_recording", { device: cam.id });
    cam.rec = null;
    toast(`Recorded ${r.filename} (${r.duration.toFixed(1)} s, ${bytes(r.file_size)})`, "ok");
    reloadRecordings();
  } catch (e) {
    if (e instanceof RpcError && e.reason === "not_recording") cam.rec = null;
    failure(`Stopping ${cam.id}`, e);
  } finally {
    button.disabled = false;
    button.textContent = "■ Stop";
    recordingUi(cam);
  }
}

function recordingUi(cam) {
  const t = cam.tile;
  const on = !!cam.rec;
  t.classList.toggle("recording", on);
  $(".rec-badge", t).hidden = !on;
  const form = $(".rec-form", t);
  const stop = $(".rec-stop", t);
  if (form) form.hidden = on;
  if (stop) stop.hidden = !on;
  tickTimer(cam);
}

function tickTimer(cam) {
  if (!cam.rec) return;
  const secs = (performance.now() - cam.rec.start) / 1000;
  const limit = cam.rec.duration ? ` / ${clock(cam.rec.duration)}` : "";
  $(".rec-timer", cam.tile).textContent = `${clock(secs)}${limit}`;
}

function tickTimers() {
  for (const cam of st.cams.values()) tickTimer(cam);
}

// ---------------------------------------------------------------- files

const reloadSnapshots = debounce(() => loadFiles("snapshots"), 150);
const reloadRecordings = debounce(() => loadFiles("recordings"), 150);

async function loadFiles(kind) {
  const f = st.files[kind];
  let r;
  try {
    r = await rpc.call(kind === "recordings" ? "list_recordings" : "list_snapshots", { limit: PAGE, offset: f.offset });
  } catch (e) {
    if (!(e instanceof RpcError && (e.reason === "connection_lost" || e.reason === "not_connected"))) failure(`Loading ${kind}`, e);
    return;
  }
  if (r.files.length === 0 && r.total > 0 && f.offset > 0) {
    // The page emptied (files deleted): go back to the last one that has files.
    f.offset = Math.max(0, Math.floor((r.total - 1) / PAGE) * PAGE);
    return loadFiles(kind);
  }
  f.total = r.total;
  const body = $(`#${kind} tbody`);
  const rows = r.files.map((file) => fileRow(kind, file));
  if (rows.length === 0) {
    const cols = $$(`#${kind} thead th`).length;
    rows.push(el("tr", { class: "empty" }, el("td", { colspan: cols, class: "muted", text: `No ${kind} yet.` })));
  }
  body.replaceChildren(...rows);
  $(kind === "recordings" ? "#rec-total" : "#snap-total").textContent = String(r.total);
  const box = $(`#files-${kind}`);
  $(".prev", box).disabled = f.offset === 0;
  $(".next", box).disabled = f.offset + PAGE >= r.total;
  $(".page", box).textContent = r.total > PAGE ? `${f.offset + 1}–${Math.min(f.offset + PAGE, r.total)} of ${r.total}` : "";
}

function fileRow(kind, file) {
  const actions = el("td", { class: "actions" },
    el("a", { class: "btn small download", href: file.download_url, download: file.filename, text: "Download" }));
  if (can("admin")) {
    const del = el("button", { class: "btn small danger ghost delete", type: "button", text: "Delete" });
    del.addEventListener("click", () => confirmDelete(kind, file.filename, del));
    actions.append(del);
  }
  const name = el("td", { class: "fname", title: file.filename }, el("span", { text: file.filename }));
  const device = el("td", { class: "hide-narrow", text: file.device || "–" });
  const size = el("td", { class: "num hide-narrow", text: bytes(file.file_size) });
  const time = el("td", { class: "hide-narrow muted when", text: when(file.modified_time) });
  const row = kind === "recordings"
    ? el("tr", {}, name, device, el("td", { class: "num", text: file.duration === null ? "–" : clock(file.duration) }), size, time, actions)
    : el("tr", {}, name, device, el("td", { class: "num", text: bytes(file.file_size) }), time, actions);
  row.dataset.file = file.filename;
  return row;
}

// Two clicks delete: the first arms the button for three seconds (no modal dialog).
function confirmDelete(kind, filename, button) {
  if (!button.classList.contains("armed")) {
    button.classList.add("armed");
    button.textContent = "Confirm";
    setTimeout(() => {
      button.classList.remove("armed");
      button.textContent = "Delete";
    }, 3000);
    return;
  }
  button.disabled = true;
  rpc
    .call(kind === "recordings" ? "delete_recording" : "delete_snapshot", { filename })
    .then(() => {
      toast(`Deleted ${filename}`, "ok");
      loadFiles(kind);
    })
    .catch((e) => {
      button.disabled = false;
      failure(`Deleting ${filename}`, e);
    });
}

// ---------------------------------------------------------------- server panel

function fact(label, value, cls) {
  return [el("dt", { text: label }), el("dd", { class: cls, text: value })];
}

async function loadInfo() {
  try {
    st.info = await rpc.call("get_server_info");
  } catch (e) {
    if (e instanceof RpcError && e.code === AUTH_ERROR) failure("Server info", e);
  }
  renderFacts();
}

function renderFacts() {
  const facts = [];
  if (st.info) facts.push(...fact("Version", `${st.info.name} ${st.info.version}`));
  if (st.health) {
    facts.push(...fact("Uptime", span(st.health.uptime)));
    const comps = st.health.components || {};
    for (const [name, c] of Object.entries(comps)) {
      facts.push(...fact(name.replace(/_/g, " "), c.message || c.status, `comp comp-${c.status}`));
    }
  }
  $("#facts").replaceChildren(...facts);
}

// /health/detailed needs no credential, so every role sees health; get_storage_info is admin.
async function pollSlow() {
  try {
    const r = await fetch("/health/detailed", { cache: "no-store" });
    st.health = await r.json();
    const badge = $("#health");
    badge.textContent = st.health.status;
    badge.dataset.status = st.health.status;
  } catch {
    const badge = $("#health");
    badge.textContent = "unreachable";
    badge.dataset.status = "unhealthy";
  }
  renderFacts();
  await storage();
}

const refreshStorage = debounce(() => storage(), 300);

async function storage() {
  if (!can("admin") || rpc.state !== "up") return;
  try {
    const s = await rpc.call("get_storage_info");
    $("#s-pct").textContent = `${s.usage_percentage.toFixed(1)} %`;
    const bar = $("#s-bar");
    bar.style.width = `${Math.min(100, s.usage_percentage)}%`;
    bar.dataset.level = s.critical_space_warning ? "critical" : s.low_space_warning ? "low" : "ok";
    $("#s-detail").textContent =
      `${bytes(s.used_space)} used of ${bytes(s.used_space + s.available_space)} · ` +
      `recordings ${bytes(s.recordings_size)} · snapshots ${bytes(s.snapshots_size)}`;
  } catch (e) {
    if (e instanceof RpcError && e.code === AUTH_ERROR) failure("Storage", e);
  }
}

async function pollMetrics() {
  if (!can("admin") || rpc.state !== "up") return;
  let m;
  try {
    m = await rpc.call("get_metrics");
  } catch (e) {
    if (e instanceof RpcError && e.code === AUTH_ERROR) failure("Metrics", e);
    return;
  }
  const s = m.server_metrics;
  const now = performance.now();
  const push = (k, v) => {
    st.hist[k].push(v);
    if (st.hist[k].length > HISTORY) st.hist[k].shift();
  };
  push("conn", s.active_connections);
  if (st.lastTotals) {
    const dt = (now - st.lastTotals.at) / 1000;
    push("rate", dt > 0 ? Math.max(0, (s.total_requests - st.lastTotals.total) / dt) : 0);
  }
  st.lastTotals = { at: now, total: s.total_requests };
  push("avg", s.average_response_time_ms);
  push("p99", s.p99_response_time_ms);
  const rate = st.hist.rate.length ? st.hist.rate[st.hist.rate.length - 1] : 0;
  $("#m-conn").textContent = String(s.active_connections);
  $("#m-rate").textContent = rate.toFixed(1);
  $("#m-lat").textContent = `${s.average_response_time_ms.toFixed(2)} · ${s.p99_response_time_ms.toFixed(2)}`;
  drawCharts();
}

function drawCharts() {
  spark($("#c-conn"), [st.hist.conn], ["#3b82f6"]);
  spark($("#c-rate"), [st.hist.rate], ["#10b981"]);
  spark($("#c-lat"), [st.hist.p99, st.hist.avg], ["#f59e0b", "#8b5cf6"]);
}

// A small line chart of one or more series sharing one scale, starting at zero.
function spark(canvas, series, colors) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300;
  const h = canvas.clientHeight || 54;
  if (canvas.width !== Math.round(w * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const max = Math.max(1e-9, ...series.flat()) * 1.15;
  g.strokeStyle = "rgba(128,128,128,0.18)";
  g.lineWidth = 1;
  for (const y of [0.5, h / 2, h - 0.5]) {
    g.beginPath();
    g.moveTo(0, y);
    g.lineTo(w, y);
    g.stroke();
  }
  series.forEach((data, i) => {
    if (data.length < 2) return;
    const x = (j) => (j / (HISTORY - 1)) * w + (HISTORY - data.length) * (w / (HISTORY - 1));
    const y = (v) => h - 2 - (v / max) * (h - 4);
    g.beginPath();
    data.forEach((v, j) => (j ? g.lineTo(x(j), y(v)) : g.moveTo(x(j), y(v))));
    g.strokeStyle = colors[i];
    g.lineWidth = 1.6;
    g.stroke();
    if (i === 0) {
      g.lineTo(x(data.length - 1), h);
      g.lineTo(x(0), h);
      g.closePath();
      g.fillStyle = `${colors[i]}22`;
      g.fill();
    }
  });
}

// ---------------------------------------------------------------- events

const CAMERA_EVENTS = new Set(["camera.connected", "camera.disconnected", "camera.status_change"]);

function notification(method, p) {
  if (CAMERA_EVENTS.has(method) && p.device) showCamera(p);
  const cam = p.device ? st.cams.get(p.device) : null;
  switch (method) {
    case "recording.start":
      if (cam && !cam.rec) cam.rec = { start: performance.now(), duration: p.duration };
      if (cam) recordingUi(cam);
      break;
    case "recording.stop":
    case "recording.error":
      if (cam) {
        cam.rec = null;
        recordingUi(cam);
      }
      reloadRecordings();
      refreshStorage();
      if (method === "recording.error") toast(`Recording on ${p.device} failed: ${p.reason}`, "error");
      break;
    case "recording.progress":
      // The server's count is the truth: the local timer follows it (a tab in the background
      // may have had its timers slowed).
      if (cam && cam.rec) {
        cam.rec.start = performance.now() - (p.elapsed_time || 0) * 1000;
        tickTimer(cam);
      }
      break;
    case "snapshot.taken":
      reloadSnapshots();
      refreshStorage();
      break;
    case "system.shutdown":
      toast("The server is shutting down", "error");
      break;
    default:
  }
  if (method !== "recording.progress" || (p.elapsed_time || 0) % 60 === 0) logEvent(method, p);
}

function describe(method, p) {
  const parts = [];
  if (p.device) parts.push(p.device);
  switch (method) {
    case "camera.status_change":
      parts.push(`${p.previous_status || "?"} → ${p.status}`);
      break;
    case "camera.connected":
    case "camera.disconnected":
      parts.push(p.status);
      break;
    case "recording.start":
      parts.push(p.filename, p.format);
      break;
    case "recording.stop":
      parts.push(p.filename, `${(p.duration || 0).toFixed(1)} s`, p.reason);
      break;
    case "recording.progress":
      parts.push(`${clock(p.elapsed_time)} · ${bytes(p.bytes_written)}`);
      break;
    case "snapshot.taken":
      parts.push(p.filename);
      break;
    default:
      for (const k of ["reason", "status", "message", "details", "filename", "path"]) {
        if (typeof p[k] === "string" && p[k]) parts.push(p[k]);
      }
  }
  return parts.filter(Boolean).join(" · ");
}

function logEvent(method, p) {
  const kind = method.startsWith("recording.") || method.startsWith("snapshot.") ? "media"
    : method.startsWith("camera.") ? "camera"
    : method.endsWith("error") || method.includes("failed") ? "error"
    : "system";
  logLine(method, describe(method, p), kind, p.timestamp);
}

function logLine(topic, text, kind, ts) {
  const list = $("#events");
  const d = ts ? new Date(ts) : new Date();
  const li = el("li", { class: `ev ev-${kind}` },
    el("time", { datetime: d.toISOString(), text: d.toLocaleTimeString() }),
    el("span", { class: "topic", text: topic }),
    el("span", { class: "what", text }));
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("#signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("#token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#token").value = "";
    $("#signin-error").hidden = true;
    rpc.signIn(token);
  });
  $("#signout").addEventListener("click", () => signOut());
  $("#events-clear").addEventListener("click", () => $("#events").replaceChildren());
  for (const tab of $$(".tab")) {
    tab.addEventListener("click", () => {
      for (const t of $$(".tab")) t.setAttribute("aria-selected", String(t === tab));
      for (const box of $$(".files")) box.hidden = box.dataset.kind !== tab.dataset.tab;
    });
  }
  for (const box of $$(".files")) {
    const kind = box.dataset.kind;
    $(".prev", box).addEventListener("click", () => {
      st.files[kind].offset = Math.max(0, st.files[kind].offset - PAGE);
      loadFiles(kind);
    });
    $(".next", box).addEventListener("click", () => {
      st.files[kind].offset += PAGE;
      loadFiles(kind);
    });
  }
  window.addEventListener("resize", debounce(drawCharts, 200));
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) rpc.signIn(token);
  else showSignIn();
}

wire();
