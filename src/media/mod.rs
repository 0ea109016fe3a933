//! Media files without external tools: container kind and duration of MP4/MKV recordings, and
//! the pixel size of JPEG/PNG snapshots, read straight from the bytes ([`probe`]); and finding
//! the one external tool recording and publishing do need, ffmpeg ([`ffmpeg`]).
//!
//! Listing a directory of recordings must not fork `ffprobe` once per file (the Python baseline
//! did, and a list of a few hundred files took seconds); a few positioned reads of box and
//! element headers answer the same questions in microseconds.

pub(crate) mod ffmpeg;
pub(crate) mod probe;
