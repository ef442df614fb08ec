//! What several crates' tests need alike, written once. Only ever a dev-dependency: nothing
//! here is fit for production code (it panics with a test's message instead of returning
//! errors).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The identity every test commit is made with.
pub const AUTHOR_NAME: &str = "Ada Lovelace";
pub const AUTHOR_EMAIL: &str = "ada@example.org";

/// Runs git in `dir` as [`AUTHOR_NAME`], ignoring the machine's and the user's git config;
/// returns its standard output, trimmed. Panics, showing git's error, when git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    run_git(dir, None, args)
}

/// [`git`] with the author and committer dates both `at` (seconds since the epoch, UTC).
pub fn git_at(dir: &Path, at: i64, args: &[&str]) -> String {
    run_git(dir, Some(at), args)
}

fn run_git(dir: &Path, at: Option<i64>, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    if let Some(at) = at {
        let date = format!("@{at} +0000");
        cmd.env("GIT_AUTHOR_DATE", &date).env("GIT_COMMITTER_DATE", &date);
    }
    let out = cmd.output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A conformance data set kept beside the repository in `../shared/data/<relative>` (or
/// where the variable `override_var` points), when `present` says it is there. When it is
/// not, the test is told so loudly and skips — unless `PAVE_REQUIRE_SHARED_DATA=1` (as CI
/// sets it), which makes it a failure.
pub fn shared_data(relative: &str, override_var: &str, present: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    // Every crate sits two levels below the workspace, which sits beside `shared/`.
    let path = std::env::var_os(override_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(relative));
    if present(&path) {
        return Some(path);
    }
    eprintln!("\n!!! {relative} is MISSING at {} (set {override_var} to point elsewhere) !!!\n", path.display());
    assert!(
        std::env::var("PAVE_REQUIRE_SHARED_DATA").as_deref() != Ok("1"),
        "{relative} is required (PAVE_REQUIRE_SHARED_DATA=1) but missing at {}",
        path.display()
    );
    None
}

/// Whether `check` holds within `timeout`, asking every 50 ms (and once more at the end).
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// A loopback port nothing listened on a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The environment a process was started with, from `/proc` (empty once it is gone).
pub fn environ(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter_map(|e| String::from_utf8_lossy(e).split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// Whether `pid` is a live process: present in `/proc` and not a zombie.
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_commits_as_the_test_author_at_the_given_time() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        std::fs::write(dir.join("a"), "a\n").expect("write");
        git(dir, &["add", "a"]);
        git_at(dir, 1_700_000_000, &["commit", "-q", "-m", "first"]);
        assert_eq!(
            git(dir, &["log", "-1", "--format=%an <%ae> %at %ct %s"]),
            "Ada Lovelace <ada@example.org> 1700000000 1700000000 first"
        );
    }

    #[test]
    fn this_process_is_running_with_its_environment() {
        assert!(running(std::process::id()));
        assert!(environ(std::process::id()).iter().any(|(k, _)| k == "PATH"));
        assert!(wait_until(Duration::from_secs(1), || true));
        assert!(!wait_until(Duration::from_millis(60), || false));
        assert!(free_port() > 0);
    }
}
