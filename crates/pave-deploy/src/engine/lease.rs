//! The delivery-engine lease: one control plane runs the engine; a successor takes the lease
//! of a dead one on the same machine at once, even when its pid was reused.

use super::*;

/// Whether the lease `holder` names a control plane on this machine (`me` names this one)
/// whose process is gone: no process has its pid, or the one that has it started at another
/// time (the pid was reused). `start_of` reads a pid's start time (clock ticks since boot).
/// Holders of another machine are never judged dead here: their lease runs out instead.
pub fn holder_is_dead(holder: &str, me: &str, start_of: impl Fn(u32) -> Option<u64>) -> bool {
    let Some(my_host) = me.split('/').next() else { return false };
    let parts: Vec<&str> = holder.split('/').collect();
    let (host, pid, start) = match parts.as_slice() {
        [host, pid, start, _nonce] => (*host, *pid, start.parse::<u64>().ok()),
        // Holders written before start times were recorded.
        [host, pid, _nonce] => (*host, *pid, None),
        _ => return false,
    };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    if host != my_host {
        return false;
    }
    match (start_of(pid), start) {
        (None, _) => true,
        (Some(now), Some(then)) => now != then,
        (Some(_), None) => false,
    }
}

impl<R: Runtime> Engine<R> {
    /// Takes or renews the lease. A holder on this machine whose process is gone (a control
    /// plane killed a moment ago) is taken over at once instead of after the lease expires.
    pub(super) async fn take_lease(&self) -> Result<bool, pave_store::StoreError> {
        let me = &self.config.holder;
        if self.store.acquire_lease(LEASE, me, LEASE_TTL_MS, self.now(), None).await? {
            return Ok(true);
        }
        let Some(current) = self.store.lease_holder(LEASE).await? else { return Ok(false) };
        if !holder_is_dead(&current, me, pave_runtime::process_start) {
            return Ok(false);
        }
        tracing::info!(previous = %current, "the previous engine's process is gone; taking over its lease");
        self.store.acquire_lease(LEASE, me, LEASE_TTL_MS, self.now(), Some(&current)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_dead_when_its_pid_is_gone_or_was_reused() {
        let me = "box/200/999/cafe";
        // Same machine: pid 100 started at tick 500.
        let alive = |pid: u32| (pid == 100).then_some(500);
        assert!(!holder_is_dead("box/100/500/beef", me, alive), "the same process still runs");
        assert!(holder_is_dead("box/100/400/beef", me, alive), "pid 100 now belongs to a later process");
        assert!(holder_is_dead("box/101/500/beef", me, alive), "no process has pid 101");
        // A holder written before start times were recorded: only a missing pid says dead.
        assert!(!holder_is_dead("box/100/beef", me, alive));
        assert!(holder_is_dead("box/101/beef", me, alive));
        // Another machine's holder is never judged from here; its lease runs out instead.
        assert!(!holder_is_dead("other/101/500/beef", me, alive));
        assert!(!holder_is_dead("garbage", me, alive));
        assert!(!holder_is_dead("box/x/500/beef", me, alive));
    }

    #[test]
    fn this_process_has_a_start_time() {
        let mine = pave_runtime::process_start(std::process::id());
        assert!(mine.is_some());
        assert_eq!(pave_runtime::process_start(std::process::id()), mine, "stable");
    }
}
