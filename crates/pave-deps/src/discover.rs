//! Finding and reading the lockfiles under a directory: an I/O edge, used by `pave scan deps`,
//! `pave sbom` and the server's scan of a release's artifact alike.

use std::path::{Path, PathBuf};

use crate::lockfile::{self, Files, Format, MAX_LOCKFILE_BYTES, Package};

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

/// Reads at most one byte over [`MAX_LOCKFILE_BYTES`], so a huge file costs no more; past
/// the limit the lockfile is reported unreadable.
fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_LOCKFILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_LOCKFILE_BYTES {
        return Err(format!("larger than the {} MiB limit for a lockfile", MAX_LOCKFILE_BYTES >> 20));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
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
        if !path.is_file() {
            return None; // a device or a FIFO would never end
        }
        read_capped(&path).ok()
    }
}

/// What the lockfiles under a directory install.
#[derive(Debug, Default)]
pub struct Discovered {
    pub installed: Installed,
    /// The lockfiles read (relative paths, sorted), unreadable ones included.
    pub lockfiles: Vec<String>,
    /// Lockfiles that could not be read or parsed, each with the problem: the others are
    /// still scanned, and whoever reads the result learns the audit is incomplete.
    pub unreadable: Vec<DiscoverError>,
}

/// As [`installed`], with every file a lockfile refers to confined to `root`.
pub fn installed_within(root: &Path) -> Result<Discovered, DiscoverError> {
    let canonical = std::fs::canonicalize(root)
        .map_err(|e| DiscoverError { path: root.display().to_string(), message: e.to_string() })?;
    scan(root, Some(canonical))
}

/// Every lockfile under `root` (or `root` itself when it is a lockfile), parsed. None at all
/// is an empty list: an artifact without lockfiles installs nothing to audit. A lockfile that
/// cannot be read or parsed (hostile, truncated, too large or too deep) is listed in
/// [`Discovered::unreadable`]; only a root that cannot be walked is an error.
pub fn installed(root: &Path) -> Result<Discovered, DiscoverError> {
    scan(root, None)
}

fn scan(root: &Path, within: Option<PathBuf>) -> Result<Discovered, DiscoverError> {
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
    let mut out = Discovered::default();
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(format) = Format::detect(&name) else { continue };
        let rel = f.strip_prefix(root).ok().filter(|r| !r.as_os_str().is_empty()).unwrap_or(&f).display().to_string();
        let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
        let parsed = read_capped(&f).and_then(|text| {
            lockfile::parse(format, &name, &text, &Beside { dir, within: within.clone() }).map_err(|e| {
                // The parser names the file (`name`, `name:line`, or an include): say where.
                match e.file.strip_prefix(name.as_str()).and_then(|r| r.strip_prefix(':')) {
                    Some(line) => format!("line {line}: {}", e.message),
                    None if e.file == name => e.message,
                    None => format!("in {}: {}", e.file, e.message),
                }
            })
        });
        match parsed {
            Ok(packages) => out.installed.extend(packages.into_iter().map(|p| (p, rel.clone()))),
            Err(message) => out.unreadable.push(DiscoverError { path: rel.clone(), message: brief(&message) }),
        }
        out.lockfiles.push(rel);
    }
    Ok(out)
}

/// The most of a parser's message kept: a hostile file's error must not carry the file
/// itself into reports and the database (toml quotes the offending line, however long).
const MAX_PROBLEM_CHARS: usize = 300;

/// A parser's message on one line: a multi-line one (toml's, with the quoted line and a caret)
/// becomes its first and last lines, and anything past [`MAX_PROBLEM_CHARS`] is cut.
fn brief(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let joined = match lines.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [first, .., last] => format!("{first}: {last}"),
    };
    match joined.char_indices().nth(MAX_PROBLEM_CHARS) {
        Some((at, _)) => format!("{}…", &joined[..at]),
        None => joined,
    }
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
        let open = installed(&root).unwrap();
        assert_eq!(open.installed.len(), 2, "unconfined, the include outside is read (a monorepo on a laptop)");
        let confined = installed_within(&root).unwrap();
        let [e] = &confined.unreadable[..] else { panic!("{:?}", confined.unreadable) };
        assert!(
            e.to_string().starts_with("app/requirements.txt: line 1: includes") && e.message.contains("cannot be read"),
            "{e}"
        );
        assert_eq!(confined.lockfiles, ["app/requirements.txt"]);
        // An absolute path is refused as well.
        std::fs::write(root.join("app/requirements.txt"), "-r /etc/passwd\n").unwrap();
        assert_eq!(installed_within(&root).unwrap().unreadable.len(), 1);
        std::fs::write(root.join("app/requirements.txt"), "-r base.txt\n").unwrap();
        std::fs::write(root.join("app/base.txt"), "requests==2.31.0\n").unwrap();
        let inside = installed_within(&root).unwrap();
        assert_eq!((inside.installed.len(), inside.unreadable.len()), (1, 0), "an include inside is read");
    }

    /// A hostile lockfile is reported, named, and the other lockfiles are still read.
    #[test]
    fn a_hostile_lockfile_is_named_and_the_rest_still_read() {
        let root = tempfile::tempdir().unwrap();
        let deep_json = format!("{{\"lockfileVersion\": 1, \"x\": {}1{}}}", "[".repeat(50_000), "]".repeat(50_000));
        let alias_bomb = "lockfileVersion: '9.0'\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
             c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
             e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
             g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n\
             i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
        let deep_toml = format!("version = 4\nx = {}1{}\n", "[".repeat(50_000), "]".repeat(50_000));
        let deep_yaml = format!("lockfileVersion: '9.0'\nx: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        for (dir, file, text) in [
            ("a", "package-lock.json", deep_json.as_str()),
            ("b", "pnpm-lock.yaml", alias_bomb),
            ("c", "pnpm-lock.yaml", deep_yaml.as_str()),
            ("d", "requirements.txt", "-r /etc/passwd\n"),
            ("e", "requirements.txt", "requests==2.31.0\n"),
            ("f", "Cargo.lock", deep_toml.as_str()),
        ] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
            std::fs::write(root.path().join(dir).join(file), text).unwrap();
        }
        let found = installed_within(root.path()).unwrap();
        assert_eq!(found.lockfiles.len(), 6);
        assert_eq!(found.installed.len(), 1, "the clean lockfile is still read: {:?}", found.installed);
        let named: Vec<String> = found.unreadable.iter().map(ToString::to_string).collect();
        assert_eq!(named.len(), 5, "{named:?}");
        assert!(named[0].starts_with("a/package-lock.json: not JSON"), "{named:?}");
        assert!(named[1].starts_with("b/pnpm-lock.yaml: ") && named[1].contains("repetition limit"), "{named:?}");
        assert!(named[2].starts_with("c/pnpm-lock.yaml: ") && named[2].contains("nested deeper than"), "{named:?}");
        assert!(named[3].starts_with("d/requirements.txt: line 1: includes /etc/passwd"), "{named:?}");
        // toml quotes the 100 KB line it failed on: the problem keeps its first and last lines.
        assert_eq!(
            named[4],
            "f/Cargo.lock: not a Cargo.lock: TOML parse error at line 2, column 84: recursion limit exceeded"
        );
        assert!(named.iter().all(|n| n.len() < 400), "{named:?}");
    }
}
