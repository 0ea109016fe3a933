//! Finding the ffmpeg executable (`publisher.ffmpeg`) before anything spawns it.
//!
//! Only recording (the `local` recorder and the stop-time remuxes) and publishing into MediaMTX
//! run ffmpeg; cameras, snapshots, events, file lists and downloads never do. A host without it
//! therefore serves everything else, and the server says once at start-up, and in every
//! `start_recording` / `start_streaming` that needs it, what it looked for and how to install it
//! — instead of a bare `No such file or directory (os error 2)` from `spawn`.
//!
//! [`locate`] resolves the configured program the way `execvp` (and so `Command::spawn`) does: a
//! value containing `/` is that file (relative to the working directory when it is relative); a
//! bare name is searched in each directory of `PATH` (`/bin:/usr/bin` when `PATH` is unset, an
//! empty entry meaning the working directory). The file must be a regular file with an execute
//! bit set. It costs a few `stat` calls, so callers check on every start: installing ffmpeg while
//! the server runs takes effect at once.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How to install ffmpeg on Debian and Ubuntu.
pub(crate) const INSTALL: &str = "apt-get install ffmpeg";

/// The search path `execvp` uses when `PATH` is unset (glibc).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The configured ffmpeg is not an executable file: what was looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Missing {
    /// The configured program, as configured (a bare name or a path).
    pub program: String,
}

impl Missing {
    /// True when `program` is a bare name that was searched in `PATH`.
    pub(crate) fn searched_path(&self) -> bool {
        !self.program.contains('/')
    }
}

impl fmt::Display for Missing {
    /// `ffmpeg not found (looked for "ffmpeg" in PATH); recording and publishing need it:
    /// apt-get install ffmpeg` (no `in PATH` for a configured path).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let where_ = if self.searched_path() { " in PATH" } else { "" };
        write!(
            f,
            "ffmpeg not found (looked for {:?}{where_}); recording and publishing need it: {INSTALL}",
            self.program
        )
    }
}

impl std::error::Error for Missing {}

/// The file `program` names, resolved as a spawn would resolve it, or what was looked for.
pub(crate) fn locate(program: &str) -> Result<PathBuf, Missing> {
    locate_in(program, std::env::var_os("PATH").as_deref())
}

/// [`locate`] with an explicit `PATH` value (`None` = unset).
fn locate_in(program: &str, path_var: Option<&OsStr>) -> Result<PathBuf, Missing> {
    let missing = || Missing {
        program: program.to_string(),
    };
    if program.is_empty() {
        return Err(missing());
    }
    if program.contains('/') {
        let p = Path::new(program);
        return if is_executable(p) {
            Ok(p.to_path_buf())
        } else {
            Err(missing())
        };
    }
    let dirs = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    for dir in std::env::split_paths(dirs) {
        // An empty entry is the working directory (POSIX).
        let candidate = if dir.as_os_str().is_empty() {
            Path::new(".").join(program)
        } else {
            dir.join(program)
        };
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(missing())
}

/// A regular file (after symlinks) with at least one execute bit.
fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Logs the one start-up warning when `program` cannot be found; returns whether it was found.
pub(crate) fn warn_if_missing(program: &str) -> bool {
    match locate(program) {
        Ok(_) => true,
        Err(m) => {
            tracing::warn!(
                ffmpeg = %program,
                "{m} (Debian/Ubuntu), or set publisher.ffmpeg to its path; \
                 cameras, snapshots and files work without it"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    /// Writes `dir/name` with `mode`.
    fn file(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn joined(dirs: &[&Path]) -> OsString {
        std::env::join_paths(dirs).unwrap()
    }

    #[test]
    fn bare_names_are_searched_in_path_order_and_need_the_execute_bit() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        file(a.path(), "ffmpeg", 0o644); // not executable: skipped, as execvp skips it
        std::fs::create_dir(b.path().join("ffmpeg")).unwrap(); // a directory: skipped
        let want = file(c.path(), "ffmpeg", 0o755);
        let path = joined(&[a.path(), b.path(), c.path()]);
        assert_eq!(locate_in("ffmpeg", Some(&path)), Ok(want));
        let path = joined(&[a.path(), b.path()]);
        let err = locate_in("ffmpeg", Some(&path)).unwrap_err();
        assert!(err.searched_path());
        assert_eq!(
            err.to_string(),
            "ffmpeg not found (looked for \"ffmpeg\" in PATH); recording and publishing need it: \
             apt-get install ffmpeg"
        );
    }

    #[test]
    fn paths_with_a_slash_are_checked_directly_not_searched() {
        let d = tempfile::tempdir().unwrap();
        let exe = file(d.path(), "ff", 0o700);
        let s = exe.to_str().unwrap();
        // PATH does not matter for a path.
        assert_eq!(locate_in(s, Some(OsStr::new(""))), Ok(exe.clone()));
        let gone = d.path().join("nope/ffmpeg");
        let err = locate_in(gone.to_str().unwrap(), Some(d.path().as_os_str())).unwrap_err();
        assert!(!err.searched_path());
        assert_eq!(
            err.to_string(),
            format!(
                "ffmpeg not found (looked for {:?}); recording and publishing need it: {INSTALL}",
                gone.to_str().unwrap()
            )
        );
        let plain = file(d.path(), "plain", 0o600);
        assert!(locate_in(plain.to_str().unwrap(), None).is_err());
        // A bare name is never taken from the working directory unless PATH says so.
        assert!(locate_in("ff", Some(OsStr::new("/nonexistent-dir"))).is_err());
    }

    #[test]
    fn empty_names_and_an_unset_path() {
        assert!(locate_in("", Some(OsStr::new("/usr/bin"))).is_err());
        // Unset PATH: execvp's default /bin:/usr/bin, where `sh` always is.
        assert!(locate_in("sh", None).is_ok());
        assert!(locate_in("camshard-no-such-program", None).is_err());
    }
}
