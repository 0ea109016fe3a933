//! Admin subcommands: minting tokens and managing API keys against the server's state dir, and
//! `call`, one JSON-RPC call against the running server.

pub mod apikey;
pub mod call;
pub mod token;
