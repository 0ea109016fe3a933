//! Raw HTTP/1.1 client for MediaMTX's API (stub; being written).
