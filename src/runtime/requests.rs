//! The state handles share with the driver: the submission queue, one-shot
//! reply slots, queues of outcomes shared by many requests, and the signal
//! that wakes the driver. This is all the
//! cross-thread state of the runtime, and it is model-checked with loom
//! (`RUSTFLAGS="--cfg loom" cargo test --release --features net --lib
//! runtime::requests`).
//!
//! The guarantee: **no request waits forever.** A request is either refused
//! at submission (the queue is closed or full), or it is in the queue or in
//! the driver's hands as a [`Reply`]. A `Reply` is completed exactly once:
//! by [`Reply::send`], or — if the driver drops it without answering (on
//! shutdown, or while unwinding from a panic) — with
//! [`RuntimeError::ShuttingDown`] by its `Drop`. Closing the queue and
//! submitting to it take the same lock, so a request submitted after the
//! driver's final drain is refused rather than stranded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::error::RuntimeError;
use super::sync::{Arc, AtomicBool, Mutex, Ordering, Watched, lock};

/// A one-shot slot: empty until the reply comes.
struct Slot<T> {
    value: Watched<Option<Result<T, RuntimeError>>>,
    /// Set once the reply is in `value`: a client polling many tickets
    /// (`runtime::multi::Ticket::try_get`) finds most of them not ready,
    /// and each of those polls costs one atomic load, not a lock.
    #[cfg_attr(not(feature = "persistence"), allow(dead_code))]
    ready: AtomicBool,
}

impl<T> Slot<T> {
    fn fill(&self, value: Result<T, RuntimeError>) {
        if self.fill_quietly(value) {
            self.value.notify();
        }
    }

    /// As [`fill`](Self::fill), without waking the waiter; returns whether
    /// one waits (and is owed a [`Watched::notify`]).
    fn fill_quietly(&self, value: Result<T, RuntimeError>) -> bool {
        let waiting = self.value.update_quietly(|slot| *slot = Some(value));
        self.ready.store(true, Ordering::Release);
        waiting
    }

    /// Waits until the reply comes or `deadline` passes; takes the reply.
    fn take_by(&self, deadline: Option<Instant>) -> Option<Result<T, RuntimeError>> {
        self.value.wait_until(deadline, Option::is_some, Option::take)
    }
}

/// Outcomes of many requests, each with its caller's tag, in the order
/// they came: one queue a caller waits on for whichever of its requests
/// ends first (`runtime::multi::Completions`), instead of one slot per
/// request.
pub(crate) struct Outcomes<T> {
    state: Watched<OutcomeQueue<T>>,
}

struct OutcomeQueue<T> {
    items: VecDeque<(u64, Result<T, RuntimeError>)>,
    /// A wake-up is owed to a waiter (or was given, and the waiter has not
    /// taken the queue since): later outcomes owe none of their own.
    owed: bool,
}

impl<T> Default for Outcomes<T> {
    fn default() -> Self {
        Self { state: Watched::new(OutcomeQueue { items: VecDeque::new(), owed: false }) }
    }
}

impl<T> Outcomes<T> {
    /// Adds an outcome and wakes a waiter at once, whatever wake-up
    /// another driver may still owe it (that one comes at the end of the
    /// other driver's turn).
    fn push(&self, tag: u64, value: Result<T, RuntimeError>) {
        let waiting = self.state.update_quietly(|q| q.items.push_back((tag, value)));
        if waiting {
            self.state.notify();
        }
    }

    /// Adds an outcome without waking anyone; returns whether a waiter is
    /// owed a [`Watched::notify`] for it (only the first outcome a waiter
    /// has not yet been woken for owes one).
    fn push_quietly(&self, tag: u64, value: Result<T, RuntimeError>) -> bool {
        self.state.update_deciding(|q, waiting| {
            q.items.push_back((tag, value));
            let owe = waiting && !q.owed;
            q.owed |= owe;
            owe
        })
    }

    /// Moves every outcome to `out`, waiting until `deadline` (`None`:
    /// however long) for the first if there is none; returns how many it
    /// moved.
    #[cfg_attr(not(feature = "persistence"), allow(dead_code))]
    pub(crate) fn take_by(&self, deadline: Option<Instant>, out: &mut Vec<(u64, Result<T, RuntimeError>)>) -> usize {
        self.state.wait_until(
            deadline,
            |q| !q.items.is_empty(),
            |q| {
                q.owed = false;
                let n = q.items.len();
                out.extend(q.items.drain(..));
                n
            },
        )
    }
}

/// Where a reply goes: its own slot, or a tagged place in a caller's
/// queue of outcomes.
enum Destination<T> {
    Slot(Arc<Slot<T>>),
    Queue(Arc<Outcomes<T>>, u64),
}

impl<T> Destination<T> {
    fn fill(self, value: Result<T, RuntimeError>) {
        match self {
            Destination::Slot(slot) => slot.fill(value),
            Destination::Queue(queue, tag) => queue.push(tag, value),
        }
    }

    /// Wakes whoever waits here (a wake-up deferred by `send_later`).
    fn notify(&self) {
        match self {
            Destination::Slot(slot) => slot.value.notify(),
            Destination::Queue(queue, _) => queue.state.notify(),
        }
    }
}

/// The driver's side of a one-shot reply. Completing it twice is
/// impossible (`send` consumes it); dropping it unanswered completes it
/// with [`RuntimeError::ShuttingDown`].
pub(crate) struct Reply<T> {
    to: Option<Destination<T>>,
    /// The request's command was appended: dropped unanswered (the driver
    /// unwound), the caller learns the outcome is unknown, not that the
    /// runtime refused it.
    appended: bool,
}

/// The caller's side of a one-shot reply.
pub(crate) struct Waiter<T> {
    slot: Arc<Slot<T>>,
}

/// A connected reply and waiter.
pub(crate) fn oneshot<T>() -> (Reply<T>, Waiter<T>) {
    let slot = Arc::new(Slot { value: Watched::new(None), ready: AtomicBool::new(false) });
    (Reply { to: Some(Destination::Slot(Arc::clone(&slot))), appended: false }, Waiter { slot })
}

impl<T> Reply<T> {
    /// A reply that lands in `queue` with `tag` (no slot of its own).
    #[cfg_attr(not(feature = "persistence"), allow(dead_code))]
    pub(crate) fn to_queue(queue: Arc<Outcomes<T>>, tag: u64) -> Self {
        Self { to: Some(Destination::Queue(queue, tag)), appended: false }
    }

    /// The same reply, for a request whose command is now in the log: if
    /// it is ever dropped unanswered, the caller is told the outcome is
    /// unknown ([`RuntimeError::OutcomeUnknown`]).
    pub(crate) fn appended(mut self) -> Self {
        self.appended = true;
        self
    }

    /// Drops the reply unanswered, without the `Drop` answer: for a
    /// request its caller was told was refused.
    #[cfg_attr(not(feature = "persistence"), allow(dead_code))]
    pub(crate) fn disarm(mut self) {
        self.to = None;
    }

    /// Completes the request.
    pub(crate) fn send(mut self, value: Result<T, RuntimeError>) {
        if let Some(to) = self.to.take() {
            to.fill(value);
        }
    }

    /// Callers waiting on the reply now.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn waiters(&self) -> usize {
        match &self.to {
            Some(Destination::Slot(slot)) => slot.value.waiters(),
            Some(Destination::Queue(queue, _)) => queue.state.waiters(),
            None => 0,
        }
    }

    /// Completes the request, deferring the wake-up of a caller waiting on
    /// it to `woken` (see [`Wakeups`]).
    pub(crate) fn send_later(mut self, value: Result<T, RuntimeError>, woken: &mut Wakeups<T>) {
        let owed = match self.to.take() {
            Some(Destination::Slot(slot)) => slot.fill_quietly(value).then_some(Destination::Slot(slot)),
            Some(Destination::Queue(queue, tag)) => {
                queue.push_quietly(tag, value).then_some(Destination::Queue(queue, tag))
            }
            None => None,
        };
        woken.waiting.extend(owed);
    }
}

/// Callers whose replies came and who are still to be woken: a driver
/// answers a turn's requests as it applies their commands and wakes their
/// callers once, after the last ([`wake_all`](Self::wake_all)), so that a
/// caller waiting on one of many requests wakes to find every answer of
/// the turn, not the first of them. Dropping it wakes them too, so no
/// caller is left asleep if the driver unwinds in between.
pub(crate) struct Wakeups<T> {
    /// Where each caller owed a wake-up waits.
    waiting: Vec<Destination<T>>,
}

impl<T> Default for Wakeups<T> {
    fn default() -> Self {
        Self { waiting: Vec::new() }
    }
}

impl<T> Wakeups<T> {
    /// Callers owed a wake-up.
    #[cfg(all(test, not(loom), feature = "persistence"))]
    pub(crate) fn owed(&self) -> usize {
        self.waiting.len()
    }

    /// Wakes every caller owed a wake-up.
    pub(crate) fn wake_all(&mut self) {
        for owed in self.waiting.drain(..) {
            owed.notify();
        }
    }
}

impl<T> Drop for Wakeups<T> {
    fn drop(&mut self) {
        self.wake_all();
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(to) = self.to.take() {
            to.fill(Err(if self.appended { RuntimeError::OutcomeUnknown } else { RuntimeError::ShuttingDown }));
        }
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

impl<T> Waiter<T> {
    /// Waits for the reply, or until `deadline` ([`RuntimeError::Timeout`]).
    /// `None` waits for the reply, which always comes (see the module docs).
    pub(crate) fn wait(self, deadline: Option<Instant>) -> Result<T, RuntimeError> {
        self.slot.take_by(deadline).unwrap_or(Err(RuntimeError::Timeout))
    }

    /// Waits for the reply until `deadline` (`None`: however long) without
    /// giving up the waiter: `None` when it has not come by then (for
    /// `runtime::multi::Ticket`).
    #[cfg(feature = "persistence")]
    pub(crate) fn wait_by(&self, deadline: Option<Instant>) -> Option<Result<T, RuntimeError>> {
        self.slot.take_by(deadline)
    }

    /// Whether the reply has come (it may have come an instant before this
    /// says so, never after).
    #[cfg(feature = "persistence")]
    pub(crate) fn is_ready(&self) -> bool {
        self.slot.ready.load(Ordering::Acquire)
    }
}

/// Why a submission was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The runtime is shutting down.
    Closed,
    /// The queue holds `capacity` requests.
    Full,
}

impl From<Refused> for RuntimeError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Closed => RuntimeError::ShuttingDown,
            Refused::Full => RuntimeError::Busy,
        }
    }
}

struct Queue<R> {
    items: VecDeque<R>,
    closed: bool,
}

/// Requests from handles, waiting for the driver. Bounded.
pub(crate) struct Submissions<R> {
    queue: Mutex<Queue<R>>,
    capacity: usize,
}

impl<R> Submissions<R> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { queue: Mutex::new(Queue { items: VecDeque::new(), closed: false }), capacity: capacity.max(1) }
    }

    /// Queues `request`, or refuses it (and drops it, which answers any
    /// reply it holds).
    pub(crate) fn submit(&self, request: R) -> Result<(), Refused> {
        self.submit_or_return(request).map_err(|(refused, _)| refused)
    }

    /// As [`submit`](Self::submit), giving a refused request back to the
    /// caller instead of dropping it.
    pub(crate) fn submit_or_return(&self, request: R) -> Result<(), (Refused, R)> {
        let mut q = lock(&self.queue);
        if q.closed {
            return Err((Refused::Closed, request));
        }
        if q.items.len() >= self.capacity {
            return Err((Refused::Full, request));
        }
        q.items.push_back(request);
        Ok(())
    }

    /// Moves up to `max` queued requests to `out`, oldest first.
    pub(crate) fn drain(&self, out: &mut Vec<R>, max: usize) {
        let mut q = lock(&self.queue);
        let n = q.items.len().min(max);
        out.extend(q.items.drain(..n));
    }

    /// Refuses every later submission and returns what was still queued.
    pub(crate) fn close(&self) -> VecDeque<R> {
        let mut q = lock(&self.queue);
        q.closed = true;
        std::mem::take(&mut q.items)
    }

    /// Requests waiting in the queue (`MultiStats::queued_requests`).
    #[cfg(any(feature = "persistence", all(test, not(loom))))]
    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).items.len()
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }
}

/// Wakes the driver: a flag set by `notify` and consumed by `wait`, so a
/// notification that arrives before the driver waits is not lost. A
/// notification while the driver is busy (not waiting) costs no system
/// call ([`Watched`]).
#[derive(Default)]
pub(crate) struct Signal(Watched<bool>);

impl Signal {
    pub(crate) fn notify(&self) {
        self.0.update(|notified| *notified = true);
    }

    /// Waits until notified or for `timeout` (`None`: until notified), then
    /// clears the flag.
    pub(crate) fn wait(&self, timeout: Option<Duration>) {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.0.wait_until(deadline, |notified| *notified, |notified| *notified = false);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_delivered_once_and_a_dropped_one_reports_shutdown() {
        let (reply, waiter) = oneshot::<u32>();
        reply.send(Ok(7));
        assert_eq!(waiter.wait(None).unwrap(), 7);
        let (reply, waiter) = oneshot::<u32>();
        drop(reply);
        assert!(matches!(waiter.wait(None), Err(RuntimeError::ShuttingDown)));
        let (_reply, waiter) = oneshot::<u32>();
        assert!(matches!(waiter.wait(Some(Instant::now())), Err(RuntimeError::Timeout)));
    }

    #[test]
    fn the_queue_is_bounded_and_refuses_after_close() {
        let s = Submissions::new(2);
        s.submit(1).unwrap();
        s.submit(2).unwrap();
        assert_eq!(s.submit(3), Err(Refused::Full));
        let mut out = Vec::new();
        s.drain(&mut out, 1);
        assert_eq!(out, [1]);
        assert_eq!(s.close(), [2]);
        assert_eq!(s.submit(4), Err(Refused::Closed));
        assert!(s.is_closed());
    }

    #[test]
    fn a_deferred_reply_is_there_at_once_and_its_waiter_is_woken_later() {
        let (reply, waiter) = oneshot::<u32>();
        let mut woken = Wakeups::default();
        reply.send_later(Ok(7), &mut woken);
        // No one was waiting: nothing is owed.
        assert!(woken.waiting.is_empty());
        assert!(waiter.slot.ready.load(Ordering::Acquire));
        assert_eq!(waiter.wait(Some(Instant::now())).unwrap(), 7);

        let (reply, waiter) = oneshot::<u32>();
        let client = std::thread::spawn(move || waiter.wait(None));
        while reply.waiters() == 0 {
            std::thread::yield_now();
        }
        reply.send_later(Ok(8), &mut woken);
        assert_eq!(woken.waiting.len(), 1, "the waiting client is owed a wake-up");
        woken.wake_all();
        assert_eq!(client.join().unwrap().unwrap(), 8);
    }

    /// Everything the queue holds now, without waiting.
    fn taken<T>(queue: &Outcomes<T>) -> Vec<(u64, Result<T, RuntimeError>)> {
        let mut out = Vec::new();
        queue.take_by(Some(Instant::now()), &mut out);
        out
    }

    #[test]
    fn outcomes_land_in_their_queue_with_their_tags_and_a_dropped_reply_reports_shutdown() {
        let queue = Arc::new(Outcomes::<u32>::default());
        Reply::to_queue(Arc::clone(&queue), 5).send(Ok(50));
        drop(Reply::to_queue(Arc::clone(&queue), 6));
        // A refused request's reply is disarmed: no outcome.
        Reply::to_queue(Arc::clone(&queue), 7).disarm();
        let mut woken = Wakeups::default();
        Reply::to_queue(Arc::clone(&queue), 8).send_later(Ok(80), &mut woken);
        assert!(woken.waiting.is_empty(), "no one waits: no wake-up owed");
        let out = taken(&queue);
        let tags: Vec<u64> = out.iter().map(|(tag, _)| *tag).collect();
        assert_eq!(tags, [5, 6, 8], "in the order they came, the disarmed one absent");
        assert!(matches!(out[0].1, Ok(50)) && matches!(out[2].1, Ok(80)));
        assert!(matches!(out[1].1, Err(RuntimeError::ShuttingDown)));
        assert!(taken(&queue).is_empty(), "taken once");
    }

    #[test]
    fn a_waiter_on_a_queue_is_owed_one_wake_up_for_many_outcomes() {
        let queue = Arc::new(Outcomes::<u32>::default());
        let q = Arc::clone(&queue);
        let client = std::thread::spawn(move || {
            let mut out = Vec::new();
            while out.len() < 3 {
                q.take_by(None, &mut out);
            }
            out.into_iter().map(|(tag, v)| (tag, v.unwrap())).collect::<Vec<_>>()
        });
        while queue.state.waiters() == 0 {
            std::thread::yield_now();
        }
        let mut woken = Wakeups::default();
        for tag in 1..=3 {
            Reply::to_queue(Arc::clone(&queue), tag).send_later(Ok(tag as u32 * 10), &mut woken);
        }
        assert_eq!(woken.waiting.len(), 1, "three outcomes, one wake-up");
        woken.wake_all();
        assert_eq!(client.join().unwrap(), [(1, 10), (2, 20), (3, 30)]);
    }

    #[test]
    fn a_notification_before_the_wait_is_kept() {
        let signal = Signal::default();
        signal.notify();
        signal.wait(None);
        signal.wait(Some(Duration::from_millis(1)));
    }
}

/// Model checks: every interleaving of handles and the driver, up to loom's
/// preemption bound. Loom's condition variables never time out, so every
/// wait here must be ended by a notification: a request left waiting shows
/// up as a deadlock.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::thread;

    use super::*;

    type Req = Reply<u32>;

    /// One pass of a driver: take what is queued and answer it.
    fn serve_once(subs: &Submissions<Req>) {
        let mut batch = Vec::new();
        subs.drain(&mut batch, usize::MAX);
        for reply in batch {
            reply.send(Ok(7));
        }
    }

    /// A client: submit, wake the driver, wait for the answer.
    fn client(subs: &Submissions<Req>, signal: &Signal) -> Result<u32, RuntimeError> {
        let (reply, waiter) = oneshot();
        subs.submit(reply)?;
        signal.notify();
        waiter.wait(None)
    }

    #[test]
    fn shutdown_racing_a_submission_leaves_no_one_waiting() {
        loom::model(|| {
            let subs = Arc::new(Submissions::<Req>::new(8));
            let signal = Arc::new(Signal::default());
            let (s, g) = (Arc::clone(&subs), Arc::clone(&signal));
            let c = thread::spawn(move || client(&s, &g));
            // The driver: one pass, then shutdown drops what is left.
            serve_once(&subs);
            drop(subs.close());
            let result = c.join().unwrap();
            assert!(matches!(result, Ok(7) | Err(RuntimeError::ShuttingDown)), "{result:?}");
        });
    }

    #[test]
    fn a_driver_that_waits_on_the_signal_sees_every_submission() {
        loom::model(|| {
            let subs = Arc::new(Submissions::<Req>::new(8));
            let signal = Arc::new(Signal::default());
            let (s, g) = (Arc::clone(&subs), Arc::clone(&signal));
            let c = thread::spawn(move || client(&s, &g));
            // The driver sleeps until signalled, then serves: a lost
            // wake-up would leave both threads blocked (a deadlock).
            let mut served = Vec::new();
            while served.is_empty() {
                subs.drain(&mut served, usize::MAX);
                if served.is_empty() {
                    signal.wait(None);
                }
            }
            for reply in served {
                reply.send(Ok(7));
            }
            assert_eq!(c.join().unwrap().unwrap(), 7);
        });
    }

    #[test]
    fn a_wake_up_deferred_to_the_end_of_the_turn_is_not_lost() {
        loom::model(|| {
            let (reply, waiter) = oneshot::<u32>();
            let (reply2, waiter2) = oneshot::<u32>();
            // The client waits on its first request, then takes the second.
            let c = thread::spawn(move || (waiter.wait(None), waiter2.wait(None)));
            // The driver answers both in a turn and wakes the client after.
            let mut woken = Wakeups::default();
            reply.send_later(Ok(7), &mut woken);
            reply2.send_later(Ok(8), &mut woken);
            woken.wake_all();
            let (a, b) = c.join().unwrap();
            assert_eq!((a.unwrap(), b.unwrap()), (7, 8));
        });
    }

    #[test]
    fn a_driver_unwinding_before_the_wake_up_still_wakes() {
        loom::model(|| {
            let (reply, waiter) = oneshot::<u32>();
            let c = thread::spawn(move || waiter.wait(None));
            let mut woken = Wakeups::default();
            reply.send_later(Ok(7), &mut woken);
            // Dropped without `wake_all`, as when the driver unwinds.
            drop(woken);
            assert_eq!(c.join().unwrap().unwrap(), 7);
        });
    }

    #[test]
    fn two_clients_and_a_shutdown_from_a_third_thread() {
        loom::model(|| {
            let subs = Arc::new(Submissions::<Req>::new(8));
            let signal = Arc::new(Signal::default());
            let clients: Vec<_> = (0..2)
                .map(|_| {
                    let (s, g) = (Arc::clone(&subs), Arc::clone(&signal));
                    thread::spawn(move || client(&s, &g))
                })
                .collect();
            let s = Arc::clone(&subs);
            let stopper = thread::spawn(move || drop(s.close()));
            serve_once(&subs);
            stopper.join().unwrap();
            // After close, the driver's final pass drops what remains.
            drop(subs.close());
            for c in clients {
                let result = c.join().unwrap();
                assert!(matches!(result, Ok(7) | Err(RuntimeError::ShuttingDown)), "{result:?}");
            }
        });
    }

    #[test]
    fn a_queue_waiter_sees_every_outcome_of_immediate_and_deferred_replies() {
        loom::model(|| {
            let queue = Arc::new(Outcomes::<u32>::default());
            let (now, later, last) = (
                Reply::to_queue(Arc::clone(&queue), 1),
                Reply::to_queue(Arc::clone(&queue), 2),
                Reply::to_queue(Arc::clone(&queue), 3),
            );
            let q = Arc::clone(&queue);
            // The client waits (no timeout: a lost wake-up is a deadlock)
            // until it holds all three outcomes, however they are split
            // between its wake-ups.
            let c = thread::spawn(move || {
                let mut out = Vec::new();
                while out.len() < 3 {
                    q.take_by(None, &mut out);
                }
                out.into_iter().map(|(tag, v)| (tag, v.unwrap())).collect::<Vec<_>>()
            });
            // The driver: one answer at once, two deferred to the end of
            // the turn (the second owing no wake-up of its own).
            now.send(Ok(10));
            let mut woken = Wakeups::default();
            later.send_later(Ok(20), &mut woken);
            last.send_later(Ok(30), &mut woken);
            woken.wake_all();
            assert_eq!(c.join().unwrap(), [(1, 10), (2, 20), (3, 30)]);
        });
    }

    #[test]
    fn completion_racing_a_timed_out_caller_is_harmless() {
        loom::model(|| {
            let (reply, waiter) = oneshot::<u32>();
            let t = thread::spawn(move || reply.send(Ok(1)));
            // A caller that gave up drops its waiter; the driver's answer
            // then goes nowhere, without blocking or panicking.
            drop(waiter);
            t.join().unwrap();
        });
    }
}
