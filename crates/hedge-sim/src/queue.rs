//! The event queue and the virtual clock.
//!
//! Events are kept in a `BinaryHeap<(Reverse<SimTime>, Reverse<seq>, E)>`-shaped heap (see [`EventQueue`]).
//!
//! **Ordering guarantee.** Events pop in increasing time. Events scheduled for the *same* time pop in the
//! order they were scheduled (FIFO), because every push takes the next value of a monotonically increasing
//! sequence number and ties on time are broken by that number. The event payload never takes part in the
//! ordering, so two runs that push the same events in the same order pop them in the same order, whatever
//! the payload's own `Ord` (or lack of one). An event scheduled "now" (at the current time) while events
//! of the current time are being processed pops after all of those already queued for that time. Time
//! never goes backwards: scheduling an event in the past is clamped to the current time (and counted in
//! [`EventQueue::clamped`]), so a buggy model cannot reorder history.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Virtual time: whole seconds since the start of the simulation.
pub type SimTime = i64;

struct Entry<E> {
    key: (Reverse<SimTime>, Reverse<u64>),
    event: E,
}
impl<E> PartialEq for Entry<E> {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key.cmp(&o.key)
    }
}

/// A deterministic priority queue of timed events with a virtual clock.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
    now: SimTime,
    popped: u64,
    clamped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), seq: 0, now: 0, popped: 0, clamped: 0 }
    }
    pub fn with_capacity(n: usize) -> Self {
        EventQueue { heap: BinaryHeap::with_capacity(n), ..Self::new() }
    }
    /// The virtual clock: the time of the last popped event (0 before the first).
    pub fn now(&self) -> SimTime {
        self.now
    }
    /// Schedules `event` at absolute time `at` (clamped to [`now`](Self::now)).
    pub fn schedule(&mut self, at: SimTime, event: E) {
        let at = if at < self.now {
            self.clamped += 1;
            self.now
        } else {
            at
        };
        self.heap.push(Entry { key: (Reverse(at), Reverse(self.seq)), event });
        self.seq += 1;
    }
    /// Schedules `event` `delay` seconds from now.
    pub fn schedule_in(&mut self, delay: i64, event: E) {
        self.schedule(self.now.saturating_add(delay.max(0)), event);
    }
    /// Pops the next event and advances the clock to its time.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<(SimTime, E)> {
        let e = self.heap.pop()?;
        self.now = e.key.0 .0;
        self.popped += 1;
        Some((self.now, e.event))
    }
    /// Time of the next event, if any, without popping it.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|e| e.key.0 .0)
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
    /// Events popped so far.
    pub fn processed(&self) -> u64 {
        self.popped
    }
    /// Schedules that asked for a time in the past and were clamped to now.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_time_is_fifo_and_clock_advances() {
        let mut q = EventQueue::new();
        q.schedule(10, "b1");
        q.schedule(5, "a");
        q.schedule(10, "b2");
        q.schedule(10, "b0-later-pushed");
        assert_eq!(q.next(), Some((5, "a")));
        assert_eq!(q.now(), 5);
        q.schedule(1, "past"); // clamped to 5
        assert_eq!(q.clamped(), 1);
        assert_eq!(q.next(), Some((5, "past")));
        let rest: Vec<_> = std::iter::from_fn(|| q.next()).collect();
        assert_eq!(rest, vec![(10, "b1"), (10, "b2"), (10, "b0-later-pushed")]);
        assert_eq!(q.processed(), 5);
    }

    proptest! {
        /// Pop order is exactly a stable sort of the pushes by time.
        #[test]
        fn pops_in_stable_time_order(times in proptest::collection::vec(0i64..50, 0..200)) {
            let mut q = EventQueue::new();
            for (i, t) in times.iter().enumerate() {
                q.schedule(*t, i);
            }
            let mut want: Vec<(i64, usize)> = times.iter().copied().zip(0..).collect();
            want.sort_by_key(|&(t, _)| t); // stable
            let got: Vec<_> = std::iter::from_fn(|| q.next()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
