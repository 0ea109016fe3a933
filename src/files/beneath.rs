//! Opening a file below the data directory without ever leaving it (rows 10 of the credential
//! review; `docs/reliability.md`).
//!
//! `O_NOFOLLOW` only guards the last component: `open("<data>/recordings/x.mp4")` still
//! follows `recordings` if someone made it a symlink to `/`. Every file the server serves or
//! deletes is therefore opened *relative to the data directory* with `openat2(2)` and
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: the kernel refuses any symlink on the way and any
//! `..` that would climb out. Kernels before 5.6 lack `openat2` (`ENOSYS`), and some seccomp
//! profiles refuse unknown syscalls with `EPERM`; there the path is walked one component at a
//! time with `openat(O_NOFOLLOW | O_DIRECTORY)`, which gives the same guarantee for the
//! relative, `..`-free paths we build.
//!
//! The data directory itself is opened normally: where it lives (even through a symlink) is
//! the operator's choice, set in the config.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// Opens `rel` (relative, no `..`) below `root` with `flags` (`O_CLOEXEC | O_NOFOLLOW` are
/// added). Any symlink on the way, or an attempt to leave `root`, fails (`ELOOP`, `EXDEV` or
/// `EINVAL`), as does a missing component (`ENOENT`).
pub(crate) fn open_beneath(root: &Path, rel: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    open_beneath_with(root, rel, flags, true)
}

/// [`open_beneath`], optionally skipping `openat2` (tests exercise the fallback this way).
fn open_beneath_with(
    root: &Path,
    rel: &Path,
    flags: OFlag,
    try_openat2: bool,
) -> io::Result<OwnedFd> {
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let root_fd = own(nix::fcntl::open(root, dir, Mode::empty())?);
    let flags = flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    if try_openat2 {
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2(root_fd.as_raw_fd(), rel, how) {
            Ok(fd) => return Ok(own(fd)),
            // No openat2 here (old kernel, or a seccomp filter that refuses it): walk.
            Err(Errno::ENOSYS | Errno::EPERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let parts: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(p) => Ok(p),
            // `..`, `/` or `.` could climb out or mean something other than we think.
            _ => Err(io::Error::from(Errno::EXDEV)),
        })
        .collect::<io::Result<_>>()?;
    let Some((last, dirs)) = parts.split_last() else {
        return Err(Errno::EINVAL.into());
    };
    let mut at = root_fd;
    for d in dirs {
        // O_NOFOLLOW | O_DIRECTORY: a symlink fails with ELOOP, a non-directory with ENOTDIR.
        let next = openat(
            Some(at.as_raw_fd()),
            *d,
            dir | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )?;
        at = own(next);
    }
    Ok(own(openat(
        Some(at.as_raw_fd()),
        *last,
        flags,
        Mode::empty(),
    )?))
}

/// Takes ownership of a descriptor a syscall just returned.
fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by open/openat/openat2 and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Removes the file `name` from the directory `rel_dir` below `root` (e.g. `recordings`),
/// reaching that directory with [`open_beneath`]. `name` is one component; a symlink named so
/// is removed itself, never its target.
pub(crate) fn remove_beneath(root: &Path, rel_dir: &Path, name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Errno::EINVAL.into());
    }
    let dir = open_beneath(root, rel_dir, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
    nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("camshard-beneath-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("mkdir");
        d
    }

    /// Row 10: a symlinked directory on the way out of the data directory is refused, by
    /// `openat2` and by the component-by-component fallback alike; real files still open.
    #[test]
    fn symlinks_and_escapes_refused_both_ways() {
        let base = scratch("walk");
        let data = base.join("data");
        let outside = base.join("outside");
        fs::create_dir_all(data.join("snapshots")).expect("mkdir");
        fs::create_dir_all(&outside).expect("mkdir");
        fs::write(outside.join("x.mp4"), b"secret").expect("write");
        fs::write(data.join("snapshots/a.jpg"), b"jpg").expect("write");
        symlink(&outside, data.join("recordings")).expect("symlink dir");
        symlink(outside.join("x.mp4"), data.join("snapshots/link.jpg")).expect("symlink file");
        for with_openat2 in [true, false] {
            let open =
                |rel: &str| open_beneath_with(&data, Path::new(rel), OFlag::O_RDONLY, with_openat2);
            let ok = open("snapshots/a.jpg").expect("a regular file opens");
            assert_eq!(
                fs::read(format!("/proc/self/fd/{}", ok.as_raw_fd())).expect("read"),
                b"jpg"
            );
            for bad in [
                "recordings/x.mp4",
                "snapshots/link.jpg",
                "../outside/x.mp4",
                "/etc/passwd",
            ] {
                assert!(open(bad).is_err(), "{bad} opened (openat2: {with_openat2})");
            }
        }
        // Deleting through the symlinked directory is refused too; the target survives.
        assert!(remove_beneath(&data, Path::new("recordings"), "x.mp4").is_err());
        assert!(outside.join("x.mp4").exists());
        remove_beneath(&data, Path::new("snapshots"), "a.jpg").expect("remove");
        assert!(!data.join("snapshots/a.jpg").exists());
        let _ = fs::remove_dir_all(&base);
    }
}
