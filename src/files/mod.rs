//! Media files on disk: name rules (§8.5), the storage rule (§9.3) and download URLs (§8.6).

pub mod api;
pub mod download_url;
pub mod listing;
pub mod names;
pub mod retention;
pub mod storage;
