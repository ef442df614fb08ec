//! Replica logs: stdout and stderr go straight to a file the child holds open in append mode,
//! so logging survives a control-plane restart (a pipe to a dead parent would not). Files are
//! rotated by copy-and-truncate, which is safe with `O_APPEND` writers: the child's next
//! write lands at the new end of the emptied file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where a replica's log lives: `<logs>/<service>/<env>/<version>/r<N>.log`.
pub fn path(logs_dir: &Path, service: &str, env: &str, version: &str, replica: u32) -> PathBuf {
    logs_dir.join(service).join(env).join(version).join(format!("r{replica}.log"))
}

/// Opens (creating) a log file for appending. Logs may hold what a replica printed of its
/// secrets, so files are 0600 and directories 0700, whatever the umask; a file made by an
/// earlier version with wider permissions is narrowed.
pub fn open(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Rotates `path` when it is larger than `max_bytes`: `.1` … `.keep` hold older content.
/// Returns whether it rotated.
pub fn rotate(path: &Path, max_bytes: u64, keep: u32) -> io::Result<bool> {
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if size <= max_bytes || keep == 0 {
        return Ok(false);
    }
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
    for n in (1..keep).rev() {
        let from = numbered(n);
        if from.exists() {
            std::fs::rename(&from, numbered(n + 1))?;
        }
    }
    std::fs::copy(path, numbered(1))?; // copy keeps the source's 0600
    OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

/// The last `lines` lines of a file (reads at most the last 1 MiB).
pub fn tail(path: &Path, lines: usize) -> io::Result<String> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(1 << 20);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    let mut out = all[from..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

/// Reads what was appended to `path` since `offset`; returns the text and the new offset
/// (which restarts at 0 when the file was rotated under the reader).
pub fn read_from(path: &Path, offset: u64) -> io::Result<(String, u64)> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((String::new(), 0)),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let from = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.by_ref().take(4 << 20).read_to_end(&mut buf)?;
    // Hand out whole lines only; a partial last line waits for the next read.
    let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(whole);
    Ok((String::from_utf8_lossy(&buf).into_owned(), from + whole as u64))
}

/// The log files of a service in an environment, every version and replica, sorted.
pub fn files(logs_dir: &Path, service: &str, env: &str) -> io::Result<Vec<PathBuf>> {
    let dir = logs_dir.join(service).join(env);
    let mut out = Vec::new();
    let versions = match std::fs::read_dir(&dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for v in versions {
        let v = v?.path();
        if !v.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&v)? {
            let f = f?.path();
            if f.extension().is_some_and(|x| x == "log") {
                out.push(f);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rotation_keeps_appending_writers_working() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/r0.log");
        let mut w = open(&p).unwrap();
        w.write_all(&[b'x'; 100]).unwrap();
        assert!(!rotate(&p, 200, 3).unwrap());
        w.write_all(&[b'y'; 150]).unwrap();
        assert!(rotate(&p, 200, 3).unwrap());
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
        assert_eq!(std::fs::read(format!("{}.1", p.display())).unwrap().len(), 250);
        w.write_all(b"after\n").unwrap();
        // O_APPEND: the write lands at the start of the emptied file, no hole before it.
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "after\n");
        w.write_all(&[b'z'; 300]).unwrap();
        assert!(rotate(&p, 200, 3).unwrap());
        assert!(PathBuf::from(format!("{}.2", p.display())).exists());
    }

    #[test]
    fn tail_and_incremental_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r0.log");
        let mut w = open(&p).unwrap();
        w.write_all(b"one\ntwo\nthree\npart").unwrap();
        assert_eq!(tail(&p, 2).unwrap(), "three\npart\n");
        let (text, off) = read_from(&p, 0).unwrap();
        assert_eq!(text, "one\ntwo\nthree\n");
        w.write_all(b"ial\n").unwrap();
        let (text, off2) = read_from(&p, off).unwrap();
        assert_eq!(text, "partial\n");
        assert!(off2 > off);
        assert_eq!(files(dir.path(), "x", "y").unwrap(), Vec::<PathBuf>::new());
    }
}
