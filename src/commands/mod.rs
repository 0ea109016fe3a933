//! Admin subcommands: minting tokens and managing API keys against the server's state dir,
//! `call`, one JSON-RPC call against the running server, and `demand`, which holds a camera's
//! stream demand open over the server's control socket.

pub mod apikey;
pub mod call;
pub mod token;

/// `camshard demand cameraN` (the client side of `streaming::demand`'s control socket).
pub use crate::streaming::demand::run_client as demand;
