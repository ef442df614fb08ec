//! Content-addressed storage of release artifacts. An artifact (a file or a directory tree)
//! arrives as a tar stream, is unpacked beside the store, named by the SHA-256 of its
//! canonical content, and moved into place — or dropped if that content is already stored.
//! Deployments run from the stored copy, never from a path that can change under them, and
//! [`ArtifactStore::verify`] re-hashes it before use.
//!
//! The digest covers, for every regular file in path order, its path, whether it is
//! executable, and its bytes; timestamps, owners and tar details do not count, so the same
//! content always gets the same name.
//!
//! An upload is unpacked as it arrives into `tmp/upload-*.d`, beside a lock file the
//! uploading process holds ([`ArtifactStore::stage_tar`]); it enters the store only when
//! [`ArtifactStore::commit`] moves it there, and dropping a [`Staged`] removes it. A process
//! that dies mid-upload releases its lock, so [`ArtifactStore::sweep`] at the next start
//! removes what it left, without touching uploads other processes sharing the store are making.

use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Entries (files and directories) one upload may hold unless the caller says otherwise:
/// far above what real trees have (a large `node_modules` has ~100 000 files), far below what
/// exhausts a file system's inodes.
pub const DEFAULT_MAX_ENTRIES: u64 = 250_000;
/// Longest accepted entry path, in bytes: with the store's own prefix it stays well inside
/// the 4 096 bytes the kernel takes in one path.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest accepted name of one path component, in bytes (what file systems store).
pub const MAX_NAME_BYTES: usize = 255;
/// Deepest accepted entry, in directories.
pub const MAX_DEPTH: usize = 128;
/// Largest accepted tar extension header (a GNU long name, a pax header), in bytes: they are
/// read into memory, and real ones carry a path and a few numbers.
pub const MAX_EXTENSION_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact entry {0:?} escapes the artifact (absolute or with `..`)")]
    UnsafePath(String),
    #[error("artifact entry {path:?} is a {kind}; only files and directories are accepted")]
    UnsupportedEntry { path: String, kind: String },
    /// An entry that cannot be unpacked as named: a bad name, or one that clashes with an
    /// earlier entry.
    #[error("artifact entry {path:?} {reason}")]
    BadEntry { path: String, reason: String },
    #[error("artifact is empty: it has no files")]
    Empty,
    #[error("artifact is over the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("artifact has more than {limit} entries, the most one upload may hold")]
    TooManyEntries { limit: u64 },
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

fn tar_error(e: std::io::Error) -> ArtifactError {
    ArtifactError::Tar(e.to_string())
}

/// What one upload may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of file content.
    pub max_bytes: u64,
    /// Entries, files and directories.
    pub max_entries: u64,
}

impl Limits {
    /// At most `max_bytes` of content in at most [`DEFAULT_MAX_ENTRIES`] entries.
    pub fn bytes(max_bytes: u64) -> Self {
        Limits { max_bytes, max_entries: DEFAULT_MAX_ENTRIES }
    }
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

/// An upload unpacked and hashed under `tmp/`, not yet in the store. Dropping it removes it.
#[derive(Debug)]
pub struct Staged {
    /// `sha256:<hex>`.
    pub digest: String,
    pub files: u64,
    pub bytes: u64,
    dir: PathBuf,
    lock_path: PathBuf,
    /// Held while the upload lives, so a sweep by another process leaves it alone.
    _lock: fs::File,
}

impl Drop for Staged {
    fn drop(&mut self) {
        remove_tree(&self.dir);
        remove_tree(&self.lock_path);
    }
}

/// Removes a directory tree, or a file, if it is there (and says whether it was); what cannot
/// be removed now a later sweep retries.
fn remove_tree(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).is_ok(),
        Ok(_) => fs::remove_file(path).is_ok(),
        Err(_) => false,
    }
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

/// Writes `path` (a file or a directory) as a tar stream, for upload. Files with holes are
/// written whole as plain entries: the store accepts nothing but files and directories.
pub fn pack(path: &Path, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.sparse(false);
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

/// An entry's path as errors show it: lossy, and cut short when long.
fn shown(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], raw.len()),
        None => text.into_owned(),
    }
}

/// The relative path an entry names, or why it cannot be unpacked as named.
fn entry_path(raw: &[u8]) -> Result<PathBuf> {
    let bad = |reason: String| ArtifactError::BadEntry { path: shown(raw), reason };
    let text = std::str::from_utf8(raw).map_err(|_| bad("has a name that is not UTF-8".into()))?;
    if text.contains('\0') {
        return Err(bad("has a NUL byte in its name".into()));
    }
    if text.len() > MAX_PATH_BYTES {
        return Err(bad(format!("has a path longer than {MAX_PATH_BYTES} bytes")));
    }
    let mut rel = PathBuf::new();
    let mut depth = 0;
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => {
                if p.len() > MAX_NAME_BYTES {
                    return Err(bad(format!("has a name longer than {MAX_NAME_BYTES} bytes")));
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(bad(format!("is deeper than {MAX_DEPTH} directories")));
                }
                rel.push(p);
            }
            Component::CurDir => {}
            _ => return Err(ArtifactError::UnsafePath(shown(raw))),
        }
    }
    Ok(rel)
}

/// Unpacks a tar stream under `root`, refusing what [`ArtifactStore::stage_tar`] refuses.
/// The file system itself tells what earlier entries made, so a clash is found without
/// keeping every path in memory.
///
/// Extension headers (GNU long names, pax headers) are read here rather than by the `tar`
/// crate, which would read any size of them into memory.
fn unpack(reader: impl Read, root: &Path, limits: Limits) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    let (mut total, mut count) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    // The parent directory the last entry was put in: once checked, it stays a directory.
    let mut last_parent: Option<PathBuf> = None;
    // What extension headers said about the next entry.
    let (mut long_name, mut pax_path, mut pax_size): (Option<Vec<u8>>, Option<Vec<u8>>, Option<u64>) =
        (None, None, None);
    for entry in archive.entries().map_err(tar_error)?.raw(true) {
        let mut entry = entry.map_err(tar_error)?;
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions()
        {
            let size = entry.size();
            if size > MAX_EXTENSION_BYTES {
                return Err(ArtifactError::Tar(format!(
                    "an extension header of {size} bytes is over the {MAX_EXTENSION_BYTES}-byte limit"
                )));
            }
            let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            entry.read_to_end(&mut data).map_err(tar_error)?;
            if kind.is_gnu_longname() {
                if data.last() == Some(&0) {
                    data.pop();
                }
                long_name = Some(data);
            } else if kind.is_pax_local_extensions() {
                for ext in tar::PaxExtensions::new(&data) {
                    let ext = ext.map_err(tar_error)?;
                    match ext.key_bytes() {
                        b"path" => pax_path = Some(ext.value_bytes().to_vec()),
                        b"size" => {
                            let size = ext.value().ok().and_then(|v| v.trim().parse::<u64>().ok());
                            pax_size =
                                Some(size.ok_or_else(|| ArtifactError::Tar("a pax size that is not a number".into()))?);
                        }
                        _ => {}
                    }
                }
            }
            // A long link name belongs to a link, refused below; a global header describes the
            // archive (`git archive` writes the commit there), not a file.
            continue;
        }
        let raw = match (long_name.take(), pax_path.take()) {
            (Some(name), _) | (None, Some(name)) => name,
            (None, None) => entry.header().path_bytes().into_owned(),
        };
        // The stream is framed by the header's size; one that disagrees with it cannot be read.
        if pax_size.take().is_some_and(|s| s != entry.size()) {
            return Err(ArtifactError::BadEntry {
                path: shown(&raw),
                reason: "has a pax size other than its header's; sizes over 8 GiB are not accepted".into(),
            });
        }
        count += 1;
        if count > limits.max_entries {
            return Err(ArtifactError::TooManyEntries { limit: limits.max_entries });
        }
        let rel = entry_path(&raw)?;
        let clash = |reason: &str| ArtifactError::BadEntry { path: shown(&raw), reason: reason.to_owned() };
        if !kind.is_dir() && !kind.is_file() {
            return Err(ArtifactError::UnsupportedEntry { path: shown(&raw), kind: kind_name(kind) });
        }
        if rel.as_os_str().is_empty() {
            if kind.is_dir() {
                continue;
            }
            return Err(ArtifactError::UnsafePath(shown(&raw)));
        }
        let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        if last_parent.as_ref() != Some(&parent) {
            make_parents(root, &parent, &raw)?;
            last_parent = Some(parent);
        }
        let dest = root.join(&rel);
        let existing = match fs::symlink_metadata(&dest) {
            Ok(m) => Some(m.is_dir()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(ArtifactError::Io { path: dest.display().to_string(), source: e }),
        };
        if kind.is_dir() {
            match existing {
                Some(true) => {}
                Some(false) => return Err(clash("is a directory, but an earlier entry of that name is a file")),
                None => fs::create_dir(&dest).map_err(io(&dest))?,
            }
            continue;
        }
        match existing {
            Some(true) => return Err(clash("is a file, but an earlier entry of that name is a directory")),
            Some(false) => return Err(clash("appears twice in the archive")),
            None => {}
        }
        if total.saturating_add(entry.header().size().unwrap_or(0)) > limits.max_bytes {
            return Err(ArtifactError::TooLarge { limit: limits.max_bytes });
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&dest).map_err(io(&dest))?;
        loop {
            // A read error is the stream's (a cut-off upload, a bad archive); a write error is ours.
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(tar_error(e)),
            };
            total += n as u64;
            if total > limits.max_bytes {
                return Err(ArtifactError::TooLarge { limit: limits.max_bytes });
            }
            f.write_all(&buf[..n]).map_err(io(&dest))?;
        }
        #[cfg(unix)]
        {
            let perm = if mode & 0o111 != 0 { 0o555 } else { 0o444 };
            fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(perm)).map_err(io(&dest))?;
        }
    }
    Ok(())
}

/// What an entry type is, in words.
fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "symbolic link".into(),
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "named pipe".into(),
        tar::EntryType::GNUSparse => "GNU sparse file (pack files whole: `tar` without `--sparse`)".into(),
        other => format!("{other:?} entry").to_lowercase(),
    }
}

/// Makes the directories of `rel` under `root`, refusing an entry whose ancestor an earlier
/// entry made a file.
fn make_parents(root: &Path, rel: &Path, raw: &[u8]) -> Result<()> {
    let mut at = root.to_path_buf();
    for (i, c) in rel.components().enumerate() {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                let file: PathBuf = rel.components().take(i + 1).collect();
                return Err(ArtifactError::BadEntry {
                    path: shown(raw),
                    reason: format!("lies under {:?}, which an earlier entry made a file", file.display().to_string()),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir(&at).map_err(io(&at))?,
            Err(e) => return Err(ArtifactError::Io { path: at.display().to_string(), source: e }),
        }
    }
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

    fn tmp_root(&self) -> Result<PathBuf> {
        let tmp = self.root.join("tmp");
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        Ok(tmp)
    }

    /// A fresh, locked staging place: `tmp/upload-X.lock` (held) and `tmp/upload-X.d`.
    fn begin(&self) -> Result<Staged> {
        let tmp = self.tmp_root()?;
        loop {
            let file =
                tempfile::Builder::new().prefix("upload-").suffix(".lock").tempfile_in(&tmp).map_err(io(&tmp))?;
            let (lock, lock_path) =
                file.keep().map_err(|e| ArtifactError::Io { path: tmp.display().to_string(), source: e.error })?;
            // A sweep by another process may find the file before it is locked, and remove it:
            // then take another.
            match lock.try_lock() {
                Ok(()) if lock_path.exists() => {}
                Ok(()) | Err(fs::TryLockError::WouldBlock) => continue,
                Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
            }
            let dir = lock_path.with_extension("d");
            let staged = Staged { digest: String::new(), files: 0, bytes: 0, dir, lock_path, _lock: lock };
            fs::create_dir(&staged.dir).map_err(io(&staged.dir))?;
            return Ok(staged);
        }
    }

    /// Unpacks a tar stream beside the store and hashes it, refusing paths that escape it,
    /// links and devices, names that cannot be unpacked as given (not UTF-8, too long, too
    /// deep) or that clash with an earlier entry (a file and a directory of one name, a file
    /// under a file, the same file twice), more than `limits.max_entries` entries, and more
    /// than `limits.max_bytes` bytes of content. On error nothing stays on disk.
    pub fn stage_tar(&self, reader: impl Read, limits: Limits) -> Result<Staged> {
        let mut staged = self.begin()?;
        unpack(reader, &staged.dir, limits)?;
        let (digest, files, bytes) = digest_dir(&staged.dir)?;
        if files == 0 {
            return Err(ArtifactError::Empty);
        }
        (staged.digest, staged.files, staged.bytes) = (digest, files, bytes);
        Ok(staged)
    }

    /// Moves a staged upload into the store under its digest, or drops it when that content
    /// is already there.
    pub fn commit(&self, staged: Staged) -> Result<Stored> {
        let dest = self.path_of(&staged.digest)?;
        let stored = |new| Stored { digest: staged.digest.clone(), files: staged.files, bytes: staged.bytes, new };
        if dest.exists() {
            return Ok(stored(false));
        }
        let parent = dest.parent().expect("digest paths have a parent");
        fs::create_dir_all(parent).map_err(io(parent))?;
        // Another upload of the same content may have won the race: then this copy goes.
        match fs::rename(&staged.dir, &dest) {
            Ok(()) => Ok(stored(true)),
            Err(_) if dest.exists() => Ok(stored(false)),
            Err(e) => Err(ArtifactError::Io { path: dest.display().to_string(), source: e }),
        }
    }

    /// [`Self::stage_tar`], then [`Self::commit`].
    pub fn put_tar(&self, reader: impl Read, limits: Limits) -> Result<Stored> {
        let staged = self.stage_tar(reader, limits)?;
        self.commit(staged)
    }

    /// Takes an artifact out of the store: one that was stored for a release the store then
    /// refused. It is moved aside first, so its digest never names a half-removed tree.
    pub fn remove(&self, digest: &str) -> Result<()> {
        let path = self.path_of(digest)?;
        if !path.exists() {
            return Ok(());
        }
        let tmp = self.tmp_root()?;
        let aside = tempfile::Builder::new().prefix("removed-").tempdir_in(&tmp).map_err(io(&tmp))?.keep();
        if let Err(e) = fs::rename(&path, &aside) {
            remove_tree(&aside);
            return Err(ArtifactError::Io { path: path.display().to_string(), source: e });
        }
        remove_tree(&aside);
        Ok(())
    }

    /// Removes what interrupted uploads left under `tmp/`: staging directories whose lock no
    /// live process holds, and anything else there without a lock. Returns how many it removed.
    pub fn sweep(&self) -> Result<usize> {
        let tmp = self.root.join("tmp");
        let entries = match fs::read_dir(&tmp) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(ArtifactError::Io { path: tmp.display().to_string(), source: e }),
        };
        let mut removed = 0;
        for entry in entries {
            let path = entry.map_err(io(&tmp))?.path();
            if path.extension().is_some_and(|e| e == "lock") {
                let Ok(lock) = fs::OpenOptions::new().read(true).write(true).open(&path) else { continue };
                if lock.try_lock().is_ok() {
                    remove_tree(&path.with_extension("d"));
                    let _ = fs::remove_file(&path);
                    removed += 1;
                }
            } else if !path.with_extension("lock").exists() && remove_tree(&path) {
                removed += 1;
            }
        }
        Ok(removed)
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
        let a = store.put_tar(packed(src.path()).as_slice(), Limits::bytes(1 << 20)).expect("put");
        assert!(a.new && a.files == 2 && a.digest.starts_with("sha256:"));
        let b = store.put_tar(packed(src.path()).as_slice(), Limits::bytes(1 << 20)).expect("put again");
        assert_eq!((b.digest.as_str(), b.new), (a.digest.as_str(), false), "same content, same name, stored once");
        let dir = store.verify(&a.digest).expect("verify");
        assert!(dir.join("bin/app").is_file());
        // Changing one byte changes the name; tampering with the stored copy is caught.
        fs::write(src.path().join("config.toml"), b"port = 2\n").expect("write");
        assert_ne!(store.put_tar(packed(src.path()).as_slice(), Limits::bytes(1 << 20)).expect("put").digest, a.digest);
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
        let s = store.put_tar(packed(&src.path().join("app.bin")).as_slice(), Limits::bytes(1 << 20)).expect("file");
        assert_eq!(s.files, 1);
        assert!(store.verify(&s.digest).expect("ok").join("app.bin").is_file());
        assert!(matches!(
            store.put_tar(packed(src.path()).as_slice(), Limits::bytes(3)),
            Err(ArtifactError::TooLarge { .. })
        ));
        assert_eq!(leftovers(root.path()), Vec::<String>::new(), "nothing of a refused upload stays");
        assert!(matches!(
            store.put_tar(&b"not a tar at all, clearly"[..], Limits::bytes(1 << 20)),
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
        assert!(matches!(store.put_tar(evil.as_slice(), Limits::bytes(1 << 20)), Err(ArtifactError::UnsafePath(_))));
        assert_eq!(leftovers(root.path()), Vec::<String>::new(), "nothing of a refused upload stays");
        assert!(matches!(store.verify("md5:abc"), Err(ArtifactError::BadDigest(_))));
        assert!(matches!(store.verify(&format!("sha256:{}", "0".repeat(64))), Err(ArtifactError::NotFound(_))));
    }

    /// An entry to write: path, whether it is a directory, content.
    type Entry<'a> = (&'a [u8], bool, &'a [u8]);

    /// A tar stream of `(path, is_dir, content)` entries, written as given (GNU long names
    /// for long paths), so tests can make archives `pack` never would.
    fn archive(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, dir, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(if *dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            #[cfg(unix)]
            let path = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path);
            #[cfg(not(unix))]
            let path = std::str::from_utf8(path).expect("utf-8 on this platform");
            b.append_data(&mut h, path, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn leftovers(root: &Path) -> Vec<String> {
        let Ok(dir) = fs::read_dir(root.join("tmp")) else { return Vec::new() };
        dir.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn entries_that_cannot_be_unpacked_as_named_are_refused_naming_them() {
        let deep = "d/".repeat(3000) + "f";
        let long_name = "n".repeat(300);
        let long_path = "q/".to_owned() + &"p/".repeat(MAX_DEPTH - 1) + "f";
        let not_deep = "x".repeat(200) + "/" + &"y".repeat(200) + "/" + &"z".repeat(200);
        let cases: Vec<(&str, Vec<Entry<'_>>, &str, &str)> = vec![
            (
                "file then dir",
                vec![(b"a", false, b"x"), (b"a", true, b"")],
                "\"a\"",
                "earlier entry of that name is a file",
            ),
            (
                "dir then file",
                vec![(b"a", true, b""), (b"a", false, b"x")],
                "\"a\"",
                "earlier entry of that name is a directory",
            ),
            ("file under a file", vec![(b"a", false, b"x"), (b"a/b", false, b"y")], "\"a/b\"", "lies under \"a\""),
            (
                "file deep under a file",
                vec![(b"a", false, b"x"), (b"a/b/c", false, b"y")],
                "\"a/b/c\"",
                "lies under \"a\"",
            ),
            ("same file twice", vec![(b"a", false, b"x"), (b"./a", false, b"y")], "\"a\"", "appears twice"),
            ("not UTF-8", vec![(b"bin/caf\xe9", false, b"x")], "bin/caf", "not UTF-8"),
            ("long name", vec![(long_name.as_bytes(), false, b"x")], "nnnn", "longer than 255 bytes"),
            ("deep", vec![(deep.as_bytes(), false, b"x")], "d/d/d/", "longer than 1024 bytes"),
            ("too many levels", vec![(long_path.as_bytes(), false, b"x")], "q/p/p/", "deeper than 128"),
        ];
        let root = tempfile::tempdir().expect("tempdir");
        let store = ArtifactStore::new(root.path());
        for (what, entries, path, reason) in cases {
            let tar = archive(&entries);
            match store.put_tar(tar.as_slice(), Limits::bytes(1 << 20)) {
                Err(e @ ArtifactError::BadEntry { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(path) && text.contains(reason), "{what}: {text}");
                    assert!(text.len() < 400, "{what}: a long path is cut short in the message: {text}");
                }
                other => panic!("{what}: {other:?}"),
            }
            assert_eq!(leftovers(root.path()), Vec::<String>::new(), "{what}: nothing of a refused upload stays");
        }
        assert!(!root.path().join("sha256").exists(), "nothing refused reached the store");
        // Long names and paths within the limits, and a directory given twice, are fine.
        let ok = archive(&[
            (not_deep.as_bytes(), false, b"x"),
            (b"d", true, b""),
            (b"d/", true, b""),
            (b"d/f", false, b"y"),
        ]);
        assert_eq!(store.put_tar(ok.as_slice(), Limits::bytes(1 << 20)).expect("accepted").files, 2);
    }

    #[test]
    fn entry_count_is_limited() {
        let names: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
        let entries: Vec<Entry<'_>> = names.iter().map(|n| (n.as_bytes(), false, &b"x"[..])).collect();
        let tar = archive(&entries);
        let root = tempfile::tempdir().expect("tempdir");
        let store = ArtifactStore::new(root.path());
        let err =
            store.put_tar(tar.as_slice(), Limits { max_bytes: 1 << 20, max_entries: 4 }).expect_err("five entries");
        assert!(matches!(err, ArtifactError::TooManyEntries { limit: 4 }), "{err:?}");
        assert!(err.to_string().contains("more than 4 entries"), "{err}");
        assert_eq!(leftovers(root.path()), Vec::<String>::new());
        assert_eq!(
            store.put_tar(tar.as_slice(), Limits { max_bytes: 1 << 20, max_entries: 5 }).expect("five").files,
            5
        );
    }

    #[test]
    fn files_with_holes_are_packed_as_plain_entries() {
        let src = tempfile::tempdir().expect("tempdir");
        let path = src.path().join("holey");
        {
            let mut f = fs::File::create(&path).expect("create");
            f.write_all(b"head").expect("write");
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(3 << 20)).expect("seek past the end");
            f.write_all(b"tail").expect("write");
        }
        let tar = packed(&path);
        let mut archive = tar::Archive::new(tar.as_slice());
        for entry in archive.entries().expect("entries") {
            let kind = entry.expect("entry").header().entry_type();
            assert_eq!(kind, tar::EntryType::Regular, "packed as {kind:?}");
        }
        let root = tempfile::tempdir().expect("tempdir");
        let store = ArtifactStore::new(root.path());
        let stored = store.put_tar(tar.as_slice(), Limits::bytes(16 << 20)).expect("a sparse file is stored");
        let dir = store.verify(&stored.digest).expect("verify");
        assert_eq!(fs::read(dir.join("holey")).expect("read"), fs::read(&path).expect("read"));
        // What older clients sent is refused saying how to pack it instead.
        let mut b = tar::Builder::new(Vec::new());
        b.sparse(true);
        b.append_path_with_name(&path, "holey").expect("append sparse");
        let err = store.put_tar(b.into_inner().expect("tar").as_slice(), Limits::bytes(16 << 20)).expect_err("sparse");
        assert!(err.to_string().contains("\"holey\" is a GNU sparse file (pack files whole"), "{err}");
    }

    #[test]
    fn only_a_successful_commit_leaves_anything_and_sweeps_spare_live_uploads() {
        let src = tempfile::tempdir().expect("tempdir");
        tree(src.path());
        let root = tempfile::tempdir().expect("tempdir");
        let store = ArtifactStore::new(root.path());
        // Staged but dropped (a refused release): gone.
        let staged = store.stage_tar(packed(src.path()).as_slice(), Limits::bytes(1 << 20)).expect("stage");
        assert_eq!(leftovers(root.path()).len(), 2, "a lock and a directory while it lives");
        drop(staged);
        assert_eq!(leftovers(root.path()), Vec::<String>::new());
        // A stream cut off mid-file: gone.
        let tar = packed(src.path());
        assert!(matches!(
            store.put_tar(&tar[..tar.len() / 2 + 100], Limits::bytes(1 << 20)),
            Err(ArtifactError::Tar(_))
        ));
        assert_eq!(leftovers(root.path()), Vec::<String>::new());
        // Stored, then taken out again.
        let stored = store.put_tar(tar.as_slice(), Limits::bytes(1 << 20)).expect("put");
        store.remove(&stored.digest).expect("remove");
        assert!(matches!(store.verify(&stored.digest), Err(ArtifactError::NotFound(_))));
        assert_eq!(leftovers(root.path()), Vec::<String>::new());

        // What a killed process leaves: a lock nobody holds beside its directory, and a
        // staging directory of the earlier layout. A live upload is left alone.
        let tmp = root.path().join("tmp");
        fs::write(tmp.join("upload-dead.lock"), b"").expect("lock");
        fs::create_dir_all(tmp.join("upload-dead.d/bin")).expect("mkdir");
        fs::write(tmp.join("upload-dead.d/bin/app"), b"half").expect("write");
        #[cfg(unix)]
        fs::set_permissions(tmp.join("upload-dead.d/bin/app"), std::os::unix::fs::PermissionsExt::from_mode(0o444))
            .expect("chmod");
        fs::create_dir_all(tmp.join("upload-Ab12Cd")).expect("mkdir");
        let live = store.stage_tar(tar.as_slice(), Limits::bytes(1 << 20)).expect("stage");
        assert_eq!(store.sweep().expect("sweep"), 2);
        let mut left = leftovers(root.path());
        left.sort();
        assert_eq!(left.len(), 2, "only the live upload stays: {left:?}");
        assert!(left.iter().all(|n| n.starts_with("upload-") && !n.contains("dead")), "{left:?}");
        let stored = store.commit(live).expect("the live upload commits after the sweep");
        assert!(stored.new);
        assert_eq!(leftovers(root.path()), Vec::<String>::new());
        assert!(store.verify(&stored.digest).is_ok());
    }

    #[test]
    fn extension_headers_name_entries_and_are_bounded() {
        let long = "dir/".repeat(40) + "file";
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("comment", &b"made by hand"[..])]).expect("pax");
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XGlobalHeader);
        h.set_size(0);
        b.append_data(&mut h, "pax_global_header", &b""[..]).expect("global");
        b.append_pax_extensions([("path", long.as_bytes()), ("size", &b"2"[..])]).expect("pax");
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "short", &b"hi"[..]).expect("file");
        let good = b.into_inner().expect("tar");
        let root = tempfile::tempdir().expect("tempdir");
        let store = ArtifactStore::new(root.path());
        let stored = store.put_tar(good.as_slice(), Limits::bytes(1 << 20)).expect("a pax path names the entry");
        assert_eq!(stored.files, 1, "the global header is not a file");
        assert_eq!(fs::read(store.verify(&stored.digest).expect("verify").join(&long)).expect("read"), b"hi");

        let pax_then = |exts: &[(&str, &[u8])]| {
            let mut b = tar::Builder::new(Vec::new());
            b.append_pax_extensions(exts.iter().copied()).expect("pax");
            let mut h = tar::Header::new_ustar();
            h.set_size(2);
            h.set_mode(0o644);
            b.append_data(&mut h, "short", &b"hi"[..]).expect("file");
            b.into_inner().expect("tar")
        };
        let huge = vec![b'x'; MAX_EXTENSION_BYTES as usize + 1];
        let err = store.put_tar(pax_then(&[("comment", &huge)]).as_slice(), Limits::bytes(1 << 20)).expect_err("huge");
        assert!(err.to_string().contains("over the 65536-byte limit"), "{err}");
        let err = store.put_tar(pax_then(&[("size", b"3")]).as_slice(), Limits::bytes(1 << 20)).expect_err("size");
        assert!(err.to_string().contains("\"short\" has a pax size other than"), "{err}");
        let err =
            store.put_tar(pax_then(&[("path", b"bin/caf\xe9")]).as_slice(), Limits::bytes(1 << 20)).expect_err("name");
        assert!(err.to_string().contains("bin/caf") && err.to_string().contains("not UTF-8"), "{err}");
        let err = store.put_tar(pax_then(&[("path", b"../up")]).as_slice(), Limits::bytes(1 << 20)).expect_err("up");
        assert!(matches!(err, ArtifactError::UnsafePath(ref p) if p == "../up"), "{err}");
        assert_eq!(leftovers(root.path()), Vec::<String>::new());
    }
}
