//! Secrets at rest.
//!
//! A service's secrets (database passwords, API keys) are stored sealed with
//! XChaCha20-Poly1305 under one master key, which never enters the database: it comes from
//! `PAVE_MASTER_KEY` or from a key file that the first start creates with mode 0600. A leaked
//! database dump, backup or replica of the store therefore reveals secret names and versions,
//! never values.
//!
//! Each sealed value is bound to the secret it belongs to (service, environment, name,
//! version) as associated data, so a sealed value copied onto another secret's row does not
//! open; the 192-bit nonce is random per seal, which XChaCha's nonce size makes safe without a
//! counter. A sealed value names the key it was sealed under (a short hash of the key, not the
//! key), so a control plane started with another key says so instead of reporting damage.
//!
//! Plain values travel as [`SecretValue`], whose `Debug` and `Display` print `<redacted>` and
//! whose memory is zeroed when dropped, so a stray `{:?}` in a log line cannot leak one.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A master key is 32 random bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// The prefix of every sealed value; a later format gets another.
const FORMAT: &str = "pave1";

/// A key, sealing or opening problem. Messages never contain a key or a value.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the master key {origin} is not usable: {reason}")]
    BadKey { origin: String, reason: String },
    #[error(
        "the master key file {} can be read by other users (mode {mode:03o}); make it private with `chmod 600 {}`",
        path.display(), path.display()
    )]
    KeyFileNotPrivate { path: PathBuf, mode: u32 },
    #[error("cannot read or create the master key file {}: {source}", path.display())]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error(
        "secret {what} was sealed under master key {sealed_with}, but this control plane has key {have}; \
         start it with the key the secrets were written under (PAVE_MASTER_KEY or the key file)"
    )]
    WrongKey { what: String, sealed_with: String, have: String },
    #[error("secret {what} cannot be opened: its sealed value is damaged or belongs to another secret")]
    Damaged { what: String },
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
}

type Result<T> = std::result::Result<T, VaultError>;

/// The key every secret is sealed under. Its bytes are zeroed on drop and never printed.
pub struct MasterKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| VaultError::Random(e.to_string()))
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let key = Zeroizing::new(bytes);
        // The id names the key without revealing it: a domain-separated hash, shortened.
        let digest = Sha256::new().chain_update(b"pave master key id\0").chain_update(key.as_slice()).finalize();
        MasterKey { id: format!("k-{}", hex::encode(&digest[..6])), key }
    }

    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        random(bytes.as_mut_slice())?;
        Ok(Self::from_bytes(*bytes))
    }

    /// Reads a key written as 64 hex digits or as base64 (standard or URL-safe, padded or
    /// not) of 32 bytes — what `openssl rand -hex 32` and `openssl rand -base64 32` print.
    /// `origin` says where the text came from, for the error.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let text = text.trim();
        let bad = |reason: String| VaultError::BadKey { origin: origin.to_owned(), reason };
        if text.is_empty() {
            return Err(bad("it is empty; `openssl rand -base64 32` makes a key".into()));
        }
        let decoded: Zeroizing<Vec<u8>> = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Zeroizing::new(hex::decode(text).map_err(|e| bad(e.to_string()))?)
        } else {
            use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
            let attempt =
                [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(text).ok());
            Zeroizing::new(attempt.ok_or_else(|| {
                bad("it is neither 64 hex digits nor base64; `openssl rand -base64 32` makes a key".into())
            })?)
        };
        if decoded.len() != KEY_LEN {
            return Err(bad(format!(
                "it decodes to {} bytes, and a master key is {KEY_LEN} random bytes (`openssl rand -base64 32`)",
                decoded.len()
            )));
        }
        if decoded.iter().all(|b| *b == decoded[0]) {
            return Err(bad("its 32 bytes are all the same; use random bytes (`openssl rand -base64 32`)".into()));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&decoded);
        Ok(Self::from_bytes(*bytes))
    }

    /// The key's public name, `k-` and 12 hex digits of a hash of it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as base64, for its key file.
    fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.key.as_slice()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_slice().into())
    }

    /// Seals `value` for the secret `at`: `pave1:<key id>:<base64 of nonce, ciphertext, tag>`.
    pub fn seal(&self, at: &SecretRef<'_>, value: &SecretValue) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce)?;
        let aad = at.associated_data();
        let sealed = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: value.expose().as_bytes(), aad: &aad })
            .map_err(|_| VaultError::Damaged { what: at.to_string() })?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{FORMAT}:{}:{}", self.id, base64::engine::general_purpose::STANDARD.encode(out)))
    }

    /// Opens what [`MasterKey::seal`] made for the same secret.
    pub fn open(&self, at: &SecretRef<'_>, sealed: &str) -> Result<SecretValue> {
        let damaged = || VaultError::Damaged { what: at.to_string() };
        let mut parts = sealed.splitn(3, ':');
        let (Some(FORMAT), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(damaged());
        };
        if key_id != self.id {
            return Err(VaultError::WrongKey {
                what: at.to_string(),
                sealed_with: key_id.to_owned(),
                have: self.id.clone(),
            });
        }
        let raw = base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| damaged())?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(damaged());
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let aad = at.associated_data();
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
                .map_err(|_| damaged())?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| damaged())?;
        Ok(SecretValue::new(text.to_owned()))
    }
}

/// The current master key, which seals, and earlier ones, which still open what they sealed
/// until it is sealed again under the current key (a rotation: start with the new key as
/// `PAVE_MASTER_KEY` and the old one in `PAVE_MASTER_KEY_PREVIOUS`; the server re-seals every
/// secret at start, after which the old key can go).
#[derive(Debug)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        let previous = previous.into_iter().filter(|k| k.id() != current.id()).collect();
        Keyring { current, previous }
    }

    /// The id of the key that seals.
    pub fn id(&self) -> &str {
        self.current.id()
    }

    /// Whether some key of the ring can open what key `id` sealed.
    pub fn knows(&self, id: &str) -> bool {
        self.current.id() == id || self.previous.iter().any(|k| k.id() == id)
    }

    pub fn seal(&self, at: &SecretRef<'_>, value: &SecretValue) -> Result<String> {
        self.current.seal(at, value)
    }

    /// Opens a value sealed under any key of the ring.
    pub fn open(&self, at: &SecretRef<'_>, sealed: &str) -> Result<SecretValue> {
        let id = sealed_key_id(sealed);
        match self.previous.iter().find(|k| Some(k.id()) == id) {
            Some(old) => old.open(at, sealed),
            None => self.current.open(at, sealed),
        }
    }
}

/// The key id a sealed value names.
fn sealed_key_id(sealed: &str) -> Option<&str> {
    let mut parts = sealed.splitn(3, ':');
    match (parts.next(), parts.next()) {
        (Some(FORMAT), Some(id)) => Some(id),
        _ => None,
    }
}

/// Reads earlier keys, separated by commas or whitespace (`PAVE_MASTER_KEY_PREVIOUS`).
pub fn parse_previous_keys(text: &str) -> Result<Vec<MasterKey>> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .enumerate()
        .map(|(i, t)| MasterKey::parse(t, &format!("number {} in PAVE_MASTER_KEY_PREVIOUS", i + 1)))
        .collect()
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `PAVE_MASTER_KEY`.
    Environment,
    /// An existing key file.
    File(PathBuf),
    /// A key file this start created.
    Created(PathBuf),
}

/// The master key: from `env_value` (the content of `PAVE_MASTER_KEY`) when set, else from
/// `file`, which is created with mode 0600 holding a new random key when it does not exist.
/// An existing file that group or others may read is refused, as ssh refuses such keys.
pub fn load_master_key(env_value: Option<&str>, file: &Path) -> Result<(MasterKey, KeyOrigin)> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(v) = env_value {
        return Ok((MasterKey::parse(v, "in PAVE_MASTER_KEY")?, KeyOrigin::Environment));
    }
    let io = |source: std::io::Error| VaultError::KeyFile { path: file.to_owned(), source };
    let read = || -> Result<MasterKey> {
        let mode = std::fs::metadata(file).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(VaultError::KeyFileNotPrivate { path: file.to_owned(), mode: mode & 0o777 });
        }
        let text = Zeroizing::new(std::fs::read_to_string(file).map_err(io)?);
        MasterKey::parse(&text, &format!("in {}", file.display()))
    };
    match std::fs::symlink_metadata(file) {
        Ok(_) => return Ok((read()?, KeyOrigin::File(file.to_owned()))),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Written whole to a private temporary file, then linked into place: a crash leaves either
    // no key file or a complete one, and of two processes starting at once one key wins.
    let key = MasterKey::generate()?;
    // A random name: in containers every first process is pid 1.
    let mut suffix = [0u8; 8];
    random(&mut suffix)?;
    let tmp = file.with_extension(format!("tmp-{}", hex::encode(suffix)));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(key.to_text().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    let linked = std::fs::hard_link(&tmp, file);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            // The new name must survive a power loss before any secret is sealed under it.
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            Ok((key, KeyOrigin::Created(file.to_owned())))
        }
        // Another process created it first: its key is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((read()?, KeyOrigin::File(file.to_owned()))),
        Err(e) => Err(io(e)),
    }
}

/// The secret a sealed value belongs to.
#[derive(Debug, Clone, Copy)]
pub struct SecretRef<'a> {
    pub service: &'a str,
    pub environment: &'a str,
    pub name: &'a str,
    pub version: i64,
}

impl SecretRef<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("pave-secret\0{}\0{}\0{}\0{}", self.service, self.environment, self.name, self.version).into_bytes()
    }
}

impl fmt::Display for SecretRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} in {} (version {})", self.name, self.service, self.environment, self.version)
    }
}

/// A secret's plain value. Printing it in any way shows `<redacted>`; [`SecretValue::expose`]
/// is the one way to the text, so every place that uses a value is greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> Self {
        SecretValue(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: SecretRef<'static> =
        SecretRef { service: "checkout", environment: "production", name: "DB_PASSWORD", version: 1 };

    fn key(b: u8) -> MasterKey {
        let mut bytes = [b; KEY_LEN];
        bytes[0] = b.wrapping_add(1);
        MasterKey::from_bytes(bytes)
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_own_secret_and_key() {
        let k = key(7);
        let v = SecretValue::new("hunter2-\u{e9}-with-unicode".into());
        let sealed = k.seal(&AT, &v).unwrap();
        assert!(sealed.starts_with(&format!("pave1:{}:", k.id())));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(k.open(&AT, &sealed).unwrap(), v);
        // Fresh nonce per seal.
        assert_ne!(k.seal(&AT, &v).unwrap(), sealed);
        // Another secret, version, environment or service: refused.
        for other in [
            SecretRef { version: 2, ..AT },
            SecretRef { name: "API_KEY", ..AT },
            SecretRef { environment: "staging", ..AT },
            SecretRef { service: "cart", ..AT },
        ] {
            assert!(matches!(k.open(&other, &sealed), Err(VaultError::Damaged { .. })), "{other}");
        }
        // Another key: named, not called damage.
        let err = key(9).open(&AT, &sealed).unwrap_err();
        assert!(matches!(err, VaultError::WrongKey { .. }));
        assert!(err.to_string().contains(k.id()), "{err}");
        // A flipped bit anywhere in the body fails the tag.
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut raw = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let bad = format!("{head}:{}", base64::engine::general_purpose::STANDARD.encode(&raw));
            assert!(matches!(k.open(&AT, &bad), Err(VaultError::Damaged { .. })));
            raw[i] ^= 1;
        }
        for junk in ["", "pave1", "pave2:x:y", &format!("pave1:{}:!!", k.id()), &format!("pave1:{}:AAAA", k.id())] {
            assert!(k.open(&AT, junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn a_keyring_opens_what_earlier_keys_sealed_and_seals_under_the_current_one() {
        let (old, new) = (key(1), key(2));
        let sealed_old = old.seal(&AT, &SecretValue::new("v-old".into())).unwrap();
        let old_text = old.to_text();
        let ring = Keyring::new(new, parse_previous_keys(&format!(" {} ,", &*old_text)).unwrap());
        assert!(ring.knows(key(1).id()) && ring.knows(key(2).id()) && !ring.knows(key(3).id()));
        assert_eq!(ring.open(&AT, &sealed_old).unwrap().expose(), "v-old");
        assert_eq!(sealed_key_id(&sealed_old), Some(key(1).id()), "sealed under the old key");
        let sealed_new = ring.seal(&AT, &SecretValue::new("v-new".into())).unwrap();
        assert_eq!(sealed_key_id(&sealed_new), Some(ring.id()), "sealed under the current key");
        assert_eq!(ring.open(&AT, &sealed_new).unwrap().expose(), "v-new");
        // A key the ring does not hold is named, not called damage.
        let foreign = key(3).seal(&AT, &SecretValue::new("x".into())).unwrap();
        assert!(matches!(ring.open(&AT, &foreign), Err(VaultError::WrongKey { .. })));
        let err = parse_previous_keys("short").unwrap_err().to_string();
        assert!(err.contains("number 1 in PAVE_MASTER_KEY_PREVIOUS"), "{err}");
    }

    #[test]
    fn values_and_keys_never_print_themselves() {
        let v = SecretValue::new("s3cr3t-value".into());
        assert_eq!(format!("{v} {v:?}"), "<redacted> <redacted>");
        let k = key(3);
        let shown = format!("{k:?}");
        assert!(shown.contains(k.id()) && !shown.contains(&*k.to_text()), "{shown}");
    }

    #[test]
    fn keys_parse_from_hex_and_base64_and_bad_ones_are_named() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let a = MasterKey::parse(hex, "test").unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(hex::decode(hex).unwrap());
        let b = MasterKey::parse(&format!("  {b64}\n"), "test").unwrap();
        assert_eq!(a.id(), b.id());
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex::decode(hex).unwrap());
        assert_eq!(MasterKey::parse(&url, "test").unwrap().id(), a.id());
        for (bad, says) in [
            ("", "empty"),
            ("not a key at all", "neither"),
            ("c2hvcnQ=", "decodes to 5 bytes"),
            (&"00".repeat(32), "all the same"),
        ] {
            let err = MasterKey::parse(bad, "in PAVE_MASTER_KEY").unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("PAVE_MASTER_KEY"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_key_file_is_created_private_once_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys/master.key");
        let (k1, origin) = load_master_key(None, &file).unwrap();
        assert_eq!(origin, KeyOrigin::Created(file.clone()));
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let (k2, origin) = load_master_key(None, &file).unwrap();
        assert_eq!(origin, KeyOrigin::File(file.clone()));
        assert_eq!(k1.id(), k2.id());
        let sealed = k1.seal(&AT, &SecretValue::new("v".into())).unwrap();
        assert_eq!(k2.open(&AT, &sealed).unwrap().expose(), "v");
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(file.parent().unwrap()).unwrap().count(), 1);

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_master_key(None, &file).unwrap_err().to_string();
        assert!(err.contains("chmod 600") && err.contains("644"), "{err}");

        // The environment wins over the file.
        let env = base64::engine::general_purpose::STANDARD.encode([5u8, 6, 7, 8].repeat(8));
        let (k3, origin) = load_master_key(Some(&env), &file).unwrap();
        assert_eq!(origin, KeyOrigin::Environment);
        assert_ne!(k3.id(), k1.id());

        std::fs::write(dir.path().join("bad.key"), "short\n").unwrap();
        std::fs::set_permissions(dir.path().join("bad.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_master_key(None, &dir.path().join("bad.key")).unwrap_err().to_string();
        assert!(err.contains("bad.key"), "{err}");
    }
}
