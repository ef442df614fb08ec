//! Content-addressed storage of release artifacts. An artifact (a file or a directory tree)
//! arrives as a tar stream, is unpacked beside the store, named by the SHA-256 of its
//! canonical content, and moved into place — or dropped if that content is already stored.
//! Deployments run from the stored copy, never from a path that can change under them, and
//! [`ArtifactStore::verify`] re-hashes it before use.
//!
//! The digest covers, for every regular file in path order, its path, whether it is
//! executable, and its bytes; timestamps, owners and tar details do not count, so the same
//! content always gets the same name.

use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact entry {0:?} escapes the artifact (absolute or with `..`)")]
    UnsafePath(String),
    #[error("artifact entry {path:?} is a {kind}; only files and directories are accepted")]
    UnsupportedEntry { path: String, kind: String },
    #[error("artifact is empty: it has no files")]
    Empty,
    #[error("artifact is over the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("not a valid tar stream: {0}")]
    Tar(String),
    #[error("artifact {0} is not in the store")]
    NotFound(String),
    #[error("artifact {digest} was modified on disk (its content now hashes to {actual}); redeploy from a new release")]
    Corrupt { digest: String, actual: String },
    #[error("{0:?} is not an artifact digest")]
    BadDigest(String),
    #[error("artifact store I/O on {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io { path: path.display().to_string(), source }
}

/// What a stored artifact is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `sha256:<hex>`.
    pub digest: String,
    pub files: u64,
    pub bytes: u64,
    /// False when identical content was already stored.
    pub new: bool,
}

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

/// Lists every regular file under `dir`, relative, sorted, with its executable bit.
fn files(dir: &Path) -> Result<Vec<(String, bool)>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, bool)>) -> Result<()> {
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
            if meta.is_dir() {
                walk(base, &path, out)?;
            } else if meta.is_file() {
                let rel = path.strip_prefix(base).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                #[cfg(unix)]
                let exec = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
                #[cfg(not(unix))]
                let exec = false;
                out.push((rel, exec));
            } else {
                let rel = path.strip_prefix(base).unwrap_or(&path).display().to_string();
                return Err(ArtifactError::UnsupportedEntry {
                    path: rel,
                    kind: "symbolic link or special file".into(),
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// The digest of a directory's content, with its file count and size.
pub fn digest_dir(dir: &Path) -> Result<(String, u64, u64)> {
    let mut h = Sha256::new();
    let mut bytes = 0u64;
    let list = files(dir)?;
    let mut buf = vec![0u8; 64 * 1024];
    for (rel, exec) in &list {
        let path = dir.join(rel);
        let mut f = fs::File::open(&path).map_err(io(&path))?;
        let len = f.metadata().map_err(io(&path))?.len();
        h.update(rel.as_bytes());
        h.update([0, u8::from(*exec), 0]);
        h.update(len.to_le_bytes());
        loop {
            let n = f.read(&mut buf).map_err(io(&path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        bytes += len;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), list.len() as u64, bytes))
}

/// Writes `path` (a file or a directory) as a tar stream, for upload.
pub fn pack(path: &Path, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let meta = fs::metadata(path).map_err(io(path))?;
    let res = if meta.is_dir() {
        b.append_dir_all(".", path)
    } else {
        let name = path.file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("artifact"));
        b.append_path_with_name(path, name)
    };
    res.map_err(io(path))?;
    b.into_inner().map_err(io(path))?.flush().map_err(io(path))?;
    Ok(())
}

impl ArtifactStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ArtifactStore { root: root.into() }
    }

    fn path_of(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        hex.map(|h| self.root.join("sha256").join(h)).ok_or_else(|| ArtifactError::BadDigest(digest.to_owned()))
    }

    /// Unpacks a tar stream into the store, refusing paths that escape it, links and devices,
    /// and anything beyond `limit` bytes of content.
    pub fn put_tar(&self, reader: impl Read, limit: u64) -> Result<Stored> {
        let tmp_root = self.root.join("tmp");
        fs::create_dir_all(&tmp_root).map_err(io(&tmp_root))?;
        let tmp = tempfile::Builder::new().prefix("upload-").tempdir_in(&tmp_root).map_err(io(&tmp_root))?;
        let mut archive = tar::Archive::new(reader);
        let mut total = 0u64;
        for entry in archive.entries().map_err(|e| ArtifactError::Tar(e.to_string()))? {
            let mut entry = entry.map_err(|e| ArtifactError::Tar(e.to_string()))?;
            let raw = entry.path().map_err(|e| ArtifactError::Tar(e.to_string()))?.into_owned();
            let shown = raw.display().to_string();
            let mut rel = PathBuf::new();
            for c in raw.components() {
                match c {
                    Component::Normal(p) => rel.push(p),
                    Component::CurDir => {}
                    _ => return Err(ArtifactError::UnsafePath(shown)),
                }
            }
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                let d = tmp.path().join(&rel);
                fs::create_dir_all(&d).map_err(io(&d))?;
                continue;
            }
            if !kind.is_file() {
                return Err(ArtifactError::UnsupportedEntry { path: shown, kind: format!("{kind:?}").to_lowercase() });
            }
            if rel.as_os_str().is_empty() {
                return Err(ArtifactError::UnsafePath(shown));
            }
            total += entry.header().size().unwrap_or(0);
            if total > limit {
                return Err(ArtifactError::TooLarge { limit });
            }
            let dest = tmp.path().join(&rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            let mode = entry.header().mode().unwrap_or(0o644);
            let mut f = fs::File::create(&dest).map_err(io(&dest))?;
            std::io::copy(&mut entry, &mut f).map_err(io(&dest))?;
            #[cfg(unix)]
            {
                let perm = if mode & 0o111 != 0 { 0o555 } else { 0o444 };
                fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(perm)).map_err(io(&dest))?;
            }
        }
        let (digest, files, bytes) = digest_dir(tmp.path())?;
        if files == 0 {
            return Err(ArtifactError::Empty);
        }
        let dest = self.path_of(&digest)?;
        if dest.exists() {
            return Ok(Stored { digest, files, bytes, new: false });
        }
        let parent = dest.parent().expect("digest paths have a parent");
        fs::create_dir_all(parent).map_err(io(parent))?;
        let kept = tmp.keep();
        // Another upload of the same content may have won the race: then this copy goes.
        if let Err(e) = fs::rename(&kept, &dest) {
            let _ = fs::remove_dir_all(&kept);
            if !dest.exists() {
                return Err(ArtifactError::Io { path: dest.display().to_string(), source: e });
            }
            return Ok(Stored { digest, files, bytes, new: false });
        }
        Ok(Stored { digest, files, bytes, new: true })
    }

    /// The stored directory of `digest`, after checking its content still hashes to it.
    pub fn verify(&self, digest: &str) -> Result<PathBuf> {
        let path = self.path_of(digest)?;
        if !path.is_dir() {
            return Err(ArtifactError::NotFound(digest.to_owned()));
        }
        let (actual, _, _) = digest_dir(&path)?;
        if actual != digest {
            return Err(ArtifactError::Corrupt { digest: digest.to_owned(), actual });
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        fs::create_dir_all(dir.join("bin")).expect("mkdir");
        fs::write(dir.join("bin/app"), b"#!/bin/sh\necho hi\n").expect("write");
        #[cfg(unix)]
        fs::set_permissions(dir.join("bin/app"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        fs::write(dir.join("config.toml"), b"port = 1\n").expect("write");
    }

    fn packed(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        pack(path, &mut out).expect("pack");
        out
    }

    #[test]
    fn stores_dedupes_and_verifies() {
        let src = tempfile::tempdir().expect("tempdir");
        tree(src.path());
        let root = tempfile::tempdir().expect("tempdir");
        let store = ArtifactStore::new(root.path());
        let a = store.put_tar(packed(src.path()).as_slice(), 1 << 20).expect("put");
        assert!(a.new && a.files == 2 && a.digest.starts_with("sha256:"));
        let b = store.put_tar(packed(src.path()).as_slice(), 1 << 20).expect("put again");
        assert_eq!((b.digest.as_str(), b.new), (a.digest.as_str(), false), "same content, same name, stored once");
        let dir = store.verify(&a.digest).expect("verify");
        assert!(dir.join("bin/app").is_file());
        // Changing one byte changes the name; tampering with the stored copy is caught.
        fs::write(src.path().join("config.toml"), b"port = 2\n").expect("write");
        assert_ne!(store.put_tar(packed(src.path()).as_slice(), 1 << 20).expect("put").digest, a.digest);
        let victim = dir.join("config.toml");
        #[cfg(unix)]
        fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
        fs::write(&victim, b"tampered\n").expect("tamper");
        assert!(matches!(store.verify(&a.digest), Err(ArtifactError::Corrupt { .. })));
    }

    #[test]
    fn single_files_and_refusals() {
        let src = tempfile::tempdir().expect("tempdir");
        fs::write(src.path().join("app.bin"), b"binary").expect("write");
        let root = tempfile::tempdir().expect("tempdir");
        let store = ArtifactStore::new(root.path());
        let s = store.put_tar(packed(&src.path().join("app.bin")).as_slice(), 1 << 20).expect("file");
        assert_eq!(s.files, 1);
        assert!(store.verify(&s.digest).expect("ok").join("app.bin").is_file());
        assert!(matches!(store.put_tar(packed(src.path()).as_slice(), 3), Err(ArtifactError::TooLarge { .. })));
        assert!(matches!(
            store.put_tar(&b"not a tar at all, clearly"[..], 1 << 20),
            Err(ArtifactError::Tar(_)) | Err(ArtifactError::Empty)
        ));
        // A hand-made archive with `../` is refused.
        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.as_gnu_mut().expect("gnu").name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        evil.append(&h, &b"x"[..]).expect("append");
        let evil = evil.into_inner().expect("tar");
        assert!(matches!(store.put_tar(evil.as_slice(), 1 << 20), Err(ArtifactError::UnsafePath(_))));
        assert!(matches!(store.verify("md5:abc"), Err(ArtifactError::BadDigest(_))));
        assert!(matches!(store.verify(&format!("sha256:{}", "0".repeat(64))), Err(ArtifactError::NotFound(_))));
    }
}
