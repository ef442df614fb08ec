//! One malloc arena for `pave serve` (glibc).
//!
//! glibc's allocator gives a thread that finds the heap locked an arena of its own, up to eight
//! per core, and each arena keeps the memory freed into it. Under load every thread of the
//! server (tokio's workers and blocking threads, the router's threads) ends up with its own,
//! and the resident memory grows with them: measured on the flag API under load (issue 16,
//! item 36), anonymous memory went from 6.7 to 11.0 MB with the default arenas and stayed near
//! 7.3 MB with `MALLOC_ARENA_MAX=1`, at unchanged throughput (glibc's per-thread caches serve
//! the small, short-lived allocations a request makes without taking the arena's lock).
//!
//! glibc reads `MALLOC_ARENA_MAX` once, when the process starts, and the only way to change it
//! afterwards is `mallopt(M_ARENA_MAX)`, an `unsafe` FFI call the workspace forbids. So
//! `pave serve` executes itself again, once, with the variable set, before any thread exists:
//! same binary (`/proc/self/exe`), same arguments and `argv[0]`, same process id, file
//! descriptors and environment. The variable itself guards against a loop, and a value the
//! user set (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in `GLIBC_TUNABLES`) is kept as
//! it is. Replicas never see it: the runtime clears their environment
//! (`pave-runtime`'s process runtime passes a short list of variables through, not this one).
//!
//! Elsewhere (musl, other systems) this does nothing.

/// The variable glibc reads, and the value `pave serve` runs with when it is unset.
pub const VAR: &str = "MALLOC_ARENA_MAX";
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
pub const VALUE: &str = "1";

/// Why the re-execution did not happen, when it was tried and failed (logged by `pave serve`
/// once logging is set up; the server runs on with glibc's default arenas).
static FAILED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Whether the environment already decides the number of arenas.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn already_set(arena_max: Option<&std::ffi::OsStr>, tunables: Option<&std::ffi::OsStr>) -> bool {
    arena_max.is_some()
        || tunables.is_some_and(|t| {
            t.to_string_lossy().split(':').any(|kv| kv.trim_start().starts_with("glibc.malloc.arena_max="))
        })
}

/// Executes the running program again with `MALLOC_ARENA_MAX` set, unless the environment
/// already sets it. Returns only when it does not re-execute (or the `exec` failed). Call it
/// before any thread starts: the new image replaces this one, threads and all.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn cap() {
    use std::os::unix::process::CommandExt;
    if already_set(std::env::var_os(VAR).as_deref(), std::env::var_os("GLIBC_TUNABLES").as_deref()) {
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            let _ = FAILED.set(format!("cannot find the running binary: {e}"));
            return;
        }
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(&exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    // `exec` returns only when it failed.
    let e = cmd.args(args).env(VAR, VALUE).exec();
    let _ = FAILED.set(format!("cannot execute {} again: {e}", exe.display()));
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn cap() {}

/// Logs why the arenas are not capped, when a re-execution was tried and failed.
pub fn log_failure() {
    if let Some(why) = FAILED.get() {
        tracing::warn!("{VAR} is not set and {why}; glibc's default malloc arenas are used (more memory under load)");
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::already_set;

    #[test]
    fn a_value_the_user_set_is_kept() {
        assert!(!already_set(None, None));
        assert!(already_set(Some(OsStr::new("4")), None));
        // Set, even empty: glibc then uses its default, as the user asked.
        assert!(already_set(Some(OsStr::new("")), None));
        assert!(already_set(None, Some(OsStr::new("glibc.malloc.arena_max=2"))));
        assert!(already_set(None, Some(OsStr::new("glibc.malloc.tcache_count=0:glibc.malloc.arena_max=2"))));
        assert!(!already_set(None, Some(OsStr::new("glibc.malloc.tcache_count=0"))));
        assert!(!already_set(None, Some(OsStr::new("glibc.malloc.arena_test=2"))));
    }
}
