//! io_uring availability probe.
//!
//! glommio panics or returns opaque errors when io_uring is blocked (the
//! `kernel.io_uring_disabled` sysctl, Docker's default seccomp profile, old
//! kernels). Creating and closing one tiny ring before any executor starts
//! turns all of those into one sentence the operator can act on.

use std::fmt;
use std::io;

/// Where the kernel exposes the io_uring on/off switch (Linux 6.6+).
const DISABLED_SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Kernel `struct io_sqring_offsets` (include/uapi/linux/io_uring.h): 40 bytes.
#[repr(C)]
#[derive(Default)]
struct SqringOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    flags: u32,
    dropped: u32,
    array: u32,
    resv1: u32,
    user_addr: u64,
}

/// Kernel `struct io_cqring_offsets`: 40 bytes.
#[repr(C)]
#[derive(Default)]
struct CqringOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    overflow: u32,
    cqes: u32,
    flags: u32,
    resv1: u32,
    user_addr: u64,
}

/// Kernel `struct io_uring_params`, the in/out argument of `io_uring_setup`: 120 bytes.
#[repr(C)]
#[derive(Default)]
struct UringParams {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    sq_thread_cpu: u32,
    sq_thread_idle: u32,
    features: u32,
    wq_fd: u32,
    resv: [u32; 3],
    sq_off: SqringOffsets,
    cq_off: CqringOffsets,
}

// The kernel rejects (EINVAL) a params struct whose reserved fields are not
// zero and reads exactly this many bytes, so the layout must match the uapi.
const _: () = assert!(std::mem::size_of::<SqringOffsets>() == 40);
const _: () = assert!(std::mem::size_of::<CqringOffsets>() == 40);
const _: () = assert!(std::mem::size_of::<UringParams>() == 120);

/// Why io_uring cannot be used; Display says what to change.
#[derive(Debug)]
pub enum UringError {
    /// `kernel.io_uring_disabled` is set to this value (2 = off for everyone).
    Disabled {
        /// The sysctl's value.
        sysctl: u32,
    },
    /// `io_uring_setup` failed with EPERM or EACCES (seccomp, LSM or the sysctl group rule).
    NotPermitted(i32),
    /// The kernel has no io_uring, or a filter pretends it has none (ENOSYS/EINVAL).
    NotSupported,
    /// Any other failure, e.g. ENOMEM from a too-small locked-memory limit.
    Other(io::Error),
}

impl fmt::Display for UringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NEED: &str = "camshard needs io_uring for all network and file I/O";
        match self {
            UringError::Disabled { sysctl } => write!(
                f,
                "io_uring is unavailable: it is disabled by kernel.io_uring_disabled={sysctl}; \
                 {NEED}. Enable it with `sysctl kernel.io_uring_disabled=0` on the host"
            ),
            UringError::NotPermitted(errno) => write!(
                f,
                "io_uring is unavailable: io_uring_setup was refused ({}); {NEED}. This is \
                 usually a container seccomp profile that blocks io_uring (run with a profile \
                 that allows io_uring_setup, io_uring_enter and io_uring_register), or \
                 kernel.io_uring_disabled=1 with this process outside kernel.io_uring_group",
                io::Error::from_raw_os_error(*errno)
            ),
            UringError::NotSupported => write!(
                f,
                "io_uring is unavailable: the kernel does not provide io_uring_setup (Linux 5.8 \
                 or newer is required, or a seccomp filter reports it as missing); {NEED}"
            ),
            UringError::Other(err) if err.raw_os_error() == Some(libc::ENOMEM) => write!(
                f,
                "io_uring is unavailable: creating a ring failed with ENOMEM, usually because \
                 the locked-memory limit (ulimit -l / LimitMEMLOCK) is too small; {NEED}"
            ),
            UringError::Other(err) => {
                write!(
                    f,
                    "io_uring is unavailable: io_uring_setup failed: {err}; {NEED}"
                )
            }
        }
    }
}

impl std::error::Error for UringError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UringError::Other(err) => Some(err),
            _ => None,
        }
    }
}

/// Reads `kernel.io_uring_disabled`; `None` when the kernel predates the switch.
fn disabled_sysctl() -> Option<u32> {
    std::fs::read_to_string(DISABLED_SYSCTL)
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Checks io_uring works by creating (and closing) a 4-entry ring.
pub fn probe_io_uring() -> Result<(), UringError> {
    // 1 means "only for members of kernel.io_uring_group": we may be one, so try.
    if let Some(value @ 2..) = disabled_sysctl() {
        return Err(UringError::Disabled { sysctl: value });
    }

    let mut params = UringParams::default();
    // SAFETY: io_uring_setup(entries, params) reads and writes exactly one
    // `struct io_uring_params`, which `params` is (size checked above).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            4 as libc::c_uint,
            &mut params as *mut UringParams,
        )
    };
    if ret >= 0 {
        // SAFETY: on success the return value is a new fd that we own.
        unsafe { libc::close(ret as libc::c_int) };
        return Ok(());
    }

    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(errno @ (libc::EPERM | libc::EACCES)) => Err(UringError::NotPermitted(errno)),
        Some(libc::ENOSYS | libc::EINVAL) => Err(UringError::NotSupported),
        _ => Err(UringError::Other(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_uring_works_here() {
        if let Err(e) = probe_io_uring() {
            panic!("{e}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let msg = UringError::Disabled { sysctl: 2 }.to_string();
        assert!(msg.contains("kernel.io_uring_disabled=2"), "{msg}");
        assert!(msg.contains("sysctl kernel.io_uring_disabled=0"), "{msg}");
        assert!(msg.contains("camshard needs io_uring"), "{msg}");

        let msg = UringError::NotPermitted(libc::EPERM).to_string();
        assert!(msg.contains("seccomp"), "{msg}");

        let msg = UringError::Other(io::Error::from_raw_os_error(libc::ENOMEM)).to_string();
        assert!(msg.contains("LimitMEMLOCK"), "{msg}");

        assert!(UringError::NotSupported.to_string().contains("5.8"));
    }
}
