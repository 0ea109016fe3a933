//! Read-only files for shards: glommio's `BufferedFile` (page-cache reads through io_uring) on
//! the uring backend, plain `pread` on epoll (epoll cannot wait for regular files; their reads
//! come from the page cache or wait briefly for the disk, as in every epoll server).

use std::io;
use std::ops::Deref;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::{current, Runtime};

/// A file opened for reading.
pub enum ReadFile {
    /// glommio's buffered file.
    Uring(glommio::io::BufferedFile),
    /// A std file read with `pread`.
    Epoll(std::fs::File),
}

/// Bytes read from a [`ReadFile`].
pub enum Chunk {
    /// glommio's read buffer.
    Uring(glommio::io::ReadResult),
    /// An owned buffer.
    Epoll(Vec<u8>),
}

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Uring(r) => r,
            Chunk::Epoll(v) => v,
        }
    }
}

impl ReadFile {
    /// Opens `path` read-only with extra `open(2)` flags (e.g. `O_NOFOLLOW | O_NONBLOCK`).
    pub async fn open(path: &Path, custom_flags: i32) -> io::Result<Self> {
        match current() {
            Runtime::Uring => glommio::io::OpenOptions::new()
                .read(true)
                .custom_flags(custom_flags)
                .buffered_open(path)
                .await
                .map(ReadFile::Uring)
                .map_err(Into::into),
            Runtime::Epoll => std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(custom_flags)
                .open(path)
                .map(ReadFile::Epoll),
        }
    }

    /// Wraps a descriptor opened elsewhere (e.g. by `openat2`, which neither backend offers)
    /// for reading on the current runtime.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> Self {
        use std::os::fd::{FromRawFd, IntoRawFd};
        match current() {
            // SAFETY: `into_raw_fd` hands over sole ownership; the BufferedFile closes it.
            Runtime::Uring => {
                ReadFile::Uring(unsafe { glommio::io::BufferedFile::from_raw_fd(fd.into_raw_fd()) })
            }
            Runtime::Epoll => ReadFile::Epoll(std::fs::File::from(fd)),
        }
    }

    /// Reads up to `len` bytes at `pos` (fewer at end of file).
    pub async fn read_at(&self, pos: u64, len: usize) -> io::Result<Chunk> {
        match self {
            ReadFile::Uring(f) => f
                .read_at(pos, len)
                .await
                .map(Chunk::Uring)
                .map_err(Into::into),
            ReadFile::Epoll(f) => {
                let mut buf = vec![0u8; len];
                let mut got = 0;
                while got < len {
                    match f.read_at(&mut buf[got..], pos + got as u64) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                buf.truncate(got);
                Ok(Chunk::Epoll(buf))
            }
        }
    }

    /// Closes the file.
    pub async fn close(self) -> io::Result<()> {
        match self {
            ReadFile::Uring(f) => f.close().await.map_err(Into::into),
            ReadFile::Epoll(f) => {
                drop(f);
                Ok(())
            }
        }
    }
}

impl AsRawFd for ReadFile {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            ReadFile::Uring(f) => f.as_raw_fd(),
            ReadFile::Epoll(f) => f.as_raw_fd(),
        }
    }
}
