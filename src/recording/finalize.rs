//! Making a session's file final, and recovering what a crash left behind.
//!
//! Final means: complete (ffmpeg has exited; a fragmented file cut short by a crash is playable
//! up to its last complete fragment), under its visible name, fsynced (the file, then the
//! directory that names it). A file with no playable media is removed instead: every recording
//! on disk is either playable and final, or absent.
//!
//! Renames never overwrite: the final name is taken with `renameat2(RENAME_NOREPLACE)` (an
//! exists-check on filesystems without it), and a taken name gets `-2`, `-3`, … before the
//! extension.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ffmpeg::{self, StderrTail};
use super::Format;
use crate::media::probe::{media_info, MediaKind};

/// How long a stop-time remux may take before it is abandoned (it copies, it does not encode).
const REMUX_LIMIT: Duration = Duration::from_secs(120);
/// Numbered alternatives tried when a name is taken.
const MAX_SUFFIX: u32 = 1000;

/// `(stem, extension with dot)` of a final file name; the extension is the format's.
pub(super) fn split_name(filename: &str, format: Format) -> (&str, &'static str) {
    let ext = format.extension();
    let stem = filename.strip_suffix(ext).unwrap_or_else(|| {
        filename
            .rsplit_once('.')
            .map(|(s, _)| s)
            .filter(|s| !s.is_empty())
            .unwrap_or(filename)
    });
    (stem, ext)
}

/// The hidden name written while recording: `.<stem>.partial.mp4` or `.<stem>.partial.mkv`.
pub(super) fn partial_name(stem: &str, format: Format) -> String {
    format!(".{stem}.partial{}", format.extension())
}

/// A final file.
#[derive(Debug)]
pub(super) struct Placed {
    pub name: String,
    pub format: Format,
    pub size: u64,
    pub duration_s: f64,
    pub finalize_error: Option<String>,
}

/// Makes `partial` final under `filename` (remuxing first for `mp4`, with the ffmpeg at
/// `program`); `Err` (with the partial removed) when it holds no playable media.
pub(super) fn finalize(
    program: &Path,
    dir: &Path,
    filename: &str,
    format: Format,
    partial: &Path,
) -> Result<Placed, String> {
    if !trim_to_playable(partial) {
        let _ = std::fs::remove_file(partial);
        return Err("ffmpeg wrote no playable media".into());
    }
    let (stem, ext) = split_name(filename, format);
    let mut actual = format;
    let mut finalize_error = None;
    let mut source: PathBuf = partial.to_path_buf();
    if format == Format::Mp4 {
        let tmp = dir.join(format!(".{stem}.remux.mp4"));
        match remux(program, partial, &tmp) {
            Ok(()) => source = tmp,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(file = %filename, error = %e, "remux failed; keeping fragmented mp4");
                finalize_error = Some(format!(
                    "remux to progressive mp4 failed ({e}); kept the fragmented mp4"
                ));
                actual = Format::Fmp4;
            }
        }
    }
    // Data first, then the name: after a power cut the name never points at missing data.
    if let Ok(f) = std::fs::File::open(&source) {
        let _ = f.sync_all();
    }
    let name = place(&source, dir, filename, stem, ext).map_err(|e| {
        // Not renamable (permissions?): the hidden file stays for start-up recovery.
        format!("cannot move the recording into place: {e}")
    })?;
    if source != partial {
        let _ = std::fs::remove_file(partial);
    }
    sync_dir(dir);
    let path = dir.join(&name);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let duration_s = media_info(&path).and_then(|i| i.duration_s).unwrap_or(0.0);
    Ok(Placed {
        name,
        format: actual,
        size,
        duration_s,
        finalize_error,
    })
}

/// True when the file at `path` holds playable media. A fragmented MP4 that ends in a box cut
/// short (ffmpeg killed or out of disk mid-fragment) is first cut back to its last complete
/// fragment: players refuse a file that ends inside a `moof`, though every fragment before it is
/// whole.
fn trim_to_playable(path: &Path) -> bool {
    let Some(info) = media_info(path) else {
        return false;
    };
    if !info.duration_s.is_some_and(|d| d > 0.0) {
        return false;
    }
    if let Some(keep) = info.playable_len {
        let trimmed = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| match f.metadata()?.len() > keep {
                true => f.set_len(keep),
                false => Ok(()),
            });
        if let Err(e) = trimmed {
            tracing::warn!(file = %path.display(), error = %e,
                "cannot cut a recording back to its last complete fragment");
        }
    }
    true
}

/// Remuxes fragmented `partial` into progressive `out` and checks the result.
fn remux(program: &Path, partial: &Path, out: &Path) -> Result<(), String> {
    let mut child = ffmpeg::remux(program, partial, out)
        .spawn()
        .map_err(|e| format!("cannot start ffmpeg: {e}"))?;
    let mut tail = StderrTail::new(child.stderr.take());
    let t0 = Instant::now();
    let status = ffmpeg::wait_child(&mut child, &mut tail, REMUX_LIMIT, REMUX_LIMIT);
    let ok = status.is_some_and(|s| s.success()) && t0.elapsed() < REMUX_LIMIT;
    if !ok {
        let st = status.map_or("killed".to_string(), |s| s.to_string());
        return Err(format!("ffmpeg {st}: {}", tail.text()));
    }
    match media_info(out) {
        Some(i) if i.kind == MediaKind::Mp4 && i.duration_s.is_some_and(|d| d > 0.0) => Ok(()),
        _ => Err("the remuxed file is not a playable progressive mp4".into()),
    }
}

/// Renames `src` into `dir` as `first` or, if taken, `<stem>-2<ext>`, `<stem>-3<ext>`, …;
/// returns the name used. Never overwrites.
fn place(src: &Path, dir: &Path, first: &str, stem: &str, ext: &str) -> io::Result<String> {
    for n in 1..=MAX_SUFFIX {
        let name = if n == 1 {
            first.to_string()
        } else {
            format!("{stem}-{n}{ext}")
        };
        match rename_noreplace(src, &dir.join(&name)) {
            Ok(()) => return Ok(name),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "every numbered name is taken",
    ))
}

/// `rename` that fails with `AlreadyExists` instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
    };
    let (cf, ct) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them like rename(2).
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            cf.as_ptr(),
            libc::AT_FDCWD,
            ct.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // The filesystem (or kernel) has no RENAME_NOREPLACE: check, then rename. The window
        // between the two is harmless here: only this process names recordings.
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            if to.symlink_metadata().is_ok() {
                Err(io::Error::new(io::ErrorKind::AlreadyExists, "name taken"))
            } else {
                std::fs::rename(from, to)
            }
        }
        _ => Err(err),
    }
}

/// fsyncs a directory so a rename in it survives a power cut.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Start-up recovery: `.partial` files left by a crash become normal recordings — `.<stem>
/// .partial.mkv` → `<stem>.mkv`, `.<stem>.partial.mp4` → `<stem>.mp4` (fragmented MP4, playable
/// up to its last complete fragment). Never overwrites (a taken name gets `-2`, `-3`, …); a
/// partial without playable media and stale `.remux.mp4` temporaries are deleted. Returns the
/// names recovered.
pub(crate) fn recover_partials(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    let mut out = Vec::new();
    let mut changed = false;
    for name in names {
        let path = dir.join(&name);
        let rest = &name[1..];
        if rest.ends_with(".remux.mp4") {
            // A remux interrupted by the crash: its partial holds the same media.
            let _ = std::fs::remove_file(&path);
            changed = true;
            continue;
        }
        let (stem, ext) = if let Some(s) = rest.strip_suffix(".partial.mkv") {
            (s, ".mkv")
        } else if let Some(s) = rest.strip_suffix(".partial.mp4") {
            (s, ".mp4")
        } else {
            continue;
        };
        if stem.is_empty() {
            continue;
        }
        changed = true;
        if !trim_to_playable(&path) {
            tracing::warn!(file = %name, "removing a partial recording without playable media");
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if let Ok(f) = std::fs::File::open(&path) {
            let _ = f.sync_all();
        }
        match place(&path, dir, &format!("{stem}{ext}"), stem, ext) {
            Ok(n) => {
                tracing::info!(from = %name, to = %n, "recovered a partial recording");
                out.push(n);
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "cannot recover a partial recording")
            }
        }
    }
    if changed {
        sync_dir(dir);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            split_name("camera0_2026-01-01_10-00-00.mp4", Format::Fmp4),
            ("camera0_2026-01-01_10-00-00", ".mp4")
        );
        assert_eq!(split_name("a.b.mkv", Format::Mkv), ("a.b", ".mkv"));
        assert_eq!(split_name("noext", Format::Mp4), ("noext", ".mp4"));
        assert_eq!(partial_name("x", Format::Mp4), ".x.partial.mp4");
        assert_eq!(partial_name("x", Format::Mkv), ".x.partial.mkv");
    }

    #[test]
    fn place_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.mp4"), b"old").unwrap();
        std::fs::write(d.path().join("a-2.mp4"), b"old2").unwrap();
        let src = d.path().join(".new");
        std::fs::write(&src, b"new").unwrap();
        let n = place(&src, d.path(), "a.mp4", "a", ".mp4").unwrap();
        assert_eq!(n, "a-3.mp4");
        assert_eq!(std::fs::read(d.path().join("a.mp4")).unwrap(), b"old");
        assert_eq!(std::fs::read(d.path().join("a-3.mp4")).unwrap(), b"new");
        assert!(!src.exists());
    }
}
