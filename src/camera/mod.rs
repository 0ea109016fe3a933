//! Cameras: sources (V4L2 and synthetic), capture threads that own each device and fan frames
//! out, discovery and hot-plug, stable identities.

pub(crate) mod capture;
pub(crate) mod discovery;
pub(crate) mod frame;
pub(crate) mod hotplug;
pub(crate) mod identity;
pub(crate) mod item;
pub(crate) mod jpeg;
pub(crate) mod manager;
pub(crate) mod mjpeg;
pub(crate) mod registry;
pub(crate) mod source;
