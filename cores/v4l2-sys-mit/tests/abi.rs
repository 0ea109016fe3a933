//! The committed bindings against the C compiler's view of `linux/videodev2.h` on this machine.
//!
//! bindgen's layout tests (in the generated files) prove that Rust lays the structs out as clang
//! did when the file was generated. This test proves the file still matches the kernel headers
//! and C compiler of the machine that runs it: `tests/abi_probe.c` prints sizes, offsets,
//! constants and ioctl request numbers, and each is compared with what the Rust side computes.
//! The ioctl numbers matter most: the `v4l` crate derives every `VIDIOC_*` request from these
//! struct sizes, so a wrong size becomes an ioctl the kernel rejects (or misreads).
//!
//! It needs a C compiler (`CC`, else `cc`) and the kernel headers (`linux-libc-dev`); where
//! either is missing it says so on stderr and checks nothing.

use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use v4l2_sys_mit::*;

/// Compiles and runs the C probe; `None` (with a note) where this machine cannot.
fn c_facts() -> Option<HashMap<String, u64>> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let exe = dir.join("v4l2_abi_probe");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/abi_probe.c");
    let compiled = Command::new(&cc).arg("-o").arg(&exe).arg(&src).output();
    match compiled {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "v4l2 ABI check skipped: {cc} could not compile the probe (kernel headers missing? \
                 apt-get install linux-libc-dev):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Err(e) => {
            eprintln!("v4l2 ABI check skipped: no C compiler ({cc}: {e})");
            return None;
        }
    }
    let out = Command::new(&exe).output().expect("the probe runs");
    assert!(out.status.success(), "the probe failed: {out:?}");
    let text = String::from_utf8(out.stdout).expect("the probe prints UTF-8");
    let facts = text
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(' ').expect("a probe line is `name value`");
            (
                name.to_string(),
                value.parse().expect("a probe value is a number"),
            )
        })
        .collect();
    Some(facts)
}

/// The kernel's `_IOC` encoding (`asm-generic/ioctl.h`, used by x86_64 and aarch64): nr in bits
/// 0-7, type in 8-15, size in 16-29, direction in 30-31 (1 = write, 2 = read).
fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'V' as u64) << 8) | nr
}
const W: u64 = 1;
const R: u64 = 2;

/// `("sizeof:T", size_of::<T>())`, named as the C probe prints it.
macro_rules! size {
    ($t:ident) => {
        (concat!("sizeof:", stringify!($t)), size_of::<$t>() as u64)
    };
}

/// `("offsetof:T.f", offset_of!(T, f))`, named as the C probe prints it.
macro_rules! offset {
    ($t:ident . $f:ident) => {
        (
            concat!("offsetof:", stringify!($t), ".", stringify!($f)),
            offset_of!($t, $f) as u64,
        )
    };
}

#[test]
fn bindings_match_the_c_compiler() {
    let Some(c) = c_facts() else { return };
    let rust: Vec<(&str, u64)> = vec![
        size!(v4l2_capability),
        size!(v4l2_format),
        size!(v4l2_pix_format),
        size!(v4l2_buffer),
        size!(v4l2_plane),
        size!(v4l2_requestbuffers),
        size!(v4l2_fmtdesc),
        size!(v4l2_frmsizeenum),
        size!(v4l2_frmivalenum),
        size!(v4l2_streamparm),
        size!(v4l2_queryctrl),
        size!(v4l2_querymenu),
        size!(v4l2_control),
        size!(v4l2_ext_control),
        size!(v4l2_ext_controls),
        size!(v4l2_timecode),
        offset!(v4l2_buffer.timestamp),
        offset!(v4l2_buffer.sequence),
        offset!(v4l2_buffer.memory),
        offset!(v4l2_buffer.m),
        offset!(v4l2_buffer.length),
        offset!(v4l2_format.fmt),
        offset!(v4l2_pix_format.sizeimage),
        offset!(v4l2_streamparm.parm),
        offset!(v4l2_ext_controls.controls),
        (
            "value:V4L2_CAP_VIDEO_CAPTURE",
            V4L2_CAP_VIDEO_CAPTURE as u64,
        ),
        ("value:V4L2_CAP_STREAMING", V4L2_CAP_STREAMING as u64),
        ("value:V4L2_CAP_DEVICE_CAPS", V4L2_CAP_DEVICE_CAPS as u64),
        (
            "value:V4L2_BUF_TYPE_VIDEO_CAPTURE",
            v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE as u64,
        ),
        (
            "value:V4L2_MEMORY_MMAP",
            v4l2_memory_V4L2_MEMORY_MMAP as u64,
        ),
        ("value:V4L2_FIELD_NONE", v4l2_field_V4L2_FIELD_NONE as u64),
        ("value:V4L2_CID_BRIGHTNESS", V4L2_CID_BRIGHTNESS as u64),
        (
            "value:V4L2_CID_EXPOSURE_AUTO",
            V4L2_CID_EXPOSURE_AUTO as u64,
        ),
        (
            "value:V4L2_FRMSIZE_TYPE_DISCRETE",
            v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_DISCRETE as u64,
        ),
        (
            "value:V4L2_FRMIVAL_TYPE_DISCRETE",
            v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_DISCRETE as u64,
        ),
        (
            "value:VIDIOC_QUERYCAP",
            ioc(R, 0, size_of::<v4l2_capability>()),
        ),
        (
            "value:VIDIOC_ENUM_FMT",
            ioc(R | W, 2, size_of::<v4l2_fmtdesc>()),
        ),
        (
            "value:VIDIOC_G_FMT",
            ioc(R | W, 4, size_of::<v4l2_format>()),
        ),
        (
            "value:VIDIOC_S_FMT",
            ioc(R | W, 5, size_of::<v4l2_format>()),
        ),
        (
            "value:VIDIOC_REQBUFS",
            ioc(R | W, 8, size_of::<v4l2_requestbuffers>()),
        ),
        (
            "value:VIDIOC_QUERYBUF",
            ioc(R | W, 9, size_of::<v4l2_buffer>()),
        ),
        (
            "value:VIDIOC_QBUF",
            ioc(R | W, 15, size_of::<v4l2_buffer>()),
        ),
        (
            "value:VIDIOC_DQBUF",
            ioc(R | W, 17, size_of::<v4l2_buffer>()),
        ),
        ("value:VIDIOC_STREAMON", ioc(W, 18, size_of::<i32>())),
        ("value:VIDIOC_STREAMOFF", ioc(W, 19, size_of::<i32>())),
        (
            "value:VIDIOC_G_PARM",
            ioc(R | W, 21, size_of::<v4l2_streamparm>()),
        ),
        (
            "value:VIDIOC_S_PARM",
            ioc(R | W, 22, size_of::<v4l2_streamparm>()),
        ),
        (
            "value:VIDIOC_QUERYCTRL",
            ioc(R | W, 36, size_of::<v4l2_queryctrl>()),
        ),
        (
            "value:VIDIOC_G_CTRL",
            ioc(R | W, 27, size_of::<v4l2_control>()),
        ),
        (
            "value:VIDIOC_S_CTRL",
            ioc(R | W, 28, size_of::<v4l2_control>()),
        ),
        (
            "value:VIDIOC_ENUM_FRAMESIZES",
            ioc(R | W, 74, size_of::<v4l2_frmsizeenum>()),
        ),
        (
            "value:VIDIOC_ENUM_FRAMEINTERVALS",
            ioc(R | W, 75, size_of::<v4l2_frmivalenum>()),
        ),
        (
            "value:VIDIOC_G_EXT_CTRLS",
            ioc(R | W, 71, size_of::<v4l2_ext_controls>()),
        ),
        (
            "value:VIDIOC_QUERY_EXT_CTRL",
            ioc(R | W, 103, size_of::<v4l2_query_ext_ctrl>()),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, ours) in &rust {
        match c.get(*name) {
            Some(theirs) if theirs == ours => {}
            Some(theirs) => wrong.push(format!("{name}: Rust {ours}, C {theirs}")),
            None => wrong.push(format!("{name}: the C probe did not print it")),
        }
    }
    // Every line the probe prints is checked: a fact added to the probe needs a Rust side.
    for name in c.keys() {
        if !rust.iter().any(|(n, _)| n == name) {
            wrong.push(format!(
                "{name}: printed by the C probe but not checked here"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "V4L2 ABI mismatches:\n{}",
        wrong.join("\n")
    );
}
