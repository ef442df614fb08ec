//! Coarse timeouts for the proxy's per-request deadlines (the client's request head, the
//! backend's response head).
//!
//! Why not `tokio::time::timeout`: arming and clearing a tokio timer for every request, twice
//! (hyper drops its header-read sleep after each head and makes a new one), measured at about a
//! tenth of the proxy's CPU per request. These deadlines are tens of seconds and need no
//! precision, so each connection keeps a [`Slot`] — a deadline and a waker — reused request
//! after request, and one background thread looks at the live slots every [`TICK`] and wakes
//! those past due. Arming is an atomic store; a timeout fires within one tick of its deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often due deadlines are looked for: the most a timeout fires late.
const TICK: Duration = Duration::from_millis(50);

/// A deadline (milliseconds since [`EPOCH`], 0 when disarmed) and who waits for it.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    deadline: AtomicU64,
    waker: Mutex<Option<Waker>>,
    /// Held by a live [`Deadline`]. A flag rather than the `Arc`'s count: the ticker holds a
    /// reference for a moment on every tick, which must not make a free slot look taken.
    held: AtomicBool,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn millis(at: Instant) -> u64 {
    // Never 0, which means disarmed.
    u64::try_from(at.saturating_duration_since(*EPOCH).as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Every slot made, until it is dropped; the ticker thread starts with the first.
static SLOTS: LazyLock<Mutex<Vec<Weak<Slot>>>> = LazyLock::new(|| {
    std::thread::Builder::new()
        .name("pave-router-timer".into())
        .spawn(tick)
        .expect("the router cannot start its timer thread");
    Mutex::new(Vec::new())
});

fn tick() {
    loop {
        std::thread::sleep(TICK);
        let now = millis(Instant::now());
        let mut due = Vec::new();
        {
            let mut slots = pave_sync::lock(&SLOTS);
            slots.retain(|weak| match weak.upgrade() {
                Some(slot) => {
                    let at = slot.deadline.load(Ordering::Acquire);
                    if at != 0 && at <= now {
                        due.push(slot);
                    }
                    true
                }
                None => false,
            });
        }
        // Woken outside the list's lock: a woken task may make a slot at once.
        for slot in due {
            if let Some(w) = pave_sync::lock(&slot.waker).take() {
                w.wake();
            }
        }
    }
}

impl Slot {
    pub(crate) fn new() -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        pave_sync::lock(&SLOTS).push(Arc::downgrade(&slot));
        slot
    }

    fn arm(&self, at: Instant) {
        self.deadline.store(millis(at), Ordering::Release);
    }

    fn disarm(&self) {
        self.deadline.store(0, Ordering::Release);
    }

    /// Ready once the deadline has passed; until then the ticker will wake `cx`.
    fn poll_due(&self, cx: &mut Context<'_>) -> Poll<()> {
        let due = |s: &Slot| {
            let at = s.deadline.load(Ordering::Acquire);
            at != 0 && at <= millis(Instant::now())
        };
        if due(self) {
            return Poll::Ready(());
        }
        {
            let mut w = pave_sync::lock(&self.waker);
            match w.as_ref() {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        // The ticker may have looked between the check and the registration.
        if due(self) { Poll::Ready(()) } else { Poll::Pending }
    }
}

/// One connection's timer: its slot is reused by each deadline in turn, and a fresh one is
/// made only if a deadline is asked for while the last is still held.
#[derive(Debug, Clone)]
pub(crate) struct ConnTimer {
    slot: Arc<Slot>,
}

impl ConnTimer {
    pub(crate) fn new() -> Self {
        ConnTimer { slot: Slot::new() }
    }

    /// A deadline `after` from now.
    pub(crate) fn deadline(&self, after: Duration) -> Deadline {
        self.deadline_at(Instant::now() + after)
    }

    fn deadline_at(&self, at: Instant) -> Deadline {
        let free = self.slot.held.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok();
        let slot = if free {
            self.slot.clone()
        } else {
            let fresh = Slot::new();
            fresh.held.store(true, Ordering::Release);
            fresh
        };
        slot.arm(at);
        Deadline { slot }
    }
}

/// A future that completes at its deadline; dropping it disarms the slot.
#[derive(Debug)]
pub(crate) struct Deadline {
    slot: Arc<Slot>,
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.slot.poll_due(cx)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.slot.disarm();
        pave_sync::lock(&self.slot.waker).take();
        self.slot.held.store(false, Ordering::Release);
    }
}

impl hyper::rt::Sleep for Deadline {}

impl hyper::rt::Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.deadline(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.deadline_at(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Deadline>() {
            Some(d) => d.slot.arm(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// Runs `fut` until `deadline`: `None` when the deadline came first.
pub(crate) async fn within<F: Future>(deadline: Deadline, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut deadline = std::pin::pin!(deadline);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        deadline.as_mut().poll(cx).map(|()| None)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deadline_fires_within_a_tick_and_a_slot_is_reused_once_free() {
        let timer = ConnTimer::new();
        let started = Instant::now();
        assert_eq!(within(timer.deadline(Duration::from_millis(100)), std::future::pending::<()>()).await, None);
        let took = started.elapsed();
        // Never early; late only by scheduling (a loaded 2-core machine ran it 360 ms late, so
        // the upper bound is loose: what is checked is that it fires at all, not how fast).
        assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "{took:?}");
        assert_eq!(within(timer.deadline(Duration::from_secs(5)), async { 7 }).await, Some(7));

        let held = timer.deadline(Duration::from_secs(5));
        assert!(Arc::ptr_eq(&held.slot, &timer.slot), "a free slot is reused");
        let other = timer.deadline(Duration::from_secs(5));
        assert!(!Arc::ptr_eq(&other.slot, &timer.slot), "a held slot is not shared");
        drop(held);
        assert_eq!(timer.slot.deadline.load(Ordering::Acquire), 0, "dropping a deadline disarms it");
    }
}
