//! Where the JWT signing secret comes from (contract §5.1), and generating one on first start.
//!
//! Precedence, first non-empty wins: `CAMSHARD_JWT_SECRET`, `CAMERA_SERVICE_JWT_SECRET` (the
//! contract's name), `security.jwt_secret` from the config, then the file
//! `<state_dir>/jwt_secret`. When none is set and the caller allows it, 32 random bytes are
//! generated and stored in that file (base64url) so that tokens stay valid across restarts.
//!
//! The secret is used as raw bytes exactly as written (env value, config string, or the
//! file's text without its trailing newline); the generated file's base64url text is itself
//! the secret, so whatever reads the file later gets the same bytes.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::apikey::ensure_private_dir;
use super::primitives::random_bytes;

/// Preferred environment variable for the secret.
pub const ENV_SECRET: &str = "CAMSHARD_JWT_SECRET";
/// The contract's (Python-era) environment variable for the secret.
pub const ENV_SECRET_COMPAT: &str = "CAMERA_SERVICE_JWT_SECRET";
/// Shortest secret accepted, in bytes. HS256's key is as strong as it is unguessable; RFC 7518
/// §3.2 asks for at least the hash size (32 bytes), and a short secret can be brute-forced
/// offline from any one token.
pub const MIN_SECRET_LEN: usize = 32;
/// Name of the secret file inside the state directory.
pub const SECRET_FILE: &str = "jwt_secret";

/// Where the secret in use came from (for the startup log; never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `security.jwt_secret` in the config file.
    Config,
    /// The named environment variable.
    Env(&'static str),
    /// An existing `<state_dir>/jwt_secret`.
    StateFile(PathBuf),
    /// Newly generated and written to this file.
    Generated(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Config => f.write_str("config security.jwt_secret"),
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
            SecretSource::StateFile(p) => write!(f, "file {}", p.display()),
            SecretSource::Generated(p) => write!(f, "generated into {}", p.display()),
        }
    }
}

/// Finds the JWT secret (see the module docs for the order); with `create`, generates one
/// into `<state_dir>/jwt_secret` when nothing is set, else fails with `NotFound`.
pub fn resolve_jwt_secret(
    config_secret: Option<&str>,
    state_dir: &Path,
    create: bool,
) -> io::Result<(Vec<u8>, SecretSource)> {
    resolve_with_env(
        |name| std::env::var_os(name).map(OsString::into_vec),
        config_secret,
        state_dir,
        create,
    )
}

/// [`resolve_jwt_secret`] with the environment lookup injected (tests cannot safely mutate
/// the process environment while other tests run in parallel).
fn resolve_with_env(
    env: impl Fn(&str) -> Option<Vec<u8>>,
    config_secret: Option<&str>,
    state_dir: &Path,
    create: bool,
) -> io::Result<(Vec<u8>, SecretSource)> {
    for name in [ENV_SECRET, ENV_SECRET_COMPAT] {
        if let Some(v) = env(name).filter(|v| !v.is_empty()) {
            return long_enough(v, SecretSource::Env(name));
        }
    }
    if let Some(s) = config_secret.filter(|s| !s.is_empty()) {
        return long_enough(s.as_bytes().to_vec(), SecretSource::Config);
    }
    let path = state_dir.join(SECRET_FILE);
    if let Some(secret) = read_secret_file(&path)? {
        return long_enough(secret, SecretSource::StateFile(path));
    }
    if !create {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no JWT secret: set {ENV_SECRET} or security.jwt_secret, or create {}",
                path.display()
            ),
        ));
    }
    generate_secret_file(&path)
}

/// Refuses a secret shorter than [`MIN_SECRET_LEN`] bytes, naming where it came from. A
/// generated secret (43 characters) always passes.
fn long_enough(secret: Vec<u8>, source: SecretSource) -> io::Result<(Vec<u8>, SecretSource)> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the JWT secret from {source} is {} bytes; at least {MIN_SECRET_LEN} are \
                 required (e.g. `head -c 32 /dev/urandom | base64`)",
                secret.len()
            ),
        ));
    }
    Ok((secret, source))
}

/// Reads a secret file: `None` if missing; an error if present but empty.
fn read_secret_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    if bytes.is_empty() {
        // Refuse rather than regenerate: replacing a file someone emptied would silently
        // invalidate every token in circulation.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: JWT secret file is empty; write a secret or delete it",
                path.display()
            ),
        ));
    }
    warn_if_exposed(path);
    Ok(Some(bytes))
}

/// Logs a warning when the secret file is readable or writable by group or others.
fn warn_if_exposed(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "JWT secret file is accessible by group or others; chmod 600 it"
            );
        }
    }
}

/// Generates a secret into `path` unless another process got there first, in which case
/// that process's secret is read and returned instead.
fn generate_secret_file(path: &Path) -> io::Result<(Vec<u8>, SecretSource)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    ensure_private_dir(dir)?;
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?).into_bytes();

    // Write the full content to a private temporary name first, then `link` it into place.
    // `link` fails with EEXIST when the target exists, exactly like O_CREAT|O_EXCL, so two
    // servers starting at once cannot both win; unlike creating the final file directly, a
    // loser (or a crash mid-write) can never observe a half-written or empty secret file.
    let rand = URL_SAFE_NO_PAD.encode(random_bytes::<6>()?);
    let tmp = dir.join(format!(".{SECRET_FILE}.{}.{rand}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&secret)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    match result {
        Ok(()) => {
            fs::File::open(dir)?.sync_all()?;
            Ok((secret, SecretSource::Generated(path.to_path_buf())))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let existing = read_secret_file(path)?.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: vanished while generating", path.display()),
                )
            })?;
            Ok((existing, SecretSource::StateFile(path.to_path_buf())))
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("{}: cannot create JWT secret: {e}", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::apikey::tests::scratch_dir;
    use super::*;

    const LONG_PRIMARY: &[u8] = b"primary-0123456789abcdef0123456789abcdef";
    const LONG_COMPAT: &[u8] = b"compat-0123456789abcdef0123456789abcdef";
    const LONG_CFG: &str = "cfg-0123456789abcdef0123456789abcdef";

    fn no_env(_: &str) -> Option<Vec<u8>> {
        None
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn precedence() {
        let d = Dir(scratch_dir("secret-order"));
        let env = |name: &str| match name {
            ENV_SECRET => Some(LONG_PRIMARY.to_vec()),
            ENV_SECRET_COMPAT => Some(LONG_COMPAT.to_vec()),
            _ => None,
        };
        let r = resolve_with_env(env, Some(LONG_CFG), &d.0, false).expect("env");
        assert_eq!(r, (LONG_PRIMARY.to_vec(), SecretSource::Env(ENV_SECRET)));

        let env = |name: &str| match name {
            ENV_SECRET => Some(Vec::new()), // empty counts as unset
            ENV_SECRET_COMPAT => Some(LONG_COMPAT.to_vec()),
            _ => None,
        };
        let r = resolve_with_env(env, Some(LONG_CFG), &d.0, false).expect("compat env");
        assert_eq!(
            r,
            (LONG_COMPAT.to_vec(), SecretSource::Env(ENV_SECRET_COMPAT))
        );

        let r = resolve_with_env(no_env, Some(LONG_CFG), &d.0, false).expect("config");
        assert_eq!(r, (LONG_CFG.as_bytes().to_vec(), SecretSource::Config));

        let err = resolve_with_env(no_env, Some(""), &d.0, false).expect_err("nothing set");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!d.0.exists(), "nothing is created without `create`");
    }

    #[test]
    fn generated_file_is_private_and_reread() {
        let d = Dir(scratch_dir("secret-gen"));
        let state = d.0.join("state");
        let (s1, src1) = resolve_with_env(no_env, None, &state, true).expect("generate");
        let file = state.join(SECRET_FILE);
        assert_eq!(src1, SecretSource::Generated(file.clone()));
        assert_eq!(s1.len(), 43);
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&state), 0o700);
        let on_disk = fs::read(&file).expect("read");
        assert_eq!(on_disk, [s1.as_slice(), b"\n"].concat());

        // A second start reads the same secret back, with or without `create`.
        for create in [false, true] {
            let (s2, src2) = resolve_with_env(no_env, None, &state, create).expect("reread");
            assert_eq!(s2, s1);
            assert_eq!(src2, SecretSource::StateFile(file.clone()));
        }
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(&state)
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [SECRET_FILE]);
    }

    #[test]
    fn concurrent_generation_agrees() {
        let d = Dir(scratch_dir("secret-race"));
        let state = d.0.join("state");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let state = state.clone();
                std::thread::spawn(move || resolve_with_env(no_env, None, &state, true))
            })
            .collect();
        let secrets: Vec<Vec<u8>> = handles
            .into_iter()
            .map(|h| h.join().expect("thread").expect("resolve").0)
            .collect();
        assert!(secrets.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn existing_file_trimmed_and_empty_refused() {
        let d = Dir(scratch_dir("secret-file"));
        fs::create_dir_all(&d.0).expect("mkdir");
        let file = d.0.join(SECRET_FILE);
        fs::write(&file, b"hand written, and long enough to sign\r\n").expect("write");
        let (s, src) = resolve_with_env(no_env, None, &d.0, true).expect("read");
        assert_eq!(s, b"hand written, and long enough to sign");
        assert_eq!(src, SecretSource::StateFile(file.clone()));

        fs::write(&file, b"\n").expect("write");
        let err = resolve_with_env(no_env, None, &d.0, true).expect_err("empty file");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(fs::read(&file).expect("read"), b"\n", "not overwritten");
    }

    /// Row 9: a secret shorter than [`MIN_SECRET_LEN`] bytes is refused at start, whatever its
    /// source, with a message that names the source and the minimum.
    #[test]
    fn short_secret_refused() {
        let d = Dir(scratch_dir("secret-short"));
        let env = |name: &str| (name == ENV_SECRET).then(|| b"x".to_vec());
        let err = resolve_with_env(env, None, &d.0, false).expect_err("1 byte");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains(ENV_SECRET) && msg.contains("32"), "{msg}");

        let short = "a".repeat(MIN_SECRET_LEN - 1);
        let err = resolve_with_env(no_env, Some(&short), &d.0, false).expect_err("31 bytes");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let exact = "a".repeat(MIN_SECRET_LEN);
        assert!(resolve_with_env(no_env, Some(&exact), &d.0, false).is_ok());

        fs::create_dir_all(&d.0).expect("mkdir");
        fs::write(d.0.join(SECRET_FILE), b"short\n").expect("write");
        let err = resolve_with_env(no_env, None, &d.0, true).expect_err("short file");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
