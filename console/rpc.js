// The console's JSON-RPC 2.0 client: one WebSocket to the server that served the page, the
// same API every other client uses (docs/api-reference.md). It reconnects by itself with a
// growing pause, authenticates again on every new socket with the token it was given, and tells
// the page what state it is in.
//
// States (passed to onState): "connecting", "up" (socket open and authenticated), "down" (socket
// lost; retrying), "denied" (the server refused the credential: no retry until signIn again).

export class RpcError extends Error {
  constructor(err) {
    super(err && err.message ? err.message : "error");
    this.code = err && err.code;
    this.data = (err && err.data) || {};
    this.reason = this.data.reason || "";
  }
}

// -32001: the credential itself was refused (contract §4.2); the page must ask for a new one.
export const AUTH_ERROR = -32001;

const CALL_TIMEOUT_MS = 60000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5000;

export class Rpc {
  constructor({ onState, onNotification, onAuthenticated }) {
    this.onState = onState || (() => {});
    this.onNotification = onNotification || (() => {});
    this.onAuthenticated = onAuthenticated || (() => {});
    this.token = null;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.backoff = BACKOFF_MIN_MS;
    this.retryTimer = null;
    this.state = "idle";
    this.session = null;
  }

  // The WebSocket endpoint on the page's own origin: `/` upgrades whatever `websocket_path` is.
  static url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/`;
  }

  signIn(token) {
    this.token = token;
    this.backoff = BACKOFF_MIN_MS;
    this.open();
  }

  signOut() {
    this.token = null;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "signed out");
    this.failPending(new RpcError({ message: "signed out" }));
    this.setState("idle");
  }

  setState(s, detail) {
    this.state = s;
    this.onState(s, detail);
  }

  open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      old.close();
    }
    if (!this.token) return;
    // While the server is away the state stays "down" through every attempt (no flicker).
    if (this.state !== "down") this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(Rpc.url());
    } catch (e) {
      this.lost();
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.authenticate(ws);
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return; // replaced or signed out
      this.ws = null;
      this.lost();
    };
    ws.onerror = () => {}; // onclose follows and does the work
  }

  async authenticate(ws) {
    try {
      const r = await this.call("authenticate", { auth_token: this.token });
      if (this.ws !== ws) return;
      this.backoff = BACKOFF_MIN_MS;
      this.session = r;
      this.setState("up");
      this.onAuthenticated(r);
    } catch (e) {
      if (this.ws !== ws) return;
      if (e instanceof RpcError && e.code === AUTH_ERROR) {
        // Retrying cannot help: the token is wrong, expired or revoked.
        this.token = null;
        this.ws = null;
        ws.close(1000, "authentication failed");
        this.setState("denied", e);
      } else {
        ws.close();
      }
    }
  }

  lost() {
    this.failPending(new RpcError({ message: "connection lost", data: { reason: "connection_lost" } }));
    this.session = null;
    if (!this.token) return;
    this.setState("down");
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.retryTimer = setTimeout(() => this.open(), wait);
  }

  failPending(err) {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) {
      if (m && m.method && m.id === undefined) {
        this.onNotification(m.method, m.params || {});
        continue;
      }
      const p = m && this.pending.get(m.id);
      if (!p) continue;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error) p.reject(new RpcError(m.error));
      else p.resolve(m.result);
    }
  }

  // Calls `method` with `params`; resolves with the result or rejects with an RpcError.
  call(method, params) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RpcError({ message: "not connected", data: { reason: "not_connected" } }));
    }
    const id = this.nextId++;
    const msg = { jsonrpc: "2.0", method, id };
    if (params !== undefined) msg.params = params;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError({ message: "no reply", data: { reason: "timeout" } }));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify(msg));
    });
  }
}
