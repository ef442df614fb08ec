//! Pave's one policy for poisoned std locks: **take the guard anyway**. Outside tests, every
//! std `Mutex` and `RwLock` in Pave is taken through these functions, never with
//! `.lock().unwrap()` or `.expect(..)` (in a test, a panic is the failure being reported).
//!
//! Why: a lock is poisoned when a thread panicked while holding it. That panic is a bug, and
//! it has already been reported where it happened (the panic message, the task's error). Our
//! critical sections are short and leave their data whole at every point where they could
//! panic (they assign or push; none holds a half-done update across a call that can fail),
//! so the data behind a poisoned lock is still valid. Panicking again in every later user
//! would turn one failed request into a dead router, engine or server. So poisoning is
//! ignored, and code that cannot keep its data whole across a panic must not rely on a std
//! lock to notice (it restores the data itself, or uses a channel).
//!
//! (`tokio::sync` locks are not poisoned and need none of this.)

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, whether or not a holder panicked.
#[allow(clippy::disallowed_methods)] // the one place std locks are taken (clippy.toml)
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Shares `l` for reading, whether or not a writer panicked.
#[allow(clippy::disallowed_methods)] // the one place std locks are taken (clippy.toml)
pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes `l` for writing, whether or not a holder panicked.
#[allow(clippy::disallowed_methods)] // the one place std locks are taken (clippy.toml)
pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The value inside `m`, once nobody else can hold it, whether or not a holder panicked.
pub fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poison(f: impl FnOnce() + Send) {
        std::thread::scope(|s| {
            let _ = s.spawn(f).join();
        });
    }

    #[test]
    fn a_poisoned_mutex_still_gives_its_data() {
        let m = Mutex::new(vec![1]);
        poison(|| {
            let mut g = lock(&m);
            g.push(2);
            panic!("while holding the lock");
        });
        assert!(m.is_poisoned());
        lock(&m).push(3);
        assert_eq!(into_inner(m), [1, 2, 3]);
    }

    #[test]
    fn a_poisoned_rwlock_still_reads_and_writes() {
        let l = RwLock::new(1);
        poison(|| {
            let mut g = write(&l);
            *g = 2;
            panic!("while writing");
        });
        assert!(l.is_poisoned());
        assert_eq!(*read(&l), 2);
        *write(&l) += 1;
        assert_eq!(*read(&l), 3);
    }
}
