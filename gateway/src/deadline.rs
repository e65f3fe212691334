//! Deadlines for waits that rarely expire — a keep-alive connection waiting
//! for its next request, a response or a body's next bytes within the read
//! timeout, a TCP route's connect and its idle check — without a timer each.
//!
//! A timer per wait (pingora's or tokio's) costs an allocation and about a
//! thousand instructions per request, and an idle connection holds it
//! (~130 B). Here each worker keeps one list of waiting deadlines and one
//! task that sweeps it four times a second, waking the waits whose
//! deadline passed: a deadline is a slot in that list (its time and the
//! waiting task's waker), so it ends up to a quarter second late.
//!
//! The list is the worker's own (a thread-local): a task never moves
//! between workers (one single-threaded runtime each, `work_stealing:
//! false`), so a deadline is always polled and dropped where it was made.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often a worker's deadlines are checked.
const SWEEP: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Deadlines {
    slots: Vec<Slot>,
    /// Slots no deadline uses.
    free: Vec<u32>,
    /// This worker's sweeping task runs.
    sweeping: bool,
}

struct Slot {
    at: Instant,
    waker: Option<Waker>,
    expired: bool,
}

thread_local! {
    static DEADLINES: RefCell<Deadlines> = RefCell::new(Deadlines::default());
}

/// A deadline `after` from now on this worker; dropping it forgets it.
pub struct Deadline {
    slot: u32,
}

impl Deadline {
    /// Must be called in a task on a worker's runtime (the sweeping task is
    /// started there with the worker's first deadline).
    pub fn after(after: Duration) -> Deadline {
        let at = Instant::now() + after;
        let (slot, start_sweeping) = DEADLINES.with_borrow_mut(|d| {
            let slot = Slot {
                at,
                waker: None,
                expired: false,
            };
            let index = match d.free.pop() {
                Some(index) => {
                    d.slots[index as usize] = slot;
                    index
                }
                None => {
                    d.slots.push(slot);
                    (d.slots.len() - 1) as u32
                }
            };
            (index, !std::mem::replace(&mut d.sweeping, true))
        });
        if start_sweeping {
            tokio::spawn(sweep());
        }
        Deadline { slot }
    }

    /// Ready once the deadline has passed (seen by a sweep); until then the
    /// task is woken when it passes.
    pub fn poll_expired(&self, cx: &mut Context<'_>) -> Poll<()> {
        DEADLINES.with_borrow_mut(|d| {
            let slot = &mut d.slots[self.slot as usize];
            if slot.expired {
                return Poll::Ready(());
            }
            match &slot.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => slot.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        // At thread exit the list may be gone already: nothing to forget.
        let _ = DEADLINES.try_with(|d| {
            let mut d = d.borrow_mut();
            d.slots[self.slot as usize].waker = None;
            d.free.push(self.slot);
        });
    }
}

/// `future`'s output, or `None` once `after` has passed (up to a sweep
/// late), counted from when it first has to wait: a future ready at once
/// costs no deadline.
pub async fn within<F: Future>(after: Duration, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut deadline: Option<Deadline> = None;
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let deadline = deadline.get_or_insert_with(|| Deadline::after(after));
        deadline.poll_expired(cx).map(|()| None)
    })
    .await
}

/// The worker's sweeping task: wakes the waits whose deadline passed.
async fn sweep() {
    // Should the runtime drop this task (a runtime shut down, another
    // started on the same thread), the next deadline starts a new one.
    struct Sweeping;
    impl Drop for Sweeping {
        fn drop(&mut self) {
            let _ = DEADLINES.try_with(|d| d.borrow_mut().sweeping = false);
        }
    }
    let _sweeping = Sweeping;
    loop {
        // pingora's timer: setting it wakes nobody (a tokio timer earlier
        // than the worker's next wake-up writes to its eventfd).
        pingora::time::sleep(SWEEP).await;
        let now = Instant::now();
        let woken: Vec<Waker> = DEADLINES.with_borrow_mut(|d| {
            d.slots
                .iter_mut()
                .filter(|s| !s.expired && s.waker.is_some() && s.at <= now)
                .filter_map(|s| {
                    s.expired = true;
                    s.waker.take()
                })
                .collect()
        });
        // Woken outside the list's borrow: a waker may run its task here.
        woken.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use super::Deadline;
    use std::future::poll_fn;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "current_thread")]
    async fn within_gives_the_output_or_none_after_the_time() {
        let ready = super::within(Duration::from_millis(1), async { 7 }).await;
        assert_eq!(ready, Some(7));
        let started = Instant::now();
        let never = super::within(Duration::from_millis(300), std::future::pending::<()>()).await;
        assert_eq!(never, None);
        assert!(started.elapsed() >= Duration::from_millis(300));
        let slow = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            8
        };
        assert_eq!(super::within(Duration::from_secs(5), slow).await, Some(8));
    }

    #[test]
    fn a_new_runtime_on_the_thread_gets_a_sweep_of_its_own() {
        for _ in 0..2 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let expired = runtime.block_on(async {
                let deadline = Deadline::after(Duration::from_millis(10));
                let waited = poll_fn(|cx| deadline.poll_expired(cx));
                tokio::time::timeout(Duration::from_secs(5), waited).await
            });
            assert!(expired.is_ok(), "no sweep ran");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_deadline_expires_after_its_time_and_not_before() {
        let started = Instant::now();
        let deadline = Deadline::after(Duration::from_millis(300));
        let later = Deadline::after(Duration::from_secs(60));
        poll_fn(|cx| deadline.poll_expired(cx)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_millis(900), "{waited:?}");
        // The other one still waits; its slot is reused once dropped.
        let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
        assert!(later.poll_expired(&mut cx).is_pending());
        let slot = later.slot;
        drop(later);
        assert_eq!(Deadline::after(Duration::from_secs(1)).slot, slot);
    }
}
