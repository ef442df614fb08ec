//! Finding and reading the lockfiles under a directory: an I/O edge, used by `pave scan deps`,
//! `pave sbom` and the server's scan of a release's artifact alike.

use std::path::{Path, PathBuf};

use crate::lockfile::{self, Files, Format, Package};

/// Directories never searched: installed packages and build output carry lockfiles of their
/// own that the project does not install.
const SKIP_DIRS: [&str; 7] = [".git", "node_modules", "target", "vendor", ".venv", "venv", "__pycache__"];

/// Packages with the lockfile (path relative to the root) that installs each.
pub type Installed = Vec<(Package, String)>;

/// A lockfile that cannot be read or parsed, named.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DiscoverError {
    pub path: String,
    pub message: String,
}

/// Files a lockfile refers to (a requirements file's `-r` includes, `package.json`), read
/// beside it; when `within` is set, only inside that directory (canonical paths compared), so
/// an artifact scanned on a server cannot make it read the server's own files.
struct Beside {
    dir: PathBuf,
    within: Option<PathBuf>,
}

impl Files for Beside {
    fn read(&self, relative: &str) -> Option<String> {
        let path = self.dir.join(relative);
        if let Some(root) = &self.within {
            let real = std::fs::canonicalize(&path).ok()?;
            if !real.starts_with(root) {
                return None;
            }
        }
        std::fs::read_to_string(path).ok()
    }
}

/// As [`installed`], with every file a lockfile refers to confined to `root`.
pub fn installed_within(root: &Path) -> Result<(Installed, Vec<String>), DiscoverError> {
    let canonical = std::fs::canonicalize(root)
        .map_err(|e| DiscoverError { path: root.display().to_string(), message: e.to_string() })?;
    scan(root, Some(canonical))
}

/// Every lockfile under `root` (or `root` itself when it is a lockfile), parsed, with the
/// lockfiles read (relative paths, sorted). None at all is an empty list: an artifact without
/// lockfiles installs nothing to audit.
pub fn installed(root: &Path) -> Result<(Installed, Vec<String>), DiscoverError> {
    scan(root, None)
}

fn scan(root: &Path, within: Option<PathBuf>) -> Result<(Installed, Vec<String>), DiscoverError> {
    let err = |path: &Path, message: String| DiscoverError { path: path.display().to_string(), message };
    if !root.exists() {
        return Err(err(root, "does not exist".into()));
    }
    let mut files = Vec::new();
    if root.is_file() {
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if Format::detect(&name).is_some() {
            files.push(root.to_path_buf());
        }
    } else {
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| err(&dir, e.to_string()))?;
            for e in entries {
                let e = e.map_err(|e| err(&dir, e.to_string()))?;
                let kind = e.file_type().map_err(|e| err(&dir, e.to_string()))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if kind.is_dir() && !SKIP_DIRS.contains(&name.as_str()) {
                    stack.push(e.path());
                } else if kind.is_file() && Format::detect(&name).is_some() {
                    files.push(e.path());
                }
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    let mut names = Vec::new();
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(format) = Format::detect(&name) else { continue };
        let rel = f.strip_prefix(root).ok().filter(|r| !r.as_os_str().is_empty()).unwrap_or(&f).display().to_string();
        let text = std::fs::read_to_string(&f).map_err(|e| err(&f, format!("cannot read it: {e}")))?;
        let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
        let packages = lockfile::parse(format, &name, &text, &Beside { dir, within: within.clone() })
            .map_err(|e| DiscoverError { path: rel.clone(), message: e.message })?;
        out.extend(packages.into_iter().map(|p| (p, rel.clone())));
        names.push(rel);
    }
    Ok((out, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_stay_inside_the_tree_when_confined() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("artifact");
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(base.path().join("outside.txt"), "flask==1.0.0\n").unwrap();
        std::fs::write(root.join("app/requirements.txt"), "-r ../../outside.txt\nrequests==2.31.0\n").unwrap();
        let (open, _) = installed(&root).unwrap();
        assert_eq!(open.len(), 2, "unconfined, the include outside is read (a monorepo on a laptop)");
        let err = installed_within(&root).unwrap_err().to_string();
        assert!(err.contains("app/requirements.txt") && err.contains("cannot be read"), "{err}");
        // An absolute path is refused as well.
        std::fs::write(root.join("app/requirements.txt"), "-r /etc/hostname\n").unwrap();
        assert!(installed_within(&root).is_err());
        std::fs::write(root.join("app/requirements.txt"), "-r base.txt\n").unwrap();
        std::fs::write(root.join("app/base.txt"), "requests==2.31.0\n").unwrap();
        assert_eq!(installed_within(&root).unwrap().0.len(), 1, "an include inside is read");
    }
}
