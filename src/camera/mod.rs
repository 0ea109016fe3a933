//! Cameras: sources (V4L2 and synthetic), capture threads that own each device and fan frames
//! out, discovery and hot-plug, stable identities.

pub mod capture;
pub mod discovery;
pub mod frame;
pub mod hotplug;
pub mod identity;
pub mod item;
pub mod jpeg;
pub mod manager;
pub mod mjpeg;
pub mod registry;
pub mod source;
