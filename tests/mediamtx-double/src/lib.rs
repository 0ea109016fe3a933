//! Test double of MediaMTX's v3 control API (stub; being written).
