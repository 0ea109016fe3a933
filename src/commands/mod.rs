//! Admin subcommands: minting tokens and managing API keys against the server's state dir.

pub mod apikey;
pub mod token;
