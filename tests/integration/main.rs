//! The integration suite, one test binary: every module starts the real `camshard` binary
//! (through [`common::TestServer`]) and talks to it over its sockets. One binary instead of one
//! per file: the harness (`common`) compiles once, and the suite links once.
//!
//! The modules' tests run on parallel threads of this one process, so nothing here may change
//! process-wide state (environment, current directory, signal dispositions, resource limits):
//! what a server needs goes on its own `Command` (see `TestServer::env`, `TestServer::nofile`).
//! Run one module with `cargo test --test integration limits::`, one test by its name as before.

mod common;

mod bad_input;
mod browser;
mod cameras;
mod credentials;
mod external;
mod faults;
mod files;
mod fleet;
mod fleet_auth;
mod fleet_edge;
mod layout;
mod limits;
mod live;
mod media;
mod mediamtx;
mod no_ffmpeg;
mod rpc_auth;
mod rpc_envelope;
mod runtime;
mod systemd;
mod tls;
mod transport;
