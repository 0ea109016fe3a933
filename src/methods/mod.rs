//! The method table: one file per JSON-RPC method, each exporting a `METHOD` entry.
//!
//! A method is a plain function from a context and its typed params to a result or an error.
//! The dispatcher has already checked rate limit, authentication and role by the time it runs.

mod authenticate;
mod get_metrics;
mod get_server_info;
mod get_status;
mod ping;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::auth::Role;
use crate::metrics::ShardStats;
use crate::rpc::dispatch::Peer;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;
use crate::rpc::session::Session;
use crate::state::ServerState;

/// What a method can see while it runs.
pub struct Ctx<'c> {
    /// Shared server state.
    pub state: &'c ServerState,
    /// The calling shard's counters.
    pub stats: &'c ShardStats,
    /// The caller's session.
    pub session: &'c mut Session,
    /// The caller's peer information.
    pub peer: &'c Peer,
    /// Wall-clock seconds when the request started.
    pub now_unix: u64,
}

/// A method's signature.
pub type Handler = fn(&mut Ctx<'_>, &Params<'_, '_>) -> Result<Output, RpcError>;

/// One entry of the method table.
pub struct Method {
    /// The JSON-RPC method name.
    pub name: &'static str,
    /// Minimum role; `None` = no authentication (`ping`, `authenticate`).
    pub role: Option<Role>,
    /// Barrier methods wait for earlier requests of the connection (§2.4).
    pub barrier: bool,
    /// The handler.
    pub run: Handler,
}

/// Every method the server implements, in metrics order.
pub static TABLE: &[Method] = &[
    ping::METHOD,
    authenticate::METHOD,
    get_server_info::METHOD,
    get_status::METHOD,
    get_metrics::METHOD,
];

/// The method named `name` and its index in `TABLE`.
pub fn lookup(name: &str) -> Option<(usize, &'static Method)> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| TABLE.iter().enumerate().map(|(i, m)| (m.name, i)).collect());
    index.get(name).map(|&i| (i, &TABLE[i]))
}
