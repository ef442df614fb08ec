//! Scanning a directory tree: every regular file not pruned by a global allowlist path, read
//! whole (up to a size limit), skipped when it looks binary, scanned on every core.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::Error;
use crate::report::{Finding, Summary};
use crate::ruleset::{Ruleset, Source};

/// How a tree is scanned.
#[derive(Debug, Clone)]
pub struct Options {
    /// Larger files are skipped (and counted as skipped).
    pub max_file_bytes: u64,
    /// Threads (0: one per core).
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { max_file_bytes: 32 << 20, threads: 0 }
    }
}

/// Files never scanned at the root of a tree: rule and ignore files name secrets' shapes, not
/// secrets. Only at the root: elsewhere a file of that name is scanned like any other, so it
/// cannot hide a secret.
const OWN_FILES: [&str; 4] = [".pave-secrets.toml", ".gitleaks.toml", ".paveignore", ".gitleaksignore"];

/// Whether `head` looks like binary data (a NUL byte in the first 8 KiB, as git decides).
pub fn is_binary(head: &[u8]) -> bool {
    memchr::memchr(0, &head[..head.len().min(8192)]).is_some()
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() { path.file_name().map(Path::new).unwrap_or(path) } else { rel };
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// The files under `root` to scan, with their paths relative to it.
fn files(root: &Path, set: &Ruleset) -> Result<Vec<(PathBuf, String)>, Error> {
    let meta = std::fs::metadata(root).map_err(|source| Error::Io { path: root.display().to_string(), source })?;
    if meta.is_file() {
        return Ok(vec![(root.to_path_buf(), relative(root, root))]);
    }
    let mut out = Vec::new();
    let mut it = read_dir(root)?;
    while let Some((path, is_dir)) = it.pop() {
        let rel = relative(root, &path);
        if is_dir {
            if path.file_name().is_some_and(|n| n == ".git") || set.path_allowed(&format!("{rel}/")) {
                continue;
            }
            it.extend(read_dir(&path)?);
        } else if !OWN_FILES.contains(&rel.as_str()) && !set.path_allowed(&rel) {
            out.push((path, rel));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Entries of a directory; symbolic links are not followed.
fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, bool)>, Error> {
    let io = |source| Error::Io { path: dir.display().to_string(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() || kind.is_file() {
            out.push((entry.path(), kind.is_dir()));
        }
    }
    Ok(out)
}

/// Scans every file under `root` (or `root` itself when it is a file).
pub fn scan_tree(root: &Path, set: &Ruleset, opts: &Options) -> Result<(Vec<Finding>, Summary), Error> {
    let started = Instant::now();
    let files = files(root, set)?;
    let threads =
        if opts.threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { opts.threads };
    let next = AtomicUsize::new(0);
    let (bytes, scanned, skipped) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let findings = Mutex::new(Vec::new());
    let failure = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.min(files.len().max(1)) {
            s.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, rel)) = files.get(i) else { break };
                    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                    if len > opts.max_file_bytes {
                        skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let data = match std::fs::read(path) {
                        Ok(d) => d,
                        Err(source) => {
                            pave_sync::lock(&failure).get_or_insert(Error::Io { path: rel.clone(), source });
                            break;
                        }
                    };
                    if is_binary(&data) {
                        skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    scanned.fetch_add(1, Ordering::Relaxed);
                    mine.extend(set.scan(&data, &Source { path: rel, commit: None }));
                }
                pave_sync::lock(&findings).extend(mine);
            });
        }
    });
    if let Some(e) = pave_sync::into_inner(failure) {
        return Err(e);
    }
    let mut findings = pave_sync::into_inner(findings);
    findings.sort_by(|a, b| (&a.file, a.start_line, a.start_column).cmp(&(&b.file, b.start_line, b.start_column)));
    let summary = Summary {
        files: scanned.into_inner(),
        bytes: bytes.into_inner(),
        commits: None,
        skipped: skipped.into_inner(),
        accepted: 0,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((findings, summary))
}
