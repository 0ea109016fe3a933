//! External RTSP streams (contract §9.8) (stub; being written).
