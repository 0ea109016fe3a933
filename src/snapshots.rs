//! Writing snapshot files: the frame as captured (or re-encoded when asked), under a temporary
//! name, fsynced, then moved into place with `renameat2(RENAME_NOREPLACE)` so a listed snapshot is
//! always complete and an existing file is never overwritten — even by a concurrent request for
//! the same name on another shard. Runs on a shard's blocking pool, never on the shard itself.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::camera::frame::FrameRef;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    /// JPEG (`.jpg` / `.jpeg`).
    Jpg,
    /// PNG.
    Png,
}

impl ImageFormat {
    /// The contract's name (`jpg` | `png`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Jpg => "jpg",
            ImageFormat::Png => "png",
        }
    }
}

/// What to write.
pub(crate) struct Job {
    /// The snapshots directory.
    pub dir: PathBuf,
    /// Base name without the collision suffix, e.g. `camera0_snapshot_…-123` (generated) or the
    /// full name given by the client.
    pub name: String,
    /// Extension with its dot (`.jpg`).
    pub ext: String,
    /// Whether `-2`, `-3`, … may be appended on a collision (generated names only).
    pub may_rename: bool,
    /// The frame.
    pub frame: FrameRef,
    /// Output format.
    pub format: ImageFormat,
    /// JPEG quality when the image must be encoded; `None` keeps the camera's JPEG as is.
    pub quality: Option<u8>,
}

/// A written snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// Final file name.
    pub filename: String,
    /// Bytes on disk.
    pub size: u64,
    /// Its inode and mtime, which its download token binds.
    pub file: crate::auth::download::FileId,
}

/// Why a snapshot could not be written.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The (client-chosen) name exists already.
    Exists,
    /// Encoding or I/O failed; nothing was left behind.
    Failed(String),
}

/// Encodes (if needed) and writes the snapshot.
pub(crate) fn write(job: &Job) -> Result<Written, WriteError> {
    let bytes = encode(job).map_err(WriteError::Failed)?;
    std::fs::create_dir_all(&job.dir)
        .map_err(|e| WriteError::Failed(format!("snapshots directory: {e}")))?;
    let tmp = job.dir.join(format!(
        ".{}{}.{}.tmp",
        job.name,
        job.ext,
        std::process::id() as u64 ^ nonce()
    ));
    let result = write_tmp(&tmp, &bytes).and_then(|_| place(job, &tmp));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let filename = result?;
    sync_dir(&job.dir);
    // The identity its download URL binds. The file was placed a moment ago; should it already
    // be gone (deleted by another client), the URL is minted for an identity nothing has and
    // simply does not work — the snapshot itself was taken, so that is no reason to fail.
    let file = match std::fs::symlink_metadata(job.dir.join(&filename)) {
        Ok(m) => crate::auth::download::FileId::of(&m),
        Err(e) => {
            tracing::warn!(file = %filename, error = %e, "snapshot gone right after writing");
            crate::auth::download::FileId::default()
        }
    };
    Ok(Written {
        filename,
        size: bytes.len() as u64,
        file,
    })
}

fn encode(job: &Job) -> Result<Vec<u8>, String> {
    match (job.format, job.quality) {
        (ImageFormat::Jpg, None) => Ok(job.frame.jpeg.to_vec()),
        (ImageFormat::Jpg, Some(q)) => {
            let (w, h, rgb) = decode(&job.frame.jpeg)?;
            crate::camera::jpeg::encode_rgb(w, h, &rgb, q)
        }
        (ImageFormat::Png, _) => {
            let (w, h, rgb) = decode(&job.frame.jpeg)?;
            let mut out = Vec::with_capacity(rgb.len() / 2);
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let mut writer = enc.write_header().map_err(|e| format!("png: {e}"))?;
            writer
                .write_image_data(&rgb)
                .map_err(|e| format!("png: {e}"))?;
            writer.finish().map_err(|e| format!("png: {e}"))?;
            Ok(out)
        }
    }
}

/// Decodes a JPEG to 8-bit RGB.
fn decode(jpeg: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let pixels = d.decode().map_err(|e| format!("jpeg decode: {e}"))?;
    let info = d.info().ok_or("jpeg decode: no header")?;
    let (w, h) = (info.width as u32, info.height as u32);
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        other => return Err(format!("jpeg decode: unsupported pixel format {other:?}")),
    };
    Ok((w, h, rgb))
}

fn write_tmp(tmp: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let fail = |e: std::io::Error| WriteError::Failed(format!("write: {e}"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    Ok(())
}

/// Moves `tmp` to its final name without ever replacing an existing file.
fn place(job: &Job, tmp: &Path) -> Result<String, WriteError> {
    let attempts = if job.may_rename { 100 } else { 1 };
    for n in 1..=attempts {
        let name = if n == 1 {
            format!("{}{}", job.name, job.ext)
        } else {
            format!("{}-{n}{}", job.name, job.ext)
        };
        match rename_noreplace(tmp, &job.dir.join(&name)) {
            Ok(()) => return Ok(name),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(WriteError::Failed(format!("rename: {e}"))),
        }
    }
    Err(WriteError::Exists)
}

fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    let a =
        CString::new(from.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let b =
        CString::new(to.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn nonce() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::frame::Frame;
    use std::sync::Arc;

    fn frame() -> FrameRef {
        let rgb = vec![128u8; 64 * 48 * 3];
        let jpeg = crate::camera::jpeg::encode_rgb(64, 48, &rgb, 80).unwrap();
        Arc::new(Frame {
            seq: 1,
            captured_unix_ms: 0,
            width: 64,
            height: 48,
            jpeg: jpeg.into(),
        })
    }

    fn job(
        dir: &Path,
        name: &str,
        may_rename: bool,
        format: ImageFormat,
        quality: Option<u8>,
    ) -> Job {
        Job {
            dir: dir.to_path_buf(),
            name: name.into(),
            ext: if format == ImageFormat::Png {
                ".png".into()
            } else {
                ".jpg".into()
            },
            may_rename,
            frame: frame(),
            format,
            quality,
        }
    }

    #[test]
    fn writes_never_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let w = write(&job(d.path(), "a", false, ImageFormat::Jpg, None)).unwrap();
        assert_eq!(w.filename, "a.jpg");
        assert!(matches!(
            write(&job(d.path(), "a", false, ImageFormat::Jpg, None)),
            Err(WriteError::Exists)
        ));
        let w2 = write(&job(d.path(), "a", true, ImageFormat::Jpg, None)).unwrap();
        assert_eq!(w2.filename, "a-2.jpg");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    }

    #[test]
    fn reencodes_and_writes_png() {
        let d = tempfile::tempdir().unwrap();
        let w = write(&job(d.path(), "p", false, ImageFormat::Png, None)).unwrap();
        let bytes = std::fs::read(d.path().join(&w.filename)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"));
        let w = write(&job(d.path(), "q", false, ImageFormat::Jpg, Some(30))).unwrap();
        let bytes = std::fs::read(d.path().join(&w.filename)).unwrap();
        assert_eq!(crate::camera::jpeg::jpeg_size(&bytes), Some((64, 48)));
    }
}
