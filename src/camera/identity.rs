//! Stable camera ids: the persistent map from a camera's physical identity (see
//! [`crate::camera::discovery`]) to its number `N` in `camera<N>` (contract §8.1).
//!
//! The map lives in `<state_dir>/cameras.json`:
//!
//! ```json
//! {"version":1,"cameras":[{"id":0,"identity":"usb:046d:0825:ABC","first_seen":"2025-01-15T14:30:00.000Z"}]}
//! ```
//!
//! Rules:
//! - an identity keeps its number forever (replug, another `/dev/videoN`, restart);
//! - a new identity gets the lowest number no identity holds — numbers are never reassigned,
//!   because entries are never removed;
//! - every change is written atomically (temporary file, `fsync`, `rename`, `fsync` of the
//!   directory), so a crash leaves either the old or the new map, never half of one;
//! - a *transient* identity (`node:videoN`, which follows plug order) gets a number for this run
//!   only: it is never written, so it cannot claim a number forever for a camera that will have
//!   another identity next time. Its number is still never given to another identity in this run;
//! - a file that cannot be parsed is moved aside to `cameras.json.corrupt-<unix>` and the store
//!   starts empty: losing the numbering is better than a server that refuses to start.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clock::now_unix;
use crate::clock::rfc3339_millis;

/// File name of the map inside the state directory.
const FILE_NAME: &str = "cameras.json";
/// The only format version this code reads and writes.
const VERSION: u32 = 1;

/// One persisted binding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    id: u32,
    identity: String,
    first_seen: String,
}

/// The file's shape.
#[derive(Debug, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    cameras: Vec<Entry>,
}

/// The persistent identity → camera number map.
#[derive(Debug)]
pub(crate) struct IdentityStore {
    dir: PathBuf,
    entries: Vec<Entry>,
    /// Bindings of transient identities, this run only (never persisted).
    transient: Vec<(u32, String)>,
}

impl IdentityStore {
    /// Loads `<state_dir>/cameras.json` (missing → empty; unparsable → moved aside, empty).
    ///
    /// Errors only when the file exists but cannot be read (permissions, I/O).
    pub(crate) fn open(state_dir: &Path) -> io::Result<Self> {
        let path = state_dir.join(FILE_NAME);
        let entries = match fs::read(&path) {
            Ok(bytes) => match parse(&bytes) {
                Ok(entries) => entries,
                Err(why) => {
                    set_aside_corrupt(&path, &why);
                    Vec::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(IdentityStore {
            dir: state_dir.to_path_buf(),
            entries,
            transient: Vec::new(),
        })
    }

    /// The number bound to `identity`, binding (and persisting) the lowest free one if new.
    ///
    /// If the write fails the binding is forgotten again, so memory never runs ahead of disk.
    pub(crate) fn id_for(&mut self, identity: &str) -> io::Result<u32> {
        if let Some(id) = self.get(identity) {
            return Ok(id);
        }
        let id = self.lowest_free();
        self.entries.push(Entry {
            id,
            identity: identity.to_string(),
            first_seen: rfc3339_millis(now_unix().saturating_mul(1000)),
        });
        if let Err(e) = self.persist() {
            self.entries.pop();
            return Err(e);
        }
        Ok(id)
    }

    /// The number bound to a transient identity for this run, binding the lowest free one if
    /// new. Nothing is written (module docs).
    pub(crate) fn transient_id_for(&mut self, identity: &str) -> u32 {
        if let Some(id) = self.get(identity) {
            return id;
        }
        let id = self.lowest_free();
        self.transient.push((id, identity.to_string()));
        id
    }

    /// Binds `old`'s number to `new` instead (persisted), returning it; `None` when `old` is not
    /// bound or `new` already is. Used once per camera to move a binding made under an identity
    /// this version no longer derives (see `discovery`'s module docs) to the one it derives now.
    pub(crate) fn rekey(&mut self, old: &str, new: &str) -> io::Result<Option<u32>> {
        if self.get(new).is_some() {
            return Ok(None);
        }
        let Some(i) = self.entries.iter().position(|e| e.identity == old) else {
            return Ok(None);
        };
        let before = std::mem::replace(&mut self.entries[i].identity, new.to_string());
        if let Err(e) = self.persist() {
            self.entries[i].identity = before;
            return Err(e);
        }
        Ok(Some(self.entries[i].id))
    }

    /// The number bound to `identity`, if any (never assigns one).
    pub(crate) fn get(&self, identity: &str) -> Option<u32> {
        self.entries
            .iter()
            .find(|e| e.identity == identity)
            .map(|e| e.id)
            .or_else(|| {
                self.transient
                    .iter()
                    .find(|(_, i)| i == identity)
                    .map(|(id, _)| *id)
            })
    }

    /// The lowest number neither a persisted nor a transient binding holds.
    fn lowest_free(&self) -> u32 {
        let used: HashSet<u32> = self
            .entries
            .iter()
            .map(|e| e.id)
            .chain(self.transient.iter().map(|(id, _)| *id))
            .collect();
        // At most `used.len()` numbers are taken, so one of 0..=len is free.
        (0..=used.len() as u32)
            .find(|n| !used.contains(n))
            .unwrap_or(u32::MAX)
    }

    /// Every binding as `(id, identity)`, sorted by id.
    #[cfg(test)]
    pub(crate) fn all(&self) -> Vec<(u32, String)> {
        let mut v: Vec<(u32, String)> = self
            .entries
            .iter()
            .map(|e| (e.id, e.identity.clone()))
            .collect();
        v.sort();
        v
    }

    /// Writes the map atomically: tmp file + fsync + rename + fsync(dir).
    fn persist(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut cameras = self.entries.clone();
        cameras.sort_by_key(|e| e.id);
        let body = serde_json::to_vec_pretty(&StoreFile {
            version: VERSION,
            cameras,
        })
        .map_err(io::Error::other)?;
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&body)?;
            f.write_all(b"\n")?;
            // The data must be on disk before the rename makes it the live file; otherwise a
            // crash can leave a renamed but empty file (ext4 delayed allocation).
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(FILE_NAME))?;
        // The rename itself is a directory change; fsync the directory so it survives a crash.
        File::open(&self.dir)?.sync_all()
    }
}

/// Parses and validates the file; `Err` carries a human-readable reason.
fn parse(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let file: StoreFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != VERSION {
        return Err(format!("unsupported version {}", file.version));
    }
    // Duplicates would break "one identity, one number": treat them as corruption rather than
    // guessing which binding is right.
    let mut ids = HashSet::new();
    let mut identities = HashSet::new();
    for e in &file.cameras {
        if !ids.insert(e.id) {
            return Err(format!("id {} appears twice", e.id));
        }
        if !identities.insert(e.identity.as_str()) {
            return Err(format!("identity {:?} appears twice", e.identity));
        }
    }
    Ok(file.cameras)
}

/// Renames a corrupt file to `<name>.corrupt-<unix>` (kept for inspection) and logs it.
fn set_aside_corrupt(path: &Path, why: &str) {
    let aside = path.with_file_name(format!("{FILE_NAME}.corrupt-{}", now_unix()));
    match fs::rename(path, &aside) {
        Ok(()) => tracing::warn!(
            file = %path.display(),
            moved_to = %aside.display(),
            reason = why,
            "camera id map is corrupt; moved aside, starting with an empty map (ids will be renumbered)"
        ),
        Err(e) => tracing::error!(
            file = %path.display(),
            reason = why,
            error = %e,
            "camera id map is corrupt and could not be moved aside; starting with an empty map \
             (the next new camera overwrites it)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_identity_same_id_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = IdentityStore::open(dir.path()).unwrap();
        assert_eq!(s.id_for("usb:046d:0825:ABC").unwrap(), 0);
        assert_eq!(s.id_for("path:pci-0000:00:14.0-usb-0:2:1.0").unwrap(), 1);
        assert_eq!(s.id_for("usb:046d:0825:ABC").unwrap(), 0);
        drop(s);

        let mut s = IdentityStore::open(dir.path()).unwrap();
        assert_eq!(s.get("usb:046d:0825:ABC"), Some(0));
        assert_eq!(s.get("path:pci-0000:00:14.0-usb-0:2:1.0"), Some(1));
        assert_eq!(s.get("node:video4"), None);
        assert_eq!(s.id_for("node:video4").unwrap(), 2);

        let text = fs::read_to_string(dir.path().join("cameras.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["cameras"][0]["identity"], "usb:046d:0825:ABC");
        assert!(v["cameras"][0]["first_seen"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        assert!(!dir.path().join("cameras.json.tmp").exists());
    }

    #[test]
    fn new_identities_get_lowest_unused_number() {
        let dir = tempfile::tempdir().unwrap();
        // A map with a hole at 1 (e.g. written by hand or by an older version).
        fs::write(
            dir.path().join("cameras.json"),
            r#"{"version":1,"cameras":[
                {"id":0,"identity":"a","first_seen":"2025-01-01T00:00:00.000Z"},
                {"id":2,"identity":"c","first_seen":"2025-01-01T00:00:00.000Z"}]}"#,
        )
        .unwrap();
        let mut s = IdentityStore::open(dir.path()).unwrap();
        assert_eq!(s.id_for("b").unwrap(), 1);
        assert_eq!(s.id_for("d").unwrap(), 3);
        assert_eq!(s.id_for("c").unwrap(), 2);
        assert_eq!(
            s.all(),
            vec![
                (0, "a".to_string()),
                (1, "b".to_string()),
                (2, "c".to_string()),
                (3, "d".to_string())
            ]
        );
    }

    #[test]
    fn corrupt_file_is_moved_aside_and_store_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cameras.json");
        fs::write(&path, b"{\"version\":1,\"cameras\":[{\"id\":0,").unwrap();
        let mut s = IdentityStore::open(dir.path()).unwrap();
        assert_eq!(s.get("a"), None);
        let aside: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("cameras.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert!(!path.exists());
        assert_eq!(s.id_for("a").unwrap(), 0);
        assert!(path.exists());
    }

    #[test]
    fn duplicate_ids_or_wrong_version_count_as_corrupt() {
        for body in [
            r#"{"version":1,"cameras":[{"id":0,"identity":"a","first_seen":""},{"id":0,"identity":"b","first_seen":""}]}"#,
            r#"{"version":1,"cameras":[{"id":0,"identity":"a","first_seen":""},{"id":1,"identity":"a","first_seen":""}]}"#,
            r#"{"version":2,"cameras":[]}"#,
            "",
        ] {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("cameras.json"), body).unwrap();
            let s = IdentityStore::open(dir.path()).unwrap();
            assert!(s.all().is_empty(), "{body}");
            assert!(!dir.path().join("cameras.json").exists(), "{body}");
        }
    }

    #[test]
    fn transient_identities_get_a_number_but_are_never_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = IdentityStore::open(dir.path()).unwrap();
        assert_eq!(s.id_for("usb:a").unwrap(), 0);
        assert_eq!(s.transient_id_for("node:video4"), 1);
        assert_eq!(s.transient_id_for("node:video4"), 1);
        assert_eq!(s.get("node:video4"), Some(1));
        // Not given to a persistent identity in this run either.
        assert_eq!(s.id_for("usb:b").unwrap(), 2);
        drop(s);
        let s = IdentityStore::open(dir.path()).unwrap();
        assert_eq!(s.get("node:video4"), None);
        assert_eq!(
            s.all(),
            vec![(0, "usb:a".to_string()), (2, "usb:b".to_string())]
        );
        let text = fs::read_to_string(dir.path().join("cameras.json")).unwrap();
        assert!(!text.contains("node:"), "{text}");
    }

    #[test]
    fn rekey_moves_a_binding_to_the_new_identity_and_persists_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = IdentityStore::open(dir.path()).unwrap();
        assert_eq!(s.id_for("usb:a").unwrap(), 0);
        assert_eq!(
            s.id_for("path:pci-0000:00:14.0-usb-0:2:1.0-video-index0")
                .unwrap(),
            1
        );
        let new = "path:devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0";
        assert_eq!(
            s.rekey("path:pci-0000:00:14.0-usb-0:2:1.0-video-index0", new)
                .unwrap(),
            Some(1)
        );
        assert_eq!(s.rekey("path:unknown", "path:x").unwrap(), None);
        assert_eq!(s.rekey("usb:a", new).unwrap(), None, "new already bound");
        drop(s);
        let s = IdentityStore::open(dir.path()).unwrap();
        assert_eq!(s.get(new), Some(1));
        assert_eq!(
            s.get("path:pci-0000:00:14.0-usb-0:2:1.0-video-index0"),
            None
        );
    }

    #[test]
    fn missing_state_dir_is_created_on_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("nested/state");
        let mut s = IdentityStore::open(&state).unwrap();
        assert_eq!(s.id_for("x").unwrap(), 0);
        assert!(state.join("cameras.json").exists());
    }
}
