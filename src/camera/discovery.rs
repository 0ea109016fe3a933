//! Finding cameras: enumerate V4L2 nodes in sysfs, probe each, and give each a stable identity.
//!
//! One [`scan`] walks `<sys_root>/class/video4linux/video*` in index order (`video2` before
//! `video10`), probes `<dev_root>/<name>` with real ioctls ([`probe`]) and keeps the nodes that
//! can capture video. Everything else is reported in [`Scan::skipped`] with the reason: a UVC
//! camera's second node is a metadata node (`NotCapture`), a stray file is `NotV4l2`, a node in
//! use elsewhere may be `Busy`. The roots are configurable so tests (and these CI machines,
//! which have no `/dev/video*`) can build fake trees.
//!
//! # Identity (contract §8.1)
//!
//! The camera id must follow the physical camera, not the `/dev/videoN` number (which changes
//! with plug order). In order of preference:
//! 1. `usb:<idVendor>:<idProduct>:<serial>` — the node's sysfs `device` link points at the USB
//!    *interface* directory; its parent is the USB *device* directory holding `idVendor`,
//!    `idProduct` and (if the camera has one) `serial`. Some drivers link the node to the USB
//!    device itself: the linked directory is checked first, because its parent is then a *hub*
//!    whose ids (`1d6b:0002`, root hub) would otherwise be taken. Survives moving to another port.
//! 2. `path:<sysfs device path>` — the resolved `device` link relative to `<sys_root>`
//!    (`devices/pci0000:00/…/1-2/1-2:1.0`): the same port gives the same id.
//! 3. `node:<videoN>` — nothing better is known. This id follows plug order, so it is
//!    *transient*: the camera gets a number for this run, but the binding is never persisted.
//!
//! Cheap cameras often share one "serial" across units. Two capture nodes with the same serial
//! identity in one scan would merge into one camera, so every node of such a collision falls
//! back to its bus-path identity (deterministic whatever the node order). Bus paths can clash
//! too — two capture nodes behind one USB interface (dual-sensor cameras, capture cards) — so
//! every node of a remaining clash gets the node's V4L2 `index` attribute appended
//! (`…:1.0:video-index2`, as udev's by-path names do), and `node:<videoN>` if even that does not
//! tell them apart. Two cameras never merge.
//!
//! Why not udev's `/dev/v4l/by-path` link (earlier versions preferred it): udev creates it a few
//! milliseconds *after* the kernel creates the node, so a scan that ran in between gave a
//! serial-less camera a different identity than the next scan, and each identity was bound to
//! its own number forever (a camera could come back as a new `cameraN` after a reboot). sysfs is
//! complete before the node appears, so the sysfs path is the same whichever scan sees it. The
//! link is still read, as [`Node::legacy_identity`], so a camera bound under its by-path name by
//! an earlier version keeps its number (the camera manager re-keys the binding once).
//!
//! # Fixtures (tests and demos only)
//!
//! With `emulate_fixtures`, a file `camshard-fixture.json` in the node's sysfs class directory
//! replaces the ioctls. **Real sysfs never contains this file and production leaves
//! `emulate_fixtures` off**; it exists so the whole discovery → capture path can run on machines
//! without cameras. The fixture's node must still exist in `<dev_root>` (else `NotFound`), and
//! [`open_source`] streams a fixture node from a `SyntheticSource` — unless the fixture has a
//! `script`, described next.
//!
//! ## Scripted fixtures
//!
//! With a `"script"` object, the node streams through the real `V4l2Source` code over a
//! scripted device (`source/scripted.rs`) instead: format negotiation, mmap buffer handling,
//! retries and errno mapping all run as they would on hardware. Every member is optional:
//!
//! ```json
//! {"driver": "uvcvideo", "card": "Scripted Cam",
//!  "formats": [{"fourcc": "MJPG", "sizes": [{"width": 320, "height": 240, "fps": [30, 15]}]},
//!              {"fourcc": "YUYV", "sizes": [{"width": 320, "height": 240, "fps": [15]}]}],
//!  "script": {
//!    "accept": ["YUYV"],
//!    "size": [320, 240],
//!    "fps": 10,
//!    "frames": [{"synthetic": true}, {"strip_dht": true, "pad": 1000}, {"junk_tail": 7},
//!               {"truncate": 200}, {"tiny": true}, {"base64": "/9j/4AAQ…"}, {"error_flag": true}],
//!    "errors": {"open": ["EBUSY"], "streamon": ["ENOSPC"], "dqbuf": ["ok", "EINTR", "ENODEV*"]}
//!  }}
//! ```
//!
//! - `accept`: FourCCs S_FMT accepts; another request is answered with the first of these (as
//!   drivers adjust). Default: whatever is asked. `size` `[w, h]`: what S_FMT returns.
//!   `bytesperline`: padded YUYV rows.
//! - `fps`: the rate S_PARM sets and G_PARM reports whatever was asked (default: the asked
//!   rate). `pace` (default `true`): deliver frames at that rate; `quality`: of generated JPEGs.
//! - `frames`, repeated forever (default: one generated frame): generated (`synthetic`, or no
//!   `base64`) frames are a test pattern at the negotiated size — raw YUYV on a YUYV stream, a
//!   JPEG otherwise; `base64` gives bytes verbatim. Then, in this order: `strip_dht` removes
//!   the Huffman tables, `tiny` replaces the frame by a 22-byte SOI…EOI stub, `truncate: n`
//!   cuts n bytes off the end, `pad: n` appends n zeros, `junk_tail: n` n non-zero bytes;
//!   `error_flag` sets `V4L2_BUF_FLAG_ERROR`.
//! - `errors`: per operation (`open`, `s_fmt`, `g_parm`, `s_parm`, `reqbufs`, `querybuf`,
//!   `qbuf`, `dqbuf`, `streamon`, `streamoff`, `poll`), the answers of its 1st, 2nd, … call:
//!   `"ok"`, an errno name, or an errno name ending in `*` that repeats forever; `poll` also
//!   takes `"timeout"`. After the list every call succeeds. The sequence restarts each time
//!   the camera is opened again.
//!
//! A script that names an unknown operation, errno or FourCC, or bad base64, makes the node a
//! `bad fixture` skip.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::source::scripted::{DeviceScript, ScriptedDevice};
use super::source::synthetic::SyntheticSource;
use super::source::v4l2::{probe, ProbeError, V4l2Source};
use super::source::{CameraSource, Capabilities, FormatDesc, SizeDesc, SourceError};

/// Name of the fixture file in a sysfs class directory (never present on real systems).
pub(crate) const FIXTURE_FILE: &str = "camshard-fixture.json";

/// Where to look for cameras.
#[derive(Debug, Clone)]
pub(crate) struct DiscoveryConfig {
    /// Device node directory (`/dev`).
    pub dev_root: PathBuf,
    /// sysfs mount point (`/sys`).
    pub sys_root: PathBuf,
    /// Read `camshard-fixture.json` test doubles instead of issuing ioctls (tests/demo only).
    pub emulate_fixtures: bool,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            dev_root: PathBuf::from("/dev"),
            sys_root: PathBuf::from("/sys"),
            emulate_fixtures: false,
        }
    }
}

/// How a node's identity was derived (most to least stable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdentityKind {
    /// USB vendor, product and serial number.
    Serial,
    /// The bus path (the sysfs device path).
    ByPath,
    /// Only the node name: transient, never persisted.
    Node,
}

/// A capture-capable node found by a scan.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Node name (`video0`).
    pub name: String,
    /// Device node path (`<dev_root>/video0`).
    pub dev_path: PathBuf,
    /// Stable identity (`usb:046d:0825:ABC`, `path:…`, `node:video0`).
    pub identity: String,
    /// How `identity` was derived.
    pub identity_kind: IdentityKind,
    /// `path:<udev by-path name>` when the link exists: the identity earlier versions used for a
    /// serial-less camera, looked up only to keep such a camera's number (module docs).
    pub legacy_identity: Option<String>,
    /// Probed capabilities.
    pub caps: Capabilities,
    /// Described by a fixture file rather than probed (streams synthetic frames).
    pub fixture: bool,
    /// The fixture's `script`: stream through `V4l2Source` over a scripted device.
    pub(crate) script: Option<Arc<DeviceScript>>,
}

/// Why a node was skipped.
#[derive(Debug)]
pub(crate) enum SkipReason {
    /// Probing failed (or the fixture modelled a failure).
    Probe(ProbeError),
    /// The fixture file could not be read or parsed.
    Fixture(String),
    /// A capture node whose `device_caps` lack `V4L2_CAP_STREAMING`: it could only be read with
    /// `read()`, which camshard does not do (mmap streaming only), so every start would fail.
    NoStreaming,
    /// A capture node offering neither MJPG nor YUYV (the formats camshard can turn into JPEG),
    /// with the FourCCs it does offer.
    NoFormat(Vec<String>),
}

impl SkipReason {
    /// True for a node that looks like a camera but cannot be used (as opposed to a node that
    /// is simply not a camera: a UVC metadata node, a non-V4L2 file, a node that vanished).
    /// These are what health reports as "unusable".
    pub(crate) fn is_unusable_camera(&self) -> bool {
        !matches!(
            self,
            SkipReason::Probe(ProbeError::NotCapture | ProbeError::NotV4l2 | ProbeError::NotFound)
        )
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Probe(e) => e.fmt(f),
            SkipReason::Fixture(e) => write!(f, "bad fixture: {e}"),
            SkipReason::NoStreaming => {
                f.write_str("capture node without streaming I/O (V4L2_CAP_STREAMING)")
            }
            SkipReason::NoFormat(offered) if offered.is_empty() => {
                f.write_str("capture node offers no pixel format (MJPG or YUYV needed)")
            }
            SkipReason::NoFormat(offered) => write!(
                f,
                "capture node offers neither MJPG nor YUYV (only {})",
                offered.join(", ")
            ),
        }
    }
}

/// A node that is not (usable as) a camera, with the reason.
#[derive(Debug)]
pub(crate) struct Skipped {
    /// Node name (`video1`).
    pub name: String,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// The result of one scan.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Capture nodes, in node index order.
    pub nodes: Vec<Node>,
    /// Nodes that are not cameras, in node index order.
    pub skipped: Vec<Skipped>,
}

/// Enumerates, probes and identifies every V4L2 node (see the module docs).
///
/// A missing `<sys_root>/class/video4linux` (no V4L2 driver loaded) is an empty scan.
pub(crate) fn scan(cfg: &DiscoveryConfig) -> Scan {
    let class_dir = cfg.sys_root.join("class/video4linux");
    let mut names: Vec<(u32, String)> = match fs::read_dir(&class_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let index = node_index(&name)?;
                Some((index, name))
            })
            .collect(),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %class_dir.display(), error = %e, "cannot list V4L2 nodes");
            }
            Vec::new()
        }
    };
    // Numeric order: a string sort would put video10 before video2.
    names.sort();

    let mut out = Scan::default();
    for (_, name) in names {
        let dev_path = cfg.dev_root.join(&name);
        let fixture_path = class_dir.join(&name).join(FIXTURE_FILE);
        let fixture = cfg.emulate_fixtures && fixture_path.is_file();
        let probed = if fixture {
            load_fixture(&fixture_path, &dev_path)
        } else {
            probe(&dev_path)
                .map(|caps| (caps, None))
                .map_err(SkipReason::Probe)
        }
        .and_then(|(caps, script)| Ok((usable(caps)?, script)));
        match probed {
            Ok((caps, script)) => {
                let (identity, identity_kind) = identify(cfg, &name);
                let legacy_identity = by_path_name(cfg, &name).map(|l| format!("path:{l}"));
                out.nodes.push(Node {
                    name,
                    dev_path,
                    identity,
                    identity_kind,
                    legacy_identity,
                    caps,
                    fixture,
                    script,
                });
            }
            Err(reason) => out.skipped.push(Skipped { name, reason }),
        }
    }
    split_serial_collisions(cfg, &mut out.nodes);
    split_path_collisions(cfg, &mut out.nodes);
    out
}

/// Keeps a capture node only if a start could succeed: listing a node that fails at every start
/// would show a CONNECTED camera that never delivers a frame (and, before back-off, restart it in
/// a loop). The names are those `probe` gives `device_caps` (`Streaming`).
fn usable(caps: Capabilities) -> Result<Capabilities, SkipReason> {
    if !caps.device_caps.iter().any(|c| c == "Streaming") {
        return Err(SkipReason::NoStreaming);
    }
    if !caps
        .formats
        .iter()
        .any(|f| matches!(f.fourcc.trim_end(), "MJPG" | "YUYV"))
    {
        let offered = caps
            .formats
            .iter()
            .map(|f| f.fourcc.trim_end().to_string())
            .collect();
        return Err(SkipReason::NoFormat(offered));
    }
    Ok(caps)
}

/// `videoN` → `N`; anything else (`video`, `videoX`, `vbi0`) → `None`.
fn node_index(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("video")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Gives every node of a serial collision its bus-path identity instead (see module docs).
fn split_serial_collisions(cfg: &DiscoveryConfig, nodes: &mut [Node]) {
    let mut seen = HashSet::new();
    let dup: HashSet<String> = nodes
        .iter()
        .filter(|n| n.identity_kind == IdentityKind::Serial)
        .filter(|n| !seen.insert(n.identity.clone()))
        .map(|n| n.identity.clone())
        .collect();
    for node in nodes
        .iter_mut()
        .filter(|n| n.identity_kind == IdentityKind::Serial && dup.contains(&n.identity))
    {
        let (identity, kind) = path_identity(cfg, &node.name);
        tracing::warn!(
            node = %node.name,
            serial_identity = %node.identity,
            identity = %identity,
            "several capture nodes report the same USB serial; using the bus path instead"
        );
        node.identity = identity;
        node.identity_kind = kind;
    }
}

/// Gives every node of a remaining identity clash its V4L2 `index` (or, failing that, its node
/// name) so that no two nodes of one scan share an identity (module docs).
fn split_path_collisions(cfg: &DiscoveryConfig, nodes: &mut [Node]) {
    // Two rounds: the index first; if indexes are missing or equal, the node name (unique).
    for round in 0..2 {
        let mut count: HashMap<String, usize> = HashMap::new();
        for n in nodes.iter() {
            *count.entry(n.identity.clone()).or_default() += 1;
        }
        for node in nodes.iter_mut().filter(|n| count[&n.identity] > 1) {
            let index = fs::read_to_string(
                cfg.sys_root
                    .join("class/video4linux")
                    .join(&node.name)
                    .join("index"),
            )
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
            let (identity, kind) = match index {
                Some(i) if round == 0 => (
                    format!("{}:video-index{i}", node.identity),
                    node.identity_kind,
                ),
                _ => (format!("node:{}", node.name), IdentityKind::Node),
            };
            tracing::warn!(
                node = %node.name,
                shared_identity = %node.identity,
                identity = %identity,
                "several capture nodes share one identity; telling them apart"
            );
            node.identity = identity;
            node.identity_kind = kind;
        }
    }
}

/// The node's identity from sysfs (module docs, steps 1–3).
fn identify(cfg: &DiscoveryConfig, name: &str) -> (String, IdentityKind) {
    if let Some(usb) = usb_device_dir(cfg, name) {
        let attr = |a: &str| {
            fs::read_to_string(usb.join(a))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        if let (Some(vid), Some(pid), Some(serial)) =
            (attr("idVendor"), attr("idProduct"), attr("serial"))
        {
            return (format!("usb:{vid}:{pid}:{serial}"), IdentityKind::Serial);
        }
    }
    path_identity(cfg, name)
}

/// Steps 2–3: sysfs device path, node name. Never the udev by-path link, whose existence
/// depends on timing (module docs).
fn path_identity(cfg: &DiscoveryConfig, name: &str) -> (String, IdentityKind) {
    if let Some(rel) = sysfs_device_path(cfg, name) {
        return (format!("path:{rel}"), IdentityKind::ByPath);
    }
    (format!("node:{name}"), IdentityKind::Node)
}

/// The resolved `device` link of the node's class directory (the USB interface, for UVC).
fn device_dir(cfg: &DiscoveryConfig, name: &str) -> Option<PathBuf> {
    fs::canonicalize(
        cfg.sys_root
            .join("class/video4linux")
            .join(name)
            .join("device"),
    )
    .ok()
}

/// The USB device directory holding `idVendor`: the linked directory itself when the driver
/// links the node to the USB device, else its parent (the usual link to an interface). The
/// linked directory comes first: when it *is* the device, its parent is a hub with ids of its own.
fn usb_device_dir(cfg: &DiscoveryConfig, name: &str) -> Option<PathBuf> {
    let iface = device_dir(cfg, name)?;
    [Some(iface.clone()), iface.parent().map(Path::to_path_buf)]
        .into_iter()
        .flatten()
        .find(|d| d.join("idVendor").is_file())
}

/// The resolved device path relative to `<sys_root>` (`devices/pci0000:00/…`).
fn sysfs_device_path(cfg: &DiscoveryConfig, name: &str) -> Option<String> {
    let dev = device_dir(cfg, name)?;
    let root = fs::canonicalize(&cfg.sys_root).ok()?;
    let rel = dev.strip_prefix(&root).ok()?;
    let s = rel.to_str()?;
    (!s.is_empty()).then(|| s.to_string())
}

/// The first (sorted) `<dev_root>/v4l/by-path/*` symlink that resolves to the node.
fn by_path_name(cfg: &DiscoveryConfig, name: &str) -> Option<String> {
    let dir = cfg.dev_root.join("v4l/by-path");
    let node = fs::canonicalize(cfg.dev_root.join(name)).ok()?;
    let mut links: Vec<String> = fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let link_name = e.file_name().into_string().ok()?;
            // Links are relative (`../../video0`); canonicalize resolves them against `dir`.
            let target = fs::canonicalize(e.path()).ok()?;
            (target == node).then_some(link_name)
        })
        .collect();
    // udev may create two names for one node (legacy `usb-` and `usbv2-`); pick a stable one.
    links.sort();
    links.into_iter().next()
}

/// Fixture file shape (see module docs).
#[derive(Debug, Deserialize)]
struct Fixture {
    #[serde(default)]
    driver: String,
    #[serde(default)]
    card: String,
    #[serde(default)]
    bus_info: String,
    #[serde(default = "fixture_version")]
    version: String,
    #[serde(default = "yes")]
    capture: bool,
    /// `false` models a capture node without `V4L2_CAP_STREAMING` in its device caps.
    #[serde(default = "yes")]
    streaming: bool,
    #[serde(default)]
    formats: Vec<FixtureFormat>,
    /// Present: stream through the real V4L2 code over a scripted device (module docs).
    #[serde(default)]
    script: Option<DeviceScript>,
}

#[derive(Debug, Deserialize)]
struct FixtureFormat {
    fourcc: String,
    #[serde(default)]
    sizes: Vec<SizeDesc>,
}

fn fixture_version() -> String {
    "6.1.0".to_string()
}

fn yes() -> bool {
    true
}

/// Capabilities (and the device script, if any) from a fixture file, with the same outcomes a
/// probe would have.
fn load_fixture(
    fixture_path: &Path,
    dev_path: &Path,
) -> Result<(Capabilities, Option<Arc<DeviceScript>>), SkipReason> {
    // Like a real probe, a node that is not in /dev is not found.
    if fs::symlink_metadata(dev_path).is_err() {
        return Err(SkipReason::Probe(ProbeError::NotFound));
    }
    let text = fs::read_to_string(fixture_path).map_err(|e| SkipReason::Fixture(e.to_string()))?;
    let f: Fixture = serde_json::from_str(&text).map_err(|e| SkipReason::Fixture(e.to_string()))?;
    if !f.capture {
        return Err(SkipReason::Probe(ProbeError::NotCapture));
    }
    if let Some(script) = &f.script {
        script
            .validate()
            .map_err(|e| SkipReason::Fixture(format!("script: {e}")))?;
    }
    let script = f.script.map(Arc::new);
    let names = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let device_caps = if f.streaming {
        names(&["Video Capture", "Streaming", "Extended Pix Format"])
    } else {
        names(&["Video Capture", "Read/Write", "Extended Pix Format"])
    };
    let caps = Capabilities {
        driver: f.driver,
        card: f.card,
        bus_info: f.bus_info,
        version: f.version,
        capabilities: names(&[
            "Video Capture",
            "Metadata Capture",
            "Streaming",
            "Extended Pix Format",
            "Device Capabilities",
        ]),
        device_caps,
        formats: f
            .formats
            .into_iter()
            .map(|ff| FormatDesc {
                fourcc: ff.fourcc.trim_end().to_string(),
                sizes: ff.sizes,
            })
            .collect(),
    };
    Ok((caps, script))
}

/// Opens a streaming source for a node: `V4l2Source` for real nodes and for fixtures with a
/// `script` (over a scripted device), `SyntheticSource` for other fixtures.
///
/// A fixture without a script streams at its first size and first rate; `want` applies to
/// real devices and scripted fixtures only.
pub(crate) fn open_source(
    node: &Node,
    camera_id: &str,
    want: Option<(u32, u32, u32)>,
) -> Result<Box<dyn CameraSource>, SourceError> {
    if let Some(script) = &node.script {
        let device = ScriptedDevice::new(DeviceScript::clone(script));
        let source = V4l2Source::with_device(
            Box::new(device),
            &node.dev_path,
            node.caps.clone(),
            want,
            camera_id.to_string(),
        )?;
        return Ok(Box::new(source));
    }
    if node.fixture {
        let size = node
            .caps
            .formats
            .iter()
            .flat_map(|f| f.sizes.first())
            .next()
            .ok_or_else(|| {
                SourceError::Unsupported(format!("{camera_id}: fixture has no sizes"))
            })?;
        let fps = size
            .fps
            .first()
            .copied()
            .filter(|f| f.is_finite() && *f >= 1.0)
            .map_or(15, |f| f.round() as u32);
        let name = if node.caps.card.is_empty() {
            camera_id
        } else {
            node.caps.card.as_str()
        };
        return Ok(Box::new(SyntheticSource::new(
            name,
            size.width,
            size.height,
            fps,
        )));
    }
    let source = V4l2Source::open(
        &node.dev_path,
        node.caps.clone(),
        want,
        camera_id.to_string(),
    )?;
    Ok(Box::new(source))
}

/// Remembers skip reasons across scans so each is logged once, not on every scan.
#[derive(Debug, Default)]
pub(crate) struct SkipLog {
    last: HashMap<String, String>,
    /// Reasons of the nodes in the last report that look like cameras but cannot be used
    /// ([`SkipReason::is_unusable_camera`]), in node order: what health shows.
    unusable: Vec<String>,
}

impl SkipLog {
    /// An empty log.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        SkipLog::default()
    }

    /// Logs skipped nodes whose reason is new or changed; forgets nodes not skipped any more
    /// (gone, or now usable), so a later failure is logged again.
    pub(crate) fn report(&mut self, scan: &Scan) {
        let mut now = HashMap::with_capacity(scan.skipped.len());
        self.unusable.clear();
        for s in &scan.skipped {
            let reason = s.reason.to_string();
            if s.reason.is_unusable_camera() {
                self.unusable.push(reason.clone());
            }
            if self.last.get(&s.name) != Some(&reason) {
                match &s.reason {
                    // Expected on every machine with a UVC camera (its metadata node).
                    SkipReason::Probe(ProbeError::NotCapture) => {
                        tracing::debug!(node = %s.name, reason = %reason, "V4L2 node skipped")
                    }
                    // A video node that is not V4L2 at all is unusual: say so, once.
                    SkipReason::Probe(ProbeError::NotV4l2) => {
                        tracing::info!(node = %s.name, reason = %reason, "V4L2 node skipped")
                    }
                    _ => tracing::warn!(node = %s.name, reason = %reason, "V4L2 node skipped"),
                }
            }
            now.insert(s.name.clone(), reason);
        }
        self.last = now;
    }

    /// How many nodes are currently remembered as skipped.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.last.len()
    }

    /// How many nodes of the last report look like cameras but cannot be used.
    #[cfg(test)]
    pub(crate) fn unusable(&self) -> usize {
        self.unusable.len()
    }

    /// Why each of those nodes cannot be used (no node names: health bodies never show device
    /// nodes; the log line names the node).
    pub(crate) fn unusable_reasons(&self) -> &[String] {
        &self.unusable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake `/dev` + `/sys` pair in a temp dir.
    struct Tree {
        _tmp: tempfile::TempDir,
        cfg: DiscoveryConfig,
    }

    impl Tree {
        fn new() -> Tree {
            let tmp = tempfile::tempdir().unwrap();
            let dev = tmp.path().join("dev");
            let sys = tmp.path().join("sys");
            fs::create_dir_all(&dev).unwrap();
            fs::create_dir_all(sys.join("class/video4linux")).unwrap();
            Tree {
                cfg: DiscoveryConfig {
                    dev_root: dev,
                    sys_root: sys,
                    emulate_fixtures: true,
                },
                _tmp: tmp,
            }
        }

        /// Adds `videoN`: a plain file in dev (real ENOTTY unless a fixture answers), a class
        /// dir whose `device` link points at USB interface `<port>:1.0` of device `<port>`.
        fn add(
            &self,
            name: &str,
            port: &str,
            usb: Option<(&str, &str, &str)>,
            fixture: Option<&str>,
        ) {
            let sys = &self.cfg.sys_root;
            let usb_dev = sys.join(format!("devices/pci0000:00/0000:00:14.0/usb1/{port}"));
            let iface = usb_dev.join(format!("{port}:1.0"));
            fs::create_dir_all(&iface).unwrap();
            if let Some((vid, pid, serial)) = usb {
                fs::write(usb_dev.join("idVendor"), format!("{vid}\n")).unwrap();
                fs::write(usb_dev.join("idProduct"), format!("{pid}\n")).unwrap();
                fs::write(usb_dev.join("serial"), format!("{serial}\n")).unwrap();
            }
            let class = sys.join("class/video4linux").join(name);
            fs::create_dir_all(&class).unwrap();
            // Real sysfs uses relative links; so do we, so canonicalize is exercised.
            symlink(
                format!("../../../devices/pci0000:00/0000:00:14.0/usb1/{port}/{port}:1.0"),
                class.join("device"),
            )
            .unwrap();
            fs::write(self.cfg.dev_root.join(name), b"").unwrap();
            if let Some(f) = fixture {
                fs::write(class.join(FIXTURE_FILE), f).unwrap();
            }
        }
    }

    const CAM: &str = r#"{"driver":"uvcvideo","card":"Fake Cam","bus_info":"usb-0000:00:14.0-1","capture":true,
        "formats":[{"fourcc":"MJPG","sizes":[{"width":640,"height":480,"fps":[30,15]}]}]}"#;
    const META: &str = r#"{"driver":"uvcvideo","card":"Fake Cam","capture":false}"#;

    #[test]
    fn scan_orders_numerically_and_skips_with_reasons() {
        let t = Tree::new();
        t.add("video10", "1-3", Some(("046d", "0825", "CCC")), Some(CAM));
        t.add("video2", "1-2", Some(("046d", "0825", "BBB")), Some(CAM));
        t.add("video3", "1-2", Some(("046d", "0825", "BBB")), Some(META));
        // No fixture: a real probe of a plain file → real ENOTTY.
        t.add("video4", "1-4", None, None);
        // A fixture whose node is missing from /dev.
        t.add("video5", "1-5", None, Some(CAM));
        fs::remove_file(t.cfg.dev_root.join("video5")).unwrap();
        // Not a node name.
        fs::create_dir_all(t.cfg.sys_root.join("class/video4linux/videoX")).unwrap();

        let s = scan(&t.cfg);
        let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["video2", "video10"]);
        assert_eq!(s.nodes[0].identity, "usb:046d:0825:BBB");
        assert_eq!(s.nodes[0].identity_kind, IdentityKind::Serial);
        assert_eq!(s.nodes[0].dev_path, t.cfg.dev_root.join("video2"));
        assert!(s.nodes[0].fixture);
        assert_eq!(s.nodes[0].caps.card, "Fake Cam");
        assert_eq!(s.nodes[0].caps.formats[0].sizes[0].fps, vec![30.0, 15.0]);
        assert_eq!(s.nodes[1].identity, "usb:046d:0825:CCC");

        let reasons: Vec<(&str, String)> = s
            .skipped
            .iter()
            .map(|k| (k.name.as_str(), format!("{:?}", k.reason)))
            .collect();
        assert_eq!(
            reasons,
            [
                ("video3", "Probe(NotCapture)".to_string()),
                ("video4", "Probe(NotV4l2)".to_string()),
                ("video5", "Probe(NotFound)".to_string()),
            ]
        );
    }

    #[test]
    fn capture_nodes_without_streaming_or_a_usable_format_are_skipped() {
        let t = Tree::new();
        t.add("video0", "1-2", None, Some(CAM));
        // A read()-only capture node (no V4L2_CAP_STREAMING).
        t.add(
            "video2",
            "1-3",
            None,
            Some(r#"{"card":"Old Cam","streaming":false,"formats":[{"fourcc":"MJPG","sizes":[{"width":640,"height":480,"fps":[30]}]}]}"#),
        );
        // Streams, but only H.264 and a raw Bayer format.
        t.add(
            "video4",
            "1-4",
            None,
            Some(r#"{"card":"H264 Cam","formats":[{"fourcc":"H264"},{"fourcc":"BA81"}]}"#),
        );
        // Streams, offers nothing at all.
        t.add("video6", "1-5", None, Some(r#"{"card":"Empty"}"#));
        let s = scan(&t.cfg);
        let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["video0"]);
        let reasons: Vec<(&str, String)> = s
            .skipped
            .iter()
            .map(|k| (k.name.as_str(), k.reason.to_string()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    "video2",
                    "capture node without streaming I/O (V4L2_CAP_STREAMING)".to_string()
                ),
                (
                    "video4",
                    "capture node offers neither MJPG nor YUYV (only H264, BA81)".to_string()
                ),
                (
                    "video6",
                    "capture node offers no pixel format (MJPG or YUYV needed)".to_string()
                ),
            ]
        );
        assert!(s.skipped.iter().all(|k| k.reason.is_unusable_camera()));
        // Logged once per node like any other skip; the log remembers all three.
        let mut log = SkipLog::new();
        log.report(&s);
        assert_eq!(log.len(), 3);
        assert_eq!(log.unusable(), 3);
    }

    #[test]
    fn fixtures_are_ignored_unless_emulated() {
        let mut t = Tree::new();
        t.add("video0", "1-2", Some(("046d", "0825", "A")), Some(CAM));
        t.cfg.emulate_fixtures = false;
        let s = scan(&t.cfg);
        assert!(s.nodes.is_empty());
        assert!(matches!(
            s.skipped[0].reason,
            SkipReason::Probe(ProbeError::NotV4l2)
        ));
    }

    #[test]
    fn identity_falls_back_to_sysfs_path_then_node() {
        let t = Tree::new();
        // Empty serial counts as none.
        t.add("video0", "1-2", Some(("046d", "0825", "")), Some(CAM));
        t.add("video1", "1-3", None, Some(CAM));
        // The first scan runs before udev made its by-path link (the hot-plug race).
        let before: Vec<String> = scan(&t.cfg)
            .nodes
            .iter()
            .map(|n| n.identity.clone())
            .collect();
        let by_path = t.cfg.dev_root.join("v4l/by-path");
        fs::create_dir_all(&by_path).unwrap();
        symlink(
            "../../video0",
            by_path.join("pci-0000:00:14.0-usb-0:2:1.0-video-index0"),
        )
        .unwrap();
        // A link to another node must not be taken.
        symlink(
            "../../video7",
            by_path.join("pci-0000:00:14.0-usb-0:9:1.0-video-index0"),
        )
        .unwrap();
        // video2: no device link at all.
        fs::create_dir_all(t.cfg.sys_root.join("class/video4linux/video2")).unwrap();
        fs::write(
            t.cfg
                .sys_root
                .join("class/video4linux/video2")
                .join(FIXTURE_FILE),
            CAM,
        )
        .unwrap();
        fs::write(t.cfg.dev_root.join("video2"), b"").unwrap();

        let s = scan(&t.cfg);
        let ids: Vec<(&str, IdentityKind)> = s
            .nodes
            .iter()
            .map(|n| (n.identity.as_str(), n.identity_kind))
            .collect();
        assert_eq!(
            ids,
            [
                (
                    "path:devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0",
                    IdentityKind::ByPath
                ),
                (
                    "path:devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0",
                    IdentityKind::ByPath
                ),
                ("node:video2", IdentityKind::Node),
            ]
        );
        // The link, once there, changes nothing: the same identity with or without it.
        assert_eq!(before[..2], [ids[0].0, ids[1].0]);
        // It is still read, as the identity earlier versions bound (to keep their numbers).
        assert_eq!(
            s.nodes[0].legacy_identity.as_deref(),
            Some("path:pci-0000:00:14.0-usb-0:2:1.0-video-index0")
        );
        assert_eq!(s.nodes[1].legacy_identity, None);
    }

    #[test]
    fn a_node_linked_to_the_usb_device_itself_takes_its_ids_not_the_hubs() {
        let t = Tree::new();
        let sys = &t.cfg.sys_root;
        // The root hub (`usb1`) has ids and a serial of its own, like real ones (1d6b = Linux).
        let hub = sys.join("devices/pci0000:00/0000:00:14.0/usb1");
        let dev = hub.join("1-2");
        fs::create_dir_all(&dev).unwrap();
        for (dir, vid, pid, serial) in [
            (&hub, "1d6b", "0002", "0000:00:14.0"),
            (&dev, "046d", "0825", "CAMSERIAL"),
        ] {
            fs::write(dir.join("idVendor"), format!("{vid}\n")).unwrap();
            fs::write(dir.join("idProduct"), format!("{pid}\n")).unwrap();
            fs::write(dir.join("serial"), format!("{serial}\n")).unwrap();
        }
        let class = sys.join("class/video4linux/video0");
        fs::create_dir_all(&class).unwrap();
        // The driver links the node to the USB device, not to one of its interfaces.
        symlink(
            "../../../devices/pci0000:00/0000:00:14.0/usb1/1-2",
            class.join("device"),
        )
        .unwrap();
        fs::write(class.join(FIXTURE_FILE), CAM).unwrap();
        fs::write(t.cfg.dev_root.join("video0"), b"").unwrap();
        let s = scan(&t.cfg);
        assert_eq!(s.nodes[0].identity, "usb:046d:0825:CAMSERIAL");
    }

    #[test]
    fn capture_nodes_sharing_a_bus_path_are_split_by_index() {
        let t = Tree::new();
        // Two capture nodes behind one USB interface (a dual-sensor camera without a serial),
        // and a serial-less camera on another port.
        t.add("video0", "1-2", None, Some(CAM));
        t.add("video2", "1-2", None, Some(CAM));
        t.add("video4", "1-3", None, Some(CAM));
        let class = t.cfg.sys_root.join("class/video4linux");
        fs::write(class.join("video0/index"), "0\n").unwrap();
        fs::write(class.join("video2/index"), "2\n").unwrap();
        let ids = |t: &Tree| -> Vec<(String, IdentityKind)> {
            scan(&t.cfg)
                .nodes
                .iter()
                .map(|n| (n.identity.clone(), n.identity_kind))
                .collect()
        };
        let iface = "path:devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0";
        assert_eq!(
            ids(&t),
            [
                (format!("{iface}:video-index0"), IdentityKind::ByPath),
                (format!("{iface}:video-index2"), IdentityKind::ByPath),
                (
                    "path:devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0".to_string(),
                    IdentityKind::ByPath
                ),
            ]
        );
        // Without index attributes (or with equal ones) the node names tell them apart; such
        // identities are transient.
        fs::write(class.join("video2/index"), "0\n").unwrap();
        let got = ids(&t);
        assert_eq!(
            got[..2],
            [
                ("node:video0".to_string(), IdentityKind::Node),
                ("node:video2".to_string(), IdentityKind::Node)
            ]
        );
    }

    #[test]
    fn shared_serial_falls_back_to_bus_path_for_every_colliding_node() {
        let t = Tree::new();
        t.add("video0", "1-2", Some(("1bcf", "2c99", "0001")), Some(CAM));
        t.add("video2", "1-3", Some(("1bcf", "2c99", "0001")), Some(CAM));
        t.add("video4", "1-4", Some(("1bcf", "2c99", "0002")), Some(CAM));
        let s = scan(&t.cfg);
        let ids: Vec<&str> = s.nodes.iter().map(|n| n.identity.as_str()).collect();
        assert_eq!(
            ids,
            [
                "path:devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0",
                "path:devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0",
                "usb:1bcf:2c99:0002",
            ]
        );
    }

    #[test]
    fn missing_class_dir_and_bad_fixture() {
        let t = Tree::new();
        fs::remove_dir_all(t.cfg.sys_root.join("class")).unwrap();
        let s = scan(&t.cfg);
        assert!(s.nodes.is_empty() && s.skipped.is_empty());

        let t = Tree::new();
        t.add("video0", "1-2", None, Some("{not json"));
        let s = scan(&t.cfg);
        assert!(matches!(s.skipped[0].reason, SkipReason::Fixture(_)));
    }

    #[test]
    fn skip_log_remembers_and_forgets() {
        let t = Tree::new();
        t.add("video1", "1-2", None, Some(META));
        t.add("video3", "1-3", None, None);
        let mut log = SkipLog::new();
        log.report(&scan(&t.cfg));
        assert_eq!(log.len(), 2);
        assert_eq!(
            log.last.get("video1").map(String::as_str),
            Some("not a video capture node (e.g. metadata)")
        );
        // Same reasons again: nothing new (logging is not observable here, the state is).
        log.report(&scan(&t.cfg));
        assert_eq!(log.len(), 2);
        // video3 disappears: forgotten.
        fs::remove_dir_all(t.cfg.sys_root.join("class/video4linux/video3")).unwrap();
        log.report(&scan(&t.cfg));
        assert_eq!(log.len(), 1);
        assert!(!log.last.contains_key("video3"));
    }

    #[test]
    fn node_index_parses_only_video_n() {
        assert_eq!(node_index("video0"), Some(0));
        assert_eq!(node_index("video10"), Some(10));
        assert_eq!(node_index("video"), None);
        assert_eq!(node_index("videoX"), None);
        assert_eq!(node_index("video-1"), None);
        assert_eq!(node_index("vbi0"), None);
    }

    #[test]
    fn open_source_streams_fixtures_synthetically() {
        let t = Tree::new();
        t.add("video0", "1-2", Some(("046d", "0825", "A")), Some(CAM));
        let s = scan(&t.cfg);
        let mut src = open_source(&s.nodes[0], "camera0", Some((1280, 720, 30))).unwrap();
        assert_eq!(src.capabilities().card, "Fake Cam");
        // The fixture's first size and rate, whatever `want` says.
        let fmt = src.start().unwrap();
        assert_eq!(
            (fmt.width, fmt.height, fmt.fps.round() as u32),
            (640, 480, 30)
        );
        src.stop();
    }

    #[test]
    fn scripted_fixtures_stream_through_the_v4l2_code() {
        let t = Tree::new();
        // MJPG listed but refused by the "driver": the real V4L2 code falls back to YUYV.
        let scripted = r#"{"card":"Scripted Cam","formats":[
            {"fourcc":"MJPG","sizes":[{"width":64,"height":48,"fps":[30]}]},
            {"fourcc":"YUYV","sizes":[{"width":64,"height":48,"fps":[30]}]}],
            "script":{"accept":["YUYV"],"fps":20,"pace":false}}"#;
        t.add("video0", "1-2", Some(("046d", "0825", "S")), Some(scripted));
        let s = scan(&t.cfg);
        assert!(s.nodes[0].fixture && s.nodes[0].script.is_some());
        let mut src = open_source(&s.nodes[0], "camera0", Some((64, 48, 30))).unwrap();
        let fmt = src.start().unwrap();
        assert_eq!(
            (fmt.fourcc.as_str(), fmt.width, fmt.height, fmt.fps),
            ("YUYV", 64, 48, 20.0)
        );
        let f = src.next_frame().unwrap();
        assert_eq!(crate::camera::jpeg::jpeg_size(&f.jpeg), Some((64, 48)));
        src.stop();

        // A scripted EBUSY shows up where a real one would: opening the source.
        let busy = r#"{"formats":[{"fourcc":"MJPG","sizes":[{"width":64,"height":48,"fps":[30]}]}],
            "script":{"errors":{"open":["EBUSY*"]}}}"#;
        t.add("video2", "1-3", None, Some(busy));
        let s = scan(&t.cfg);
        let err = open_source(&s.nodes[1], "camera1", None)
            .err()
            .expect("busy");
        assert!(matches!(err, SourceError::Busy(_)), "{err:?}");
    }

    #[test]
    fn bad_scripts_are_bad_fixtures() {
        for script in [
            r#"{"errors":{"dqbuff":["EIO"]}}"#,
            r#"{"errors":{"dqbuf":["EWHAT"]}}"#,
            r#"{"errors":{"dqbuf":["EIO*","ok"]}}"#,
            r#"{"frames":[{"base64":"!!"}]}"#,
            r#"{"accept":["TOOLONG"]}"#,
            r#"{"unknown":1}"#,
        ] {
            let t = Tree::new();
            let f = format!(r#"{{"formats":[],"script":{script}}}"#);
            t.add("video0", "1-2", None, Some(&f));
            let s = scan(&t.cfg);
            assert!(
                matches!(s.skipped[0].reason, SkipReason::Fixture(_)),
                "{script}: {:?}",
                s.skipped
            );
        }
    }
}
