//! What every method handler receives (`Ctx`), its signature (`Handler`) and its table entry
//! (`Method`). A leaf of `methods`: each handler file uses these, and `mod.rs` (the table)
//! uses the handlers, never the other way round.

use crate::auth::Role;
use crate::metrics::ShardStats;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::peer::Peer;
use crate::rpc::reply::Output;
use crate::rpc::session::Session;
use crate::state::ServerState;

/// What a method can see while it runs.
pub struct Ctx<'c> {
    /// Shared server state.
    pub state: &'c std::sync::Arc<ServerState>,
    /// The calling shard's counters.
    pub stats: &'c ShardStats,
    /// The caller's session.
    pub session: &'c mut Session,
    /// The caller's subscriptions.
    pub subs: &'c std::cell::RefCell<crate::events::subs::Subs>,
    /// The caller's peer information.
    pub peer: &'c Peer,
    /// Wall-clock seconds when the request started.
    pub now_unix: u64,
}

/// A method's signature.
pub(crate) type Handler = fn(&mut Ctx<'_>, &Params<'_, '_>) -> Result<Output, RpcError>;

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
